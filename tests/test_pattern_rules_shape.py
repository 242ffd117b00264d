"""Pattern rules of the data-movement, shape, indexing, construction, selection, reduction
and complex primitives (structural sparsity detection, dualrev/pattern_rules.py): each
rule's pattern against the dense Jacobian's non-zeros at several random points (a
superset always; equal where the rule is exact), and against closed forms where a
selection depends on the values (sort, max, an index computed from the input)."""

import importlib
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import dualrev as dr
from dualrev import pattern_rules
from dualrev.pattern_rules import DenseBlockError
from dualrev.primitive import _DECLARED, Primitive
from dualrev.transforms import dependencies


def _jacobian_nonzeros(f, points):
    """Where the dense Jacobian of ``f`` is non-zero at some of ``points``."""
    out = None
    for x in points:
        J = np.asarray(dr.jacobian(f)(x))
        nz = J.reshape(-1, x.size) != 0
        out = nz if out is None else out | nz
    return out


def _points(shape, seed, k=3, lo=0.2, hi=1.5):
    """``k`` random points of ``shape`` with entries away from 0 and of random sign."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape) for _ in range(k)]


def check(f, shape, *, exact, seed=0, k=3):
    """The detected pattern of ``f`` covers the Jacobian's non-zeros at ``k`` random points
    and, where ``exact``, equals their union. Returns the pattern (dense bool)."""
    pts = _points(shape, seed, k)
    found = dependencies(f, (pts[0],))
    P = found.pattern.toarray()
    J = _jacobian_nonzeros(f, pts)
    assert P.shape == J.shape
    missing = J & ~P
    assert not missing.any(), f"pattern misses {missing.sum()} Jacobian entries"
    if exact:
        np.testing.assert_array_equal(P, J)
        assert found.notes == []
    return P


def _lines(shape, axis):
    """The closed-form pattern of an operation whose each element depends on its whole
    line along ``axis`` (None: the whole array)."""
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    if axis is None:
        return np.ones((idx.size, idx.size), dtype=bool)
    other = np.moveaxis(np.indices(shape), 0, -1)
    key = np.delete(other, axis, axis=-1).reshape(idx.size, -1)
    return (key[:, None, :] == key[None, :, :]).all(-1)


# ------------------------------------------------------------------ shape moves
SHAPES = [(6,), (3, 4), (2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("order", ["C", "F"])
def test_reshape_and_ravel_are_exact(shape, order):
    n = int(np.prod(shape))
    check(lambda x: np.reshape(x, shape, order=order).ravel(order=order) * 1.0, (n,),
          exact=True)
    check(lambda x: np.reshape(x, (n,) + (1,), order=order) ** 2, shape, exact=True)


@pytest.mark.parametrize("shape,axes", [((3, 4), None), ((2, 3, 4), (2, 0, 1)),
                                        ((2, 3, 4), (1, 2, 0)), ((4, 1, 3), None)])
def test_transpose_and_moveaxis_are_exact(shape, axes):
    check(lambda x: np.transpose(x, axes) * 2.0, shape, exact=True)
    check(lambda x: np.moveaxis(x, 0, -1) + np.swapaxes(x, 0, 1).ravel().reshape(
        np.moveaxis(x, 0, -1).shape), shape, exact=True)


@pytest.mark.parametrize("shape,to", [((3,), (4, 3)), ((3, 1), (3, 5)), ((1,), (2, 2)),
                                      ((2, 1, 3), (2, 4, 3))])
def test_broadcast_to_is_exact(shape, to):
    check(lambda x: np.broadcast_to(x, to) * 1.0, shape, exact=True)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack_are_exact(axis):
    def f(x):
        parts = [x, np.zeros_like(x), x[::-1] ** 2]  # a constant part: no dependency
        stacked = np.stack(parts, axis=axis).sum(axis=axis)
        return np.concatenate(parts, axis=axis) + stacked.repeat(3, axis)

    check(f, (3, 4), exact=True)


@pytest.mark.parametrize("widths", [((1, 2),), ((0, 0), (2, 1)), ((1, 1), (0, 3))])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad_is_exact(widths, mode):
    shape = (5,) if len(widths) == 1 else (3, 4)
    check(lambda x: np.pad(x, widths, mode=mode) * 1.0, shape, exact=True)


@pytest.mark.parametrize("fn", [np.flip, np.fliplr, lambda x: np.roll(x, 2, axis=1),
                                lambda x: np.rot90(x), lambda x: np.tile(x, (2, 1)),
                                lambda x: np.repeat(x, [1, 2, 0], axis=0), np.diag,
                                lambda x: np.diagonal(x, 1), np.triu, lambda x: np.tril(x, -1),
                                lambda x: np.trace(x), np.atleast_3d,
                                lambda x: np.array([x[0], x[2] * 2.0, x[1]]),
                                lambda x: np.vstack([x, x[:1]]), lambda x: np.block([[x, x]]),
                                lambda x: np.split(x, [1], axis=1)[1],
                                lambda x: np.lib.stride_tricks.sliding_window_view(x, 2, 1)])
def test_data_movement_compositions_are_exact(fn):
    check(lambda x: np.asarray(fn(x)) * 1.0, (3, 3), exact=True)


# ------------------------------------------------------------------ indexing
@pytest.mark.parametrize("index", [
    (slice(1, None),), (slice(None, None, -2),), (1,), (-1, slice(None)),
    (np.array([2, 0, 2]),), (np.array([[0, 1], [2, 2]]), slice(None)),
    (slice(None), np.array([3, 0])), (np.array([True, False, True]),),
    (None, slice(None), 2), (Ellipsis, np.array([1, 1])),
])
def test_gather_is_exact(index):
    check(lambda x: x[index] * 1.0, (3, 4), exact=True)


def test_np_take_and_take_along_axis_with_constant_indices_are_exact():
    idx = np.array([[2, 0, 1, 1], [0, 0, 2, 1]])
    check(lambda x: np.take_along_axis(x, idx, axis=0) * 1.0, (3, 4), exact=True)
    check(lambda x: np.take(x, [5, 0, 5, 11]) ** 2, (3, 4), exact=True)
    check(lambda x: np.take(x, [3, 0], axis=1, mode="wrap") * 1.0, (3, 4), exact=True)


def test_writes_into_buffers_scatters_and_functional_updates_are_exact():
    def f(x):
        out = np.zeros(8)
        out[1:4] = x[:3] * x[1:4]  # update_p
        np.add.at(out, [0, 0, 7], x[[1, 2, 3]])  # scatter-add, a repeated target
        out[5] += x[0] ** 2
        return dr.at(out)[np.array([6, 6])].add(x[4]) * 1.0

    check(f, (5,), exact=True)
    check(lambda x: np.convolve(x, np.array([1.0, -2.0, 1.0]), mode="same"), (6,), exact=True)
    check(lambda x: np.diff(x, 2) + np.gradient(x)[1:-1], (6,), exact=True)


def test_take_along_with_a_constant_index_and_its_transpose_in_a_hessian():
    idx = np.array([0, 2, 2, 1])
    f = lambda x: np.sum(np.take_along_axis(x, idx, 0) ** 3)  # noqa: E731
    pts = _points((4,), 3)
    P = dependencies(dr.grad(f), (pts[0],)).pattern.toarray()
    H = np.zeros((4, 4), dtype=bool)
    for x in pts:
        H |= np.asarray(dr.hessian(f)(x)) != 0
    np.testing.assert_array_equal(P, H)  # the scatter-add (put_along) transposes exactly


# ------------------------------------------------------------------ orders found from values
def _orders(shape, seed, k=6):
    """Points whose orders along every axis differ (distinct values, shuffled)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return [(rng.permutation(n) + rng.uniform(0.1, 0.4, n)).reshape(shape) - n / 2
            for _ in range(k)]


