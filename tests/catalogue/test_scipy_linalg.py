"""scipy.linalg's structured and matrix-equation solvers (dualrev/catalogue/scipy_linalg.py)
and sqrtm: values equal SciPy's, derivatives against finite differences to second order
in both modes, forward against reverse, complex inputs, vmap against a loop, the banded
cotangent's layout, a Crank-Nicolson step against its dense equivalent, refusals."""

import inspect
import warnings

import numpy as np
import pytest
import scipy
import scipy.linalg as sla

import dualrev as dr
from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.testing import check_grads
from tests.helpers import check_all

# scipy.linalg takes stacks of matrices (batched leading axes) from SciPy 1.16 on
SCIPY_STACKS = tuple(int(p) for p in scipy.__version__.split(".")[:2]) >= (1, 16)
rng = np.random.default_rng(2026)
N = 6


def _band(l, u, n=N, cplx=False, seed=0):
    r = np.random.default_rng(seed)
    ab = r.standard_normal((l + u + 1, n)) * 0.3
    if cplx:
        ab = ab + 1j * r.standard_normal(ab.shape) * 0.3
    ab[u] += 3.0  # diagonally dominant
    return ab


def _dense(ab, l, u):
    """The dense matrix of SciPy's band storage: a[i, j] = ab[u + i - j, j]."""
    n = ab.shape[1]
    a = np.zeros((n, n), ab.dtype)
    for i in range(n):
        for j in range(max(0, i - l), min(n, i + u + 1)):
            a[i, j] = ab[u + i - j, j]
    return a


def _hband(w, lower, cplx=False, seed=1):
    r = np.random.default_rng(seed)
    ab = r.standard_normal((w + 1, N)) * 0.3
    if cplx:
        ab = ab + 1j * r.standard_normal(ab.shape) * 0.2
    ab[0 if lower else w] += 3.0
    return ab


def _value_is_scipys(f, args, original, rtol=1e-12):
    got, _ = dr.jvp(f, args, args)
    want = original(*args)
    for g, w in zip(dr.tree_flatten(got)[0], dr.tree_flatten(want)[0], strict=True):
        assert np.shape(g) == np.shape(w) and np.result_type(g) == np.result_type(w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-14)


B_VEC = rng.standard_normal(N)
B_MAT = rng.standard_normal((N, 2))


# ------------------------------------------------------------------ solve_banded
@pytest.mark.parametrize("l,u", [(1, 1), (2, 1), (0, 2), (1, 0), (0, 0)])
@pytest.mark.parametrize("b", [B_VEC, B_MAT], ids=["vec", "mat"])
def test_solve_banded(l, u, b):
    ab = _band(l, u)

    def f(ab, b):
        return sla.solve_banded((l, u), ab, b)

    _value_is_scipys(f, (ab, b), lambda ab, b: ORIGINALS[sla.solve_banded]((l, u), ab, b))
    check_all(f, (ab, b), order=2)


@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("b", [B_VEC, B_MAT], ids=["vec", "mat"])
def test_solveh_banded(lower, b):
    ab = _hband(2, lower)

    def f(ab, b):
        return sla.solveh_banded(ab, b, lower=lower)

    _value_is_scipys(f, (ab, b),
                     lambda ab, b: ORIGINALS[sla.solveh_banded](ab, b, lower=lower))
    check_all(f, (ab, b), order=2)


@pytest.mark.parametrize("lower", [False, True])
def test_banded_complex(lower):
    ab, b = _band(1, 2, cplx=True), B_VEC + 1j * B_MAT[:, 0]
    check_grads(lambda ab, b: sla.solve_banded((1, 2), ab, b), (ab, b), order=2)
    # a real b with a complex ab: b's cotangent is the real part
    check_grads(lambda ab, b: sla.solve_banded((1, 2), ab, b), (ab, B_VEC), order=1)
    hb = _hband(2, lower, cplx=True)
    check_grads(lambda ab, b: sla.solveh_banded(ab, b, lower=lower), (hb, b), order=2)


