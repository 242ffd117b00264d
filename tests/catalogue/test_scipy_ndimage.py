"""scipy.ndimage's filters on traced values: SciPy's own values, the transpose identity
<A u, v> = <u, A^T v> of every boundary mode, origin and kernel parity (input, weights
and cval together), derivatives against finite differences and forward against reverse,
nesting, vmap, dtypes, refusals, and a deblurring fit with SciPy's optimiser."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.optimize as so
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualrev as dr
from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.catalogue.scipy_ndimage import gaussian_kernel1d
from dualrev.errors import InPlaceError, NoDerivativeRule

from ..helpers import check_all, fwd_rev_agree

rng = np.random.default_rng(2212)
X = rng.standard_normal((5, 6))
MODES = ["reflect", "grid-mirror", "mirror", "nearest", "wrap", "grid-wrap", "constant",
         "grid-constant"]
SCIPY = {f.__name__: f for f in ORIGINALS.values()
         if str(getattr(f, "__module__", "")).startswith("scipy.ndimage")}


def _value(f, *args):
    """The primal a forward pass computes (every argument traced)."""
    value, _ = dr.jvp(f, args, tuple(np.zeros_like(np.asarray(a, float)) for a in args))
    return value


def _transpose_identity(f, args, seed):
    """<J t, g> from a forward pass equals <t, J^T g> from a backward pass, for random
    tangents of every argument at once."""
    r = np.random.default_rng(seed)
    tangents = tuple(r.standard_normal(np.shape(a)) for a in args)
    out, jt = dr.jvp(f, args, tangents)
    g = r.standard_normal(np.shape(out))
    _, pullback = dr.vjp(f, *args)
    cts = pullback(g)
    lhs = np.sum(g * jt)
    rhs = sum(np.sum(c * t) for c, t in zip(cts, tangents, strict=True))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_correlate1d_every_mode_origin_and_parity(mode):
    for k in (1, 2, 3, 4, 7, 12):  # kernels longer than the 5-sample axis too
        w = rng.standard_normal(k)
        for origin in range(-(k // 2), (k - 1) // 2 + 1):
            for name in ("correlate1d", "convolve1d"):
                def f(x, w, c, name=name, origin=origin):
                    return getattr(ndi, name)(x, w, axis=0, mode=mode, cval=c, origin=origin)
                want = SCIPY[name](X, w, axis=0, mode=mode, cval=0.3, origin=origin)
                np.testing.assert_allclose(_value(f, X, w, 0.3), want, rtol=1e-13, atol=1e-14)
                _transpose_identity(f, (X, w, 0.3), k * 10 + origin)


@pytest.mark.parametrize("mode", MODES)
def test_correlate_nd_every_mode_origin_and_parity(mode):
    for shape, origins in (((3, 2), [(0, 0), (-1, -1), (1, 0)]), ((2, 5), [(0, 2), (-1, -2)]),
                           ((1, 4), [(0, 1)])):
        w = rng.standard_normal(shape)
        for origin in origins:
            for name in ("correlate", "convolve"):
                def f(x, w, c, name=name, origin=origin):
                    return getattr(ndi, name)(x, w, mode=mode, cval=c, origin=origin)
                want = SCIPY[name](X, w, mode=mode, cval=-0.4, origin=origin)
                np.testing.assert_allclose(_value(f, X, w, -0.4), want, rtol=1e-13,
                                           atol=1e-14)
                _transpose_identity(f, (X, w, -0.4), sum(origin) + 7)


def test_correlate_axes_in_any_order_and_3d():
    x = rng.standard_normal((3, 4, 5))
    w = rng.standard_normal((3, 2))
    for axes in ((0, 2), (2, 0), (-1, 1)):
        f = lambda x, w, axes=axes: ndi.correlate(x, w, mode="wrap", axes=axes)  # noqa: E731
        np.testing.assert_allclose(_value(f, x, w), SCIPY["correlate"](x, w, mode="wrap",
                                                                        axes=axes), rtol=1e-13)
        _transpose_identity(f, (x, w), 3)
    check_all(lambda x, w: ndi.convolve(x, w, mode="mirror", axes=(2, 0)), (x, w), order=2)


def test_derivatives_against_finite_differences_and_modes_agree():
    w = rng.standard_normal((2, 3))
    check_all(lambda x, w, c: ndi.correlate(x, w, mode="constant", cval=c, origin=(0, -1)),
              (X, w, 0.5), order=2)
    check_all(lambda x, w: ndi.convolve1d(x, w[0], axis=1, mode="reflect"), (X, w), order=2)
    # a bilinear map: the Hessian of a least-squares loss in the weights is 2 A^T A
    y = rng.standard_normal(X.shape)
    loss = lambda w: np.sum((ndi.correlate(X, w, mode="nearest") - y) ** 2)  # noqa: E731
    cols = np.stack([SCIPY["correlate"](X, e.reshape(2, 3), mode="nearest").ravel()
                     for e in np.eye(6)], axis=1)
    np.testing.assert_allclose(dr.hessian(loss)(w).reshape(6, 6), 2 * cols.T @ cols,
                               rtol=1e-11)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_gaussian_filters_match_scipy_and_differentiate(order):
    for mode in ("reflect", "constant", "wrap"):
        for kw in ({}, {"truncate": 2.0}, {"radius": 2}):
            f = lambda x, mode=mode, kw=kw: ndi.gaussian_filter(  # noqa: E731
                x, (1.2, 0.7), order=order, mode=mode, cval=0.2, **kw)
            want = SCIPY["gaussian_filter"](X, (1.2, 0.7), order=order, mode=mode, cval=0.2,
                                            **kw)
            np.testing.assert_allclose(_value(f, X), want, rtol=1e-12, atol=1e-14)
            fwd_rev_agree(f, (X,))
    # sigma: the kernel is differentiable in it (radius held), in both modes, nested
    g = lambda s: ndi.gaussian_filter1d(X, s, axis=1, order=order, mode="mirror")  # noqa: E731
    check_all(g, (1.3,), order=2)
    s = 1.3
    fd = (SCIPY["gaussian_filter1d"](X, s + 1e-6, axis=1, order=order, mode="mirror", radius=5)
          - SCIPY["gaussian_filter1d"](X, s - 1e-6, axis=1, order=order, mode="mirror",
                                       radius=5)) / 2e-6
    np.testing.assert_allclose(dr.jacfwd(g)(s), fd, rtol=1e-6, atol=1e-8)


def test_gaussian_filter_per_axis_axes_and_zero_sigma():
    x = rng.standard_normal((4, 3, 5))
    cases = [
        dict(sigma=(1.0, 0.0, 2.0), order=(1, 0, 2), mode=("reflect", "wrap", "nearest")),
        dict(sigma=0.8, axes=(0, 2), order=(0, 1), radius=(1, 3)),
        dict(sigma=1.1, axes=(-1,), mode="grid-constant", cval=-1.0),
    ]
    for kw in cases:
        f = lambda x, kw=kw: ndi.gaussian_filter(x, **kw)  # noqa: E731
        np.testing.assert_allclose(_value(f, x), SCIPY["gaussian_filter"](x, **kw),
                                   rtol=1e-12, atol=1e-14)
        _transpose_identity(f, (x,), 5)


def test_gaussian_kernel_is_scipys():
    from scipy.ndimage._filters import _gaussian_kernel1d
    for order in range(5):
        np.testing.assert_allclose(gaussian_kernel1d(1.7, order, 6),
                                   _gaussian_kernel1d(1.7, order, 6), rtol=1e-12, atol=1e-16)


def test_uniform_sobel_prewitt_laplace_values_and_derivatives():
    x = rng.standard_normal((6, 5))
    calls = {
        "uniform_filter1d": [dict(size=4, axis=0, origin=-2), dict(size=3, mode="constant",
                                                                   cval=1.5, origin=1)],
        "uniform_filter": [dict(size=(3, 2), mode="wrap", origin=(0, -1)),
                           dict(size=4, axes=(1,), mode=("mirror",))],
        "sobel": [dict(axis=0), dict(axis=-1, mode=("constant", "nearest"), cval=2.0)],
        "prewitt": [dict(axis=1, mode="grid-wrap")],
        "laplace": [dict(), dict(mode="constant", cval=0.5, axes=(0,))],
        "gaussian_laplace": [dict(sigma=1.1), dict(sigma=(0.9, 1.4), mode="mirror",
                                                   truncate=3.0, axes=(1, 0))],
        "gaussian_gradient_magnitude": [dict(sigma=1.0, mode="nearest", radius=2)],
    }
    for name, kws in calls.items():
        for kw in kws:
            f = lambda x, name=name, kw=kw: getattr(ndi, name)(x, **kw)  # noqa: E731
            np.testing.assert_allclose(_value(f, x), SCIPY[name](x, **kw), rtol=1e-11,
                                       atol=1e-13, err_msg=f"{name} {kw}")
            check_all(f, (x,), order=1)


def test_generic_callbacks():
    x = rng.standard_normal((4, 5))

    def d2(x, axis, output, mode, cval, scale=1.0):
        return scale * ndi.correlate1d(x, [1.0, -2.0, 1.0], axis, output, mode, cval)

    f = lambda x: ndi.generic_laplace(x, d2, extra_keywords={"scale": 2.0})  # noqa: E731
    np.testing.assert_allclose(_value(f, x), 2 * SCIPY["laplace"](x), rtol=1e-13)
    g = lambda x: ndi.generic_gradient_magnitude(x, ndi.sobel, mode="wrap")  # noqa: E731
    np.testing.assert_allclose(_value(g, x), SCIPY["generic_gradient_magnitude"](
        x, SCIPY["sobel"], mode="wrap"), rtol=1e-13)
    check_all(g, (x,), order=1)

    def writes(x, axis, output, mode, cval):
        output[...] = x  # SciPy's in-place style: the result is not returned
    with pytest.raises(InPlaceError, match="(?i)return the filtered array"):
        dr.grad(lambda x: np.sum(ndi.generic_laplace(x, writes)))(x)


def test_vmap_batches_input_weights_and_cval():
    xs = rng.standard_normal((3, 5, 6))
    ws = rng.standard_normal((3, 4))
    cs = rng.standard_normal(3)
    f = lambda x, w, c: ndi.correlate1d(x, w, axis=1, mode="constant", cval=c)  # noqa: E731
    loop = np.stack([SCIPY["correlate1d"](xs[i], ws[i], axis=1, mode="constant", cval=cs[i])
                     for i in range(3)])
    np.testing.assert_allclose(dr.vmap(f)(xs, ws, cs), loop, rtol=1e-13)
    np.testing.assert_allclose(dr.vmap(f, in_axes=(0, None, 0))(xs, ws[0], cs),
                               np.stack([SCIPY["correlate1d"](xs[i], ws[0], axis=1,
                                                              mode="constant", cval=cs[i])
                                         for i in range(3)]), rtol=1e-13)
    g = lambda x: ndi.gaussian_filter(x, 1.0, mode="mirror")  # noqa: E731
    np.testing.assert_allclose(dr.vmap(g)(xs), np.stack([SCIPY["gaussian_filter"](
        x, 1.0, mode="mirror") for x in xs]), rtol=1e-13)
    # Jacobians are batched passes: jacfwd/jacrev of a 2-d filter equal the filter matrix
    J = np.stack([SCIPY["gaussian_filter"](e.reshape(5, 6), 1.0, mode="mirror").ravel()
                  for e in np.eye(30)], axis=1).reshape(5, 6, 5, 6)
    np.testing.assert_allclose(dr.jacrev(g)(xs[0]), J, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dr.jacfwd(g)(xs[0]), J, rtol=1e-12, atol=1e-15)


def test_dtypes_complex_and_output():
    x32 = X.astype(np.float32)
    f = lambda x: ndi.gaussian_filter(x, 1.0)  # noqa: E731
    v = _value(f, x32)
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, SCIPY["gaussian_filter"](x32, 1.0), rtol=1e-6)
    assert dr.grad(lambda x: np.sum(f(x)))(x32).dtype == np.float32
    h = lambda x: ndi.uniform_filter(x, 3, output=np.float32)  # noqa: E731
    assert _value(h, X).dtype == np.float32
    # complex input (real weights): holomorphic, so forward and reverse agree
    z = X + 1j * rng.standard_normal(X.shape)
    wz = np.array([0.5, 1.0 + 0.5j, -0.3j])
    c = lambda z: ndi.correlate1d(z, wz, mode="wrap")  # noqa: E731
    np.testing.assert_allclose(_value(c, z), SCIPY["correlate1d"](z, wz, mode="wrap"),
                               rtol=1e-13)
    jf = dr.jacfwd(c, holomorphic=True)(z)
    e = np.zeros(z.shape, complex)
    e[2, 3] = 1.0
    np.testing.assert_allclose(jf[..., 2, 3], SCIPY["correlate1d"](e, wz, mode="wrap"),
                               rtol=1e-13, atol=1e-15)
    # complex weights are conjugated by correlate (SciPy's, like np.correlate): the
    # derivative in their real and imaginary parts against finite differences
    re = lambda a, b: np.real(ndi.correlate1d(z, a + 1j * b, mode="reflect"))  # noqa: E731
    check_all(re, (wz.real.copy(), wz.imag.copy()), order=1)


def test_refusals():
    with pytest.raises(InPlaceError, match=r"scipy.ndimage.gaussian_filter\(..., output=array"):
        dr.grad(lambda x: np.sum(ndi.gaussian_filter(x, 1.0, output=np.empty((5, 6)))))(X)
    ints = np.arange(12).reshape(3, 4)
    with pytest.raises(NoDerivativeRule, match="integer input"):
        dr.grad(lambda w: np.sum(ndi.correlate1d(ints, w)))(np.ones(3))
    # with a floating output dtype it is SciPy's value, differentiable in the weights
    f = lambda w: ndi.correlate1d(ints, w, output=np.float64)  # noqa: E731
    w = np.array([0.2, 1.0, -0.5])
    np.testing.assert_allclose(_value(f, w), SCIPY["correlate1d"](ints, w, output=np.float64))
    # SciPy's multi-pass filters refuse a real output dtype for complex input
    z = X + 1j * X
    for call in (lambda z: ndi.gaussian_filter(z, 1.0, output=np.float64),
                 lambda z: ndi.sobel(z, output=np.float64)):
        with pytest.raises(RuntimeError, match="complex dtype"):
            SCIPY["gaussian_filter"](z, 1.0, output=np.float64)
        with pytest.raises(RuntimeError, match="complex dtype"):
            dr.jvp(call, (z,), (z,))
    with pytest.raises(RuntimeError, match="boundary mode"):
        dr.grad(lambda x: np.sum(ndi.uniform_filter(x, 3, mode="bogus")))(X)
    with pytest.raises(ValueError, match="Invalid origin"):
        dr.grad(lambda x: np.sum(ndi.correlate1d(x, [1.0, 2.0], origin=1)))(X)


def test_deblurring_with_scipy_minimize():
    """A user's inverse problem as written: recover an image from its blur by minimising
    a Tikhonov-regularised loss with dualrev's exact gradients."""
    r = np.random.default_rng(5)
    truth = ndi.gaussian_filter(r.standard_normal((12, 12)), 1.0)
    observed = ndi.gaussian_filter(truth, 1.5, mode="nearest")

    def loss(u_flat):
        u = u_flat.reshape(12, 12)
        resid = ndi.gaussian_filter(u, 1.5, mode="nearest") - observed
        return np.sum(resid ** 2) + 1e-2 * np.sum(ndi.laplace(u) ** 2)

    res = so.minimize(dr.value_and_grad(loss), np.zeros(144), jac=True, method="L-BFGS-B",
                      options={"maxiter": 2000, "gtol": 1e-11, "ftol": 1e-15})
    # the minimiser solves the normal equations (A^T A + 0.01 L^T L) u = A^T observed,
    # with A and L the filters' matrices built column by column from SciPy's values
    eye = np.eye(144)
    A = np.stack([SCIPY["gaussian_filter"](e.reshape(12, 12), 1.5, mode="nearest").ravel()
                  for e in eye], axis=1)
    L = np.stack([SCIPY["laplace"](e.reshape(12, 12)).ravel() for e in eye], axis=1)
    exact = np.linalg.solve(A.T @ A + 1e-2 * L.T @ L, A.T @ observed.ravel())
    np.testing.assert_allclose(res.x, exact, atol=1e-5 * np.abs(exact).max())
    # and the gradient itself against finite differences along a random direction
    u0 = r.standard_normal(144)
    step = r.standard_normal(144)
    fd = (loss(u0 + 1e-6 * step) - loss(u0 - 1e-6 * step)) / 2e-6
    np.testing.assert_allclose(np.dot(dr.grad(loss)(u0), step), fd, rtol=1e-6)


