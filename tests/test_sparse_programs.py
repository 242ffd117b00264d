"""Structural sparsity detection on generated programs (issue 24): the pattern
(``dualrev.transforms.dependencies``) contains every non-zero of the dense Jacobian at
three random points, equals them where the program is built only of operations whose
pattern is exact at generic points, and ``dr.sparse.jacobian``/``dr.sparse.hessian``
equal ``dr.jacobian``/``dr.hessian``.

Two generators:

- ``program(seed)``: 3-8 statements drawn (seeded) from a pool of what numerical code
  does: elementwise functions and arithmetic, stencils, shifts and reversals, reshape
  and transpose, concatenation of slices, gathers with a constant index, reductions
  along an axis broadcast back, products by a constant sparse matrix (``@`` and
  ``np.einsum``), cumulative sums, writes into buffers and copies (``out[1:] = ...``,
  ``u[1:-1] += ...``, ``dr.at(out)[idx].add(v)``), ``np.where`` with a constant mask or
  a mask computed from the values, ``np.maximum``, and orders and positions found from
  the values (``np.sort``, ``np.partition``, a gather at ``np.argmax``), which differ
  at the three points. Each statement says whether its
  pattern is exact at generic points: a mask computed from the values and
  ``np.maximum`` select one argument per element, and an order found from the values
  selects one element per line, so the union their pattern states is a superset there;
  everything else composes exactly (random coefficients: no cancellation).
- banded, block-diagonal, arrow and random-pattern functions (hypothesis), whose
  Jacobian pattern is known in closed form and must come out exactly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import dualrev as dr
from dualrev.transforms import dependencies

#: programs generated per test (seeds 0..N-1)
N_PROGRAMS = 200


@dataclass
class Program:
    """A generated program: ``fn(x)`` (a vector of ``n`` elements to a vector), the
    source-like ``lines`` it runs (for failure messages) and whether its pattern must be
    ``exact`` (no statement whose pattern is a superset at generic points)."""

    n: int
    fn: Callable[[Any], Any]
    lines: list[str] = field(default_factory=list)
    exact: bool = True

    def __str__(self) -> str:
        return f"n={self.n}, exact={self.exact}:\n    " + "\n    ".join(self.lines)


def _statements(rng: np.random.Generator, n: int) -> list[tuple[str, bool, Callable]]:
    """The pool: (description, exact at generic points, step(a, b) -> new vector),
    each with its own constants drawn from ``rng``; ``a`` is the latest value, ``b`` an
    earlier one."""
    c1, c2, c3 = rng.uniform(0.4, 1.6, 3) * rng.choice([-1.0, 1.0], 3)
    k = int(rng.integers(1, n - 1))
    r = [d for d in (2, 3, 4) if n % d == 0][int(rng.integers(0, 2))]
    perm = rng.permutation(n)
    idx = rng.integers(0, n, n)  # with repeats: a gather copies, a scatter-add sums
    mask = rng.random(n) < 0.5
    # a non-zero diagonal: no row of zeros, whose product (tanh(0) = 0, a constant
    # zero) would void the exactness of a later product with it
    A = np.where(rng.random((n, n)) < 0.25, rng.standard_normal((n, n)), 0.0) \
        + np.diag(rng.uniform(0.5, 1.5, n))
    W = np.where(rng.random((n // r, n // r)) < 0.5, rng.standard_normal((n // r, n // r)),
                 0.0) + np.diag(rng.uniform(0.5, 1.5, n // r))

    def buffer_shift(a: Any, b: Any) -> Any:
        out = np.zeros(n)
        out[1:] = a[:-1] * c1
        out[:1] = b[:1]
        return out

    def copy_stencil(a: Any, b: Any) -> Any:
        u = a.copy()
        u[1:-1] += c1 * b[2:] + c2 * b[:-2]
        return u

    def overwrite(a: Any, b: Any) -> Any:
        out = np.zeros(n)
        out[:] = a
        out[k:] = b[k:] * c1  # the second write replaces the first there
        return out

    def scatter_add(a: Any, b: Any) -> Any:
        return dr.at(np.zeros(n))[idx].add(a * c1) + b

    def stencil(a: Any, b: Any) -> Any:
        inner = c1 * a[2:] + c2 * a[1:-1] + c3 * a[:-2]
        return np.concatenate([a[:1], inner, a[-1:] * c2])

    return [
        ("np.sin(a) * c1", True, lambda a, b: np.sin(a) * c1),
        ("np.tanh(a) + a ** 3 * c1", True, lambda a, b: np.tanh(a) + a ** 3 * c1),
        ("np.exp(-a * a)", True, lambda a, b: np.exp(-a * a)),
        ("1 / (1 + a * a)", True, lambda a, b: 1.0 / (1.0 + a * a)),
        ("c1 * a + c2 * b", True, lambda a, b: c1 * a + c2 * b),
        ("a * b", True, lambda a, b: a * b),
        ("a / (1 + b * b)", True, lambda a, b: a / (1.0 + b * b)),
        ("stencil of a", True, stencil),
        (f"np.roll(a, {k}) * c1 + b", True, lambda a, b: np.roll(a, k) * c1 + b),
        ("a[::-1] * b", True, lambda a, b: a[::-1] * b),
        (f"a.reshape({r}, -1).T.ravel()", True, lambda a, b: a.reshape(r, -1).T.ravel()),
        (f"concatenate([a[{k}:], c1 * a[:{k}]])", True,
         lambda a, b: np.concatenate([a[k:], c1 * a[:k]])),
        ("a[perm] + c1 * b", True, lambda a, b: a[perm] + c1 * b),
        ("a[idx] * b (repeated index)", True, lambda a, b: a[idx] * b),
        (f"a * row sums of a.reshape({r}, -1), broadcast back", True,
         lambda a, b: (a.reshape(r, -1) * (c1 * a.reshape(r, -1).sum(axis=1, keepdims=True)
                                           + c2)).ravel()),
        (f"b + column means of a.reshape({r}, -1) tiled", True,
         lambda a, b: b + np.tile(np.mean(a.reshape(r, -1) ** 2, axis=0), r)),
        ("A @ a (constant, 25% non-zero)", True, lambda a, b: A @ a + c1 * b),
        ("np.tanh(A @ np.sin(a))", True, lambda a, b: np.tanh(A @ np.sin(a))),
        (f"a.reshape({r}, -1) @ W (block)", True, lambda a, b: (a.reshape(r, -1) @ W).ravel()
         + b),
        ("einsum('ij,j->i', A, a)", True, lambda a, b: np.einsum("ij,j->i", A, a) * c1),
        ("np.cumsum(a) * c1", True, lambda a, b: np.cumsum(a) * c1),
        ("buffer: out[1:] = a[:-1] * c1; out[:1] = b[:1]", True, buffer_shift),
        ("copy: u = a.copy(); u[1:-1] += c1 * b[2:] + c2 * b[:-2]", True, copy_stencil),
        (f"out[:] = a; out[{k}:] = b[{k}:] * c1", True, overwrite),
        ("dr.at(zeros)[idx].add(a * c1) + b", True, scatter_add),
        ("np.where(mask, a, b * c1) (constant mask)", True,
         lambda a, b: np.where(mask, a, b * c1)),
        ("np.where(a > b, a * c1, b) (mask from values)", False,
         lambda a, b: np.where(a > b, a * c1, b)),
        ("np.maximum(a, b * c1)", False, lambda a, b: np.maximum(a, b * c1)),
        # an order or a position found from the values: the three points have other
        # orders, which the pattern must cover (it once was the permutation at the point)
        ("np.sort(a) * b", False, lambda a, b: np.sort(a) * b),
        ("a * b[np.argmax(a)]", False, lambda a, b: a * b[np.argmax(a)]),
        (f"np.partition(a, {k}) + c1 * b", False, lambda a, b: np.partition(a, k) + c1 * b),
    ]


def program(seed: int) -> Program:
    """A program of 3-8 statements drawn from the pool, on a vector of 6, 8 or 12
    elements; each statement reads the latest value and an earlier one."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([6, 8, 12]))
    pool = _statements(rng, n)
    steps = [pool[int(i)] for i in rng.integers(0, len(pool), int(rng.integers(3, 9)))]
    picks = [int(rng.integers(0, i + 1)) for i in range(len(steps))]
    prog = Program(n, lambda x: x)
    for (what, exact, _), j in zip(steps, picks, strict=True):
        prog.lines.append(f"v{len(prog.lines) + 1} = {what}   [b = v{j}]")
        prog.exact = prog.exact and exact

    def fn(x: Any) -> Any:
        vals = [x]
        for (_, _, step), j in zip(steps, picks, strict=True):
            vals.append(step(vals[-1], vals[j]))
        return vals[-1]

    prog.fn = fn
    return prog