@pytest.mark.parametrize("shape,axis", [((6,), -1), ((3, 4), 0), ((3, 4), 1),
                                        ((2, 3, 4), 1), ((3, 4), None)])
@pytest.mark.parametrize("fn", ["sort", "partition", "argsort_take"])
def test_sorts_depend_on_whole_lines_for_every_input(shape, axis, fn):
    def f(x):
        if fn == "sort":
            return np.sort(x, axis=axis)
        if fn == "partition":
            return np.partition(x, 1, axis=axis)
        if axis is None:
            return np.take(x, np.argsort(x, axis=None))
        return np.take_along_axis(x, np.argsort(x, axis=axis), axis=axis)

    pts = _orders(shape, seed=len(shape))
    found = dependencies(f, (pts[0],))
    P = found.pattern.toarray()
    # the closed form: every element of its line (the whole array for axis=None)
    np.testing.assert_array_equal(P, _lines(shape, axis))
    J = _jacobian_nonzeros(f, pts)
    assert not (J & ~P).any()
    # the Jacobian at any one point is a permutation: the rule does not read the order
    assert J.sum() > int(np.prod(shape))


@pytest.mark.parametrize("fn", [np.median, lambda x: np.quantile(x, [0.2, 0.7], axis=0),
                                lambda x: np.percentile(x, 40.0, axis=1),
                                lambda x: np.nanmedian(x, axis=0), np.sort_complex])
