"""Derivatives of Bessel functions in their order and of hyp0f1 in b
(dualrev/catalogue/bessel_order.py, registered in special.py).

Checked against a committed table of mpmath values at 50 and 90 digits
(tests/catalogue/data/bessel_order_references.csv, written by make_bessel_references.py),
closed forms at v = 0 and +-1/2 (DLMF 10.15.3-6, 10.38.6-7), finite differences of SciPy's
own functions, forward against reverse mode, under vmap, and second derivatives
(in v, and mixed in v and x)."""

from __future__ import annotations

import csv
import pathlib
import warnings
from collections import defaultdict

import numpy as np
import pytest
import scipy.special as sc

import dualrev as dr
from dualrev.catalogue.bessel_order import order_values

TABLE = pathlib.Path(__file__).parent / "data" / "bessel_order_references.csv"


def _table() -> dict[str, np.ndarray]:
    rows: dict[str, list[list[float]]] = defaultdict(list)
    with TABLE.open() as fh:
        for r in csv.DictReader(fh):
            rows[r["function"]].append([float(r[k]) for k in ("v", "x", "value", "d1", "d2")])
    return {k: np.array(v) for k, v in rows.items()}


REFS = _table()
# the scaled forms from the unscaled references: (function, reference, scale(x))
SCALED = {
    "jv": ("jv", None), "yv": ("yv", None), "iv": ("iv", None), "kv": ("kv", None),
    "jve": ("jv", None), "yve": ("yv", None), "ive": ("iv", lambda x: np.exp(-x)),
    "kve": ("kv", np.exp), "hyp0f1": ("hyp0f1", None),
}
# the bound on the error, relative to the derivative, or where the derivative is near a
# zero to 1e-6 of the largest of the function and its two derivatives there. Measured
# maxima (first, second derivative; medians 2e-15): jv 6.5e-12, 5.0e-11 (the transition
# x ~ v at v = 297), yv 3.6e-12, 1.5e-12, iv 2.2e-13, 1.8e-13, kv 1.2e-14, 1.2e-14,
# hyp0f1 1.3e-13, 9.3e-14
TOL = {"jv": 1e-10, "yv": 1e-11, "iv": 1e-12, "kv": 1e-13, "hyp0f1": 1e-12}


def _errors(got: np.ndarray, ref: np.ndarray, row: np.ndarray) -> np.ndarray:
    scale = np.max(np.abs(row[:, 2:5]), axis=1)
    return np.abs(got - ref) / np.maximum(np.abs(ref), 1e-6 * scale)


@pytest.mark.parametrize("name", list(SCALED))
def test_first_and_second_derivatives_match_the_mpmath_table(name: str) -> None:
    f = getattr(sc, name)
    ref_name, scale = SCALED[name]
    row = REFS[ref_name]
    v, x = row[:, 0], row[:, 1]
    s = np.ones_like(x) if scale is None else scale(x)
    keep = np.isfinite(f(v, x)) & np.isfinite(s * row[:, 4])
    if scale is not None:  # the scaled function's own range (kve overflows sooner)
        keep &= np.abs(s * row[:, 2]) < 1e300
    v, x, s, row = v[keep], x[keep], s[keep], row[keep]
    assert len(v) > 150
    ones = np.ones_like(v)
    _, fwd = dr.jvp(lambda u: f(u, x), (v,), (ones,))
    _, pull = dr.vjp(lambda u: f(u, x), v)
    (rev,) = pull(ones)
    tol = TOL[ref_name]
    assert np.max(_errors(fwd, s * row[:, 3], row)) < tol
    assert np.max(_errors(rev, s * row[:, 3], row)) < tol

    def first(u):
        return dr.jvp(lambda w: f(w, x), (u,), (np.ones_like(u),))[1]

    _, fwd2 = dr.jvp(first, (v,), (ones,))  # forward over forward
    (rev2,) = dr.vjp(first, v)[1](ones)  # reverse over forward
    assert np.max(_errors(fwd2, s * row[:, 4], row)) < tol
    assert np.max(_errors(rev2, s * row[:, 4], row)) < tol


@pytest.mark.parametrize("kind,f", [("j", sc.jv), ("y", sc.yv), ("i", sc.ive), ("k", sc.kve)])
def test_the_method_reproduces_scipys_values(kind: str, f) -> None:
    # n = 0 of the same series and quadratures: the function itself, against SciPy
    rng = np.random.default_rng(7)
    v = np.concatenate([rng.uniform(-50, 50, 400), rng.integers(-20, 21, 100)])
    x = 10 ** rng.uniform(-3, 2, 500)
    ref = f(v, x)
    ok = np.isfinite(ref) & (np.abs(ref) > 1e-280) & (np.abs(ref) < 1e280)
    got = order_values(kind, v[ok], x[ok])
    # SciPy's own accuracy bounds this: I_-v near the integers cancels in SciPy too,
    # and J in the transition region v ~ x is SciPy's weakest
    assert np.max(np.abs(got - ref[ok]) / np.abs(ref[ok])) < 1e-9
    assert np.median(np.abs(got - ref[ok]) / np.abs(ref[ok])) < 1e-14