def _points(n: int, seed: int, count: int = 3) -> list[np.ndarray]:
    """Random points away from 0 (and from ties: the masks computed from values stay
    on one side at each point, whichever it is)."""
    rng = np.random.default_rng(seed + 10_000)
    return [rng.uniform(0.3, 1.5, n) * rng.choice([-1.0, 1.0], n) for _ in range(count)]


def _nonzeros(J: Any, m: int, n: int) -> np.ndarray:
    return np.reshape(np.asarray(J), (m, n)) != 0


def _check(prog: Program, seed: int) -> dict[str, bool]:
    """Every check on one program; returns whether its Jacobian and Hessian patterns
    were exact."""
    xs = _points(prog.n, seed)
    found = dependencies(prog.fn, (xs[0],))
    P = found.pattern.toarray()
    assert found.structural, f"{prog}\nnotes: {found.notes}"
    # a primitive without a pattern rule (a dense block, noted) voids the claim
    fallback = any("states no sparsity pattern" in note for note in found.notes)
    nz = np.zeros_like(P)
    for x in xs:
        J = np.asarray(dr.jacobian(prog.fn)(x))
        here = _nonzeros(J, P.shape[0], prog.n)
        miss = here & ~P
        assert not miss.any(), f"MISS at {np.argwhere(miss)[:5].tolist()}: {prog}"
        nz |= here
        Js = dr.sparse.jacobian(prog.fn)(x)
        assert sp.issparse(Js) and Js.shape == P.shape
        np.testing.assert_allclose(Js.toarray(), J.reshape(P.shape), rtol=1e-10,
                                   atol=1e-12, err_msg=str(prog))
    exact = np.array_equal(P, nz)
    if prog.exact and not fallback:
        assert exact, (f"{prog}\nthe pattern has {int(P.sum() - nz.sum())} entries beyond "
                       f"the dense non-zeros: {np.argwhere(P & ~nz)[:5].tolist()}")

    # the Hessian pattern is not asserted exact: the reverse pass multiplies a cotangent
    # that is structurally zero (the part of a buffer a write dropped) by a factor that
    # depends on the input, and the elementwise union keeps that dependency
    w = np.random.default_rng(seed).uniform(0.5, 1.5, P.shape[0])

    def scalar(x: Any) -> Any:
        return np.sum(w * np.sin(prog.fn(x)))

    Hfound = dr.sparse.hessian_sparsity(scalar, xs[0])
    H_pattern = Hfound.pattern.toarray()
    hnz = np.zeros_like(H_pattern)
    for x in xs[:2]:
        H = np.asarray(dr.hessian(scalar)(x))
        here = H != 0
        assert not (here & ~H_pattern).any(), \
            f"Hessian MISS at {np.argwhere(here & ~H_pattern)[:5].tolist()}: {prog}"
        hnz |= here
        np.testing.assert_allclose(dr.sparse.hessian(scalar)(x).toarray(), H, rtol=1e-10,
                                   atol=1e-12, err_msg=str(prog))
    return {"jacobian": exact, "hessian": np.array_equal(H_pattern, hnz),
            "fallback": fallback}


