"""scipy.interpolate at traced points and of traced data, against SciPy's own
derivatives (``spline.derivative()``, ``spline(x, nu)``) and interpolants of unit data."""

import numpy as np
import pytest
import scipy.interpolate as si

import dualrev as dr
from dualrev.catalogue.scipy_interpolate import TracedDataInterpolant
from dualrev.errors import NoDerivativeRule

rng = np.random.default_rng(1402)
XD = np.linspace(-2.0, 2.0, 8)
YD = rng.standard_normal(8)
Y2 = rng.standard_normal((3, 8))
T = rng.uniform(-1.8, 1.8, 5)

SPLINES = {
    "CubicSpline": si.CubicSpline(XD, YD),
    "CubicSpline natural": si.CubicSpline(XD, YD, bc_type="natural"),
    "Pchip": si.PchipInterpolator(XD, YD),
    "Akima": si.Akima1DInterpolator(XD, YD),
    "make_interp_spline": si.make_interp_spline(XD, YD),
    "make_interp_spline k=5": si.make_interp_spline(XD, YD, k=5),
}


@pytest.mark.parametrize("name", sorted(SPLINES))
def test_derivative_at_traced_points_is_the_splines(name):
    s = SPLINES[name]
    np.testing.assert_allclose(dr.jacfwd(s)(T), np.diag(s.derivative()(T)), atol=1e-12)
    np.testing.assert_allclose(dr.jacrev(s)(T), np.diag(s.derivative()(T)), atol=1e-12)
    # nested: the derivative of the derivative spline, to third order
    d3 = dr.grad(dr.grad(dr.grad(lambda t: s(t))))(0.37)
    np.testing.assert_allclose(d3, s.derivative(3)(0.37), rtol=1e-10, atol=1e-12)


def test_nu_and_extrapolate_are_honoured():
    s = SPLINES["CubicSpline"]
    for nu in (1, 2):
        np.testing.assert_allclose(dr.jvp(lambda t, nu=nu: s(t, nu), (T,), (np.ones(5),))[1],
                                   s(T, nu + 1))
    out = np.array([-2.5, 0.1, 2.5])
    value, tangent = dr.jvp(lambda t: s(t, extrapolate=False), (out,), (np.ones(3),))
    assert np.isnan(value[[0, 2]]).all() and np.isnan(tangent[[0, 2]]).all()
    np.testing.assert_allclose(tangent[1], s.derivative()(0.1))


def test_interpolation_axis_and_vmap():
    s = si.CubicSpline(XD, Y2, axis=1)
    J = dr.jacfwd(s)(T)  # (3, 5, 5): the points' axis sits at axis 1, as in SciPy's values
    np.testing.assert_allclose(np.einsum("ijj->ij", J), s.derivative()(T), atol=1e-12)
    np.testing.assert_allclose(dr.vmap(s)(T), np.moveaxis(s(T), 1, 0))
    np.testing.assert_allclose(dr.vmap(dr.grad(lambda t: np.sum(s(t))))(T),
                               np.sum(s.derivative()(T), axis=0))


@pytest.mark.parametrize("kind,k", [("linear", 1), ("slinear", 1), ("quadratic", 2),
                                    ("cubic", 3)])
def test_interp1d_points(kind, k):
    f = si.interp1d(XD, YD, kind=kind)
    expected = si.make_interp_spline(XD, YD, k=k).derivative()(T)
    np.testing.assert_allclose(dr.jacfwd(f)(T), np.diag(expected), atol=1e-10)


def test_interp1d_constant_kinds_and_fill_have_zero_derivative():
    for kind in ("nearest", "previous", "next", "zero"):
        f = si.interp1d(XD, YD, kind=kind)
        np.testing.assert_array_equal(dr.grad(lambda t, f=f: np.sum(f(t)))(T), 0.0)
    f = si.interp1d(XD, YD, bounds_error=False, fill_value=4.0)
    pts = np.array([-3.0, 0.3, 3.0])
    value, tangent = dr.jvp(f, (pts,), (np.ones(3),))
    np.testing.assert_allclose(value, f(pts))
    assert tangent[0] == tangent[2] == 0.0 and tangent[1] != 0.0