def test_quantiles_cover_every_order(fn):
    pts = _orders((4, 3), seed=5)
    P = dependencies(lambda x: np.asarray(fn(x)), (pts[0],)).pattern.toarray()
    J = _jacobian_nonzeros(lambda x: np.asarray(fn(x)), pts)
    assert not (J & ~P).any()


def test_a_gather_at_an_index_computed_from_the_input_depends_on_all_it_may_select():
    pts = _orders((5,), seed=7)
    for f in (lambda x: x[np.argmax(x)] * 1.0, lambda x: np.take(x, np.argsort(x)[:2]),
              lambda x: x[np.argmin(x), None] ** 2):
        found = dependencies(f, (pts[0],))
        assert found.pattern.toarray().all()
        assert found.notes == []
        J = _jacobian_nonzeros(f, pts)
        assert J.sum(axis=1).max() > 1 or J.any(axis=0).sum() > 1  # the choice moved
    # a row chosen by value: each element may come from any row, of its own column
    g = lambda x: x.reshape(3, 2)[np.argmax(x[::2])] * 1.0  # noqa: E731
    rows = _orders((6,), seed=8)
    P = dependencies(g, (rows[0],)).pattern.toarray()
    np.testing.assert_array_equal(P, [[1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]])
    assert not (_jacobian_nonzeros(g, rows) & ~P).any()
    # the largest of each column: only that column (the constant part stays exact)
    h = lambda x: x.reshape(3, 4)[np.argmax(x.reshape(3, 4), axis=0), np.arange(4)] * 1.0  # noqa: E731
    cols = _orders((12,), seed=9)
    P = dependencies(h, (cols[0],)).pattern.toarray()
    np.testing.assert_array_equal(P, np.tile(np.eye(4, dtype=bool), 3))
    assert not (_jacobian_nonzeros(h, cols) & ~P).any()
    # a newaxis among the parts: the whole array (a superset)
    k = lambda x: x.reshape(3, 4)[np.argmax(x[:3]), None] * 1.0  # noqa: E731
    assert dependencies(k, (cols[0],)).pattern.toarray().all()


@pytest.mark.parametrize("fn", [np.sort, lambda r: r[np.argmax(r)] * 1.0, np.median,
                                lambda r: np.take(r, np.argsort(r)[::2]), np.cumsum, np.max])
def test_value_dependent_selections_under_vmap_inside_a_detection(fn):
    # the batched index (one order per row) is computed per element by a closure on
    # plain values: it must stay a value of the detection, row by row
    f = lambda x: np.ravel(dr.vmap(fn)(x.reshape(3, 4)))  # noqa: E731
    pts = _orders((12,), seed=4)
    found = dependencies(f, (pts[0],))
    P = found.pattern.toarray()
    assert found.notes == []
    assert not (_jacobian_nonzeros(f, pts) & ~P).any()
    rows = np.repeat(np.eye(3, dtype=bool), 4, axis=1)  # row r of the output: input row r
    per = P.shape[0] // 3
    assert not (P & ~np.repeat(rows, per, axis=0)).any()


WRITES = {
    "at-add": lambda x: dr.at(np.zeros(5))[np.argsort(x)].add(x ** 2),
    "at-set": lambda x: dr.at(x * 1.0)[np.argsort(x)[:2]].set(x[3:] ** 2),
    "at-set-scalar": lambda x: dr.at(x ** 2)[np.argmax(x)].set(x[0]),
    "at-get": lambda x: dr.at(x)[np.argsort(x)[1:3]].get() * 1.0,
    "setitem": lambda x: _written(x, np.argsort(x)[::2], x[:3] * 2.0),
    "setitem-augmented": lambda x: _written(x, np.argmin(x), None),
}