def test_solveh_banded_reads_only_the_real_part_of_the_diagonal():
    # LAPACK's pbsv ignores the diagonal's imaginary part: so do the derivatives
    hb = _hband(1, False, cplx=True)
    imag_diag = np.zeros_like(hb)
    imag_diag[1] = 1j
    _, t = dr.jvp(lambda ab: sla.solveh_banded(ab, B_VEC), (hb,), (imag_diag,))
    np.testing.assert_array_equal(t, 0)
    g = dr.grad(lambda ab: np.real(np.sum(sla.solveh_banded(ab, B_VEC) * (1 + 2j))))(hb)
    np.testing.assert_array_equal(np.imag(g[1]), 0)


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("l,u", [(1, 1), (2, 1), (0, 2)])
def test_solve_banded_cotangent_is_the_dense_one_in_band_storage(l, u, cplx):
    # complex: the same cotangent as np.linalg.solve's (JAX's convention, checked against
    # JAX by the conformance harness)
    ab, w = _band(l, u, cplx=cplx), rng.standard_normal((N, 2)) * (1 + 0.5j if cplx else 1)
    g_band = dr.grad(lambda ab: np.real(np.sum(w * sla.solve_banded((l, u), ab, B_MAT))))(ab)
    g_dense = dr.grad(lambda a: np.real(np.sum(w * np.linalg.solve(a, B_MAT))))(
        _dense(ab, l, u))
    assert g_band.shape == ab.shape
    for k in range(l + u + 1):
        for j in range(N):
            i = j + k - u
            want = g_dense[i, j] if 0 <= i < N else 0.0  # unread corners: no cotangent
            assert g_band[k, j] == pytest.approx(want, rel=1e-12, abs=1e-14)


def test_solveh_banded_cotangent_folds_both_triangles_onto_the_stored_one():
    ab = _hband(1, lower=True)
    a = np.diag(ab[0]) + np.diag(ab[1, :-1], -1) + np.diag(ab[1, :-1], 1)
    np.testing.assert_allclose(sla.solveh_banded(ab, B_VEC, lower=True),
                               np.linalg.solve(a, B_VEC), rtol=1e-12)
    w = rng.standard_normal(N)
    g = dr.grad(lambda ab: w @ sla.solveh_banded(ab, B_VEC, lower=True))(ab)
    gd = dr.grad(lambda a: w @ np.linalg.solve(a, B_VEC))(a)
    np.testing.assert_allclose(g[0], np.diag(gd), rtol=1e-12)
    np.testing.assert_allclose(g[1, :-1], np.diag(gd, -1) + np.diag(gd, 1), rtol=1e-12)
    assert g[1, -1] == 0.0  # the unread corner


def _crank_nicolson(alpha, u0, steps, solve):
    """The heat equation u_t = alpha u_xx on a grid with zero boundary values, by
    Crank-Nicolson: (I - r/2 L) u+ = (I + r/2 L) u, L the second difference."""
    n = u0.shape[0]
    r = alpha * 0.1 / (1.0 / (n + 1)) ** 2 * 1e-3
    ones = np.ones(n)
    ab = np.stack([-0.5 * r * ones, (1 + r) * ones, -0.5 * r * ones])
    u = u0
    for _ in range(steps):
        lap = np.concatenate([u[1:2] * 0, u[:-1]]) - 2 * u + np.concatenate([u[1:], u[:1] * 0])
        u = solve(ab, u + 0.5 * r * lap)
    return np.sum(u * np.linspace(0.0, 1.0, n))


def _dense_solve(ab, rhs):
    n = rhs.shape[0]
    a = (np.diag(ab[1]) + np.diag(ab[0, 1:], 1) + np.diag(ab[2, :-1], -1))
    return np.linalg.solve(a, rhs) if n else rhs


def test_crank_nicolson_gradient_matches_the_dense_solve():
    u0 = np.sin(np.pi * np.linspace(0, 1, 40)) + 0.2

    def banded(alpha):
        return _crank_nicolson(alpha, u0, 20, lambda ab, b: sla.solve_banded((1, 1), ab, b))

    def dense(alpha):
        return _crank_nicolson(alpha, u0, 20, _dense_solve)

    assert banded(0.7) == pytest.approx(dense(0.7), rel=1e-12)
    g = dr.grad(banded)(0.7)
    assert g == pytest.approx(dr.grad(dense)(0.7), rel=1e-10)
    assert dr.jvp(banded, (0.7,), (1.0,))[1] == pytest.approx(g, rel=1e-10)
    fd = (banded(0.7 + 1e-6) - banded(0.7 - 1e-6)) / 2e-6
    assert g == pytest.approx(fd, rel=1e-6)
    assert dr.hessian(banded)(0.7) == pytest.approx(dr.hessian(dense)(0.7), rel=1e-8)


