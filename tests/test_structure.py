"""The layering of DESIGN.md section 2, checked on the source (ast), not by importing it.

Inside tinytensor/ a module imports only from its own layer or the layers below it, imports inside
functions included. Lowest first:
  0  view.py, dtype.py, device.py   (view.py and dtype.py import nothing from tinytensor;
                                     scalar.py, the micrograd Value, imports nothing from it either)
  1  backend/ (and the compiled _C it wraps)
  2  autograd.py
  3  functions.py, fused.py, indexing.py, printing.py, random.py
  4  tensor.py
  5  creation.py
  6  __init__.py and everything else (nn/, optim, io, ...)
Also: no torch, jax or transformers anywhere in tinytensor/, models/ or examples/; only
backend/cpu.py (and the tokenizer's C++ loops) import tinytensor._C, only backend/cuda.py imports
cupy; every backend provides every primitive (and fused kernel) of backend/base.py.
"""
import ast
import types
from pathlib import Path

import pytest

from tinytensor.backend import base

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tinytensor"

LAYERS = {
    "tinytensor.view": 0, "tinytensor.dtype": 0, "tinytensor.device": 0, "tinytensor.scalar": 0,
    "tinytensor.backend": 1, "tinytensor._C": 1,
    "tinytensor.autograd": 2,
    "tinytensor.functions": 3, "tinytensor.fused": 3, "tinytensor.indexing": 3, "tinytensor.printing": 3,
    "tinytensor.random": 3,
    "tinytensor.tensor": 4,
    "tinytensor.creation": 5,
}
IMPORT_NOTHING = {"tinytensor.view", "tinytensor.dtype", "tinytensor.scalar"}
FORBIDDEN = ("torch", "jax", "transformers")


def layer(module: str) -> int:
    """The layer of a tinytensor module: its own entry or its closest listed parent's, else the top."""
    parts = module.split(".")
    for i in range(len(parts), 1, -1):
        if ".".join(parts[:i]) in LAYERS:
            return LAYERS[".".join(parts[:i])]
    return 6


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path):
    """Absolute names of everything a file imports, anywhere in it (functions and classes included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_name = ".".join(base_parts[:len(base_parts) - node.level + 1])
            else:
                base_name = ""
            target = ".".join(p for p in (base_name, node.module) if p)
            if node.module is None:  # `from . import dtype, _C`: the names are what is imported
                for alias in node.names:
                    yield f"{target}.{alias.name}", node.lineno
                continue
            yield target, node.lineno
            for alias in node.names:  # `from .backend import cpu` imports the submodule too
                sub = ROOT / Path(*target.split("."), alias.name)
                # a module file or package, or any name taken from a package (`from tinytensor import _C`,
                # whose compiled file may not exist in a source checkout)
                if sub.with_suffix(".py").exists() or sub.is_dir() or sub.parent.is_dir():
                    yield f"{target}.{alias.name}", node.lineno


def python_files(*dirs):
    return sorted(p for d in dirs if (ROOT / d).exists() for p in (ROOT / d).rglob("*.py"))


ENGINE_FILES = python_files("tinytensor")


def test_the_tree_has_the_expected_modules():
    names = {module_name(p) for p in ENGINE_FILES}
    for expected in ("tinytensor", "tinytensor.view", "tinytensor.dtype", "tinytensor.device", "tinytensor.autograd",
                     "tinytensor.functions", "tinytensor.tensor", "tinytensor.creation", "tinytensor.backend.base",
                     "tinytensor.backend.cpu", "tinytensor.backend.ref", "tinytensor.backend.cuda"):
        assert expected in names


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_from_a_layer_above_it(path):
    me = module_name(path)
    own = layer(me)
    for target, line in imported_modules(path):
        if target != "tinytensor" and not target.startswith("tinytensor."):
            continue
        where = f"{path.relative_to(ROOT)}:{line} imports {target}"
        assert me not in IMPORT_NOTHING, f"{where}, but {me} must import nothing from tinytensor"
        assert layer(target) <= own, f"{where} (layer {layer(target)}) from layer {own}"


@pytest.mark.parametrize("path", python_files("tinytensor", "models", "examples"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_torch_jax_or_transformers(path):
    for target, line in imported_modules(path):
        assert target.split(".")[0] not in FORBIDDEN, f"{path.relative_to(ROOT)}:{line} imports {target}"


def test_only_the_backends_import_the_extension_and_cupy():
    for path in ENGINE_FILES:
        rel = path.relative_to(ROOT).as_posix()
        for target, line in imported_modules(path):
            if target == "tinytensor._C":  # the CPU backend, and the tokenizer's C++ BPE loops (an application)
                assert rel == "tinytensor/backend/cpu.py" or rel.startswith("tinytensor/tokenizer/"), \
                    f"{rel}:{line} imports tinytensor._C"
            if target.split(".")[0] == "cupy":
                assert rel == "tinytensor/backend/cuda.py", f"{rel}:{line} imports cupy"


def test_the_import_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The checker itself: a lazy import inside a function, written relatively, is still found."""
    pkg = tmp_path / "tinytensor"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "view.py").write_text("def f():\n    from .tensor import Tensor\n    from . import creation\n")
    (pkg / "tensor.py").write_text("")
    (pkg / "creation.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    found = {t for t, _ in imported_modules(pkg / "view.py")}
    assert {"tinytensor.tensor", "tinytensor.creation"} <= found
    assert layer("tinytensor.tensor") > layer("tinytensor.view")


# ---- backends provide every primitive ---------------------------------------------------------------

def test_ref_backend_has_every_primitive():
    from tinytensor.backend import ref
    base.check_backend(ref, "ref")


def test_cpu_backend_has_every_primitive():
    try:
        from tinytensor.backend import cpu
    except ImportError as e:
        pytest.skip(f"the compiled kernels are not built: {e}")
    base.check_backend(cpu, "cpu")


def test_check_backend_fails_for_a_missing_primitive():
    from tinytensor.backend import ref
    everything = (*base.PRIMITIVES, *base.FUSED)
    for missing in ("matmul", "index_add", "attention_backward"):
        fake = types.SimpleNamespace(**{p: getattr(ref, p) for p in everything if p != missing})
        with pytest.raises(RuntimeError, match=rf"backend fake lacks primitives \['{missing}'\]"):
            base.check_backend(fake, "fake")
    not_callable = types.SimpleNamespace(**{p: getattr(ref, p) for p in everything})
    not_callable.fill = None
    with pytest.raises(RuntimeError, match="fill"):
        base.check_backend(not_callable, "fake")