CONSTRUCTORS = {
    "CubicSpline": lambda y: si.CubicSpline(XD, y),
    "CubicSpline clamped": lambda y: si.CubicSpline(XD, y, bc_type="clamped"),
    "CubicSpline given derivatives": lambda y: si.CubicSpline(XD, y, bc_type=((1, 0.7),
                                                                              (2, -0.4))),
    "make_interp_spline": lambda y: si.make_interp_spline(XD, y),
    "make_interp_spline k=1": lambda y: si.make_interp_spline(XD, y, k=1),
    "make_interp_spline derivatives": lambda y: si.make_interp_spline(
        XD, y, bc_type=([(1, 0.2)], [(2, 0.5)])),
    "interp1d": lambda y: si.interp1d(XD, y),
    "interp1d cubic": lambda y: si.interp1d(XD, y, kind="cubic"),
    "interp1d fill": lambda y: si.interp1d(XD[1:-1], y[1:-1], bounds_error=False,
                                           fill_value=(1.5, -2.0)),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_traced_data_weights_are_the_interpolant_of_unit_data(name):
    build = CONSTRUCTORS[name]
    pts = np.r_[T, -2.2, 2.2] if "fill" in name else T
    seen = []
    dr.grad(lambda y: seen.append(build(y)) or 0.0 * np.sum(y))(YD)
    assert isinstance(seen[0], TracedDataInterpolant)
    np.testing.assert_allclose(dr.jvp(lambda y: build(y)(pts), (YD,), (YD,))[0],
                               build(YD)(pts), rtol=1e-13, atol=1e-13)
    # the interpolant is affine in y: its Jacobian is the difference of interpolants
    unit = np.stack([build(e)(pts) - build(np.zeros(8))(pts) for e in np.eye(8)], -1)
    np.testing.assert_allclose(dr.jacfwd(lambda y: build(y)(pts))(YD), unit, atol=1e-12)
    np.testing.assert_allclose(dr.jacrev(lambda y: build(y)(pts))(YD), unit, atol=1e-12)


def test_traced_data_and_points_together():
    f = lambda y, t: si.CubicSpline(XD, y)(t)  # noqa: E731
    jy, jt = dr.jacrev(f, argnums=(0, 1))(YD, T)
    np.testing.assert_allclose(jt, np.diag(si.CubicSpline(XD, YD).derivative()(T)), atol=1e-12)
    np.testing.assert_allclose(jy, si.CubicSpline(XD, np.eye(8))(T), atol=1e-12)
    # the mixed second derivative: d/dy of the slope is the slope of the unit interpolant
    mixed = dr.jacfwd(lambda y: dr.grad(lambda t: f(y, t))(0.4))(YD)
    np.testing.assert_allclose(mixed, si.CubicSpline(XD, np.eye(8)).derivative()(0.4),
                               atol=1e-12)


def test_traced_data_methods_periodic_axis_and_vmap():
    y = np.r_[YD[:-1], YD[0]]
    g = dr.grad(lambda y: si.CubicSpline(XD, y, bc_type="periodic")(0.3))(y)
    free = np.vstack([np.eye(7), np.eye(7)[:1]])
    np.testing.assert_allclose(g, np.r_[si.CubicSpline(XD, free, bc_type="periodic")(0.3), 0],
                               atol=1e-12)
    unit = si.CubicSpline(XD, np.eye(8))
    np.testing.assert_allclose(dr.grad(lambda y: si.CubicSpline(XD, y).integrate(-1, 1.5))(YD),
                               unit.integrate(-1, 1.5), atol=1e-12)
    np.testing.assert_allclose(
        dr.grad(lambda y: si.CubicSpline(XD, y).derivative(2)(0.3))(YD), unit(0.3, 2),
        atol=1e-12)
    np.testing.assert_allclose(
        dr.grad(lambda y: si.CubicSpline(XD, y).antiderivative()(0.3))(YD),
        unit.antiderivative()(0.3), atol=1e-12)
    c = dr.jvp(lambda y: si.CubicSpline(XD, y).c, (YD,), (YD,))[0]
    np.testing.assert_allclose(c, si.CubicSpline(XD, YD).c, atol=1e-13)
    c = dr.jvp(lambda y: si.make_interp_spline(XD, y, bc_type="natural").c, (YD,), (YD,))[0]
    np.testing.assert_allclose(c, si.make_interp_spline(XD, YD, bc_type="natural").c,
                               atol=1e-13)
    out = dr.jvp(lambda y: si.CubicSpline(XD, y, axis=1)(T), (Y2,), (Y2,))[0]
    np.testing.assert_allclose(out, si.CubicSpline(XD, Y2, axis=1)(T), atol=1e-13)
    batch = dr.vmap(lambda y: si.make_interp_spline(XD, y)(T))(Y2)
    np.testing.assert_allclose(batch, np.stack([si.make_interp_spline(XD, y)(T) for y in Y2]))
    coef = dr.grad(lambda c: si.BSpline(unit.x[[0] * 3 + list(range(8)) + [7] * 3], c, 3)(0.3))
    assert np.isclose(np.sum(coef(np.ones(10))), 1.0)  # B-splines sum to one


def test_refusals_and_scipy_errors():
    with pytest.raises(NoDerivativeRule, match="Traced abscissae"):
        dr.grad(lambda x: si.CubicSpline(x, YD)(0.1))(XD)
    with pytest.raises(NoDerivativeRule, match="Traced abscissae"):
        dr.grad(lambda x: si.interp1d(x, YD)(0.1))(XD)
    with pytest.raises(NoDerivativeRule, match="only interp1d"):
        dr.grad(lambda t: si.KroghInterpolator(XD, YD)(t))(0.1)
    with pytest.raises(NoDerivativeRule, match="Complex evaluation points"):
        dr.jvp(SPLINES["CubicSpline"], (np.array([0.1 + 0j]),), (np.array([1 + 0j]),))
    with pytest.raises(NoDerivativeRule, match="not linear in the data"):
        dr.grad(lambda y: si.PchipInterpolator(XD, y)(0.1))(YD)
    with pytest.raises(ValueError):  # SciPy's own check of the data, on the plain values
        dr.grad(lambda y: si.CubicSpline(XD[::-1], y)(0.1))(YD)


def test_plain_calls_are_unchanged():
    s = SPLINES["CubicSpline"]
    assert type(si.CubicSpline(XD, YD)) is si.CubicSpline
    np.testing.assert_array_equal(s(T), si.PPoly.__call__.__wrapped__(s, T))
    assert type(si.interp1d(XD, YD)) is si.interp1d
    assert type(si.BSpline(s.x, YD[:4], 3)) is si.BSpline


def test_cubic_hermite_spline_is_linear_in_values_and_slopes():
    d = rng.standard_normal(8)
    f = lambda y, d, t: si.CubicHermiteSpline(XD, y, d)(t)  # noqa: E731
    jy, jd, jt = dr.jacfwd(f, argnums=(0, 1, 2))(YD, d, T)
    zeros = np.zeros((8, 8))
    np.testing.assert_allclose(jy, si.CubicHermiteSpline(XD, np.eye(8), zeros)(T), atol=1e-12)
    np.testing.assert_allclose(jd, si.CubicHermiteSpline(XD, zeros, np.eye(8))(T), atol=1e-12)
    np.testing.assert_allclose(jt, np.diag(si.CubicHermiteSpline(XD, YD, d).derivative()(T)),
                               atol=1e-12)
    g = dr.grad(lambda d: si.CubicHermiteSpline(XD, YD, d).integrate(-1, 1))(d)
    np.testing.assert_allclose(g, si.CubicHermiteSpline(XD, zeros, np.eye(8)).integrate(-1, 1),
                               atol=1e-12)


# ------------------------------------------------------------ RegularGridInterpolator
_GRID = (np.linspace(0.0, 1.0, 7), np.array([0.0, 0.3, 0.7, 1.0, 1.2, 1.6, 2.0, 2.4]))
_VALUES = np.random.default_rng(21).normal(size=(7, 8, 2))
_XI = np.array([[0.31, 0.75], [0.93, 1.9], [0.55, 0.1], [0.02, 2.33]])  # off the nodes


def _central(f, x, h=1e-6):
    x = np.array(x, dtype=float)
    out = np.zeros(x.shape + np.shape(f(x)))
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return np.moveaxis(out, tuple(range(x.ndim)), tuple(range(-x.ndim, 0)))


# SciPy's exact tensor-product splines are its *_legacy methods (1.13+ solves cubic and
# quintic iteratively, to gcrotmk's tolerance): dualrev's cubic/quintic solve exactly
_EXACT = {"linear": "linear", "nearest": "nearest", "slinear": "slinear",
          "cubic": "cubic_legacy", "quintic": "quintic_legacy"}


@pytest.mark.parametrize("method", list(_EXACT))
def test_regular_grid_interpolator_of_traced_values_and_points(method):
    ref = si.RegularGridInterpolator(_GRID, _VALUES, method=_EXACT[method])
    rgi = lambda v: si.RegularGridInterpolator(_GRID, v, method=method)
    value, _ = dr.jvp(lambda v: rgi(v)(_XI), (_VALUES,), (np.zeros_like(_VALUES),))
    np.testing.assert_allclose(value, ref(_XI), rtol=1e-12, atol=1e-13)
    # linear in the values: the Jacobian is the interpolant of unit data, both modes
    J = dr.jacrev(lambda v: rgi(v)(_XI))(_VALUES)
    np.testing.assert_allclose(J, dr.jacfwd(lambda v: rgi(v)(_XI))(_VALUES), atol=1e-14)
    exact = lambda v: si.RegularGridInterpolator(_GRID, v, method=_EXACT[method])(_XI)
    np.testing.assert_allclose(J, _central(exact, _VALUES), atol=1e-8)
    # in the points: the 1-D bases' derivatives (zero for nearest), plain values
    f = lambda x: np.sin(si.RegularGridInterpolator(_GRID, _VALUES, method=method)(x))
    g = lambda x: np.sin(ref(x))
    np.testing.assert_allclose(dr.jacrev(f)(_XI), _central(g, _XI), atol=2e-8)
    np.testing.assert_allclose(dr.jacfwd(f)(_XI), dr.jacrev(f)(_XI), atol=1e-13)
    # both traced, through interpn, under vmap (a 1-D xi is one point: shape (1, 2))
    both = lambda v, x: np.sum(si.interpn(_GRID, v, x, method=method) ** 2)
    gv, gx = dr.grad(both, argnums=(0, 1))(_VALUES, _XI)
    np.testing.assert_allclose(gv, _central(lambda v: np.sum(si.RegularGridInterpolator(
        _GRID, v, method=_EXACT[method])(_XI) ** 2), _VALUES), atol=1e-7)
    np.testing.assert_allclose(gx, _central(lambda x: np.sum(ref(x) ** 2), _XI), atol=1e-7)
    batched = dr.vmap(lambda x: si.RegularGridInterpolator(_GRID, _VALUES, method=method)(x))
    np.testing.assert_allclose(batched(_XI), ref(_XI)[:, None], atol=1e-13)
    stacked = dr.vmap(lambda v: rgi(v)(_XI))(np.stack([_VALUES, -2.0 * _VALUES]))
    np.testing.assert_allclose(stacked, np.stack([ref(_XI), -2.0 * ref(_XI)]), atol=1e-12)


def test_regular_grid_interpolator_options_and_refusals():
    V = _VALUES[..., 0]
    cubic = si.RegularGridInterpolator(_GRID, V, method="cubic_legacy")
    # second derivatives in the points (forward over reverse) against differences
    f = lambda x: np.sum(np.sin(si.RegularGridInterpolator(_GRID, V, method="cubic")(x)))
    H = dr.hessian(f)(_XI)
    fd = _central(lambda x: dr.grad(f)(x)[1, 0], _XI)
    np.testing.assert_allclose(H[1, 0], fd, atol=1e-6)
    # nu= evaluates the bases' derivatives: d/dx of the value
    rgi = si.RegularGridInterpolator(_GRID, V, method="cubic")
    d = dr.jvp(lambda x: rgi(x, nu=(1, 0)), (_XI,), (np.zeros_like(_XI),))[0]
    np.testing.assert_allclose(d, _central(lambda x: cubic(x), _XI)[np.arange(4), :, 0]
                               .diagonal(), rtol=1e-6)
    # fill_value=None extrapolates (differentiably); a fill value has no derivative
    out = np.array([[1.2, 0.5], [-0.1, 2.3]])
    ext = lambda x: np.sum(si.RegularGridInterpolator(_GRID, V, bounds_error=False,
                                                      fill_value=None)(x) ** 2)
    plain_ext = si.RegularGridInterpolator(_GRID, V, bounds_error=False, fill_value=None)
    np.testing.assert_allclose(dr.grad(ext)(out),
                               _central(lambda x: np.sum(plain_ext(x) ** 2), out), rtol=1e-7)
    filled = lambda v: si.RegularGridInterpolator(_GRID, v, bounds_error=False,
                                                  fill_value=-3.0)(np.vstack([out, _XI[:1]]))
    np.testing.assert_allclose(filled(V)[:2], [-3.0, -3.0])
    J = dr.jacfwd(filled)(V)
    assert np.all(J[:2] == 0.0) and np.isclose(J[2].sum(), 1.0)  # weights sum to one
    # a descending grid axis is flipped, as SciPy does; xi as a tuple of coordinates
    desc = (_GRID[0][::-1], _GRID[1])
    fdesc = lambda v: np.sum(si.RegularGridInterpolator(desc, v)(_XI) ** 2)
    np.testing.assert_allclose(dr.grad(fdesc)(V), _central(fdesc, V), atol=1e-7)
    X, Y = np.meshgrid([0.2, 0.4], [0.3, 1.1, 1.5], indexing="ij")
    tup = lambda a: si.RegularGridInterpolator(_GRID, V)((a * X, Y))
    np.testing.assert_allclose(dr.jacfwd(tup)(1.0), _central(
        lambda a: si.RegularGridInterpolator(_GRID, V)((a[()] * X, Y)), np.array(1.0)),
        atol=1e-8)
    # SciPy's errors, and named refusals
    with pytest.raises(ValueError, match="out of bounds in dimension 0"):
        dr.grad(lambda v: np.sum(si.RegularGridInterpolator(_GRID, v)(out)))(V)
    with pytest.raises(ValueError, match="out of bounds in dimension 0"):
        dr.grad(lambda x: np.sum(si.RegularGridInterpolator(_GRID, V)(x)))(out)
    with pytest.raises(NoDerivativeRule, match="pchip"):
        dr.grad(lambda v: np.sum(si.RegularGridInterpolator(_GRID, v, method="pchip")(
            _XI)))(V)
    with pytest.raises(NoDerivativeRule, match="pchip"):
        dr.grad(lambda x: np.sum(si.RegularGridInterpolator(_GRID, V)(x, method="pchip")))(
            _XI)
    with pytest.raises(NoDerivativeRule, match="splinef2d"):
        dr.grad(lambda v: np.sum(si.interpn(_GRID, v, _XI, method="splinef2d")))(V)
    with pytest.raises(NoDerivativeRule, match="solver"):
        dr.grad(lambda v: np.sum(si.RegularGridInterpolator(
            _GRID, v, method="cubic", solver=lambda *a, **k: None)(_XI)))(V)
    with pytest.raises(NoDerivativeRule, match="abscissae"):
        dr.grad(lambda g: np.sum(si.RegularGridInterpolator((g, _GRID[1]), V)(_XI)))(
            _GRID[0])
    with pytest.raises(ValueError, match="Can only compute derivatives"):
        dr.grad(lambda x: np.sum(si.RegularGridInterpolator(_GRID, V)(x, nu=(1, 0))))(_XI)
    # a one-point axis, which SciPy's linear method allows (its weight is 1)
    thin = (np.array([0.0]), _GRID[1])
    one = lambda v, x: si.RegularGridInterpolator(thin, v)(x)
    pts = np.array([[0.0, 0.45], [0.0, 2.1]])
    value, tangent = dr.jvp(lambda v: one(v, pts), (V[:1],), (np.ones_like(V[:1]),))
    np.testing.assert_allclose(value, si.RegularGridInterpolator(thin, V[:1])(pts))
    np.testing.assert_allclose(tangent, [1.0, 1.0])  # the weights sum to one
    # plain calls stay SciPy's own
    assert type(si.RegularGridInterpolator(_GRID, V)) is si.RegularGridInterpolator


# ---- boundary values given in bc_type
_T = np.linspace(0.0, 1.0, 5)
_AT = np.array([0.15, 0.45, 0.9])


def _spline(y, a, b):
    return np.sum(si.CubicSpline(_T, y, bc_type=((1, a), (2, b)))(_AT) ** 2)


def _fd(f, y, *extra, h=1e-6):
    return np.array([(f(y + h * e, *extra) - f(y - h * e, *extra)) / (2 * h)
                     for e in np.eye(y.size)])


def test_cubic_spline_with_given_end_derivatives_differentiates_its_data():
    y = np.array([0.3, -0.1, 0.8, 0.5, 1.2])
    for a, b in ((0.5, -1.0), (0.0, 2.0)):
        g = dr.grad(_spline)(y, a, b)
        np.testing.assert_allclose(g, _fd(_spline, y, a, b), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(dr.jacrev(_spline)(y, a, b), g, rtol=1e-13)


def test_a_traced_end_derivative_is_refused_not_recursed():
    """Was a RecursionError: SciPy's own validation of the traced bc_type dispatched
    back to the traced constructor without end."""
    y = np.array([0.3, -0.1, 0.8, 0.5, 1.2])
    with pytest.raises(NoDerivativeRule, match="bc_type"):
        dr.grad(_spline, argnums=1)(y, 0.5, -1.0)
    with pytest.raises(NoDerivativeRule, match="bc_type"):
        dr.grad(lambda a: si.make_interp_spline(
            _T, np.sin(_T), bc_type=([(1, a)], [(1, 0.0)]))(0.3))(0.5)