# ------------------------------------------------------------------ interpolation
PTS = rng.uniform(-3.0, 9.0, (2, 30))
PTS[:, :6] = [[0.0, 4.0, 2.0, -1.0, 5.0, 2.5], [0.0, 5.0, 3.5, 6.0, -0.5, 1.0]]  # knots, edges


@pytest.mark.parametrize("mode", MODES)
def test_map_coordinates_every_order_and_prefilter(mode):
    for order in range(6):
        for prefilter in (True, False):
            kw = dict(order=order, mode=mode, prefilter=prefilter)
            f = lambda x, c, cv, kw=kw: ndi.map_coordinates(x, c, cval=cv, **kw)  # noqa: E731
            np.testing.assert_allclose(_value(f, X, PTS, 0.3),
                                       SCIPY["map_coordinates"](X, PTS, cval=0.3, **kw),
                                       rtol=1e-12, atol=1e-13)
            _transpose_identity(f, (X, PTS, 0.3), order)
            # linear in the input: the tangent is SciPy's map of the tangent (cval 0)
            t = rng.standard_normal(X.shape)
            _, jt = dr.jvp(lambda x, f=f: f(x, PTS, 0.3), (X,), (t,))
            np.testing.assert_allclose(jt, SCIPY["map_coordinates"](t, PTS, cval=0.0, **kw),
                                       rtol=1e-11, atol=1e-12)
            if order == 0:
                continue
            # in the coordinates: SciPy's values differenced (points off the knots)
            pts = PTS[:, 6:]
            J = dr.jacfwd(lambda c, f=f: f(X, c, 0.3))(pts)
            for d in range(2):
                e = np.zeros_like(pts)
                e[d] = 1e-6
                fd = (SCIPY["map_coordinates"](X, pts + e, cval=0.3, **kw)
                      - SCIPY["map_coordinates"](X, pts - e, cval=0.3, **kw)) / 2e-6
                np.testing.assert_allclose(np.diagonal(J[:, d, :]), fd, rtol=1e-5, atol=1e-6)