def test_generated_programs():
    """N_PROGRAMS programs: pattern a superset of the dense non-zeros at 3 points, exact
    where every statement is; sparse Jacobians and Hessians equal the dense ones."""
    counts = {"programs": 0, "claimed exact": 0, "jacobian exact": 0, "hessian exact": 0,
              "dense fallback": 0}
    for seed in range(N_PROGRAMS):
        prog = program(seed)
        got = _check(prog, seed)
        counts["programs"] += 1
        counts["claimed exact"] += prog.exact
        counts["jacobian exact"] += got["jacobian"]
        counts["hessian exact"] += got["hessian"]
        counts["dense fallback"] += got["fallback"]
    print(f"sparse programs: {counts}")
    # the generator is not degenerate: both kinds of program occur
    assert 0 < counts["claimed exact"] < counts["programs"]


def test_the_generator_reaches_every_statement():
    """Each statement of the pool occurs in some generated program."""
    seen: set[str] = set()
    for seed in range(N_PROGRAMS):
        seen.update(line.split(" = ", 1)[1].split("   [")[0] for line in program(seed).lines)
    kinds = {what.split("(")[0][:12] for what, _, _ in _statements(np.random.default_rng(0), 12)}
    reached = {s.split("(")[0][:12] for s in seen}
    assert kinds <= reached, kinds - reached


# ------------------------------------------------------------------ closed-form patterns
def _assert_pattern(f: Callable[[Any], Any], n: int, expected: np.ndarray, seed: int) -> None:
    """``f``'s detected pattern is ``expected``, which is also the dense Jacobian's
    non-zeros at two random points; the sparse Jacobian equals the dense one there."""
    xs = _points(n, seed, 2)
    found = dependencies(f, (xs[0],))
    np.testing.assert_array_equal(found.pattern.toarray(), expected)
    assert found.structural and not found.notes, found.notes
    nz = np.zeros_like(expected)
    for x in xs:
        J = np.asarray(dr.jacobian(f)(x)).reshape(expected.shape)
        nz |= J != 0
        np.testing.assert_allclose(dr.sparse.jacobian(f)(x).toarray(), J, rtol=1e-10,
                                   atol=1e-12)
    np.testing.assert_array_equal(nz, expected)
    _assert_hessian(f, xs, seed)