def test_banded_under_vmap_matches_a_loop():
    abs_ = np.stack([_band(1, 2, seed=s) for s in range(3)])
    bs = rng.standard_normal((3, N))

    def f(ab, b):
        return sla.solve_banded((1, 2), ab, b)

    np.testing.assert_allclose(dr.vmap(f)(abs_, bs),
                               [f(a, b) for a, b in zip(abs_, bs, strict=True)], rtol=1e-13)
    jac = dr.vmap(dr.jacrev(f))(abs_, bs)
    np.testing.assert_allclose(jac, [dr.jacfwd(f)(a, b) for a, b in zip(abs_, bs, strict=True)],
                               rtol=1e-11, atol=1e-14)
    hb = np.stack([_hband(1, True, seed=s) for s in range(3)])
    np.testing.assert_allclose(
        dr.vmap(lambda ab, b: sla.solveh_banded(ab, b, lower=True))(hb, bs),
        [sla.solveh_banded(a, b, lower=True) for a, b in zip(hb, bs, strict=True)], rtol=1e-13)


@pytest.mark.parametrize("b", [rng.standard_normal((3, N)), rng.standard_normal((3, N, 2))],
                         ids=["vec", "mat"])
def test_banded_batch_of_right_hand_sides_is_one_solve(b):
    # the batching rule folds a batch of b into columns (jacfwd/jacrev bases take it too)
    ab, hb = _band(2, 1), _hband(1, False)
    for f in (lambda b: sla.solve_banded((2, 1), ab, b), lambda b: sla.solveh_banded(hb, b)):
        np.testing.assert_allclose(dr.vmap(f)(b), [f(v) for v in b], rtol=1e-13)
        np.testing.assert_allclose(dr.vmap(dr.jacrev(f))(b), [dr.jacfwd(f)(v) for v in b],
                                   rtol=1e-12, atol=1e-15)


def test_banded_keywords():
    ab = _band(1, 1)
    # overwrite_* permit SciPy to reuse a buffer: no value (or derivative) changes (fresh
    # copies, since SciPy does overwrite the plain ones finite differences pass)
    for kw in ({"overwrite_ab": True}, {"overwrite_b": True}, {"check_finite": False}):
        check_all(lambda ab, b, kw=kw: sla.solve_banded((1, 1), ab * 1.0, b * 1.0, **kw),
                  (ab, B_VEC), order=1)
        check_all(lambda ab, b, kw=kw: sla.solveh_banded(ab[1:] * 1.0, b * 1.0, lower=True,
                                                         **kw),
                  (ab, B_VEC), order=1)
    bad = ab.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="infs or NaNs"):
        dr.grad(lambda ab: np.sum(sla.solve_banded((1, 1), ab, B_VEC)))(bad)
    with pytest.raises(ValueError, match="infs or NaNs"):
        dr.grad(lambda ab: np.sum(sla.solveh_banded(ab, B_VEC)))(bad[:2])
    with pytest.raises(dr.NoDerivativeRule, match="stack"):
        dr.grad(lambda ab: np.sum(sla.solve_banded((1, 1), ab, B_VEC)))(np.stack([ab, ab]))


# ------------------------------------------------------------------ Sylvester, Lyapunov
SA = rng.standard_normal((3, 3)) + 2 * np.eye(3)
SB = rng.standard_normal((2, 2)) + 2 * np.eye(2)
SQ = rng.standard_normal((3, 2))
QS = SQ @ SQ.T + np.eye(3)  # symmetric
CA = SA + 0.3j * rng.standard_normal((3, 3))
CB = SB + 0.3j * rng.standard_normal((2, 2))
CQ = SQ + 1j * rng.standard_normal((3, 2))


