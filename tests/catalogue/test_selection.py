"""Sorting, selection, interpolation, differences, convolution, polynomials, grids:
values equal NumPy's, derivatives against finite differences to second order, forward
against reverse."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.testing import check_grads
from tests.helpers import check_all, check_empty, check_like_numpy

rng = np.random.default_rng(13)
x = rng.standard_normal(6)
M = rng.standard_normal((3, 4))
GRID = np.linspace(-2, 2, 7)

CASES = {
    "sort": (np.sort, (x,)),
    "sort_axis0": (lambda m: np.sort(m, axis=0), (M,)),
    "sort_none": (lambda m: np.sort(m, axis=None), (M,)),
    "take_along_axis": (lambda m: np.take_along_axis(m, np.argsort(M, axis=1), axis=1), (M,)),
    "argsort_gather": (lambda v: v[np.argsort(v)][::2], (x,)),
    "argmax_gather": (lambda v: v[np.argmax(v)] * v, (x,)),
    "select": (lambda v: np.select([v < -0.5, v > 0.5], [v**2, np.sin(v)], default=v), (x,)),
    "piecewise": (lambda v: np.piecewise(v, [v < 0, v >= 0], [lambda t: -t**3, np.log1p]),
                  (x,)),
    "piecewise_otherwise": (lambda v: np.piecewise(v, [v > 0], [np.sqrt, lambda t: t * 0.5]),
                            (x,)),
    "interp_x": (lambda z: np.interp(z, GRID, np.cos(GRID)), (x * 0.9,)),
    "interp_fp": (lambda fp: np.interp(x * 0.9, GRID, fp), (np.cos(GRID),)),
    "interp_xp": (lambda xp: np.interp(np.array([-0.3, 0.4, 1.1]), xp, np.arange(7.0)), (GRID,)),
    "diff": (np.diff, (x,)),
    "diff_n2": (lambda v: np.diff(v, n=2), (x,)),
    "diff_axis_prepend": (lambda m: np.diff(m, axis=0, prepend=0.5), (M,)),
    "gradient": (np.gradient, (x,)),
    "gradient_edge2": (lambda v: np.gradient(v, 0.5, edge_order=2), (x,)),
    "gradient_2d": (lambda m: np.gradient(m)[1], (M,)),
    "convolve": (np.convolve, (x, x[:3])),
    "convolve_same": (lambda a, v: np.convolve(a, v, "same"), (x, x[:3])),
    "convolve_valid": (lambda a, v: np.convolve(a, v, "valid"), (x, x[:3])),
    "correlate": (np.correlate, (x, x[:3])),
    "correlate_full": (lambda a, v: np.correlate(a, v, "full"), (x, x[:4])),
    "correlate_swapped": (lambda a, v: np.correlate(a, v, "full"), (x[:3], x)),
    "polyval": (np.polyval, (x[:4], x)),
    "meshgrid": (lambda a, b: np.meshgrid(a, b), (x[:3], x[:4])),
    "meshgrid_ij": (lambda a, b: np.meshgrid(a, b, indexing="ij")[1], (x[:3], x[:4])),
    "linspace": (lambda a, b: np.linspace(a, b, 5), (0.3, 2.0)),
    "linspace_open": (lambda a, b: np.linspace(a, b, 4, endpoint=False), (0.3, 2.0)),
    # array endpoints and axis= (refused until the conformance harness pinned it)
    "linspace_arrays_axis": (lambda a, b: np.linspace(a, b, 4, axis=1), (x[:3], x[3:6])),
    "linspace_broadcast_last": (lambda a, b: np.linspace(a, b, 3, endpoint=False, axis=-1),
                                (x[:3], np.reshape(x[3:5], (2, 1)))),
    # period= (refused until the conformance harness pinned it): NumPy's wrap-around
    "interp_period": (lambda a, b, c: np.interp(a, b, c, period=-3.0),
                      (np.array([0.4, 2.2, -1.1, 4.0]), np.array([0.1, 2.5, 1.3, 0.7]),
                       np.array([0.3, -1.2, 2.0, 0.8]))),
    "linspace_retstep": (lambda a, b: np.linspace(a, b, 5, retstep=True), (x[:2], 1.5)),
    "cumsum_axis": (lambda m: np.cumsum(m, axis=1), (M,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_selection(name):
    f, args = CASES[name]
    out, _ = dr.jvp(f, args, tuple(np.zeros(np.shape(a)) if np.ndim(a) else 0.0 for a in args))
    for o, r in zip(dr.tree_flatten(out)[0], dr.tree_flatten(f(*args))[0], strict=True):
        np.testing.assert_allclose(o, r, rtol=1e-12, atol=1e-14)
    check_all(f, args, order=2, rtol=1e-5, atol=1e-7, initial_step=1e-3)


def test_piecewise_does_not_leak_other_branches():
    # sqrt is only evaluated where x > 0, so the derivative at x = -1 is clean.
    g = dr.grad(lambda v: np.sum(np.piecewise(v, [v > 0], [np.sqrt, 0.0])))(np.array([-1.0, 4.0]))
    np.testing.assert_array_equal(g, [0.0, 0.25])


def test_sort_gradient_follows_the_permutation():
    v = np.array([3.0, 1.0, 2.0])
    w = np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(dr.grad(lambda v: np.sum(np.sort(v) * w))(v), [30, 10, 20])


EMPTY = {
    "sort": (np.sort, np.zeros(0)),
    "sort_axis0": (lambda x: np.sort(x, axis=0), np.zeros((3, 0))),
    "sort_flat": (lambda x: np.sort(x, axis=None), np.zeros((3, 0))),
    "take_along_axis": (lambda x: np.take_along_axis(x, np.zeros((3, 0), dtype=int), axis=1),
                        np.zeros((3, 0))),
    "diff": (np.diff, np.zeros((3, 0))),
    "interp_at_no_points": (lambda x: np.interp(x, np.array([0.0, 1]), np.array([0.0, 2])),
                            np.zeros(0)),
    "polyval_no_coefficients": (lambda p: np.polyval(p, 2.0), np.zeros(0)),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_selection_of_empty_arrays(name):
    check_empty(*EMPTY[name])


def test_gradient_too_short_raises_like_numpy():
    for x, kw in [(np.zeros(0), {}), (np.ones(1), {}), (np.ones(2), {"edge_order": 2})]:
        with pytest.raises(ValueError, match="too small"):
            np.gradient(x, **kw)
        with pytest.raises(ValueError, match="too small"):
            dr.jacrev(lambda v, kw=kw: np.gradient(v, **kw))(x)

LIST_V, LIST_M = np.array([0.3, 0.6, 0.9]), np.array([[2.0, 0.5], [0.3, 1.5]])
LIST_ARGS = {
    "interp_lists": (lambda x: np.interp(x, [0.0, 1], [0.0, 3]), LIST_V),
    "interp_fp_traced": (lambda fp: np.interp([0.2, 0.7], [0.0, 1], fp), np.array([0.0, 3.0])),
    "polyval_list_coefficients": (lambda x: np.polyval([1.0, 2, 3], x), LIST_V),
    "polyval_list_points": (lambda p: np.polyval(p, [1.0, 2.0]), LIST_V),
    "correlate_list": (lambda x: np.correlate(x, [1.0, 2.0], 'full'), LIST_V),
    "convolve_list": (lambda x: np.convolve([1.0, 2.0], x), LIST_V),
}


@pytest.mark.parametrize("name", sorted(LIST_ARGS))
def test_selection_takes_python_lists(name):
    # np.interp(x, [0., 1], [0., 3]) indexed the lists
    check_like_numpy(*LIST_ARGS[name])


def test_linspace_dtype_and_device():
    check_like_numpy(lambda s: np.linspace(s, 3.0, 5, dtype=np.float32), 0.5,
                     reference=lambda s: np.linspace(s, 3.0, 5))
    with pytest.raises(ValueError, match="Device"):
        dr.grad(lambda s: np.sum(np.linspace(s, 3.0, 5, device="gpu")))(0.5)
    # an integer dtype floors: a plain, piecewise constant result
    got = dr.jacfwd(lambda s: np.linspace(s, 3.0, 4, dtype=int) * 1.0 + s)(-2.5)
    np.testing.assert_array_equal(got, np.ones(4))


def test_linspace_keeps_float32_endpoints():
    s, e = np.float32(0.5), np.float32(3.0)
    val, t = dr.jvp(lambda s, e: np.linspace(s, e, 5), (s, e),
                    (np.float32(1.0), np.float32(0.0)))
    want = np.linspace(s, e, 5)
    assert val.dtype == want.dtype == np.float32 and t.dtype == np.float32
    np.testing.assert_allclose(val, want, rtol=1e-6)
    np.testing.assert_allclose(t, 1.0 - np.linspace(0.0, 1.0, 5), rtol=1e-6)


def test_sort_order_refused():
    with pytest.raises(dr.NoDerivativeRule, match="order="):
        dr.grad(lambda x: np.sum(np.sort(x, order="f")))(LIST_V)
    # kind= and stable= change no value
    check_like_numpy(lambda x: np.sort(x[::-1], kind="heapsort"), LIST_V)
    check_like_numpy(lambda x: np.sort(x[::-1], stable=True), LIST_V)


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
@pytest.mark.parametrize("sizes", [(6, 3), (3, 6), (4, 4)])
def test_correlate_conjugates_its_second_argument(mode, sizes):
    # c[k] = sum_n a[n + k] conj(v[n]), with NumPy's swap when v is the longer
    r = np.random.default_rng(21)
    a = r.standard_normal(sizes[0]) + 1j * r.standard_normal(sizes[0])
    v = r.standard_normal(sizes[1]) + 1j * r.standard_normal(sizes[1])
    f = lambda x, y: np.correlate(x, y, mode)
    value = dr.jvp(f, (a, v), (np.zeros_like(a), np.zeros_like(v)))[0]
    np.testing.assert_allclose(value, np.correlate(a, v, mode), rtol=1e-13, atol=1e-14)
    check_grads(f, (a, v), order=1)


# ------------------------------------------------------------------ median and quantiles
def test_median_gradient_is_the_indicator_or_half_half():
    odd = np.array([3.0, -1.0, 7.0, 2.0, 5.0])
    np.testing.assert_array_equal(dr.grad(np.median)(odd), [1, 0, 0, 0, 0])
    even = np.array([3.0, -1.0, 7.0, 2.0])
    np.testing.assert_array_equal(dr.grad(np.median)(even), [0.5, 0, 0, 0.5])


def test_percentile_30_closed_form():
    # 5 sorted values: position 0.3 * 4 = 1.2, so 0.8 s[1] + 0.2 s[2]
    v = np.array([0.4, -2.0, 1.5, 3.0, -0.5])
    assert dr.grad(lambda t: np.percentile(t, 30))(v) == pytest.approx([0.2, 0, 0, 0, 0.8])
    assert np.percentile(v, 30) == pytest.approx(-0.5 * 0.8 + 0.4 * 0.2)


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "nearest", "midpoint",
                                    "hazen", "weibull", "median_unbiased"])
def test_quantile_methods_against_finite_differences(method):
    m = rng.permutation(12).reshape(3, 4) * 0.3 + 0.01 * rng.standard_normal((3, 4))
    f = lambda t: np.quantile(t, [0.25, 0.6], axis=1, method=method)  # noqa: E731
    np.testing.assert_allclose(dr.jvp(f, (m,), (np.ones_like(m),))[0], f(m), rtol=1e-13)
    check_grads(f, (m,), order=2)


def test_nanmedian_ignores_nans_and_their_derivative_is_zero():
    v = np.array([1.0, np.nan, 4.0, 2.0, np.nan])
    assert dr.grad(np.nanmedian)(v) == pytest.approx([0, 0, 0, 1, 0])
    g = dr.grad(lambda t: np.nanpercentile(t, 75.0))(v)  # position 1.5 of [1, 2, 4]
    assert g == pytest.approx([0, 0, 0.5, 0.5, 0])
    with pytest.warns(RuntimeWarning, match="All-NaN slice"):
        out = dr.jvp(np.nanmedian, (np.full(3, np.nan),), (np.ones(3),))[0]
    assert np.isnan(out)


def test_median_of_a_row_with_nan_is_nan_as_in_numpy():
    m = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    out, t = dr.jvp(lambda a: np.median(a, axis=1), (m,), (np.ones_like(m),))
    np.testing.assert_array_equal(out, np.median(m, axis=1))
    assert t[1] == 1.0


def test_overwrite_input_changes_no_value_and_vmap_matches_a_loop():
    m = rng.standard_normal((4, 5))
    before = m.copy()
    assert dr.grad(lambda a: np.median(a, overwrite_input=True))(m).sum() == pytest.approx(1)
    np.testing.assert_array_equal(m, before)
    f = lambda a: np.quantile(a, 0.3, method="hazen")  # noqa: E731
    np.testing.assert_allclose(dr.vmap(f)(m), [f(r) for r in m], rtol=1e-13)


def test_quantile_refusals():
    v = rng.standard_normal(5)
    with pytest.raises(dr.errors.NoDerivativeRule, match="weights="):
        dr.grad(lambda t: np.quantile(t, 0.5, method="inverted_cdf", weights=np.ones(5)))(v)
    with pytest.raises(dr.errors.DualrevError, match="no derivative with respect to q"):
        dr.grad(lambda q: np.quantile(v, q))(0.3)
    with pytest.raises(ValueError):  # NumPy's own check of method=
        dr.grad(lambda t: np.quantile(t, 0.5, method="bogus"))(v)
    with pytest.raises(dr.errors.InPlaceError):
        dr.grad(lambda t: np.median(t, out=np.empty(())))(v)


def test_partition_matches_numpy_and_refuses_order():
    v = rng.permutation(7) * 0.5 + 0.01
    out, t = dr.jvp(lambda a: np.partition(a, (1, 4)), (v,), (np.arange(7.0),))
    np.testing.assert_array_equal(out, np.partition(v, (1, 4)))
    np.testing.assert_array_equal(t, np.argpartition(v, (1, 4)).astype(float))
    with pytest.raises(dr.errors.NoDerivativeRule, match="order="):
        dr.grad(lambda a: np.sum(np.partition(a, 1, order="f")))(v)
