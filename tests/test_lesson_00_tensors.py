"""Tests for lesson 00's reference solutions (docs/solutions/00_tensors.py) against NumPy's views.

NumPy is the independent reference: its arrays carry strides (in bytes) and a data pointer, so the
shape, strides (in elements) and offset of any NumPy view are known without tinytensor. Each view is
also built with tinytensor's movement ops, to check that the lesson's arithmetic is what tinytensor does.
"""
import math

import numpy as np
import pytest

import tinytensor as tt
from helpers import load_solution

sol = load_solution("00_tensors")

N = 24  # every view below lives in a flat storage of 24 elements: arange(24)

# name -> the same movement op on a NumPy array and on a tinytensor tensor, both of storage arange(24)
VIEWS = {
    "reshape": lambda a: a.reshape(2, 3, 4),
    "transpose": lambda a: a.reshape(4, 6).T,
    "permute": lambda a: a.reshape(2, 3, 4).transpose(2, 0, 1) if isinstance(a, np.ndarray)
    else a.reshape(2, 3, 4).permute(2, 0, 1),
    "slice_steps": lambda a: a.reshape(4, 6)[1:, ::2],
    "negative_step": lambda a: a.reshape(4, 6)[::-1, 1::3],
    "select_column": lambda a: a.reshape(4, 6)[:, 2],
    "unsqueezed": lambda a: a.reshape(4, 6)[:, None, 1:5],
    "middle_block": lambda a: a.reshape(2, 3, 4)[:, 1:, 1:3],
}


def numpy_view_layout(view: np.ndarray, base: np.ndarray):
    """(shape, strides in elements, offset in elements) of a NumPy view of a flat base."""
    item = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return view.shape, tuple(s // item for s in view.strides), offset


@pytest.fixture
def base():
    return np.arange(N, dtype=np.int64)


# ---- exercise 1 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(VIEWS))
def test_materialize_matches_numpy_views(name, base):
    view = VIEWS[name](base)
    shape, strides, offset = numpy_view_layout(view, base)
    np.testing.assert_array_equal(sol.materialize(base, shape, strides, offset), view)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_materialize_reads_tinytensor_layouts(name, base):
    t = VIEWS[name](tt.arange(N))
    assert t.shape == VIEWS[name](base).shape
    got = sol.materialize(base, t.shape, t.stride(), t.storage_offset())
    np.testing.assert_array_equal(got, VIEWS[name](base))


def test_storage_index_matches_numpy_byte_offsets(base):
    view = base.reshape(4, 6)[::-1, 1::2]
    shape, strides, offset = numpy_view_layout(view, base)
    for index in np.ndindex(*shape):
        assert base[sol.storage_index(index, strides, offset)] == view[index]


# ---- exercise 2 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, target", [
    ((3,), (4, 3)),
    ((3, 1), (3, 5)),
    ((1, 4), (2, 3, 4)),
    ((2, 1, 4), (2, 3, 4)),
    ((1,), (2, 2)),
    ((2, 3), (2, 3)),
    ((1, 1), (1, 1)),
])
def test_broadcast_view_matches_numpy_and_expand(shape, target):
    a = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    ref = np.broadcast_to(a, target)
    got_shape, got_strides = sol.broadcast_view(a.shape, tuple(s // a.itemsize for s in a.strides), target)
    assert got_shape == ref.shape
    used = [d for d, n in enumerate(target) if n != 1]    # NumPy gives size-1 dims stride 0; never read anyway
    assert [got_strides[d] for d in used] == [ref.strides[d] // a.itemsize for d in used]
    expanded = tt.tensor(a).expand(*target)
    assert (expanded.shape, expanded.stride()) == (got_shape, got_strides)
    np.testing.assert_array_equal(sol.materialize(a.reshape(-1), got_shape, got_strides, 0), ref)


def test_broadcast_view_of_a_transposed_operand():
    a = np.arange(6.0).reshape(3, 2).T[:, None, :]          # (2, 1, 3), strides (1, ., 2)
    strides = tuple(s // a.itemsize for s in a.strides)
    got_shape, got_strides = sol.broadcast_view(a.shape, strides, (5, 2, 4, 3))
    ref = np.broadcast_to(a, (5, 2, 4, 3))
    assert got_strides == tuple(s // a.itemsize for s in ref.strides)
    np.testing.assert_array_equal(sol.materialize(np.arange(6.0), got_shape, got_strides, 0), ref)


@pytest.mark.parametrize("shape, target", [((3,), (4,)), ((2, 3), (3, 3)), ((2, 3), (3,))])
def test_broadcast_view_rejects_what_numpy_rejects(shape, target):
    with pytest.raises(ValueError):
        np.broadcast_to(np.zeros(shape), target)
    with pytest.raises(ValueError):
        sol.broadcast_view(shape, (1,) * len(shape), target)


# ---- exercise 3 ---------------------------------------------------------------------------------

NEW_SHAPES = [(24,), (2, 12), (12, 2), (4, 6), (6, 4), (2, 3, 4), (4, 3, 2), (2, 2, 6), (3, 8), (1, 24, 1),
              (2, 1, 12), (2, 2, 2, 3)]
SMALL_SHAPES = [(12,), (3, 4), (4, 3), (2, 6), (6, 2), (2, 2, 3), (3, 2, 2), (1, 12), (12, 1), (2, 3, 2)]


def numpy_can_view(view: np.ndarray, new_shape) -> bool:
    try:
        np.reshape(view, new_shape, copy=False)
        return True
    except ValueError:
        return False


def check_reshape(view: np.ndarray, base: np.ndarray, t, new_shape) -> None:
    """The solution's answer agrees with NumPy (view or copy, values) and with tinytensor's view()."""
    shape, strides, offset = numpy_view_layout(view, base)
    got = sol.reshape_strides(shape, strides, new_shape)
    assert (got is not None) == numpy_can_view(view, new_shape), (shape, strides, new_shape)
    if got is None:
        with pytest.raises(RuntimeError):
            t.view(*new_shape)
        return
    np.testing.assert_array_equal(sol.materialize(base, new_shape, got, offset), view.reshape(new_shape))
    tv = t.view(*new_shape)
    used = [d for d, n in enumerate(new_shape) if n != 1]   # strides of size-1 dims are never read
    assert [got[d] for d in used] == [tv.stride()[d] for d in used]


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_reshape_strides_agrees_with_numpy(name, base):
    view, t = VIEWS[name](base), VIEWS[name](tt.arange(N))
    candidates = NEW_SHAPES if view.size == N else [s for s in SMALL_SHAPES if math.prod(s) == view.size]
    candidates = candidates or [(view.size,), (1, view.size)]
    for new_shape in candidates:
        check_reshape(view, base, t, new_shape)


def test_reshape_strides_of_an_expanded_tensor():
    row = np.arange(3.0)
    view = np.broadcast_to(row, (4, 3))
    t = tt.tensor(row).expand(4, 3)
    for new_shape in [(2, 2, 3), (12,), (4, 3, 1), (2, 6)]:
        check_reshape(view, row, t, new_shape)
    assert sol.reshape_strides((4, 3), (0, 1), (2, 2, 3)) is not None   # splitting the stride-0 dim: a view
    assert sol.reshape_strides((4, 3), (0, 1), (12,)) is None           # merging it with the row: a copy


def test_reshape_strides_rejects_a_different_size():
    with pytest.raises(ValueError):
        sol.reshape_strides((2, 3), (3, 1), (4, 2))