X = np.array([0.05, 0.7, 1.7, 6.0, 40.0])


@pytest.mark.parametrize("v,f,closed", [
    (0.0, sc.jv, lambda x: np.pi / 2 * sc.y0(x)),  # DLMF 10.15.3-4
    (0.0, sc.yv, lambda x: -np.pi / 2 * sc.j0(x)),
    (0.0, sc.iv, lambda x: -sc.k0(x)),  # DLMF 10.38.4
    (0.0, sc.kv, lambda x: 0.0 * x),
    (0.5, sc.jv, lambda x: np.sqrt(2 / (np.pi * x)) * (sc.sici(2 * x)[1] * np.sin(x)
                                                      - sc.sici(2 * x)[0] * np.cos(x))),
    (-0.5, sc.jv, lambda x: np.sqrt(2 / (np.pi * x)) * (sc.sici(2 * x)[1] * np.cos(x)
                                                       + sc.sici(2 * x)[0] * np.sin(x))),
    (0.5, sc.yv, lambda x: np.sqrt(2 / (np.pi * x)) * (
        sc.sici(2 * x)[1] * np.cos(x) + (sc.sici(2 * x)[0] - np.pi) * np.sin(x))),
    (0.5, sc.kv, lambda x: np.sqrt(np.pi / (2 * x)) * sc.exp1(2 * x) * np.exp(x)),
    (-0.5, sc.kv, lambda x: -np.sqrt(np.pi / (2 * x)) * sc.exp1(2 * x) * np.exp(x)),
    (0.5, sc.iv, lambda x: -(sc.exp1(2 * x) * np.exp(x) + sc.expi(2 * x) * np.exp(-x))
     / np.sqrt(2 * np.pi * x)),
    (-0.5, sc.iv, lambda x: (sc.expi(2 * x) * np.exp(-x) - sc.exp1(2 * x) * np.exp(x))
     / np.sqrt(2 * np.pi * x)),
])
def test_closed_forms_at_order_zero_and_one_half(v: float, f, closed) -> None:
    want = closed(X)
    g = dr.vmap(dr.grad(lambda u, x: f(u, x)), in_axes=(None, 0))(v, X)
    _, t = dr.jvp(lambda u: f(u, X), (np.full_like(X, v),), (np.ones_like(X),))
    # at v = 0, dI/dv = -K_0(x) is 1e-35 of I_0(x) at x = 40: kept to 1e-12 relative
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(t, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("f", [sc.jv, sc.yv, sc.iv, sc.kv, sc.jve, sc.yve, sc.ive, sc.kve,
                               sc.hyp0f1])
def test_hessian_in_order_and_x_against_differences(f) -> None:
    rng = np.random.default_rng(3)
    for v0, x0 in zip(rng.uniform(-3.0, 4.0, 4), rng.uniform(0.3, 5.0, 4), strict=True):
        p = np.array([v0, x0])
        H = dr.hessian(lambda q: f(q[0], q[1]))(p)
        H2 = dr.jacrev(dr.grad(lambda q: f(q[0], q[1])))(p)
        np.testing.assert_allclose(H, H2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
        h = 1e-4
        g = dr.grad(lambda q: f(q[0], q[1]))
        fd = np.array([(g(p + h * e) - g(p - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-8)
        # the gradient against differences of SciPy's own function
        dv = (f(v0 + 1e-6, x0) - f(v0 - 1e-6, x0)) / 2e-6
        np.testing.assert_allclose(g(p)[0], dv, rtol=1e-7, atol=1e-9)


def test_vmap_of_grad_equals_the_loop_and_float32_keeps_its_dtype() -> None:
    v = np.linspace(-2.3, 7.7, 9)  # hyp0f1: no pole of b (0, -1, ...) among them
    x = np.linspace(0.2, 30.0, 9)
    for f in (sc.jv, sc.yv, sc.ive, sc.kv, sc.hyp0f1):
        batched = dr.vmap(dr.grad(lambda u, y, f=f: f(u, y)))(v, x)
        loop = [dr.grad(lambda u, y, f=f: f(u, y))(a, b) for a, b in zip(v, x, strict=True)]
        np.testing.assert_allclose(batched, loop, rtol=1e-14)
    t = dr.jvp(lambda u: sc.jv(u, np.float32(2.0)), (np.float32(1.5),), (np.float32(1.0),))[1]
    assert t.dtype == np.float32
    np.testing.assert_allclose(t, dr.grad(lambda u: sc.jv(u, 2.0))(1.5), rtol=1e-6)


def test_where_no_derivative_exists_nan_and_a_warning() -> None:
    # x < 0 (complex for non-integer orders), x = 0 but for J_v, I_v with v > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(dr.grad(lambda v: sc.jv(v, -1.0))(2.0))
        assert np.isnan(dr.grad(lambda v: sc.kv(v, 0.0))(1.5))
        assert np.isnan(dr.grad(lambda v: sc.yv(v, 0.0))(1.5))
        assert np.isnan(dr.grad(lambda v: sc.jv(v, 0.0))(0.0))
        assert np.isnan(dr.grad(lambda b: sc.hyp0f1(b, 2.0))(-1.0))
    assert dr.grad(lambda v: sc.jv(v, 0.0))(1.5) == 0.0
    assert dr.grad(lambda v: sc.iv(v, 0.0))(0.5) == 0.0
    assert dr.grad(lambda v: sc.kve(v, np.inf))(0.5) == 0.0
    with pytest.warns(dr.NonFiniteDerivativeWarning, match="jv"):
        dr.grad(lambda v: sc.jv(v, -1.0))(2.5)


def test_refusals_name_the_function() -> None:
    with pytest.raises(dr.NoDerivativeRule, match=r"third derivative of scipy\.special\.jv"):
        dr.grad(dr.grad(dr.grad(lambda v: sc.jv(v, 2.0))))(1.5)
    with pytest.raises(dr.NoDerivativeRule, match=r"scipy\.special\.kv w\.r\.t\. the order at a"
                       " complex argument"):
        dr.jvp(lambda v: sc.kv(v, 1.0 + 0.5j), (1.5,), (1.0,))
    with pytest.raises(dr.NoDerivativeRule, match="third derivative of scipy.special.hyp0f1"):
        dr.grad(dr.grad(dr.grad(lambda b: sc.hyp0f1(b, 2.0))))(1.5)
    # integer orders: SciPy truncates a non-integer one, so the function is a step function
    for f, what in ((sc.expn, "n"), (sc.kn, "the order"), (sc.yn, "the order")):
        with pytest.raises(dr.NoDerivativeRule, match=f"{f.__name__} w.r.t. {what}.*"
                           "truncates a non-integer one"):
            dr.grad(lambda n, f=f: f(n, 1.5))(2.0)


def test_vmap_of_hessian_equals_the_loop() -> None:
    p = np.array([[1.5, 2.0], [-0.7, 3.0], [20.3, 15.0], [-3.5, 0.4]])
    for f in (sc.jv, sc.yv, sc.iv, sc.kv):
        def g(q, f=f):
            return f(q[0], q[1])
        batched = dr.vmap(dr.hessian(g))(p)
        loop = np.stack([dr.hessian(g)(q) for q in p])
        np.testing.assert_allclose(batched, loop, rtol=1e-13, atol=1e-300)


def test_points_the_method_cannot_resolve_are_refused_by_name() -> None:
    # a large order with x in the transition region below it, beyond Miller's reach:
    # the error estimate exceeds 1e-9 of the scale, so no number is given
    with pytest.raises(dr.NoDerivativeRule, match=r"jv w\.r\.t\. the order at v = 1000\.0, "
                       r"x = 700\.0.*lose more than 9 digits"):
        dr.grad(lambda v: sc.jv(v, 700.0))(1000.0)
    # x beyond the quadrature's range (J, Y, I); K has no such limit
    with pytest.raises(dr.NoDerivativeRule, match=r"yv w\.r\.t\. the order .*x \+ \|v\| <= "
                       "20000"):
        dr.grad(lambda v: sc.yv(v, 1e6))(3.5)
    k = dr.grad(lambda v: sc.kve(v, 1e6))(3.5)
    # K_v(x) e^x ~ sqrt(pi / 2x) (1 + (4 v^2 - 1) / 8x + ...): d/dv ~ sqrt(pi / 2x) v / x
    np.testing.assert_allclose(k, np.sqrt(np.pi / 2e6) * 3.5 / 1e6, rtol=1e-5)


def test_second_order_in_order_of_a_model_objective() -> None:
    # the use that motivates it: fitting an order, here the Hessian of a least-squares
    # misfit in (v, scale) by forward-over-reverse against central differences
    x = np.linspace(0.5, 12.0, 30)
    data = 1.3 * sc.kv(0.8, x)

    def loss(p):
        return np.sum((p[1] * sc.kv(p[0], x) - data) ** 2)

    p = np.array([0.75, 1.25])
    H = dr.hessian(loss)(p)
    g = dr.grad(loss)
    h = 1e-5
    fd = np.array([(g(p + h * e) - g(p - h * e)) / (2 * h) for e in np.eye(2)])
    np.testing.assert_allclose(H, fd, rtol=1e-6)