def test_map_coordinates_nested_vmap_and_refusals():
    pts = PTS[:, 6:12]
    f = lambda c: np.sum(ndi.map_coordinates(X, c, order=3, mode="mirror") ** 2)  # noqa: E731
    check_all(f, (pts,), order=2)
    H = dr.hessian(f)(pts)
    assert H.shape == (2, 6, 2, 6)
    # a batch of images at the same points
    xs = rng.standard_normal((3, 5, 6))
    g = lambda x: ndi.map_coordinates(x, pts, order=2, mode="wrap")  # noqa: E731
    np.testing.assert_allclose(dr.vmap(g)(xs), np.stack([SCIPY["map_coordinates"](
        x, pts, order=2, mode="wrap") for x in xs]), rtol=1e-12)
    # a batch of points (and of points and images together): the spline's indices are
    # computed for the whole batch and lined up with it
    cs = np.stack([pts, pts[::-1] * 0.9, pts + 0.3])
    for mode in ("mirror", "grid-constant", "constant"):
        h = lambda x, c, mode=mode: ndi.map_coordinates(x, c, order=3, mode=mode)  # noqa: E731
        np.testing.assert_allclose(dr.vmap(h, in_axes=(None, 0))(X, cs), np.stack(
            [SCIPY["map_coordinates"](X, c, order=3, mode=mode) for c in cs]), rtol=1e-12)
        loop = [SCIPY["map_coordinates"](x, c, order=3, mode=mode)
                for x, c in zip(xs, cs, strict=True)]
        np.testing.assert_allclose(dr.vmap(h)(xs, cs), np.stack(loop), rtol=1e-12)
        J = dr.jacrev(lambda c, h=h: h(X, c))(pts)
        np.testing.assert_allclose(J, dr.jacfwd(lambda c, h=h: h(X, c))(pts), rtol=1e-12,
                                   atol=1e-14)
    with pytest.raises(RuntimeError, match="spline order"):
        dr.grad(lambda c: np.sum(ndi.map_coordinates(X, c, order=6)))(pts)