def _written(x, index, v):
    y = x * 1.0
    if v is None:
        y[index] += x[1]
    else:
        y[index] = v
    return y


@pytest.mark.parametrize("name", sorted(WRITES))
def test_writes_at_positions_computed_from_the_input_cover_every_input(name):
    f = WRITES[name]
    pts = _orders((5,), seed=12)
    found = dependencies(f, (pts[0],))
    np.testing.assert_array_equal(found.value, f(pts[0]))  # the values at the point
    assert found.notes == []
    P = found.pattern.toarray()
    J = _jacobian_nonzeros(f, pts)
    assert not (J & ~P).any(), f"misses {(J & ~P).sum()} entries"


def test_a_product_update_at_positions_from_the_input_is_noted():
    found = dependencies(lambda x: dr.at(x)[np.argmax(x)].multiply(2.0), (np.arange(4.0),))
    assert found.notes and "decided" in found.notes[0]


def test_the_hessian_of_a_sorted_sum_is_covered():
    w = np.array([1.0, -2.0, 3.0, 0.5])
    f = lambda x: np.sum(w * np.sort(x) ** 3)  # noqa: E731
    pts = _orders((4,), seed=2)
    P = dependencies(dr.grad(f), (pts[0],)).pattern.toarray()
    H = np.zeros((4, 4), dtype=bool)
    for x in pts:
        H |= np.asarray(dr.hessian(f)(x)) != 0
    assert not (H & ~P).any()
    np.testing.assert_array_equal(P, np.ones((4, 4), dtype=bool))  # put_along's lines


# ------------------------------------------------------------------ Hessians (rules nested)
MOVES = {
    "reshape-transpose": lambda x: np.transpose(x.reshape(2, 3)).ravel(),
    "pad-concatenate": lambda x: np.concatenate([np.pad(x[:3], 1), x[::-2]]),
    "gather-write": lambda x: dr.at(x)[np.array([1, 4])].set(x[np.array([0, 0])] * 2.0),
    "where-const": lambda x: np.where(np.arange(6) % 2 == 0, x, x[::-1]),
    "take-along-const": lambda x: np.take_along_axis(x, np.array([5, 0, 0, 3]), 0),
    "broadcast-sum": lambda x: np.sum(np.broadcast_to(x[:3], (2, 3)) * x[3:], axis=1),
}
SELECTIONS = {
    "cumsum": lambda x: np.cumsum(x.reshape(2, 3), axis=1).ravel(),
    "cumprod": lambda x: np.cumprod(x),
    "prod": lambda x: np.prod(x.reshape(3, 2), axis=1),
    "max": lambda x: np.max(x.reshape(2, 3), axis=1),
    "sort": lambda x: np.sort(x.reshape(2, 3), axis=1).ravel(),
    "argmax-gather": lambda x: x.reshape(2, 3)[np.argmax(x[:2])],
    "median": lambda x: np.atleast_1d(np.median(x.reshape(3, 2), axis=0)),
    "where-value": lambda x: np.where(x > 0, x, x[::-1] ** 2),
    "clip": lambda x: np.clip(x, -0.5, 0.7),
    "complex": lambda x: np.angle(x[:3] + 1j * x[3:]) + np.real((x[:3] + 1j * x[3:]) ** 2),
    "astype": lambda x: x.astype(np.float32).astype(np.float64) * x[::-1],
}


@pytest.mark.parametrize("name", sorted(MOVES) + sorted(SELECTIONS))
def test_hessian_patterns_through_each_rule_and_its_transpose(name):
    g = MOVES.get(name) or SELECTIONS[name]
    w = np.linspace(1.0, 2.0, np.size(g(np.ones(6))))
    f = lambda x: np.sum(w * g(x) ** 3)  # noqa: E731
    pts = _orders((6,), seed=9) + _points((6,), 9)
    P = dependencies(dr.grad(f), (pts[0],)).pattern.toarray()
    H = np.zeros((6, 6), dtype=bool)
    for x in pts:
        H |= np.asarray(dr.hessian(f)(x)) != 0
    assert not (H & ~P).any(), f"misses {(H & ~P).sum()} Hessian entries"
    if name in MOVES:
        np.testing.assert_array_equal(P, H)


