"""The CUDA backend slot. Storage would be CuPy arrays and kernels ops_cuda/*.cu (chapter 08).

Until that chapter lands, asking for device="cuda" raises a RuntimeError that says what is missing;
importing tinytensor never needs CuPy or a GPU.
"""
from __future__ import annotations


def unavailable() -> RuntimeError:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return RuntimeError("device 'cuda' needs CuPy and an NVIDIA GPU: CuPy is not installed "
                            "(pip install -e '.[cuda]'), and the CUDA backend is not built yet")
    return RuntimeError("device 'cuda': the CUDA backend (ops_cuda/) is not implemented yet in this version")