def test_spline_filters_and_their_adjoint():
    for mode in ("mirror", "reflect", "wrap", "grid-wrap", "nearest", "constant"):
        for order in (2, 3, 5):
            f = lambda x, order=order, mode=mode: ndi.spline_filter(x, order, mode=mode)  # noqa: E731
            np.testing.assert_allclose(_value(f, X), SCIPY["spline_filter"](X, order,
                                                                            mode=mode),
                                       rtol=1e-12, atol=1e-13)
            _transpose_identity(f, (X,), order)
    h = lambda x: ndi.spline_filter1d(x, 4, axis=0, output=np.float32)  # noqa: E731
    v = _value(h, X)
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, SCIPY["spline_filter1d"](X, 4, axis=0, output=np.float32),
                               rtol=1e-6)


def _transform_calls(kw):
    """(dualrev call, its arguments, SciPy's value) for shift, zoom, affine_transform
    (2-d and 1-d matrix) and rotate."""
    M = np.array([[0.9, 0.2], [-0.15, 1.1]])
    off = np.array([0.3, -0.4])
    return [
        (lambda x, s: ndi.shift(x, s, **kw), (X, np.array([0.3, -1.7])),
         lambda: SCIPY["shift"](X, [0.3, -1.7], **kw)),
        (lambda x: ndi.zoom(x, (1.5, 0.7), **kw), (X,),
         lambda: SCIPY["zoom"](X, (1.5, 0.7), **kw)),
        (lambda x, m, o: ndi.affine_transform(x, m, o, output_shape=(4, 7), **kw),
         (X, M, off), lambda: SCIPY["affine_transform"](X, M, off, output_shape=(4, 7),
                                                        **kw)),
        (lambda x, m: ndi.affine_transform(x, m, 0.5, **kw), (X, np.array([0.8, 1.2])),
         lambda: SCIPY["affine_transform"](X, [0.8, 1.2], 0.5, **kw)),
        (lambda x, a: ndi.rotate(x, a, **kw), (X, 30.0),
         lambda: SCIPY["rotate"](X, 30.0, **kw)),
    ]


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "grid-wrap", "constant",
                                  "grid-constant"])