# ------------------------------------------------------------------ reductions
AXES = [None, 0, 1, (0, 2), -1]


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("fn", [np.sum, np.prod, np.mean, np.var, np.std, np.average,
                                np.linalg.norm])
def test_smooth_reductions_are_exact(fn, axis, keepdims):
    shape = (2, 3, 4)
    check(lambda x: np.asarray(fn(x, axis=axis, keepdims=keepdims)), shape, exact=True)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("fn", [np.max, np.min, np.amax, np.ptp, np.nanmax])
def test_extrema_depend_on_every_reduced_element(fn, axis):
    shape = (2, 3, 4)
    f = lambda x: np.asarray(fn(x, axis=axis)) * 1.0  # noqa: E731
    pts = _orders(shape, seed=11)
    P = dependencies(f, (pts[0],)).pattern.toarray()
    J = _jacobian_nonzeros(f, pts)
    assert not (J & ~P).any()
    expected = dependencies(lambda x: np.sum(x, axis=axis) * 1.0, (pts[0],)).pattern.toarray()
    np.testing.assert_array_equal(P, expected)


@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 4), 0), ((3, 4), 1),
                                        ((2, 3, 4), 1), ((3, 4), None)])
@pytest.mark.parametrize("fn", [np.cumsum, np.cumprod, np.nancumsum])
def test_cumulative_operations_depend_exactly_on_prefixes(fn, shape, axis):
    P = check(lambda x: fn(x, axis=axis), shape, exact=True)
    assert P.sum() < P.size  # not whole lines
    # through a gather first: the prefix of a value that is itself sparse
    check(lambda x: fn(x[..., ::-1] * x[..., :1], axis=axis), shape, exact=True)


@pytest.mark.parametrize("seed", range(6))
def test_the_prefix_rule_against_its_definition_on_random_patterns(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 5, rng.integers(1, 4)))
    size, n = int(np.prod(shape)), int(rng.integers(1, 9))
    d = sp.random(size, n, density=0.3, random_state=seed, format="csr").astype(bool)
    for axis in range(len(shape)):
        got = pattern_rules.prefix()([d], np.zeros(shape), np.zeros(shape), axis=(axis,))
        # row k: the union of rows 0..k of its line, from the definition
        idx = np.moveaxis(np.arange(size).reshape(shape), axis, -1).reshape(-1, shape[axis])
        want = np.zeros((size, n), dtype=bool)
        D = d.toarray()
        for line in idx:
            want[line] = np.logical_or.accumulate(D[line], axis=0)
        np.testing.assert_array_equal(got.toarray() if got is not None else 0 * want, want)


# ------------------------------------------------------------------ selection
def test_where_with_a_constant_condition_picks_each_elements_branch():
    mask = np.array([[True, False, True], [False, False, True]])
    check(lambda x: np.where(mask, x, x[:, ::-1] ** 2), (2, 3), exact=True)
    check(lambda x: np.where(mask[0], x, 0.0) + np.where(True, 0.0, x), (2, 3), exact=True)
    check(lambda x: np.select([mask, ~mask], [x, 2 * x], 0.0), (2, 3), exact=True)


def test_where_on_a_condition_computed_from_the_input_takes_both_branches():
    f = lambda x: np.where(x > 0, x, x[::-1] ** 2)  # noqa: E731
    P = check(f, (5,), exact=False)
    np.testing.assert_array_equal(P, np.eye(5, dtype=bool) | np.eye(5, dtype=bool)[::-1])
    check(lambda x: np.clip(x, -0.5, x[::-1]), (5,), exact=False)
    check(lambda x: np.maximum(x, 0.3) + np.fmin(x, x[::-1]), (5,), exact=False)


def test_piecewise_interp_and_value_masks_cover_every_point():
    xp = np.linspace(-2.0, 2.0, 5)
    for f in (lambda x: np.interp(x, xp, np.cos(xp)),
              lambda x: np.interp(0.3, xp, x),
              lambda x: np.piecewise(x, [x < 0], [lambda t: t ** 2, lambda t: t]),
              lambda x: np.nan_to_num(np.where(x > 0, x, np.nan))):
        check(f, (5,), exact=False)


