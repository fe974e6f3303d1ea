"""Builds ops_c/ into the tinytensor._C extension with pybind11; nothing else.

The .cpp files compile in parallel, one per core (NPY_NUM_BUILD_JOBS overrides the count).
Flags: -O3, OpenMP, C++17, and -march=native when the compiler accepts it. A failed build fails
the install loudly: there is no pure-Python fallback.
"""
import glob
import os
import subprocess
import tempfile

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup


def compiler_accepts(flag: str) -> bool:
    """True when g++ compiles an empty file with `flag` (used for -march=native)."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.cpp")
        with open(src, "w") as f:
            f.write("int main() { return 0; }\n")
        cmd = [os.environ.get("CXX", "c++"), flag, src, "-o", os.path.join(d, "t")]
        return subprocess.run(cmd, capture_output=True).returncode == 0


extra = ["-O3", "-fopenmp", "-ffp-contract=fast", "-fno-math-errno"]
if os.environ.get("TINYTENSOR_PORTABLE") != "1" and compiler_accepts("-march=native"):
    extra.append("-march=native")
    if compiler_accepts("-mprefer-vector-width=512"):  # GCC otherwise stays at 256-bit vectors on AVX-512
        extra.append("-mprefer-vector-width=512")

ext = Pybind11Extension(
    "tinytensor._C",
    sorted(glob.glob("ops_c/*.cpp")),
    include_dirs=["ops_c"],
    depends=sorted(glob.glob("ops_c/*.h")),
    cxx_std=17,
    extra_compile_args=extra,
    extra_link_args=["-fopenmp"],
)

ParallelCompile("NPY_NUM_BUILD_JOBS").install()

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