def test_shift_zoom_affine_rotate(mode):
    M = np.array([[0.9, 0.2], [-0.15, 1.1]])
    off = np.array([0.3, -0.4])
    for order in (0, 1, 3, 5):
        calls = _transform_calls(dict(order=order, mode=mode, cval=0.3))
        for f, args, ref in calls:
            np.testing.assert_allclose(_value(f, *args), ref(), rtol=1e-11, atol=1e-12)
            _transpose_identity(f, args, order)
    # the transform's parameters against finite differences of SciPy's own values
    kw = dict(order=3, mode=mode)
    fd_cases = [
        (lambda s: ndi.shift(X, s, **kw), lambda s: SCIPY["shift"](X, s, **kw),
         np.array([0.3, -1.7])),
        (lambda a: ndi.rotate(X, a, reshape=False, **kw),
         lambda a: SCIPY["rotate"](X, a, reshape=False, **kw), 33.0),
        (lambda m: ndi.affine_transform(X, m, off, **kw),
         lambda m: SCIPY["affine_transform"](X, m, off, **kw), M),
    ]
    r = np.random.default_rng(3)
    for f, ref, p in fd_cases:
        step = r.standard_normal(np.shape(p))
        _, jt = dr.jvp(f, (p,), (step,))
        up, mid, down = ref(p + 1e-6 * step), ref(p), ref(p - 1e-6 * step)
        # 'constant' jumps to cval at the image's edge: compare where SciPy is smooth
        smooth = np.isclose(up - mid, mid - down, rtol=1e-3, atol=1e-9)
        assert smooth.mean() > 0.9
        np.testing.assert_allclose(jt[smooth], ((up - down) / 2e-6)[smooth], rtol=1e-5,
                                   atol=1e-6)
        fwd_rev_agree(f, (p,))


