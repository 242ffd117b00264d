"""Indexing: basic slices, steps, integer arrays with repeats (gradients accumulate),
boolean masks, take — against finite differences and closed forms."""

import numpy as np
import pytest

import dualrev as dr
from tests.helpers import check_all, check_empty

rng = np.random.default_rng(3)
A = rng.standard_normal((3, 4, 5))
V = rng.standard_normal(6)

CASES = {
    "int": (lambda x: x[2], V),
    "negative_int": (lambda x: x[-1] * x[0], V),
    "slice": (lambda x: x[1:4], V),
    "step": (lambda x: x[::2], V),
    "negative_step": (lambda x: x[::-2], V),
    "multi": (lambda x: x[1, :, 2:4], A),
    "ellipsis": (lambda x: x[..., 1], A),
    "newaxis": (lambda x: x[:, None, 1:3], A),
    "int_array": (lambda x: x[np.array([0, 2, 5])], V),
    "repeated_ints": (lambda x: x[[1, 1, 1, 4]], V),
    "list_index": (lambda x: x[[0, 2], :, 1], A),
    "two_arrays": (lambda x: x[[0, 2, 2], [1, 3, 3]], A),
    "separated_arrays": (lambda x: x[[0, 1], :, [4, 2]], A),
    "mixed_int_array": (lambda x: x[1, :, [0, 0, 3]], A),
    "bool_mask": (lambda x: x[x > 0], V),
    "bool_mask_2d": (lambda x: x[A[:, :, 0] > 0], A),
    "take": (lambda x: np.take(x, [5, 0, 0]), V),
    "take_axis": (lambda x: np.take(x, [3, 1], axis=1), A),
    "take_method": (lambda x: x.take([1, 2, 1], axis=2), A),
    # mode= (refused before; pinned refusals of the conformance harness): the indices
    # NumPy reads, wrapped or clipped (negative ones clipped to 0, not counted from the end)
    "take_wrap": (lambda x: np.take(x, [-8, 0, 13, 2], mode="wrap"), V),
    "take_clip_axis": (lambda x: np.take(x, [[7, -1], [1, 3]], axis=1, mode="clip"), A),
    "chained": (lambda x: x[1:][::-1][[0, 0, 2]], V),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_indexing(name):
    f, x = CASES[name]
    check_all(f, (x,), order=2)


def test_repeated_indices_accumulate():
    x = np.arange(4.0)
    g = dr.grad(lambda a: np.sum(a[[0, 0, 0, 3]] ** 2))(x)
    # d/dx0 of 3 * x0^2 = 6 x0 = 0, d/dx3 of x3^2 = 6.
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0, 6.0])
    g = dr.grad(lambda a: np.sum(a[[1, 1, 2]]))(x)
    np.testing.assert_array_equal(g, [0.0, 2.0, 1.0, 0.0])


def test_scalar_loop_over_elements():
    def rosen_loop(x):
        s = 0.0
        for i in range(len(x) - 1):
            s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
        return s

    def rosen(x):
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    x = rng.uniform(-1, 1, size=7)
    np.testing.assert_allclose(dr.grad(rosen_loop)(x), dr.grad(rosen)(x), rtol=1e-13)
    np.testing.assert_allclose(dr.hessian(rosen_loop)(x), dr.hessian(rosen)(x), rtol=1e-13)
    check_all(rosen_loop, (x,), order=2)


EMPTY = {
    "empty_integer_index": (lambda x: x[np.array([], dtype=int)], np.ones(3)),
    "mask_selecting_nothing": (lambda x: x[x > 5], np.ones(3)),
    "take_nothing": (lambda x: np.take(x, []), np.ones(3)),
    "take_from_empty": (lambda x: np.take(x, np.array([], dtype=int)), np.zeros(0)),
    "slice_of_empty": (lambda x: x[1:], np.zeros((0, 2))),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_indexing_with_empty_results(name):
    # A batched gather/scatter flattened with reshape(batch + (-1,)), ambiguous when the
    # batch (a jacrev of an empty output) has no elements.
    check_empty(*EMPTY[name])


def test_take_modes_keep_numpy_errors():
    with pytest.raises(ValueError, match="clipmode"):
        dr.grad(lambda x: np.sum(np.take(x, [1], mode="foo")))(V)
    with pytest.raises(IndexError, match="empty"):
        dr.grad(lambda x: np.sum(np.take(x, [1], mode="wrap")))(np.zeros(0))
    with pytest.raises(dr.DualrevError, match="out="):
        dr.grad(lambda x: np.sum(np.take(x, [1], out=np.zeros(1))))(V)


def test_take_mode_under_vmap_with_per_example_indices():
    xs = rng.standard_normal((3, 4))
    idx = np.array([[7, -1], [2, 4], [0, 9]])
    for mode in ("wrap", "clip"):
        got = dr.vmap(lambda v, i, mode=mode: np.take(v, i, mode=mode))(xs, idx)
        want = np.stack([np.take(v, i, mode=mode) for v, i in zip(xs, idx, strict=True)])
        np.testing.assert_array_equal(got, want)