def test_solve_sylvester():
    _value_is_scipys(sla.solve_sylvester, (SA, SB, SQ), ORIGINALS[sla.solve_sylvester])
    check_all(sla.solve_sylvester, (SA, SB, SQ), order=2)
    check_grads(sla.solve_sylvester, (CA, CB, CQ), order=2)
    # closed form: A = a I, B = b I give X = Q / (a + b)
    _, t = dr.jvp(lambda a: sla.solve_sylvester(a * np.eye(3), 2 * np.eye(2), SQ), (1.0,),
                  (1.0,))
    np.testing.assert_allclose(t, -SQ / 9, rtol=1e-12)


def test_solve_sylvester_mixing_real_and_complex_solves_the_equation():
    # SciPy's own call is wrong here (a real b with complex eigenvalues beside a complex
    # a or q: its real Schur form goes to the complex trsyl); the traced call casts
    # everything to complex first, so it solves the equation, and its derivatives are
    # those of the true solution
    c = np.random.default_rng(7)
    a = c.standard_normal((2, 2)) * 0.3 + 2 * np.eye(2) + 0.3j * c.standard_normal((2, 2))
    b = c.standard_normal((3, 3)) * 0.3 + 2 * np.eye(3)
    q = c.standard_normal((2, 3)) + 1j * c.standard_normal((2, 3))
    assert np.iscomplex(np.linalg.eigvals(b)).any()
    x, _ = dr.jvp(sla.solve_sylvester, (a, b, q), (a, b, q))
    np.testing.assert_allclose(a @ x + x @ b, q, atol=1e-13)
    plain = ORIGINALS[sla.solve_sylvester]
    assert np.abs(a @ plain(a, b, q) + plain(a, b, q) @ b - q).max() > 1e-3  # SciPy's bug

    def right(a, b, q):  # the all-complex SciPy call, which is correct
        return plain(a, b + 0j, q + 0j)

    for real_q in (False, True):
        args = (a, b, np.real(q) if real_q else q)
        h, d = 1e-6, [c.standard_normal(np.shape(v)) for v in args]
        fd = (right(*(v + h * t for v, t in zip(args, d, strict=True)))
              - right(*(v - h * t for v, t in zip(args, d, strict=True)))) / (2 * h)
        np.testing.assert_allclose(dr.jvp(sla.solve_sylvester, args, tuple(d))[1], fd,
                                   rtol=1e-6, atol=1e-8)
        u = c.standard_normal(fd.shape) + 1j * c.standard_normal(fd.shape)
        _, pull = dr.vjp(sla.solve_sylvester, *args)
        cts = pull(u)
        assert sum(np.real(np.sum(ct * t)) for ct, t in zip(cts, d, strict=True)) == \
            pytest.approx(np.real(np.sum(u * fd)), rel=1e-6)


def test_solve_sylvester_stacks_and_vmap():
    a3 = SA + 0.1 * rng.standard_normal((2, 3, 3))
    want = np.stack([sla.solve_sylvester(a, SB, SQ) for a in a3])
    if SCIPY_STACKS:  # (SciPy < 1.16 refuses stacks itself; vmap works on every version)
        _value_is_scipys(lambda a: sla.solve_sylvester(a, SB, SQ), (a3,), lambda a: want)
        check_all(lambda a, q: sla.solve_sylvester(a, SB, q), (a3, SQ), order=1)
    else:
        with pytest.raises(ValueError):
            ORIGINALS[sla.solve_sylvester](a3, SB, SQ)
    np.testing.assert_allclose(dr.vmap(lambda a: sla.solve_sylvester(a, SB, SQ))(a3), want,
                               rtol=1e-13)
    jac = dr.vmap(dr.jacrev(lambda q, a: sla.solve_sylvester(a, SB, q)), in_axes=(None, 0))(
        SQ, a3)
    np.testing.assert_allclose(
        jac, [dr.jacfwd(lambda q, a=a: sla.solve_sylvester(a, SB, q))(SQ) for a in a3],
        rtol=1e-12)