def test_a_product_with_a_constant_zero_factor_is_structurally_zero():
    # linspace's first sample is start + 0 * (stop - start): it depends on start only
    # (linspace reads its endpoints' dtype from a value, which the detection notes)
    line = lambda x: np.linspace(x[0], x[1], 5)  # noqa: E731
    P = check(line, (2,), exact=False)
    np.testing.assert_array_equal(P, _jacobian_nonzeros(line, _points((2,), 0)))
    assert P[0].tolist() == [True, False] and P[-1].tolist() == [False, True]
    mask = np.array([0.0, 1.0, -2.0, 0.0])
    check(lambda x: x * mask + (mask * x[::-1]) ** 2 + 0.0 * x, (4,), exact=True)
    check(lambda x: np.outer(x[:2], np.array([0.0, 3.0])).ravel(), (4,), exact=True)
    # a traced factor's zeros are not structural (x[0] * x[1] at x = 0)
    assert dependencies(lambda x: x[:-1] * x[1:], (np.zeros(3),)).pattern.nnz == 4


# ------------------------------------------------------------------ casts and complex parts
def test_casts_and_complex_parts_are_exact():
    def z(x):
        return x[:3] + 1j * x[3:] ** 2

    check(lambda x: x.astype(np.float32) * 1.0, (4,), exact=True)
    check(lambda x: np.real(z(x) * z(x)[::-1]), (6,), exact=True)
    # a complex element is one pattern row: its real and imaginary parts share it, so
    # imag(x + 1j y) depends on x too (a superset: the patterns track elements)
    P = check(lambda x: np.imag(z(x)), (6,), exact=False)
    np.testing.assert_array_equal(P, np.hstack([np.eye(3, dtype=bool)] * 2))
    check(lambda x: np.angle(z(x)), (6,), exact=True)
    check(lambda x: np.abs(z(x)) + np.real(np.conj(z(x))), (6,), exact=True)


# ------------------------------------------------------------------ refusals, sizes
def test_a_whole_line_too_big_to_build_is_refused():
    with pytest.raises(DenseBlockError, match="whole lines"):
        dependencies(np.sort, (np.arange(8000.0),))


def test_an_index_made_by_an_integer_cast_of_the_values_covers_every_input():
    # upwinding by an index: u[i + sign(u)] may be either neighbour (or any element)
    def f(u):
        i = np.arange(1, u.size - 1)
        return u[i + np.sign(u[1:-1]).astype(int)] - u[1:-1]

    pts = _points((8,), 3)
    found = dependencies(f, (pts[0],))
    assert found.notes == [] and not (_jacobian_nonzeros(f, pts) & ~found.pattern.toarray()).any()
    assert found.pattern.toarray().all(axis=1).all()  # any element, for some input
    # too big to build, the refusal names the rewrite that keeps it banded
    with pytest.raises(DenseBlockError, match=r"np.where\(v > 0, u\[2:\], u\[:-2\]\)"):
        dependencies(f, (np.linspace(-1.0, 1.0, 10_000),))
    g = lambda u: np.where(u[1:-1] > 0, u[2:], u[:-2]) - u[1:-1]  # noqa: E731
    assert dependencies(g, (np.linspace(-1.0, 1.0, 10_000),)).pattern.nnz == 3 * 9998
    # at 10^5 the selected rows alone would be 10^10 values: refused before they are made
    # (it once built them, 80 GB, before refusing)
    with pytest.raises(DenseBlockError, match="would hold 9999800000 entries"):
        dependencies(f, (np.linspace(-1.0, 1.0, 100_000),))


def test_a_banded_problem_through_these_operations_at_n_1e5_is_fast():
    n = 100_000

    def f(x):
        y = np.pad(x, 1, mode="edge")
        band = y[2:] - 2 * y[1:-1] + y[:-2]
        blocks = np.reshape(x, (-1, 4))
        top = np.repeat(np.max(blocks, axis=1) + np.cumsum(blocks, axis=1)[:, -1], 4)
        low = np.where(np.arange(n) % 2 == 0, band, np.transpose(blocks).T.ravel())
        return np.concatenate([low[:1], low[1:] * top[1:]])

    x = np.linspace(0.0, 1.0, n)
    t = time.perf_counter()
    P = dependencies(f, (x,)).pattern
    took = time.perf_counter() - t
    assert P.shape == (n, n) and 3 * n <= P.nnz <= 7 * n
    assert took < 10.0, f"{took:.2f} s"  # ~0.3 s unloaded; quadratic work would take minutes


