"""The GPU tests without a GPU: a stand-in for the part of CuPy that backend/cuda.py uses.

"Device" memory is host memory (a NumPy array that, like a CuPy array, refuses implicit conversion
to NumPy), cuBLAS's matmul is NumPy's, and every kernel runs on the CPU: each ops_cuda/*.cu file,
with common.cuh and every template instantiation backend/cuda.py names, is compiled by g++ against
emu.h (which runs each CUDA thread as a coroutine) into a shared library, and a launch calls it
through ctypes with the grid, the block, the dynamic shared memory size and the arguments. The
launcher checks the argument count and the size of each argument (a wrong integer width or a
missing argument fails the launch) and puts a canary after the dynamic shared memory.

What passes here has right indexing, strides, dtype handling, reductions across threads, barriers
and warp shuffles. It has not run on a GPU: memory ordering, races between threads, timing, NVRTC
and cuBLAS are untested until it does.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import shutil
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def available() -> bool:
    """True where the emulator can run: Linux (ucontext) with g++."""
    return sys.platform.startswith("linux") and shutil.which("g++") is not None


class _Pointer:
    """A device pointer: an offset in bytes into a root array (CuPy's MemoryPointer)."""

    def __init__(self, root: np.ndarray, offset: int = 0):
        self.root, self.offset = root, offset

    @property
    def ptr(self) -> int:
        return self.root.ctypes.data + self.offset

    def __add__(self, n):
        return _Pointer(self.root, self.offset + int(n))


class DeviceArray:
    """A CuPy array stand-in: the data lives in `a`, a view of `root` (the allocation)."""

    def __init__(self, a: np.ndarray, root: np.ndarray = None):
        self.a, self.root = a, a if root is None else root

    dtype = property(lambda self: self.a.dtype)
    shape = property(lambda self: self.a.shape)
    size = property(lambda self: self.a.size)
    ndim = property(lambda self: self.a.ndim)

    @property
    def data(self) -> _Pointer:
        return _Pointer(self.root, self.a.ctypes.data - self.root.ctypes.data if self.a.size else 0)

    def __getitem__(self, key):
        return DeviceArray(self.a[key], self.root)

    def reshape(self, *shape):
        out = self.a.reshape(*shape)
        assert out.size == 0 or np.shares_memory(out, self.a), "reshape of a device array must be a view"
        return DeviceArray(out, self.root)

    def __array__(self, *args, **kwargs):
        raise TypeError("implicit conversion of a device array to NumPy (use asnumpy)")

    def __len__(self):
        return len(self.a)


def _empty(shape, dtype=np.float32):
    a = np.empty(shape, dtype=dtype)
    a.view(np.uint8)[...] = 0xAB  # garbage, as fresh device memory would hold
    return DeviceArray(a)


def _ndarray(shape, dtype, memptr: _Pointer, strides):
    return DeviceArray(np.ndarray(shape, dtype, buffer=memptr.root, offset=memptr.offset, strides=strides),
                       memptr.root)


def _matmul(a: DeviceArray, b: DeviceArray, out: DeviceArray):
    out.a[...] = np.matmul(a.a, b.a)
    return out


_SCALARS = {np.int64: ctypes.c_int64, np.int32: ctypes.c_int32, np.float64: ctypes.c_double,
            np.uint64: ctypes.c_uint64}


class _Kernel:
    """One name expression of a compiled file, launched as kernel(grid, block, args, shared_mem=...)."""

    def __init__(self, lib, index: int, expr: str):
        self.lib, self.index, self.expr = lib, index, expr

    def __call__(self, grid, block, args, shared_mem=0):
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        values, sizes = [], []
        for a in args:
            if isinstance(a, DeviceArray):
                values.append(ctypes.c_void_p(a.a.ctypes.data))
                sizes.append(-100 - a.dtype.itemsize)  # a pointer to elements of this size
            else:
                assert type(a) in _SCALARS, f"{self.expr}: argument {a!r} of type {type(a)} is not a NumPy scalar"
                values.append(_SCALARS[type(a)](a))
                sizes.append(ctypes.sizeof(values[-1]))
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        rc = self.lib.tt_launch(self.index, *grid, *block, ctypes.c_size_t(shared_mem), pointers,
                                (ctypes.c_int * len(sizes))(*sizes), len(sizes))
        assert rc == 0, f"{self.expr}: launch failed (code {rc}, see stderr)"


def _compile(file: str, source: str, exprs, build_dir: Path):
    """g++ builds `source` (a .cu file with common.cuh pasted in) with a launcher for each expression."""
    text = source.replace("extern __shared__ double tt_dynamic_smem[];", "double* tt_dynamic_smem = emu::dyn.data();")
    cases = "\n".join(f"    case {i}: return emu::launch(&{e}, g, b, shmem, args, sizes, n);" for i, e in enumerate(exprs))
    code = ('#include "emu.h"\n' + text + '\nextern "C" int tt_launch(int idx, unsigned gx, unsigned gy, unsigned gz, '
            'unsigned bx, unsigned by, unsigned bz, size_t shmem, void** args, const int* sizes, int n) {\n'
            '  dim3 g{gx, gy, gz}, b{bx, by, bz};\n  switch (idx) {\n' + cases + '\n  }\n  return 9;\n}\n')
    key = hashlib.sha1((code + (HERE / "emu.h").read_text()).encode()).hexdigest()[:16]
    lib_path = build_dir / f"{file}.{key}.so"
    if not lib_path.exists():
        src = build_dir / f"{file}.{key}.cpp"
        src.write_text(code)
        done = subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-w", f"-I{HERE}", str(src),
                               "-o", str(lib_path)], capture_output=True, text=True)
        assert done.returncode == 0, f"emulator build of {file} failed:\n{done.stderr[-3000:]}"
    lib = ctypes.CDLL(str(lib_path))
    lib.tt_launch.restype = ctypes.c_int
    return lib


@contextlib.contextmanager
def installed(cuda_module, build_dir: Path):
    """Inside the block, backend/cuda.py runs on the emulator (every .cu file built first, on 2 threads)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(2) as pool:
        libs = dict(zip(sorted(cuda_module.KERNELS), pool.map(
            lambda f: _compile(f, cuda_module.source(f), cuda_module.KERNELS[f], build_dir),
            sorted(cuda_module.KERNELS))))

    class RawModule:
        def __init__(self, code, options, name_expressions):
            self.name_expressions = name_expressions

        def get_function(self, expr):
            for file, exprs in cuda_module.KERNELS.items():
                if expr in exprs:
                    return _Kernel(libs[file], exprs.index(expr), expr)
            raise KeyError(expr)

    runtime = types.SimpleNamespace(getDevice=lambda: 0, getDeviceCount=lambda: 1)
    fake = types.SimpleNamespace(empty=_empty, zeros=lambda shape, dtype=np.float32: DeviceArray(np.zeros(shape, dtype)),
                                 asarray=lambda a, dtype=None: DeviceArray(np.array(a, dtype=dtype, copy=True)),
                                 asnumpy=lambda a: np.array(a.a, copy=True), ndarray=_ndarray, matmul=_matmul,
                                 RawModule=RawModule, cuda=types.SimpleNamespace(runtime=runtime))
    saved = cuda_module.cp
    caches = (cuda_module._modules, cuda_module._functions, cuda_module._metas, cuda_module._zeros)
    cuda_module.cp = fake
    try:
        yield fake
    finally:
        cuda_module.cp = saved
        for cache in caches:  # compiled kernels and device arrays of the emulator
            cache.clear()