def test_solve_continuous_lyapunov():
    f = sla.solve_continuous_lyapunov
    got, _ = dr.jvp(f, (SA, QS), (SA, QS))
    np.testing.assert_allclose(got, ORIGINALS[f](SA, QS), rtol=1e-12)
    check_all(f, (SA, QS), order=2)
    check_grads(f, (CA, QS + 0.2j), order=2)  # A X + X A^H: conjugate-linear in A too
    got, _ = dr.jvp(f, (CA, QS + 0.2j), (CA, QS))
    np.testing.assert_allclose(got, ORIGINALS[f](CA, QS + 0.2j), rtol=1e-12)


@pytest.mark.parametrize("method", [None, "direct", "bilinear"])
def test_solve_discrete_lyapunov(method):
    def f(a, q):
        return sla.solve_discrete_lyapunov(a, q, method=method)

    _value_is_scipys(f, (0.3 * SA, QS),
                     lambda a, q: ORIGINALS[sla.solve_discrete_lyapunov](a, q, method=method))
    check_all(f, (0.3 * SA, QS), order=2)
    check_grads(f, (0.3 * CA, QS + 0.2j), order=2)


def test_lyapunov_scalar_closed_forms():
    # 2 a x = q: dx/da = -q / (2 a^2); x = a^2 x + q: dx/da = 2 a q / (1 - a^2)^2
    def cont(a):
        return sla.solve_continuous_lyapunov(a * np.eye(1), 3.0 * np.eye(1))[0, 0]

    def disc(a):
        return sla.solve_discrete_lyapunov(a * np.eye(1), 3.0 * np.eye(1))[0, 0]

    assert dr.grad(cont)(1.5) == pytest.approx(-3.0 / (2 * 1.5**2), rel=1e-12)
    assert dr.grad(disc)(0.5) == pytest.approx(2 * 0.5 * 3.0 / 0.75**2, rel=1e-12)
    # second derivatives: q / a^3 and d/da [2 a q (1 - a^2)^-2]
    assert dr.hessian(cont)(1.5) == pytest.approx(3.0 / 1.5**3, rel=1e-10)
    assert dr.hessian(disc)(0.5) == pytest.approx(
        6.0 / 0.75**2 + 2 * 0.5 * 3.0 * 2 * 2 * 0.5 / 0.75**3, rel=1e-10)


def test_lyapunov_vmap_and_refusals():
    a3 = 0.3 * SA + 0.05 * rng.standard_normal((2, 3, 3))
    for f in (sla.solve_continuous_lyapunov, sla.solve_discrete_lyapunov):
        np.testing.assert_allclose(dr.vmap(lambda a, f=f: f(a, QS))(a3),
                                   [f(a, QS) for a in a3], rtol=1e-12)
    with pytest.raises(ValueError, match="Unknown solver"):
        dr.grad(lambda a: np.sum(sla.solve_discrete_lyapunov(a, QS, method="kron")))(SA)
    with pytest.raises(ValueError, match="square"):
        dr.grad(lambda q: np.sum(sla.solve_continuous_lyapunov(SQ, q)))(SQ)


# ------------------------------------------------------------------ Riccati
RA = rng.standard_normal((3, 3))
RB = rng.standard_normal((3, 2))
RQ = np.eye(3) + 0.1
RR = np.array([[1.5, 0.2], [0.2, 1.0]])


def _sym(m):
    return (m + m.T) / 2


@pytest.mark.parametrize("name", ["solve_continuous_are", "solve_discrete_are"])
@pytest.mark.parametrize("balanced", [True, False])
def test_riccati(name, balanced):
    solve = getattr(sla, name)

    def f(a, b, q, r):  # finite differences perturb q and r off the symmetric ones
        return solve(a, b, _sym(q), _sym(r), balanced=balanced)

    got, _ = dr.jvp(f, (RA, RB, RQ, RR), (RA, RB, RQ, RR))
    np.testing.assert_allclose(got, ORIGINALS[solve](RA, RB, RQ, RR, balanced=balanced),
                               rtol=1e-11)
    check_all(f, (RA, RB, RQ, RR), order=1, rtol=1e-5)
    if balanced:
        check_grads(f, (RA, RB, RQ, RR), order=2, rtol=1e-5)