def test_rotate_3d_planes_and_registration():
    x3 = rng.standard_normal((3, 4, 5))
    f = lambda x, a: ndi.rotate(x, a, axes=(0, 2), order=1)  # noqa: E731
    np.testing.assert_allclose(_value(f, x3, 20.0), SCIPY["rotate"](x3, 20.0, axes=(0, 2),
                                                                    order=1), rtol=1e-12)
    _transpose_identity(f, (x3, 20.0), 1)
    # image registration as users write it: recover a shift with SciPy's optimiser
    yy, xx = np.mgrid[0:16, 0:16]
    img = np.exp(-((yy - 7.0) ** 2 + (xx - 8.0) ** 2) / 8.0)
    target = SCIPY["shift"](img, [1.3, -0.6], order=3, mode="nearest")

    def loss(s):
        return np.sum((ndi.shift(img, s, order=3, mode="nearest") - target) ** 2)

    res = so.minimize(dr.value_and_grad(loss), np.zeros(2), jac=True, method="BFGS",
                      options={"gtol": 1e-10})
    np.testing.assert_allclose(res.x, [1.3, -0.6], atol=1e-6)


# ------------------------------------------------------------------ rank filters
FP = np.array([[1, 0, 1], [0, 1, 1]], bool)
RANK_CASES = [
    ("minimum_filter", dict(size=3)), ("maximum_filter", dict(size=(2, 3), origin=(-1, 1))),
    ("median_filter", dict(size=4)), ("median_filter", dict(footprint=FP, origin=(0, -1))),
    ("percentile_filter", dict(percentile=30, size=(3, 2))),
    ("percentile_filter", dict(percentile=-20, footprint=FP)),
    ("rank_filter", dict(rank=-2, size=3)), ("maximum_filter", dict(size=3, axes=(1,))),
    ("minimum_filter", dict(footprint=FP.T, axes=(1, 0))),
    ("maximum_filter", dict(size=(2, 3), axes=(1, 0), origin=(0, -1))),
    ("minimum_filter1d", dict(size=4, axis=0, origin=-1)), ("maximum_filter1d", dict(size=2)),
]


