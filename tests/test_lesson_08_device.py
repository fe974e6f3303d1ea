"""Lesson 08's exercise solutions (docs/solutions/08_device.py) against independent references.

The roofline against its closed form and a brute-force search; the packed GEMM against NumPy's matmul in
float64 (odd shapes that leave edge tiles everywhere) and its packing against a pad-reshape-transpose
construction; merging dims against a brute-force list of the element offsets a C-order walk reaches, and
against the CUDA backend's own `_coalesce` (pure Python: it needs no GPU and no CuPy).
"""
import numpy as np
import pytest

from helpers import load_solution
from tinytensor.backend import cuda

sol = load_solution("08_device")


# ---- 1. roofline ------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 6, 64, 1000])
def test_matmul_intensity_is_n_over_6_for_fp32(n):
    assert sol.matmul_intensity(n) == pytest.approx(n / 6)
    assert sol.matmul_intensity(n, itemsize=8) == pytest.approx(n / 12)


def test_attainable_gflops_is_the_lower_roof():
    peak, bw = 166.0, 20.0
    for intensity in np.linspace(0.01, 40, 50):
        expected = peak if intensity * bw > peak else intensity * bw
        assert sol.attainable_gflops(intensity, peak, bw) == pytest.approx(expected)
    # layer norm in the example: 7 flops per 8 bytes, so at 19.5 GB/s it cannot pass about 17 GFLOP/s
    assert sol.attainable_gflops(7 / 8, peak, 19.5) == pytest.approx(17.0625)


@pytest.mark.parametrize("peak,bw,itemsize", [(166.0, 20.0, 4), (332.0, 13.0, 4), (50.0, 50.0, 8), (1.0, 100.0, 4)])
def test_smallest_compute_bound_n_by_search(peak, bw, itemsize):
    n = sol.smallest_compute_bound_n(peak, bw, itemsize)
    ridge = peak / bw
    first = next(m for m in range(1, 100000) if 2 * m ** 3 / (3 * m * m * itemsize) >= ridge)
    assert n == first


# ---- 2. packed GEMM ---------------------------------------------------------------------------------

def test_pack_panels_layout():
    rng = np.random.default_rng(0)
    for n, kc, r in [(10, 7, 4), (8, 3, 4), (1, 5, 6), (13, 1, 8)]:
        lanes = rng.standard_normal((n, kc))
        padded = np.pad(lanes, ((0, -n % r), (0, 0)))                 # (P * r, kc)
        expected = padded.reshape(-1, r, kc).transpose(0, 2, 1)       # (P, kc, r)
        np.testing.assert_array_equal(sol.pack_panels(lanes, r), expected)


def test_micro_kernel_is_a_product_of_panels():
    rng = np.random.default_rng(1)
    ap, bp = rng.standard_normal((9, 4)), rng.standard_normal((9, 8))
    np.testing.assert_allclose(sol.micro_kernel(ap, bp), ap.T @ bp, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 33, 13), (16, 16, 16), (21, 5, 30), (9, 40, 3)])
@pytest.mark.parametrize("blocking", [dict(), dict(mr=3, nr=5, kc=7, mc=6), dict(mr=6, nr=16, kc=256, mc=96)])
def test_packed_matmul_equals_numpy(m, k, n, blocking):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_allclose(sol.packed_matmul(a, b, **blocking), a @ b, rtol=1e-12, atol=1e-12)


def test_packed_matmul_reads_transposed_operands():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((19, 11)).T, rng.standard_normal((23, 19)).T   # (11, 19) and (19, 23) views
    np.testing.assert_allclose(sol.packed_matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)


# ---- 3. merging dims ----------------------------------------------------------------------------------

def offsets(shape, strides):
    """Every element's offset, in C order, by brute force."""
    if not len(shape):
        return np.zeros(1, dtype=np.int64)   # a 0-d walk reaches one element, at offset 0
    idx = np.indices(shape).reshape(len(shape), -1)   # (ndim, numel), C order
    return (np.asarray(strides).reshape(-1, 1) * idx).sum(0)


def random_case(rng):
    """A shape with two operands: a permuted contiguous layout and a broadcast/stepped one."""
    nd = int(rng.integers(0, 5))
    shape = [int(s) for s in rng.integers(1, 5, nd)]
    contiguous = [int(s) for s in np.cumprod([1] + shape[::-1])[:-1][::-1]]
    if nd and rng.random() < 0.5:   # a transposed operand: swap two strides
        i, j = rng.choice(nd, 2, replace=True)
        contiguous[i], contiguous[j] = contiguous[j], contiguous[i]
    other = [int(s) * int(rng.choice([0, 1, 2])) for s in np.cumprod([1] + shape[::-1])[:-1][::-1]]
    return shape, contiguous, other


def test_coalesce_keeps_every_offset_and_matches_the_backend():
    rng = np.random.default_rng(3)
    for _ in range(300):
        shape, s1, s2 = random_case(rng)
        new_shape, (n1, n2) = sol.coalesce(shape, s1, s2)
        np.testing.assert_array_equal(offsets(new_shape, n1), offsets(shape, s1))
        np.testing.assert_array_equal(offsets(new_shape, n2), offsets(shape, s2))
        assert (new_shape, [n1, n2]) == tuple(cuda._coalesce(shape, s1, s2))
        for i in range(1, len(new_shape)):   # nothing left to merge
            assert not (n1[i - 1] == n1[i] * new_shape[i] and n2[i - 1] == n2[i] * new_shape[i])


def test_coalesce_examples():
    assert sol.coalesce((2, 3, 4), (12, 4, 1)) == ([24], [[1]])            # contiguous: one dim
    assert sol.coalesce((2, 3, 4), (1, 2, 6)) == ([2, 3, 4], [[1, 2, 6]])  # transposed: nothing merges
    assert sol.coalesce((4, 1, 5), (5, 99, 1), (0, 7, 1)) == ([4, 5], [[5, 1], [0, 1]])  # broadcast row