@pytest.mark.parametrize("name", ["solve_continuous_are", "solve_discrete_are"])
def test_riccati_complex(name):
    # A^H X + X A - X B R^-1 B^H X + Q = 0 (and the discrete one): conjugate-linear in a
    # and b, with Hermitian q, r
    solve = getattr(sla, name)
    c = np.random.default_rng(5)
    a = RA + 0.3j * c.standard_normal(RA.shape)
    b = RB + 0.3j * c.standard_normal(RB.shape)
    q = RQ + 0.2j * np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 0]])

    def herm(m):
        return (m + np.conj(m.T)) / 2

    def f(a, b, q, r):
        return solve(a, b, herm(q), herm(r))

    got, _ = dr.jvp(f, (a, b, q, RR + 0j), (a, b, q, RR + 0j))
    np.testing.assert_allclose(got, ORIGINALS[solve](a, b, q, RR), rtol=1e-11)
    check_grads(f, (a, b, q, RR + 0j), order=1, rtol=1e-5)
    check_grads(lambda a: f(a, b, q, RR), (a,), order=2, rtol=1e-5)


RE = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
RS = 0.1 * rng.standard_normal((3, 2))


@pytest.mark.parametrize("name", ["solve_continuous_are", "solve_discrete_are"])
@pytest.mark.parametrize("kw", ["e", "s", "es"])
def test_riccati_generalised(name, kw):
    # the generalised equations (e, s) in every argument; E = I, S = 0 are the standard
    solve = getattr(sla, name)
    args = (RA, RB, RQ, RR) + ((RE,) if "e" in kw else ()) + ((RS,) if "s" in kw else ())

    def f(a, b, q, r, *rest):
        extra = dict(zip(["e", "s"] if kw == "es" else [kw], rest, strict=True))
        return solve(a, b, _sym(q), _sym(r), **extra)

    got, _ = dr.jvp(f, args, args)
    want = ORIGINALS[solve](RA, RB, RQ, RR, **dict(zip(["e", "s"] if kw == "es" else [kw],
                                                       args[4:], strict=True)))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    check_all(f, args, order=1, rtol=1e-5)
    if kw == "es":
        c = np.random.default_rng(9)
        cargs = tuple(v + 0.1j * c.standard_normal(v.shape) if i in (0, 1, 4, 5) else v + 0j
                      for i, v in enumerate(args))

        def fc(a, b, q, r, e, s):
            return solve(a, b, (q + np.conj(q.T)) / 2, (r + np.conj(r.T)) / 2, e=e, s=s)

        check_grads(fc, cargs, order=1, rtol=1e-5)


def test_riccati_scalar_closed_form():
    # 2 a x - x^2 b^2 / r + q = 0: x = r (a + sqrt(a^2 + b^2 q / r)) / b^2, so
    # dx/dq = 1 / (2 sqrt(a^2 + b^2 q / r))
    def x(q):
        return sla.solve_continuous_are(np.eye(1) * 0.5, np.eye(1) * 2.0, q * np.eye(1),
                                        np.eye(1))[0, 0]

    assert dr.grad(x)(3.0) == pytest.approx(0.5 / np.sqrt(0.25 + 12.0), rel=1e-10)


def test_riccati_refusals():
    with pytest.raises(dr.NoDerivativeRule, match="non-symmetric \\(non-Hermitian\\) q"):
        dr.grad(lambda q: np.sum(sla.solve_discrete_are(RA, RB, q, RR)))(RQ + np.triu(RQ))
    for solve in (sla.solve_continuous_are, sla.solve_discrete_are):
        np.testing.assert_allclose(
            dr.vmap(lambda q, solve=solve: solve(RA, RB, q, RR))(np.stack([RQ, 2 * RQ])),
            [solve(RA, RB, q, RR) for q in (RQ, 2 * RQ)], rtol=1e-12)


# ------------------------------------------------------------------ expm_frechet
@pytest.mark.parametrize("method", [None, "SPS", "blockEnlarge"])
@pytest.mark.parametrize("compute_expm", [True, False])
def test_expm_frechet(method, compute_expm):
    a, e = 0.5 * SA, np.random.default_rng(11).standard_normal((3, 3))

    def f(a, e):
        return sla.expm_frechet(a, e, method=method, compute_expm=compute_expm)

    # dualrev computes SciPy's blockEnlarge; SPS (the default) differs by rounding
    _value_is_scipys(f, (a, e), lambda a, e: ORIGINALS[sla.expm_frechet](
        a, e, method=method, compute_expm=compute_expm), rtol=1e-10)
    check_all(f, (a, e), order=2 if method is None else 1)