def _assert_hessian(f: Callable[[Any], Any], xs: list[np.ndarray], seed: int) -> None:
    """The Hessian of a scalar made of ``f``: its detected pattern contains the dense
    Hessian's non-zeros at the points, and ``dr.sparse.hessian`` equals ``dr.hessian``."""
    w = np.random.default_rng(seed).uniform(0.5, 1.5, np.size(f(xs[0])))

    def scalar(x: Any) -> Any:
        return np.sum(w * np.sin(f(x)))

    P = dr.sparse.hessian_sparsity(scalar, xs[0]).pattern.toarray()
    for x in xs:
        H = np.asarray(dr.hessian(scalar)(x))
        assert not ((H != 0) & ~P).any(), f"Hessian MISS at {np.argwhere((H != 0) & ~P)[:5]}"
        np.testing.assert_allclose(dr.sparse.hessian(scalar)(x).toarray(), H, rtol=1e-10,
                                   atol=1e-12)


@given(n=st.integers(4, 40), offsets=st.sets(st.integers(-3, 3), min_size=1, max_size=4),
       seed=st.integers(0, 2**16))
def test_banded(n, offsets, seed):
    """y_i = sum over offsets d of c_d * g_d(x_{i+d}) (zero outside): the band."""
    rng = np.random.default_rng(seed)
    coef = {d: rng.uniform(0.5, 1.5) for d in offsets}

    def f(x):
        y = np.zeros(n)
        for d, c in coef.items():
            g = np.sin(x) if d % 2 else x ** 2
            if d >= 0:
                y = y + c * np.concatenate([g[d:], np.zeros(d)])
            else:
                y = y + c * np.concatenate([np.zeros(-d), g[:d]])
        return y

    expected = np.zeros((n, n), dtype=bool)
    for d in offsets:
        expected |= np.eye(n, k=d, dtype=bool)
    _assert_pattern(f, n, expected, seed)


@given(blocks=st.integers(1, 6), size=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_block_diagonal(blocks, size, seed):
    """Each block of ``size`` elements mixed by its own dense matrix (a stack of
    matrix-vector products), nonlinearly."""
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.5, 1.5, (blocks, size, size))
    n = blocks * size

    def f(x):
        X = np.tanh(x.reshape(blocks, size))
        return np.matmul(W, X[:, :, None])[:, :, 0].ravel() * np.cos(x)

    expected = np.kron(np.eye(blocks, dtype=bool), np.ones((size, size), dtype=bool))
    _assert_pattern(f, n, expected, seed)


@given(n=st.integers(2, 30), seed=st.integers(0, 2**16))
def test_arrow(n, seed):
    """The first output depends on every input, every output on the first input and
    its own: an arrow (first row, first column, diagonal)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 1.5, n)

    def f(x):
        head = np.sum(c * x ** 2, keepdims=True)
        return np.concatenate([head, np.sin(x[1:]) * x[0]])

    expected = np.eye(n, dtype=bool)
    expected[0, :] = expected[:, 0] = True
    _assert_pattern(f, n, expected, seed)


@given(m=st.integers(1, 25), n=st.integers(1, 25), density=st.floats(0.05, 0.5),
       seed=st.integers(0, 2**16))
def test_random_pattern(m, n, density, seed):
    """tanh(A @ sin(x)) for a constant A with random non-zeros: A's pattern."""
    A = sp.random(m, n, density=density, random_state=seed, format="csr").toarray()
    A[A != 0] += 0.5  # no tiny entries

    def f(x):
        return np.tanh(A @ np.sin(x))

    _assert_pattern(f, n, A != 0, seed)


def test_a_miss_is_caught(monkeypatch):
    """The checks can fail: a detection that drops an entry (the last dependency of the
    first output of a program whose pattern is exact) is reported as a MISS."""
    seed = next(s for s in range(50) if program(s).exact)
    real = dependencies

    def dropping(f: Any, args: Any, argnums: Any = 0) -> Any:
        found = real(f, args, argnums)
        P = found.pattern.tolil()
        P[0, P.rows[0][-1]] = False
        found.pattern = P.tocsr()
        return found

    monkeypatch.setattr(sys.modules[__name__], "dependencies", dropping)
    with pytest.raises(AssertionError, match="MISS"):
        _check(program(seed), seed)