# ------------------------------------------------------------------ every primitive
MODULES = ["dualrev.catalogue.shape", "dualrev.catalogue.construction",
           "dualrev.catalogue.indexing", "dualrev.catalogue.selection",
           "dualrev.catalogue.reductions", "dualrev.catalogue.complex",
           "dualrev.catalogue.nondiff", "dualrev.cast", "dualrev.at", "dualrev.inplace",
           "dualrev.indexing"]

#: primitives of these modules that are dense by nature, with the reason (none today)
DENSE_BY_NATURE: dict[str, str] = {}


def _primitives_of(name):
    mod = importlib.import_module(name)
    found = {p for p in vars(mod).values() if isinstance(p, Primitive)}
    found |= {p for p in list(_DECLARED) if getattr(p.impl, "__module__", None) == name}
    return found


def test_every_primitive_of_these_modules_states_its_pattern():
    seen = set()
    for name in MODULES:
        for p in _primitives_of(name):
            seen.add(p.name)
            if p.pattern is None and not p.elementwise and not p.nondiff:
                assert p.name in DENSE_BY_NATURE, (
                    f"{name}: primitive {p.name!r} has no pattern rule (defpattern) and "
                    "would fall back to a dense block: give it one, or list it in "
                    "DENSE_BY_NATURE with the reason")
    # the listing finds the primitives it is meant to guard
    assert {"reshape", "getitem", "take_along_axis", "max", "cumsum", "real", "angle",
            "astype", "set"} <= seen
    from dualrev.catalogue.elementwise import clip_p, where_p
    assert where_p.pattern is pattern_rules.select and clip_p.elementwise