def test_expm_frechet_is_expms_derivative_and_nests():
    a, e = 0.5 * SA, np.random.default_rng(12).standard_normal((3, 3))
    # L(A, E) is the directional derivative of expm: jvp of expm, and of L itself the
    # second derivative of expm along E twice
    _, t = dr.jvp(sla.expm, (a,), (e,))
    np.testing.assert_allclose(sla.expm_frechet(a, e, compute_expm=False), t, rtol=1e-12)
    _, t2 = dr.jvp(lambda a: dr.jvp(sla.expm, (a,), (e,))[1], (a,), (e,))
    _, l2 = dr.jvp(lambda a: sla.expm_frechet(a, e, compute_expm=False), (a,), (e,))
    np.testing.assert_allclose(l2, t2, rtol=1e-11)
    check_grads(lambda a, e: sla.expm_frechet(a, e)[1], (0.5 * CA, e + 0.5j), order=2)
    a3 = a + 0.1 * rng.standard_normal((2, 3, 3))
    np.testing.assert_allclose(
        dr.vmap(lambda a: sla.expm_frechet(a, e, compute_expm=False))(a3),
        [sla.expm_frechet(x, e, compute_expm=False) for x in a3], rtol=1e-12)
    with pytest.raises(ValueError, match="Unknown implementation"):
        dr.grad(lambda a: np.sum(sla.expm_frechet(a, e, method="pade")[1]))(a)


# ------------------------------------------------------------------ sqrtm
SPD = SA @ SA.T + np.eye(3)
NEG = np.array([[-2.0, 0.3, 0.1], [0.2, 1.5, 0.0], [0.1, 0.4, 2.0]])  # eigenvalue -2.02


def test_sqrtm_of_a_real_matrix_with_a_negative_eigenvalue_is_complex():
    # refused before: SciPy's root is complex; real perturbations keep the eigenvalue on
    # the negative axis, so it is a smooth real-to-complex function there
    got, _ = dr.jvp(sla.sqrtm, (NEG,), (NEG,))
    want = ORIGINALS[sla.sqrtm](NEG)
    assert want.dtype == np.complex128
    np.testing.assert_allclose(got, want, rtol=1e-13)
    check_grads(sla.sqrtm, (NEG,), order=2)
    # closed form: sqrtm(-I) = i I, so X dX + dX X = dA gives dX = dA / (2i)
    da = rng.standard_normal((2, 2))
    _, t = dr.jvp(sla.sqrtm, (-np.eye(2),), (da,))
    np.testing.assert_allclose(t, da / 2j, rtol=1e-13)
    c = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
    g = dr.grad(lambda a: np.real(np.sum(sla.sqrtm(a) * c)))(-np.eye(2))
    np.testing.assert_allclose(g, np.real(c / 2j), rtol=1e-13)


def test_sqrtm_stacks_vmap_and_keywords():
    stack = np.stack([SPD, SPD + np.eye(3)])
    if SCIPY_STACKS:  # (SciPy < 1.16 refuses stacks itself; vmap works on every version)
        _value_is_scipys(sla.sqrtm, (stack,), ORIGINALS[sla.sqrtm])
        check_all(sla.sqrtm, (stack,), order=1)
    else:
        with pytest.raises(ValueError):
            ORIGINALS[sla.sqrtm](stack)
    np.testing.assert_allclose(dr.vmap(dr.jacrev(sla.sqrtm))(stack),
                               [dr.jacfwd(sla.sqrtm)(s) for s in stack], rtol=1e-11)
    if "disp" not in inspect.signature(ORIGINALS[sla.sqrtm]).parameters:
        # SciPy >= 1.18 removed disp= and blocksize=: refused as SciPy refuses them
        for kw in ({"disp": False}, {"blocksize": 2}):
            with pytest.raises(TypeError):
                ORIGINALS[sla.sqrtm](SPD, **kw)
            with pytest.raises(TypeError):
                dr.jvp(lambda a, kw=kw: sla.sqrtm(a, **kw), (SPD,), (SPD,))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SciPy >= 1.17 deprecates both
        x, err = dr.jvp(lambda a: sla.sqrtm(a, disp=False), (SPD,), (SPD,))[0]
        want_x, want_err = ORIGINALS[sla.sqrtm](SPD, disp=False)
        np.testing.assert_allclose(x, want_x, rtol=1e-13)
        assert err == pytest.approx(want_err, rel=1e-6, abs=1e-28)
        # the estimate is identically ~0 (X X = A): its derivative is rounding only
        assert np.max(np.abs(dr.grad(lambda a: sla.sqrtm(a, disp=False)[1])(SPD))) < 1e-12
        check_all(lambda a: sla.sqrtm(a, disp=True, blocksize=2), (SPD,), order=1)


