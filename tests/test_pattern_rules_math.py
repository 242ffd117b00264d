"""Pattern rules of the contraction, linear-algebra, FFT and SciPy families
(dualrev/pattern_rules.py, declared in dualrev/catalogue/): for every primitive, the
structural pattern (``dependencies``) holds the dense Jacobian's non-zeros at a few random
points, and equals them where the rule claims exactness (constant operators, stencils,
einsum with constant operands, Cholesky, QR). A last test lists every primitive of these
modules and fails on one that states no pattern."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.interpolate as si
import scipy.linalg as sla
import scipy.ndimage as ndi
import scipy.sparse as sps
import scipy.sparse.linalg as spla

import dualrev as dr
from dualrev import pattern_rules
from dualrev.catalogue import (
    bessel_order,
    contraction,
    fft,
    incomplete,
    linalg,
    scipy_functions,
    scipy_interpolate,
    scipy_linalg,
    scipy_ndimage,
    scipy_optimize_functions,
    scipy_sparse,
    scipy_stats,
    special,
)
from dualrev.primitive import _DECLARED, Primitive, bind
from dualrev.transforms import dependencies


def _dense_nonzeros(f: Callable[..., Any], x: np.ndarray, seed: int, points: int = 3,
                    spread: float = 0.2) -> np.ndarray:
    """Where the dense Jacobian is non-zero (past rounding) at some of a few random
    points near ``x``."""
    rng = np.random.default_rng(seed)
    out = None
    for _ in range(points):
        J = np.asarray(dr.jacobian(f)(x + rng.uniform(-spread, spread, x.shape)))
        J = J.reshape(-1, x.size)
        nz = np.abs(J) > 1e-10 * max(1.0, float(np.abs(J).max()))
        out = nz if out is None else out | nz
    return out


def _check(f: Callable[..., Any], x: np.ndarray, exact: bool, seed: int = 0) -> np.ndarray:
    found = dependencies(f, (x,))
    P = found.pattern.toarray()
    D = _dense_nonzeros(f, x, seed)
    assert P.shape == D.shape
    missing = D & ~P
    assert not missing.any(), f"too sparse: {int(missing.sum())} entries missing"
    if exact:
        extra = P & ~D
        assert not extra.any(), f"not exact: {int(extra.sum())} entries too many"
    assert not any("states no sparsity pattern" in n for n in found.notes), found.notes
    return P


RNG = np.random.default_rng(20261206)


def _sparse_const(shape: tuple[int, ...], density: float = 0.5) -> np.ndarray:
    a = RNG.standard_normal(shape)
    return np.where(RNG.uniform(size=shape) < density, a, 0.0)


A45 = _sparse_const((4, 5))
A55 = _sparse_const((5, 5))
SPD = (lambda m: m @ m.T + 4 * np.eye(4))(RNG.standard_normal((4, 4)))
LAP = np.array([[0, 1.0, 0], [1, -4, 1], [0, 1, 0]])

# (name, f, x, exact): exact where the rule claims the dense Jacobian's non-zeros
CASES: list[tuple[str, Callable[..., Any], np.ndarray, bool]] = [
    # ---------------------------------------------------------------- contraction
    ("matmul const@x", lambda x: A45 @ x, RNG.standard_normal(5), True),
    ("matmul x@const", lambda x: x @ A45, RNG.standard_normal(4), True),
    ("matmul const@X", lambda x: (A45 @ x.reshape(5, 3)).ravel(), RNG.standard_normal(15), True),
    ("matmul X@Y traced", lambda x: (x[:6].reshape(2, 3) @ x[6:].reshape(3, 2)).ravel(),
     RNG.standard_normal(12), True),
    ("matmul stack@const", lambda x: (x.reshape(2, 3, 4) @ A45).ravel(),
     RNG.standard_normal(24), True),
    ("matmul const@stack", lambda x: (A45[:, :3] @ x.reshape(2, 3, 4)).ravel(),
     RNG.standard_normal(24), True),
    ("matmul stack@vector", lambda x: (x.reshape(2, 3, 4) @ A45[:, 0]).ravel(),
     RNG.standard_normal(24), True),
    ("matmul vector@stack", lambda x: (A45[:3, 1] @ x.reshape(2, 3, 4)).ravel(),
     RNG.standard_normal(24), True),
    ("matmul broadcast stacks", lambda x: (x[:24].reshape(2, 1, 3, 4)
                                           @ x[24:].reshape(3, 4, 2)).ravel(),
     RNG.standard_normal(48), True),
    ("matmul const stack@stack", lambda x: (_STACK @ x.reshape(3, 5, 2)).ravel(),
     RNG.standard_normal(30), True),
    ("tensordot", lambda x: np.tensordot(x.reshape(2, 4, 5), A45, axes=([1, 2], [0, 1])),
     RNG.standard_normal(40), True),
    ("dot", lambda x: np.dot(A55, x.reshape(5, 2)).ravel(), RNG.standard_normal(10), True),
    ("inner", lambda x: np.inner(x.reshape(2, 5), A45).ravel(), RNG.standard_normal(10), True),
    ("einsum trace", lambda x: np.einsum("ii", x.reshape(4, 4)), RNG.standard_normal(16), True),
    ("einsum diagonal", lambda x: np.einsum("ii->i", x.reshape(4, 4)),
     RNG.standard_normal(16), True),
    ("einsum chain", lambda x: np.einsum("ij,jk,kl->il", A55, x.reshape(5, 5), A55.T).ravel(),
     RNG.standard_normal(25), True),
    ("einsum ellipsis", lambda x: np.einsum("...ij,jk->...ik", x.reshape(2, 3, 4),
                                            A45[:, :2]).ravel(),
     RNG.standard_normal(24), True),
    # ---------------------------------------------------------------- numpy.linalg
    ("inv", lambda x: np.linalg.inv(x.reshape(4, 4)).ravel(), SPD.ravel(), True),
    ("inv stack", lambda x: np.linalg.inv(x.reshape(2, 2, 2) + 3 * np.eye(2)).ravel(),
     RNG.standard_normal(8), True),
    ("det stack", lambda x: np.linalg.det(x.reshape(2, 2, 2) + 3 * np.eye(2)),
     RNG.standard_normal(8), True),
    ("slogdet", lambda x: np.linalg.slogdet(x.reshape(2, 2, 2) + 3 * np.eye(2))[1],
     RNG.standard_normal(8), True),
    ("cholesky", lambda x: np.linalg.cholesky(x.reshape(4, 4)).ravel(), SPD.ravel(), True),
    ("cholesky upper", lambda x: np.linalg.cholesky(x.reshape(4, 4), upper=True).ravel(),
     SPD.ravel(), True),
    ("cholesky stack", lambda x: np.linalg.cholesky(
        np.stack([x.reshape(4, 4), 2 * x.reshape(4, 4)])).ravel(), SPD.ravel(), True),
    ("eigh", lambda x: np.concatenate([v.ravel() for v in np.linalg.eigh(x.reshape(4, 4))]),
     SPD.ravel(), True),
    ("eigh upper", lambda x: np.linalg.eigh(x.reshape(4, 4), UPLO="U")[1].ravel(),
     SPD.ravel(), True),
    ("eig", lambda x: np.real(np.linalg.eigvals(x.reshape(4, 4))), SPD.ravel(), True),
    ("svd", lambda x: np.concatenate([v.ravel() for v in np.linalg.svd(x.reshape(4, 4))]),
     SPD.ravel(), True),
    ("svdvals", lambda x: np.linalg.svd(x.reshape(4, 4), compute_uv=False), SPD.ravel(), True),
    ("qr", lambda x: np.concatenate([v.ravel() for v in np.linalg.qr(x.reshape(5, 3))]),
     RNG.standard_normal(15), True),
    ("qr stack", lambda x: np.linalg.qr(x.reshape(2, 3, 2))[1].ravel(),
     RNG.standard_normal(12), True),
    ("qr wide", lambda x: np.linalg.qr(x.reshape(3, 5))[1].ravel(), RNG.standard_normal(15),
     False),
    ("pinv", lambda x: np.linalg.pinv(x.reshape(5, 3)).ravel(), RNG.standard_normal(15), True),
    ("solve const a", lambda x: np.linalg.solve(_BLOCKS, x), RNG.standard_normal(6), True),
    ("solve const a, columns", lambda x: np.linalg.solve(_BLOCKS, x.reshape(6, 2)).ravel(),
     RNG.standard_normal(12), True),
    ("solve traced a", lambda x: np.linalg.solve(x[:36].reshape(6, 6) + _BLOCKS,
                                                 x[36:].reshape(6, 2)).ravel(),
     RNG.standard_normal(48), True),
    ("solve traced a, const b", lambda x: np.linalg.solve(x.reshape(6, 6) + _BLOCKS,
                                                          _ONE_COLUMN).ravel(),
     RNG.standard_normal(36), True),
    ("solve const triangular", lambda x: np.linalg.solve(np.tril(A55) + 4 * np.eye(5), x),
     RNG.standard_normal(5), True),
    ("solve, a stack of vectors", lambda x: bind(linalg.solve_p, (
        np.tril(_BLOCKS) + 2 * np.eye(6), x.reshape(2, 6)), {"vector": True}).ravel(),
     RNG.standard_normal(12), True),
    ("solve under vmap", lambda x: dr.vmap(lambda r: np.linalg.solve(np.tril(_BLOCKS)
                                                                     + 2 * np.eye(6), r))(
        x.reshape(2, 6)).ravel(), RNG.standard_normal(12), True),
    ("solve stack", lambda x: np.linalg.solve(x[:8].reshape(2, 2, 2) + 3 * np.eye(2),
                                              x[8:].reshape(2, 2)).ravel(),
     RNG.standard_normal(12), True),
    ("solve stack, columns", lambda x: np.linalg.solve(x[:8].reshape(2, 2, 2) + 3 * np.eye(2),
                                                       x[8:].reshape(2, 2, 3)).ravel(),
     RNG.standard_normal(20), True),
    ("solve const stack, broadcast b", lambda x: np.linalg.solve(
        np.stack([_BLOCKS, np.tril(_BLOCKS) + 2 * np.eye(6)]), x.reshape(6, 2)).ravel(),
     RNG.standard_normal(12), True),
    ("solve const stack, one vector", lambda x: np.linalg.solve(
        np.stack([_BLOCKS, np.tril(_BLOCKS) + 2 * np.eye(6)]), x).ravel(),
     RNG.standard_normal(6), True),
    # ---------------------------------------------------------------- scipy.linalg
    ("expm stack", lambda x: sla.expm(x.reshape(2, 2, 2)).ravel(), RNG.standard_normal(8), True),
    ("sqrtm", lambda x: np.real(sla.sqrtm(x.reshape(3, 3) + 5 * np.eye(3))).ravel(),
     RNG.standard_normal(9), True),
    ("lu_factor", lambda x: sla.lu_factor(x.reshape(4, 4))[0].ravel(), RNG.standard_normal(16),
     False),
    ("lu_solve", lambda x: sla.lu_solve(sla.lu_factor(A55 + 4 * np.eye(5)), x),
     RNG.standard_normal(5), False),
    ("sylvester", lambda x: sla.solve_sylvester(x[:4].reshape(2, 2) + 3 * np.eye(2),
                                                x[4:8].reshape(2, 2) + 3 * np.eye(2),
                                                x[8:].reshape(2, 2)).ravel(),
     RNG.standard_normal(12), True),
    ("lyapunov", lambda x: sla.solve_discrete_lyapunov(0.3 * x[:4].reshape(2, 2),
                                                       x[4:].reshape(2, 2)).ravel(),
     RNG.standard_normal(8), True),
    ("care", lambda x: sla.solve_continuous_are(
        np.array([[-1.0, 0.5], [0.2, -2]]) + 0.1 * x[:4].reshape(2, 2), np.eye(2),
        np.eye(2) * (1 + 0.1 * x[4]), np.eye(2)).ravel(), RNG.standard_normal(5), True),
    ("dare", lambda x: sla.solve_discrete_are(
        np.array([[0.5, 0.1], [0.0, 0.7]]) + 0.05 * x[:4].reshape(2, 2), np.eye(2),
        np.eye(2) * (1 + 0.1 * x[4]), np.eye(2)).ravel(), RNG.standard_normal(5), True),
    ("solve_banded const", lambda x: sla.solve_banded((1, 1), _BAND, x.reshape(6, 2)).ravel(),
     RNG.standard_normal(12), True),
    ("solve_banded traced", lambda x: sla.solve_banded(
        (1, 1), _BAND + 0.1 * x[:18].reshape(3, 6), x[18:]), RNG.standard_normal(24), False),
    ("solveh_banded upper", lambda x: sla.solveh_banded(_HBAND_U, x), RNG.standard_normal(6),
     True),
    ("solveh_banded lower", lambda x: sla.solveh_banded(_HBAND_L, x, lower=True),
     RNG.standard_normal(6), True),
    ("solveh_banded traced", lambda x: sla.solveh_banded(
        _HBAND_L + 0.1 * x[:12].reshape(2, 6), x[12:], lower=True), RNG.standard_normal(18),
     False),
    # ---------------------------------------------------------------- numpy.fft
    ("fft axis 0", lambda x: np.abs(np.fft.fft(x.reshape(3, 4), axis=0)).ravel(),
     RNG.standard_normal(12), True),
    ("fft2 stack", lambda x: np.abs(np.fft.fft2(x.reshape(2, 3, 4))).ravel(),
     RNG.standard_normal(24), True),
    ("rfft n", lambda x: np.abs(np.fft.rfft(x.reshape(3, 6), n=4)).ravel(),
     RNG.standard_normal(18), True),
    ("irfft", lambda x: np.fft.irfft(x.reshape(3, 6)).ravel(), RNG.standard_normal(18), True),
    ("irfftn axes", lambda x: np.fft.irfftn(x.reshape(2, 3, 4), axes=(0, 2)).ravel(),
     RNG.standard_normal(24), True),
    ("ifftn s", lambda x: np.abs(np.fft.ifftn(x.reshape(2, 3, 4), s=(3, 5), axes=(0, 1))).ravel(),
     RNG.standard_normal(24), True),
    # ---------------------------------------------------------------- scipy.ndimage
    ("laplace", lambda x: ndi.laplace(x.reshape(5, 6)).ravel(), RNG.standard_normal(30), True),
    ("gaussian_filter", lambda x: ndi.gaussian_filter(x.reshape(5, 6), 1.0, truncate=1.5).ravel(),
     RNG.standard_normal(30), True),
    ("uniform_filter axes", lambda x: ndi.uniform_filter(x.reshape(3, 4, 5), 3,
                                                         axes=(0, 2)).ravel(),
     RNG.standard_normal(60), True),
    ("sobel", lambda x: ndi.sobel(x.reshape(5, 6), axis=0).ravel(), RNG.standard_normal(30), True),
    ("spline_filter", lambda x: ndi.spline_filter(x.reshape(5, 6)).ravel(),
     RNG.standard_normal(30), True),
    ("map_coordinates order 3", lambda x: ndi.map_coordinates(
        x.reshape(5, 6), np.array([[1.5, 2.2], [3.1, 0.4]]), order=3).ravel(),
     RNG.standard_normal(30), True),
    ("correlate_t", lambda x: bind(scipy_ndimage.correlate_t_p, (x.reshape(4, 5), LAP), {
        "axes": (0, 1), "mode": "mirror", "origins": (0, 0)}).ravel(),
     RNG.standard_normal(20), True),
    ("correlate_t weights", lambda x: bind(scipy_ndimage.correlate_t_p, (
        _SPARSE_IMAGE, x.reshape(3, 3)), {"axes": (0, 1), "mode": "reflect",
                                          "origins": (0, 1)}).ravel(),
     RNG.standard_normal(9), True),
    ("spline_filter1d_t", lambda x: bind(scipy_ndimage.spline_filter1d_t_p, (x.reshape(4, 5),), {
        "order": 3, "axis": 1, "mode": "mirror"}).ravel(), RNG.standard_normal(20), True),
    # ---------------------------------------------------------------- scipy.sparse
    ("sparse L@u", lambda x: _L @ x, RNG.standard_normal(8), True),
    ("sparse L@U", lambda x: (_L @ x.reshape(8, 2)).ravel(), RNG.standard_normal(16), True),
    ("sparse u@L", lambda x: x @ _L, RNG.standard_normal(8), True),
    ("sparse U@L", lambda x: (x.reshape(2, 8) @ _L).ravel(), RNG.standard_normal(16), True),
    ("sparse rect coo", lambda x: _R @ x, RNG.standard_normal(8), True),
    ("sparse csr_array", lambda x: sps.csr_array(_R) @ np.sin(x), RNG.standard_normal(8), True),
    ("spsolve blocks", lambda x: spla.spsolve(_SP_BLOCKS, x), RNG.standard_normal(8), True),
    ("spsolve columns", lambda x: spla.spsolve(_SP_BLOCKS, x.reshape(8, 2)).ravel(),
     RNG.standard_normal(16), True),
    # ---------------------------------------------------------------- scipy.interpolate
    ("BSpline vector values", lambda x: _SPLINE(x).ravel(), RNG.uniform(0.1, 0.9, 4), True),
    ("BSpline axis", lambda x: _SPLINE_ND(x.reshape(2, 2)).ravel(), RNG.uniform(0.1, 0.9, 4),
     True),
    ("CubicSpline axis 1, nu 1", lambda x: _CUBIC(x.reshape(2, 2), 1).ravel(),
     RNG.uniform(0.1, 0.9, 4), True),
]

_STACK = _sparse_const((3, 5, 5))
_BLOCKS = np.zeros((6, 6))
_BLOCKS[:3, :3] = RNG.standard_normal((3, 3)) + 3 * np.eye(3)  # two irreducible blocks
_BLOCKS[3:, 3:] = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
_ONE_COLUMN = np.zeros((6, 2))
_ONE_COLUMN[2, 0] = 1.0
_BAND = np.zeros((3, 6))  # tridiagonal, split into two blocks by zeros
_BAND[0, 1:] = 1.0
_BAND[1] = 4.0
_BAND[2, :-1] = 1.0
_BAND[0, 3] = _BAND[2, 2] = 0.0
_HBAND_U = np.array([[0.0, 1, 1, 0, 1, 1], [4, 4, 4, 4, 4, 4]])
_HBAND_L = np.array([[4.0, 4, 4, 4, 4, 4], [1, 1, 0, 1, 1, 0]])
_SPARSE_IMAGE = _sparse_const((4, 5), 0.3)
_L = sps.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(8, 8), format="csr")
_L.data[3] = 0.0  # a stored zero is no dependency
_R = sps.coo_matrix(_sparse_const((5, 8), 0.3))
_SP_BLOCKS = sps.block_diag([sps.diags([1.0, 4.0, 1.0], [-1, 0, 1], shape=(3, 3)),
                             sps.diags([1.0, 4.0, 1.0], [-1, 0, 1], shape=(5, 5))], format="csc")
_T7 = np.linspace(0.0, 1.0, 7)
_SPLINE = si.make_interp_spline(_T7, np.c_[np.sin(_T7), np.cos(_T7)], k=3)
_SPLINE_ND = si.make_interp_spline(_T7, np.sin(_T7)[:, None, None] * np.ones((1, 2, 3)), k=3)
_CUBIC = si.CubicSpline(_T7, np.c_[np.sin(_T7), np.cos(_T7)].T, axis=1)


@pytest.mark.parametrize("name, f, x, exact", CASES, ids=[c[0] for c in CASES])
def test_pattern_holds_the_dense_jacobians_nonzeros(name: str, f: Callable[..., Any],
                                                    x: np.ndarray, exact: bool) -> None:
    _check(f, x, exact)


MODES = ("reflect", "mirror", "nearest", "wrap", "constant", "grid-wrap", "grid-constant")


@pytest.mark.parametrize("mode", MODES)
def test_ndimage_stencils_are_exact_in_every_mode(mode: str) -> None:
    rng = np.random.default_rng(MODES.index(mode))
    w1 = np.array([1.0, 0.0, 2.0, -1.5])  # a zero tap is no dependency
    # (the reflecting modes read a boundary sample twice: weights 2 and -1.5 do not cancel)
    _check(lambda x: ndi.correlate1d(x, w1, mode=mode, origin=1), rng.standard_normal(7), True)
    _check(lambda x: ndi.convolve(x[1:].reshape(4, 5), LAP, mode=mode, cval=x[0]).ravel(),
           rng.standard_normal(21), True)
    # a central difference at a mirroring boundary reads x[1] twice, with -1 and +1: no
    # dependency (and none in the dense Jacobian: the sum is exactly zero)
    _check(lambda x: ndi.correlate1d(x, [-1.0, 0.0, 1.0], mode=mode), rng.standard_normal(7),
           True)
    _check(lambda x: ndi.sobel(x.reshape(5, 6), axis=1, mode=mode).ravel(),
           rng.standard_normal(30), True)
    _check(lambda x: bind(scipy_ndimage.correlate_t_p, (x, np.array([-1.0, 0.0, 1.0])), {
        "axes": (0,), "mode": mode, "origins": (0,)}), rng.standard_normal(6), True)
    image = _sparse_const((6,), 0.6)
    _check(lambda x: ndi.correlate1d(image, x, mode=mode, cval=0.0), rng.standard_normal(3), True)
    _check(lambda x: ndi.correlate1d(x[:6], x[6:], mode=mode, cval=1.0),
           rng.standard_normal(9), True)


def _random_einsum(rng: np.random.Generator) -> tuple[str, list[Any], list[bool]]:
    """Random explicit einsum subscripts (1-3 operands, repeated labels, sums, outer
    products), each operand traced or a constant with zeros."""
    labels = "abcd"
    sizes = {c: int(rng.integers(1, 4)) for c in labels}
    k = int(rng.integers(1, 4))
    terms = ["".join(rng.choice(list(labels), int(rng.integers(0, 4)))) for _ in range(k)]
    used = sorted(set("".join(terms)))
    out = "".join(rng.permutation([c for c in used if rng.uniform() < 0.6]))
    traced = [bool(rng.uniform() < 0.5) for _ in range(k)]
    if not any(traced):
        traced[int(rng.integers(k))] = True
    shapes = [tuple(sizes[c] for c in t) for t in terms]
    return ",".join(terms) + "->" + out, shapes, traced


COMPLEX_CASES: list[tuple[str, Callable[..., Any], int]] = [
    ("matmul", lambda z: (A45 + 1j * A45[::-1]) @ z, 5),
    ("einsum", lambda z: np.einsum("ij,jk->ik", A45 * 1j, z.reshape(5, 2)).ravel(), 10),
    ("fft along axis 1", lambda z: np.fft.ifft(z.reshape(2, 3), axis=1).ravel(), 6),
    ("solve const", lambda z: np.linalg.solve(_BLOCKS + 1j * np.eye(6), z), 6),
    ("inv stack", lambda z: np.linalg.inv(z.reshape(2, 2, 2) + 3 * np.eye(2)).ravel(), 8),
    ("cholesky", lambda z: np.linalg.cholesky(z.reshape(2, 2) @ np.conj(z.reshape(2, 2).T)
                                              + 3 * np.eye(2)).ravel(), 4),
    ("sparse L@z", lambda z: _L @ z, 8),
    ("correlate", lambda z: ndi.correlate1d(z, [1.0, 0.0, -2.0j], mode="mirror"), 6),
]


@pytest.mark.parametrize("name, f, n", COMPLEX_CASES, ids=[c[0] for c in COMPLEX_CASES])
def test_complex_values(name: str, f: Callable[..., Any], n: int) -> None:
    # one pattern entry per complex element: it must hold every derivative of the output's
    # real and imaginary parts in the input's real and imaginary parts
    rng = np.random.default_rng(n)
    z = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    P = dependencies(f, (z,)).pattern.toarray()

    def realified(v: Any) -> Any:
        out = f(v[:n] + 1j * v[n:])
        return np.concatenate([np.real(out), np.imag(out)])

    D = None
    for _ in range(2):
        v = np.concatenate([z.real, z.imag]) + rng.uniform(-0.2, 0.2, 2 * n)
        J = np.abs(np.asarray(dr.jacobian(realified)(v)))
        m = J.shape[0] // 2
        J = J[:m, :n] + J[:m, n:] + J[m:, :n] + J[m:, n:]
        nz = J > 1e-10 * max(1.0, float(J.max()))
        D = nz if D is None else D | nz
    assert not (D & ~P).any()
    np.testing.assert_array_equal(P, D)


NESTED: list[tuple[str, Callable[..., Any], int]] = [
    ("vmap matmul", lambda x: dr.vmap(lambda r: A45 @ r)(x.reshape(2, 5)).ravel(), 10),
    ("vmap einsum", lambda x: dr.vmap(lambda r: np.einsum("ij,j->i", A45, r))(
        x.reshape(2, 5)).ravel(), 10),
    ("vmap L@u", lambda x: dr.vmap(lambda r: _L @ r)(x.reshape(2, 8)).ravel(), 16),
    ("vmap spsolve", lambda x: dr.vmap(lambda r: spla.spsolve(_SP_BLOCKS, r))(
        x.reshape(2, 8)).ravel(), 16),
    ("vmap correlate", lambda x: dr.vmap(lambda r: ndi.correlate1d(r, [1.0, -1.0]))(
        x.reshape(2, 6)).ravel(), 12),
    ("vmap fft", lambda x: dr.vmap(lambda r: np.abs(np.fft.fft(r)))(x.reshape(2, 6)).ravel(),
     12),
    ("vmap cholesky", lambda x: dr.vmap(np.linalg.cholesky)(
        np.stack([SPD, 2 * SPD]) + 0.01 * x.reshape(2, 4, 4)).ravel(), 32),
    ("vmap solve_banded", lambda x: dr.vmap(lambda r: sla.solve_banded((1, 1), _BAND, r))(
        x.reshape(2, 6)).ravel(), 12),
    ("jacfwd of L@u^3", lambda x: dr.jacfwd(lambda u: _L @ (u ** 3))(x).ravel(), 8),
    ("jacrev of A@sin", lambda x: dr.jacrev(lambda u: A45 @ np.sin(u))(x).ravel(), 5),
    ("jacfwd of laplace", lambda x: dr.jacfwd(lambda u: ndi.laplace(u ** 2))(x).ravel(), 6),
    ("jacrev of solve_triangular", lambda x: dr.jacrev(lambda u: sla.solve_triangular(
        np.tril(A55) + 4 * np.eye(5), u ** 2, lower=True))(x).ravel(), 5),
    ("jacfwd of qr", lambda x: dr.jacfwd(lambda u: np.linalg.qr(u.reshape(3, 2))[1])(
        x).ravel(), 6),
]


@pytest.mark.parametrize("name, f, n", NESTED, ids=[c[0] for c in NESTED])
def test_transforms_inside_the_detection(name: str, f: Callable[..., Any], n: int) -> None:
    # batching rules and derivative rules bind these primitives on pattern values, with
    # batched shapes (a stack of right-hand sides) and tangents: never too sparse
    _check(f, np.random.default_rng(n).standard_normal(n), exact=False)


def test_lu_factor_pattern_holds_for_every_pivot_order() -> None:
    # partial pivoting picks rows by value: the pattern found at one matrix holds the
    # Jacobian's non-zeros at matrices that pivot differently (and is not dense: the
    # factors' entries read only leading columns)
    rng = np.random.default_rng(3)
    n = 4
    f = lambda x: sla.lu_factor(x.reshape(n, n))[0].ravel()  # noqa: E731
    P = dependencies(f, (rng.standard_normal(n * n),)).pattern.toarray()
    orders = set()
    for _ in range(12):
        a = rng.standard_normal((n, n))
        orders.add(tuple(sla.lu_factor(a)[1]))
        J = np.abs(np.asarray(dr.jacobian(f)(a.ravel()))) > 1e-12
        assert not (J & ~P).any()
    assert len(orders) > 3
    assert P.sum() == 120  # of 256


def test_einsum_generated_subscripts() -> None:
    rng = np.random.default_rng(24)
    checked = 0
    for _ in range(60):
        spec, shapes, traced = _random_einsum(rng)
        consts = [np.where(rng.uniform(size=s) < 0.5, rng.standard_normal(s), 0.0)
                  for s in shapes]
        sizes = [int(np.prod(s)) for s in shapes]
        n = sum(sz for sz, t in zip(sizes, traced, strict=True) if t)
        if n == 0:
            continue

        def f(x: Any, spec: str = spec, shapes: list[Any] = shapes, traced: list[bool] = traced,
              consts: list[Any] = consts, sizes: list[int] = sizes) -> Any:
            ops, at = [], 0
            for s, t, c, sz in zip(shapes, traced, consts, sizes, strict=True):
                if t:
                    ops.append(x[at:at + sz].reshape(s))
                    at += sz
                else:
                    ops.append(c)
            return np.ravel(np.einsum(spec, *ops))

        # exact when one operand is traced (the others' zeros decide); with several
        # traced operands the product rule may cancel only by chance
        _check(f, rng.standard_normal(n), exact=sum(traced) == 1, seed=checked)
        checked += 1
    assert checked >= 50


def test_matmul_generated_shapes() -> None:
    # vectors, matrices and stacks with broadcast stack axes, each operand traced or a
    # constant with zeros: exact when one operand is traced
    rng = np.random.default_rng(11)
    for case in range(40):
        n, k, m = (int(v) for v in rng.integers(1, 4, 3))
        stack = tuple(int(v) for v in rng.integers(1, 3, int(rng.integers(0, 3))))

        def shape(core: tuple[int, ...], stack: tuple[int, ...] = stack) -> tuple[int, ...]:
            if len(core) == 1 or not stack or rng.uniform() < 0.3:
                return core
            own = stack[int(rng.integers(0, len(stack) + 1)):]
            return tuple(1 if rng.uniform() < 0.3 else s for s in own) + core

        sa = shape((k,) if rng.uniform() < 0.25 else (n, k))
        sb = shape((k,) if rng.uniform() < 0.25 else (k, m))
        traced = [bool(rng.uniform() < 0.6), False]
        traced[1] = not traced[0] or bool(rng.uniform() < 0.4)
        consts = [_zeros_here_and_there(rng, s) for s in (sa, sb)]
        sizes = [int(np.prod(s)) for s in (sa, sb)]

        def f(x: Any, sa: Any = sa, sb: Any = sb, traced: Any = traced, consts: Any = consts,
              sizes: Any = sizes) -> Any:
            a = x[:sizes[0]].reshape(sa) if traced[0] else consts[0]
            b = x[sizes[0] * traced[0]:][:sizes[1]].reshape(sb) if traced[1] else consts[1]
            return np.ravel(a @ b)

        n_in = sizes[0] * traced[0] + sizes[1] * traced[1]
        _check(f, rng.standard_normal(n_in), exact=sum(traced) == 1, seed=case)


def _zeros_here_and_there(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.where(rng.uniform(size=shape) < 0.5, rng.standard_normal(shape), 0.0)


def test_inverse_structure_equals_the_inverses_nonzeros() -> None:
    # generated square structures (reducible ones, triangular ones, permuted diagonals):
    # the structural inverse holds the inverse's non-zeros, and equals them (generic
    # values); a structurally singular one gets a superset
    rng = np.random.default_rng(7)
    exact = 0
    for _ in range(200):
        n = int(rng.integers(1, 9))
        A = np.where(rng.uniform(size=(n, n)) < rng.uniform(0.1, 0.6),
                     rng.standard_normal((n, n)), 0.0)
        if rng.uniform() < 0.5:
            A[rng.permutation(n), np.arange(n)] = rng.standard_normal(n) + 3.0
        S = pattern_rules.inverse_structure(sps.csr_matrix(A)).toarray()
        if abs(np.linalg.det(A)) < 1e-8:
            continue
        inv = np.abs(np.linalg.inv(A)) > 1e-12
        assert not (inv & ~S).any()
        np.testing.assert_array_equal(S, inv)
        exact += 1
    assert exact > 60
    tri = sps.csr_matrix(np.tril(np.ones((5, 5))))
    np.testing.assert_array_equal(pattern_rules.inverse_structure(tri).toarray(),
                                  np.tril(np.ones((5, 5), dtype=bool)))


def test_hessian_patterns_run_reverse_mode_through_the_rules() -> None:
    # the VJPs of these primitives (adjoint stencils, transposed operators, solves) meet
    # pattern values too: the Hessian pattern equals the dense Hessian's non-zeros
    rng = np.random.default_rng(5)
    L = sps.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(9, 9), format="csr")
    fns = [
        lambda u: np.sum((L @ u) ** 2) + np.sum(u ** 4),
        lambda u: np.sum(ndi.laplace(u.reshape(3, 3), mode="constant") ** 2),
        lambda u: np.sum(np.einsum("ij,j->i", L.toarray(), u) * u ** 2),
        lambda u: np.sum(np.linalg.solve(_BLOCKS[:3, :3], u.reshape(3, 3)) ** 3),
        lambda u: np.sum(ndi.spline_filter1d(u.reshape(3, 3), axis=0) ** 3),
    ]
    for k, f in enumerate(fns):
        x = rng.standard_normal(9)
        P = dr.sparse.hessian_sparsity(f, x).pattern.toarray()
        D = np.zeros((9, 9), dtype=bool)
        for _ in range(3):
            H = np.asarray(dr.hessian(f)(x + rng.uniform(-0.2, 0.2, 9)))
            D |= np.abs(H) > 1e-10 * max(1.0, float(np.abs(H).max()))
        assert not (D & ~P).any(), k
        np.testing.assert_array_equal(P, D, err_msg=str(k))


def test_constant_operators_at_scale() -> None:
    # a discretised operator L @ u and a 5-point stencil at 10^5 unknowns: exact patterns
    # in well under a second each (both O(nnz))
    n = 100_000
    L = sps.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n), format="csr")
    t = time.perf_counter()
    found = dependencies(lambda u: L @ u + u ** 3, (np.ones(n),))
    assert time.perf_counter() - t < 5.0
    assert found.pattern.nnz == L.nnz
    assert (found.pattern != (L != 0)).nnz == 0
    m = 300
    t = time.perf_counter()
    found = dependencies(lambda u: ndi.correlate(u.reshape(m, m), LAP, mode="constant").ravel(),
                         (np.ones(m * m),))
    assert time.perf_counter() - t < 5.0
    assert found.pattern.nnz == 5 * m * m - 4 * m


def test_a_dense_block_too_big_is_refused() -> None:
    # an FFT of 10^4 points, a (100 x 10^4) @ (10^4 x 100) product, and the inverse
    # of a tridiagonal operator at 10^5 unknowns are truly dense (10^8, 10^8 and 10^10
    # entries): refused before anything is built
    n = 10_000
    with pytest.raises(pattern_rules.DenseBlockError):
        dependencies(lambda u: np.abs(np.fft.fft(u)), (np.ones(n),))
    W = np.ones((n, 100))
    with pytest.raises(pattern_rules.DenseBlockError):
        dependencies(lambda u: u.reshape(100, n) @ W, (np.ones(100 * n),))
    n = 100_000
    T = sps.diags([1.0, 4.0, 1.0], [-1, 0, 1], shape=(n, n), format="csc")
    t = time.perf_counter()
    with pytest.raises(pattern_rules.DenseBlockError):
        dependencies(lambda u: spla.spsolve(T, u), (np.ones(n),))
    assert time.perf_counter() - t < 5.0


MODULES = (contraction, linalg, scipy_linalg, scipy_functions, fft, special, incomplete,
           bessel_order, scipy_stats, scipy_ndimage, scipy_interpolate, scipy_sparse,
           scipy_optimize_functions)


def _module_primitives() -> dict[str, list[Primitive]]:
    names = {m.__name__ for m in MODULES}
    found: dict[str, list[Primitive]] = {}
    for p in list(_DECLARED):
        owner = getattr(p.impl, "__module__", None)
        if owner in names:
            found.setdefault(owner, []).append(p)
    for m in MODULES:
        for v in vars(m).values():
            if isinstance(v, Primitive) and v not in found.get(m.__name__, []):
                found.setdefault(m.__name__, []).append(v)
    return found


def test_every_primitive_of_these_modules_states_a_pattern() -> None:
    found = _module_primitives()
    missing = [f"{mod}: {p.name}" for mod, ps in found.items() for p in ps
               if p.pattern is None and not p.nondiff
               and not (p.elementwise and p.custom is None)]
    assert missing == []
    # the families that are not elementwise are all here (a renamed module would hide them)
    named = {p.name for ps in found.values() for p in ps if not p.elementwise}
    assert {"matmul", "einsum", "inv", "solve", "cholesky", "qr", "fftn", "rfftn", "irfftn",
            "ndimage_correlate", "ndimage_correlate_transpose",
            "scipy.sparse (matrix @ dense)", "scipy.sparse.linalg.spsolve",
            "scipy.linalg.solve_banded", "scipy.interpolate (evaluation)"} <= named


def test_einsum_keys_past_int64() -> None:
    # labels whose sizes multiply past int64 (no array that big exists, but stacks of
    # size-1 axes get there in the keys): the join compares rows, not flat indices
    big = {"a": 10**7, "b": 10**7, "c": 10**7, "d": 10}
    left = np.array([[1, 2, 3], [4, 5, 6]])
    right = np.array([[1, 2, 9], [4, 5, 8], [4, 5, 7], [0, 0, 1]])
    labels, rows = pattern_rules._join("abc", left, "abd", right, big)
    assert labels == "abcd"
    assert sorted(map(tuple, rows.tolist())) == [(1, 2, 3, 9), (4, 5, 6, 7), (4, 5, 6, 8)]
    kept, proj = pattern_rules._project(labels, rows, "ab", big)
    assert kept == "ab" and sorted(map(tuple, proj.tolist())) == [(1, 2), (4, 5)]
