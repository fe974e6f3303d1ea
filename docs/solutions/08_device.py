"""Reference solutions to the exercises of lesson 08 (docs/08_device.md): device speed.

1. The roofline: arithmetic intensity of a square matmul, the speed a kernel can reach on a machine
   with a given peak and memory bandwidth, and the smallest matmul that is compute-bound.
2. A packed GEMM in NumPy, with the loop structure of ops_c/matmul.cpp: pack B into NR-wide
   micro-panels and A into MR-tall ones, K slice by K slice, and build each MR x NR tile of C from
   rank-1 updates, as the micro-kernel does in registers.
3. Merging dims for the CUDA kernels: the neighbouring dims that every operand steps through as one
   become one dim, so a kernel's strided walk does fewer divisions (backend/cuda.py `_coalesce`).
Plain NumPy: these re-derive what the C and CUDA code does, slowly, so that it can be read and checked.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np


# ---- 1. the roofline ------------------------------------------------------------------------------

def matmul_intensity(n: int, itemsize: int = 4) -> float:
    """Flops per byte of (n, n) @ (n, n) when A and B are read once and C written once."""
    flops = 2.0 * n ** 3              # n^2 outputs, each n multiplies and n adds
    traffic = 3.0 * n * n * itemsize   # A, B in; C out
    return flops / traffic


def attainable_gflops(intensity: float, peak_gflops: float, bandwidth_gbs: float) -> float:
    """The roof: a kernel can go no faster than the arithmetic units, nor than memory can feed it."""
    return min(peak_gflops, intensity * bandwidth_gbs)


def smallest_compute_bound_n(peak_gflops: float, bandwidth_gbs: float, itemsize: int = 4) -> int:
    """The smallest n whose square matmul reaches the ridge point peak / bandwidth (flops per byte)."""
    ridge = peak_gflops / bandwidth_gbs
    n = max(1, math.ceil(ridge * 3 * itemsize / 2))   # intensity 2n / (3 itemsize) >= ridge
    while n > 1 and matmul_intensity(n - 1, itemsize) >= ridge:   # guard against rounding up too far
        n -= 1
    while matmul_intensity(n, itemsize) < ridge:
        n += 1
    return n


# ---- 2. a packed GEMM -----------------------------------------------------------------------------

def pack_panels(lanes: np.ndarray, r: int) -> np.ndarray:
    """(n, kc) lanes -> (ceil(n / r), kc, r) micro-panels, zero-padded: out[p, k, l] = lanes[p * r + l, k].

    For A the lanes are its rows (a block of A[rows, k-slice]); for B they are its columns (B[k-slice, cols].T).
    Inside a panel the r lanes of one depth k sit side by side, which is the order the micro-kernel reads.
    """
    n, kc = lanes.shape
    panels = np.zeros((-(-n // r), kc, r), dtype=lanes.dtype)
    for i in range(n):
        panels[i // r, :, i % r] = lanes[i, :]
    return panels


def micro_kernel(ap: np.ndarray, bp: np.ndarray) -> np.ndarray:
    """One (MR, NR) tile from a packed A panel (kc, MR) and a packed B panel (kc, NR): kc rank-1 updates."""
    tile = np.zeros((ap.shape[1], bp.shape[1]), dtype=np.result_type(ap, bp))
    for k in range(ap.shape[0]):
        tile += np.outer(ap[k], bp[k])   # in C: MR broadcasts of a[k] times two vectors of b[k]
    return tile


def packed_matmul(a: np.ndarray, b: np.ndarray, mr: int = 4, nr: int = 8, kc: int = 16, mc: int = 8) -> np.ndarray:
    """a (M, K) @ b (K, N) with the blocking of ops_c/matmul.cpp's gemm (one thread, B packed per K slice).

    For each K slice: pack that slice of B into nr-wide panels; for each mc-tall block of A's rows, pack
    it into mr-tall panels and add every (mr, nr) tile's contribution to C. Edge tiles are computed whole
    (the padding is zeros) and only their valid part is kept.
    """
    M, K = a.shape
    N = b.shape[1]
    c = np.zeros((M, N), dtype=np.result_type(a, b))
    for pc in range(0, K, kc):
        depth = min(kc, K - pc)
        bpack = pack_panels(b[pc:pc + depth, :].T, nr)  # (ceil(N / nr), depth, nr)
        for i0 in range(0, M, mc):
            rows = min(mc, M - i0)
            apack = pack_panels(a[i0:i0 + rows, pc:pc + depth], mr)  # (ceil(rows / mr), depth, mr)
            for jp, bp in enumerate(bpack):
                for ip, ap in enumerate(apack):
                    r0, c0 = i0 + ip * mr, jp * nr
                    tile = micro_kernel(ap, bp)
                    h, w = min(mr, i0 + rows - r0), min(nr, N - c0)   # the valid part of an edge tile
                    c[r0:r0 + h, c0:c0 + w] += tile[:h, :w]
    return c


# ---- 3. merging dims for a strided walk --------------------------------------------------------------

def coalesce(shape: Sequence[int], *strides: Sequence[int]) -> Tuple[List[int], List[List[int]]]:
    """Drop size-1 dims and merge dim i into the dim before it when, for every operand, one step of the
    earlier dim is exactly n_i steps of dim i (stride_before == stride_i * n_i).

    C-order over the new shape then reaches the same element offsets, in the same order, as over `shape`.
    Returns (new shape, one new stride list per operand)."""
    new_shape: List[int] = []
    new_strides: List[List[int]] = [[] for _ in strides]
    for i, n in enumerate(shape):
        if n == 1:
            continue   # a size-1 dim is never stepped through: its stride does not matter
        mergeable = bool(new_shape) and all(ns[-1] == s[i] * n for ns, s in zip(new_strides, strides))
        if mergeable:
            new_shape[-1] *= n
            for ns, s in zip(new_strides, strides):
                ns[-1] = s[i]   # the merged dim steps as the inner one did
        else:
            new_shape.append(n)
            for ns, s in zip(new_strides, strides):
                ns.append(s[i])
    return new_shape, new_strides