# ------------------------------------------------------------------ generated programs
def _program(seed, steps):
    """A random chain of exact-pattern operations (moves, gathers, reductions, prefixes,
    constant selections and masks), each drawn for the shape it meets: every partial
    derivative stays positive at positive points, so no entry cancels and the pattern
    must equal the Jacobian's non-zeros exactly. A constant zero inside a traced array
    (np.pad's fill, a 0 of a mask) is not structural for a later product (the pattern
    tracks elements' dependencies, not their values): after one, products are replaced by
    sums. Returns (input shape, function, names)."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 5, rng.integers(1, 4)))
    ops, names = [], []
    y = np.ones(shape)
    zeros = False
    for step in steps:
        nd, sh = y.ndim, y.shape
        ax = int(rng.integers(0, nd))
        kind = step % 16
        if zeros and kind in (9, 15):
            kind = 8 if kind == 9 else 7
        if kind == 0:
            new = tuple(rng.permutation(list(sh)))
            op = lambda v, new=new: np.reshape(v, new)  # noqa: E731
        elif kind == 1:
            perm = tuple(int(p) for p in rng.permutation(nd))
            op = lambda v, perm=perm: np.transpose(v, perm)  # noqa: E731
        elif kind == 2:
            start, stepw = int(rng.integers(0, sh[ax])), int(rng.choice([1, 2, -1]))
            sl = (slice(None),) * ax + (slice(start, None, stepw) if stepw > 0 else
                                        slice(start, None, -1),)
            op = lambda v, sl=sl: v[sl]  # noqa: E731
        elif kind == 3:
            op = lambda v, ax=ax: np.flip(v, ax) + 0.5 * v  # noqa: E731
        elif kind == 4:
            op = lambda v, ax=ax: np.concatenate([v, np.roll(v, 1, ax)], axis=ax)  # noqa: E731
        elif kind == 5:
            widths = [(int(rng.integers(0, 2)), int(rng.integers(0, 2))) for _ in range(nd)]
            mode = str(rng.choice(["constant", "edge", "wrap"]))
            zeros = zeros or mode == "constant"
            op = lambda v, w=widths, m=mode: np.pad(v, w, mode=m)  # noqa: E731
        elif kind == 6:
            idx = rng.integers(0, sh[ax], int(rng.integers(1, 5)))
            op = lambda v, i=idx, ax=ax: np.take(v, i, axis=ax)  # noqa: E731
        elif kind == 7:
            op = lambda v, ax=ax: np.sum(v, axis=ax, keepdims=v.ndim == 1)  # noqa: E731
        elif kind == 8:
            op = lambda v, ax=ax: np.cumsum(v, axis=ax)  # noqa: E731
        elif kind == 9:
            op = lambda v, ax=ax: np.cumprod(v, axis=ax)  # noqa: E731
        elif kind == 10:
            mask = rng.random(sh) < 0.5
            op = lambda v, m=mask: np.where(m, v, np.flip(v) ** 2)  # noqa: E731
        elif kind == 11:
            mask = rng.integers(0, 2, sh[ax:]) * 2.0
            zeros = True
            op = lambda v, m=mask: v * m  # noqa: E731
        elif kind == 12:
            op = lambda v: np.broadcast_to(v, (2,) + v.shape) * np.array(  # noqa: E731
                [1.0, 2.0]).reshape((2,) + (1,) * v.ndim)
        elif kind == 13:
            idx = rng.integers(0, sh[ax], sh)
            op = lambda v, i=idx, ax=ax: np.take_along_axis(v, i, ax)  # noqa: E731
        elif kind == 14:
            mask = rng.random(sh) < 0.6
            op = lambda v, m=mask: v[m] if m.any() else v  # noqa: E731
        else:
            op = lambda v: v ** 2 + np.prod(v, axis=-1, keepdims=True)  # noqa: E731
        y = op(y)
        if y.size == 0 or y.size > 80:
            break
        ops.append(op)
        names.append(getattr(op, "__name__", "op") + str(kind))

    def f(x):
        for op in ops:
            x = op(x)
        return np.ravel(x)

    return shape, f, names


@settings(max_examples=150)
@given(st.integers(0, 2**31 - 1), st.lists(st.integers(0, 15), min_size=1, max_size=6))
def test_generated_chains_of_exact_rules_are_exact(seed, steps):
    shape, f, _ = _program(seed, steps)
    rng = np.random.default_rng(seed)
    pts = [rng.uniform(0.5, 1.5, shape) for _ in range(2)]
    found = dependencies(f, (pts[0],))
    P = found.pattern.toarray()
    J = _jacobian_nonzeros(f, pts)
    np.testing.assert_array_equal(P, J)
    assert found.notes == []


def _selections(seed, steps):
    """A random chain mixing exact operations with selections that depend on the values
    (sort, partition, max, argmax/argsort gathers and writes, value masks, clip, median):
    their patterns must hold at every input, not only where the detection ran."""
    rng = np.random.default_rng(seed)
    shape, exact, _ = _program(seed, [int(s) for s in rng.integers(0, 16, 2)])
    ops = []
    y = exact(np.ones(shape))
    for step in steps:
        n = y.size
        kind = step % 9
        if kind == 0:
            op = lambda v: np.sort(v)  # noqa: E731
        elif kind == 1:
            k = int(rng.integers(0, n))
            op = lambda v, k=k: np.partition(v, k)  # noqa: E731
        elif kind == 2 and n > 1:
            op = lambda v: np.concatenate([np.max(v, keepdims=True), v[1:]])  # noqa: E731
        elif kind == 3:
            op = lambda v: v * v[np.argmax(v)]  # noqa: E731
        elif kind == 4:
            op = lambda v: np.take(v, np.argsort(v)[::-1]) + v  # noqa: E731
        elif kind == 5:
            op = lambda v: np.where(v > np.median(v), v, v[::-1] ** 2)  # noqa: E731
        elif kind == 6:
            op = lambda v: np.clip(v, np.min(v) + 0.1, 1.2) * v[::-1]  # noqa: E731
        elif kind == 7:
            op = lambda v: dr.at(v)[np.argsort(v)[:1]].add(v[::-1][:1] ** 2)  # noqa: E731
        else:
            op = lambda v: np.cumsum(np.sort(v))  # noqa: E731
        y = op(y)
        ops.append(op)

    def f(x):
        v = exact(x)
        for op in ops:
            v = op(v)
        return v

    return shape, f


@settings(max_examples=60)
@given(st.integers(0, 2**31 - 1), st.lists(st.integers(0, 8), min_size=1, max_size=4))
def test_generated_selections_cover_the_jacobian_at_every_input(seed, steps):
    shape, f = _selections(seed, steps)
    pts = _orders(shape, seed % 1000, k=5)
    found = dependencies(f, (pts[0],))
    P = found.pattern.toarray()
    J = _jacobian_nonzeros(f, pts)
    assert not (J & ~P).any(), f"misses {(J & ~P).sum()} entries"
    assert found.notes == []