@pytest.mark.parametrize("mode", MODES)
def test_rank_filters_select_scipys_element(mode):
    for name, kw in RANK_CASES:
        f = lambda x, c, name=name, kw=kw: getattr(ndi, name)(  # noqa: E731
            x, mode=mode, cval=c, **kw)
        np.testing.assert_array_equal(_value(f, X, 0.4), SCIPY[name](X, mode=mode, cval=0.4,
                                                                    **kw))
        _transpose_identity(f, (X, 0.4), 1)
        # the derivative is that of the selected element: finite differences of SciPy's
        # values (X's entries are distinct, so the selection is stable under the step)
        check_all(f, (X, 0.4), order=1)


def test_rank_filter_ties_share_the_derivative():
    # every window of a constant signal ties: np.max's rule splits each window's
    # derivative evenly over its (extended) entries, so each sample gets 1 in total
    g = dr.grad(lambda x: np.sum(ndi.maximum_filter1d(x, 3, mode="nearest")))(np.ones(4))
    np.testing.assert_allclose(g, np.ones(4))
    g = dr.grad(lambda x: np.sum(ndi.minimum_filter(x, 2, mode="constant", cval=5.0)))(
        np.array([[1.0, 1.0], [1.0, 1.0]]))
    # windows of size 2 reach back one sample: x[0, 0] is alone in its own window (1),
    # ties with one other in two windows (1/2 each) and with all four in the last (1/4)
    np.testing.assert_allclose(g, [[2.25, 0.75], [0.75, 0.25]])
    with pytest.raises(RuntimeError, match="rank not within"):
        dr.grad(lambda x: np.sum(ndi.rank_filter(x, 9, size=3)))(X)


# ------------------------------------------------------------------ generated cases
@st.composite
def correlations(draw):
    """A random correlate/convolve call: 1-3 dims (sides 1-5), a subset of axes in any
    order, kernel sides 1-6 (longer than the axis too), any origin, mode and cval."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    nd = len(shape)
    axes = draw(st.permutations(range(nd)).flatmap(
        lambda p: st.integers(1, nd).map(lambda k: tuple(p[:k]))))
    wshape = tuple(draw(st.integers(1, 6)) for _ in axes)
    # SciPy pairs the weights' axes with the sorted axes, the origins with ``axes`` as
    # given (with the input's axes when every axis is filtered)
    ks = wshape if len(axes) == nd else [wshape[sorted(axes).index(a)] for a in axes]
    origin = tuple(draw(st.integers(-(k // 2), (k - 1) // 2)) for k in ks)
    mode = draw(st.sampled_from(MODES))
    name = draw(st.sampled_from(["correlate", "convolve"]))
    seed = draw(st.integers(0, 2**16))
    return shape, axes, wshape, origin, mode, name, seed


@settings(max_examples=40, deadline=None)
@given(correlations())
def test_generated_correlations_match_scipy_and_transpose(case):
    shape, axes, wshape, origin, mode, name, seed = case
    r = np.random.default_rng(seed)
    x, w = r.standard_normal(shape), r.standard_normal(wshape)
    f = lambda x, w, c: getattr(ndi, name)(x, w, mode=mode, cval=c, origin=origin,  # noqa: E731
                                           axes=axes)
    np.testing.assert_allclose(_value(f, x, w, 0.3), SCIPY[name](
        x, w, mode=mode, cval=0.3, origin=origin, axes=axes), rtol=1e-12, atol=1e-13)
    _transpose_identity(f, (x, w, 0.3), seed)


@st.composite
def interpolations(draw):
    """A random map_coordinates call: a 1-3 dim image (sides 1-5), points inside and
    outside it, any order, mode and prefilter."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    order = draw(st.integers(0, 5))
    mode = draw(st.sampled_from(MODES))
    prefilter = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return shape, order, mode, prefilter, seed