def test_sqrtm_at_a_singular_matrix_refuses_the_derivative_by_name():
    # SciPy's value exists there; its derivative does not (X dX + dX X = dA is singular)
    for f in (lambda a: dr.jvp(sla.sqrtm, (a,), (np.eye(2),)),
              lambda a: dr.grad(lambda a: np.sum(sla.sqrtm(a)))(a)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sla.LinAlgWarning)
            with pytest.raises(dr.NoDerivativeRule, match="singular matrix"):
                f(np.diag([1.0, 0.0]))


# ------------------------------------------------------------------ a seeded sweep
def _sweep_programs(seed=2026):
    """Random sizes, bandwidths, right-hand-side shapes and dtypes for every entry, from
    one seeded generator (SciPy itself fails at n = 1 with a complex band and a real b,
    and solveh_banded at n = 1 with a band: n starts at 2)."""
    c = np.random.default_rng(seed)
    progs = []
    for _ in range(24):
        l, u, n = int(c.integers(0, 3)), int(c.integers(0, 3)), int(c.integers(2, 7))
        cplx, mat = bool(c.integers(2)), bool(c.integers(2))
        ab = c.standard_normal((l + u + 1, n)) * 0.3 + (0.3j * c.standard_normal(
            (l + u + 1, n)) if cplx else 0)
        ab[u] += 3
        b = c.standard_normal((n, 2) if mat else n)
        progs.append((f"banded({l},{u}) n={n}", lambda ab, b, l=l, u=u: sla.solve_banded(
            (l, u), ab, b), (ab, b)))
        lower = bool(c.integers(2))
        hb = (c.standard_normal((l + 1, n)) + (1j * c.standard_normal((l + 1, n)) if cplx
                                                else 0)) * 0.3
        hb[0 if lower else l] += 3
        progs.append((f"solveh(w={l},lower={lower}) n={n}", lambda ab, b, lower=lower:
                      sla.solveh_banded(ab, b, lower=lower), (hb, b)))
    for _ in range(8):
        m, n = int(c.integers(1, 4)), int(c.integers(1, 4))
        cplx = bool(c.integers(2))

        def mat(*shape, c=c, cplx=cplx):
            return c.standard_normal(shape) + (1j * c.standard_normal(shape) if cplx else 0)

        a, b = 0.3 * mat(m, m) + 2 * np.eye(m), 0.3 * mat(n, n) + 2 * np.eye(n)
        progs += [(f"sylvester {m}x{n}", sla.solve_sylvester, (a, b, mat(m, n))),
                  (f"continuous_lyapunov {m}", sla.solve_continuous_lyapunov, (a, mat(m, m))),
                  (f"discrete_lyapunov {m}", sla.solve_discrete_lyapunov, (0.2 * a, mat(m, m))),
                  (f"expm_frechet {m}", lambda a, e: sla.expm_frechet(a, e)[1],
                   (0.3 * a, mat(m, m))),
                  (f"sqrtm {m}", sla.sqrtm, (a @ np.conj(a.T) + np.eye(m),))]
    return progs


def test_a_seeded_sweep_of_sizes_bandwidths_and_dtypes():
    progs = _sweep_programs()
    assert len(progs) == 88
    for name, f, args in progs:
        try:
            check_grads(f, args, order=1, rtol=1e-5, atol=1e-7)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