@settings(max_examples=40, deadline=None)
@given(interpolations())
def test_generated_interpolations_match_scipy_and_transpose(case):
    shape, order, mode, prefilter, seed = case
    r = np.random.default_rng(seed)
    x = r.standard_normal(shape)
    pts = np.stack([r.uniform(-2.5, n + 1.5, 7) for n in shape])
    kw = dict(order=order, mode=mode, prefilter=prefilter)
    f = lambda x, c, cv: ndi.map_coordinates(x, c, cval=cv, **kw)  # noqa: E731
    np.testing.assert_allclose(_value(f, x, pts, -0.2), SCIPY["map_coordinates"](
        x, pts, cval=-0.2, **kw), rtol=1e-11, atol=1e-12)
    _transpose_identity(f, (x, pts, -0.2), seed)


@st.composite
def rank_filters(draw):
    """A random rank filter: 1-3 dims, a subset of axes in any order, a size or a random
    footprint, origins, mode, and which rank."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    nd = len(shape)
    axes = draw(st.permutations(range(nd)).flatmap(
        lambda p: st.integers(1, nd).map(lambda k: tuple(p[:k]))))
    wshape = tuple(draw(st.integers(1, 4)) for _ in axes)
    footprint = draw(st.none() | hnp.arrays(bool, wshape).filter(np.any))
    name = draw(st.sampled_from(["minimum_filter", "maximum_filter", "median_filter",
                                 "percentile_filter"]))
    separable = name in ("minimum_filter", "maximum_filter") and (
        footprint is None or footprint.all())
    # the pairing of origins with axes SciPy uses on each path
    ks = (wshape if separable or len(axes) == nd else
          [wshape[sorted(axes).index(a)] for a in axes])
    origin = tuple(draw(st.integers(-(k // 2), (k - 1) // 2)) for k in ks)
    mode = draw(st.sampled_from(MODES))
    pct = draw(st.floats(-100, 100))
    return shape, axes, wshape, footprint, name, origin, mode, pct, draw(st.integers(0, 999))


@settings(max_examples=40, deadline=None)
@given(rank_filters())
def test_generated_rank_filters_match_scipy(case):
    shape, axes, wshape, footprint, name, origin, mode, pct, seed = case
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1
    kw = dict(mode=mode, origin=origin, axes=axes)
    kw.update(size=wshape) if footprint is None else kw.update(footprint=footprint)
    if name == "percentile_filter":
        kw["percentile"] = pct
    f = lambda x, c: getattr(ndi, name)(x, cval=c, **kw)  # noqa: E731
    separable = name in ("minimum_filter", "maximum_filter") and (
        footprint is None or footprint.all())
    if len(shape) == 1 and not separable:
        # SciPy >= 1.16 sends 1-d input to a fast path that ignores the footprint's holes
        # (it filters with footprint.size contiguous samples) and reads uninitialised
        # memory on a 1-sample line in 'mirror' mode (median_filter([5.0], 3,
        # mode='mirror') gives 1.6e-322 now and then): compare with its N-d path, on a
        # row of a 2-d array
        kw2 = dict(kw, axes=(1,))
        if footprint is not None:
            kw2["footprint"] = footprint
        want = SCIPY[name](x[None], cval=0.05, **kw2)[0]
    else:
        want = SCIPY[name](x, cval=0.05, **kw)
    np.testing.assert_array_equal(_value(f, x, 0.05), want)
    _transpose_identity(f, (x, 0.05), seed)


def test_empty_inputs():
    x = np.zeros((0, 4))
    w = np.array([1.0, -2.0, 0.5])
    for f in (lambda x, w: ndi.correlate1d(x, w, axis=0, mode="mirror"),
              lambda x, w: ndi.convolve1d(x, w, axis=1),
              lambda x, w: ndi.gaussian_filter(x, 1.0) + 0 * w[0],
              lambda x, w: ndi.maximum_filter(x, 3) + 0 * w[0]):
        for jac in (dr.jacrev, dr.jacfwd):
            assert jac(f)(x, w).shape == (0, 4, 0, 4)
            assert jac(f, 1)(x, w).shape == (0, 4, 3)
