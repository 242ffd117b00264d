"""Sparse Jacobians and Hessians at n = 10^3 .. 10^6: structural detection, colouring and
warm evaluation, against plain NumPy f(x), a hand-written ``scipy.sparse`` Jacobian, the
dense ``dr.jacobian``/``dr.hessian`` (where they fit), the old numeric detector and
CasADi (where it installs).

    python benchmarks/sparse_derivatives.py                # full table, n = 10^3 .. 10^6
    python benchmarks/sparse_derivatives.py --quick        # n <= 10^5, fewer repeats
    python benchmarks/sparse_derivatives.py --smoke        # n = 10^3 only (the test suite)
    python benchmarks/sparse_derivatives.py --save FILE.md # also write the tables as markdown

Problems (each written once in plain NumPy):

- ``broyden``: Broyden's tridiagonal residual (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1,
  a banded Jacobian;
- ``bratu2d``: the 2-D Bratu residual -Δu - λ e^u on an N x N grid (N = round(sqrt(n))),
  the 5-point stencil by slicing a padded array;
- ``rosenbrock``: the chained Rosenbrock objective, its sparse Hessian (tridiagonal).

Columns: ``detect`` is one run of ``dr.sparse.jacobian_sparsity`` (``hessian_sparsity``
for the Hessian), ``colour`` the colouring of that pattern (``colour_columns``;
``colour_symmetric``, a star colouring, for the Hessian), ``colours`` its colours,
``prepare`` the whole one-off work of ``dr.sparse.jacobian(f).prepare(x)`` (detection,
the colourings ``mode="auto"`` compares, the recovery's gather; these three the best of 3
runs), ``mode`` the direction it chose, ``warm`` a later call (median of repeated
calls). Ratios are measured in the same process, in alternating blocks (``paired``):
against NumPy's f(x) and against a hand-written sparse Jacobian built with ``sp.diags``
(the target the issue names). Every sparse result is checked against the hand-written
one (and the dense transform where it runs) before it is timed. BLAS threads are pinned
to one before NumPy loads, and recorded.
CasADi: the same function written with ``casadi.SX``; ``casadi sparsity`` is
``jacobian_sparsity`` of the built expression (building it is ``casadi build``),
``casadi J`` a warm call of ``Function([x], [jacobian(f, x)])`` (returning CasADi's own
sparse ``DM``; the conversion to SciPy is not counted).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# BLAS threads pinned before NumPy loads its BLAS (the table records the setting)
BLAS_THREADS = os.environ.setdefault("OMP_NUM_THREADS", "1")
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dualrev as dr  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402
from dualrev.sparse import colour_columns, colour_symmetric, detect_sparsity  # noqa: E402

try:
    import casadi as ca
except ImportError:
    ca = None

LAM = 6.0  # Bratu's parameter, below the fold at about 6.81

# ------------------------------------------------------------------ the problems


def broyden(x: Any) -> Any:
    """Broyden's tridiagonal residual, zero beyond both ends."""
    left = np.concatenate([np.zeros(1), x[:-1]])
    right = np.concatenate([x[1:], np.zeros(1)])
    return (3 - 2 * x) * x - left - 2 * right + 1


def broyden_jac(x: np.ndarray) -> sp.csr_matrix:
    """The hand-written Jacobian of ``broyden``."""
    n = x.size
    return sp.diags([-np.ones(n - 1), 3 - 4 * x, -2 * np.ones(n - 1)], [-1, 0, 1],
                    format="csr")


def bratu2d(u: Any) -> Any:
    """-Δu - λ e^u on the interior of the unit square (u = 0 on the boundary), a 2-D
    array of the same shape as ``u``; the 5-point Laplacian by slicing the padded grid."""
    h = 1.0 / (u.shape[0] + 1)
    p = np.pad(u, 1)
    lap = (p[2:, 1:-1] + p[:-2, 1:-1] + p[1:-1, 2:] + p[1:-1, :-2] - 4 * u) / h**2
    return -lap - LAM * np.exp(u)


def laplacian_2d(N: int) -> sp.csr_matrix:
    """-Δ_h on the N x N interior grid (C order), Dirichlet boundary."""
    h = 1.0 / (N + 1)
    T = sp.diags([-np.ones(N - 1), 2 * np.ones(N), -np.ones(N - 1)], [-1, 0, 1])
    eye = sp.identity(N)
    return (sp.kron(T, eye) + sp.kron(eye, T)).tocsr() / h**2


def bratu2d_jac_factory(N: int) -> Callable[[np.ndarray], sp.csr_matrix]:
    """The hand-written Jacobian of ``bratu2d``: the constant Laplacian built once,
    the reaction's diagonal added per call."""
    A = laplacian_2d(N)
    return lambda u: (A - sp.diags(LAM * np.exp(u.ravel()))).tocsr()


def rosen(x: Any) -> Any:
    """The chained Rosenbrock function."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_hess(x: np.ndarray) -> sp.csr_matrix:
    """The hand-written (tridiagonal) Hessian of ``rosen``."""
    d = np.zeros_like(x)
    d[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    off = -400 * x[:-1]
    return sp.diags([off, d, off], [-1, 0, 1], format="csr")


def _casadi_broyden(n: int) -> tuple[Any, Any]:
    x = ca.SX.sym("x", n)
    z = ca.SX.zeros(1)
    return x, (3 - 2 * x) * x - ca.vertcat(z, x[:-1]) - 2 * ca.vertcat(x[1:], z) + 1


def _casadi_bratu2d(n: int) -> tuple[Any, Any]:
    N = round(np.sqrt(n))
    h = 1.0 / (N + 1)
    x = ca.SX.sym("x", N * N)
    U = ca.reshape(x, N, N)  # column-major: U[i, j] = x[i + N j], a transposed grid
    zr, zc = ca.SX.zeros(1, N), ca.SX.zeros(N, 1)
    up, down = ca.vertcat(zr, U[:-1, :]), ca.vertcat(U[1:, :], zr)
    left, right = ca.horzcat(zc, U[:, :-1]), ca.horzcat(U[:, 1:], zc)
    lap = (up + down + left + right - 4 * U) / h**2
    return x, ca.vec(-lap - LAM * ca.exp(U))


def _casadi_rosen(n: int) -> tuple[Any, Any]:
    x = ca.SX.sym("x", n)
    return x, ca.sum1(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


# ------------------------------------------------------------------ timing

REPEATS = {"full": 9, "quick": 5, "smoke": 2}
MODE = "full"


def once(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_time(fn: Callable[[], Any], budget: float = 0.5, cap: int | None = None) -> float:
    """Median of repeated warm calls (one warm-up first)."""
    first = once(fn)
    reps = max(3, min(int(budget / max(first, 1e-6)), cap or REPEATS[MODE] * 20))
    if MODE == "smoke":
        reps = 3
    return statistics.median(once(fn) for _ in range(reps))


def repeated(fn: Callable[[], Any], k: int | None = None) -> float:
    """The best of ``k`` one-off calls (detection, colouring, the dense transforms):
    each call does the whole work again; the best is the least disturbed by the other
    jobs on a shared machine."""
    return min(once(fn) for _ in range(k or min(REPEATS[MODE], 3)))


def paired(base: Callable[[], Any], fn: Callable[[], Any]) -> tuple[float, float]:
    """Seconds per call of ``fn`` and the median ratio to ``base``, timed in alternating
    blocks of about 50 ms each: the shared machine's drifting speed affects both alike."""
    fn()
    base()
    per_fn, per_base = max(once(fn), 1e-7), max(once(base), 1e-7)
    block = 0.005 if MODE == "smoke" else 0.05
    k_fn, k_base = max(1, int(block / per_fn)), max(1, int(block / per_base))
    times, ratios = [], []
    for _ in range(REPEATS[MODE]):
        tb = sum(once(base) for _ in range(k_base)) / k_base
        tf = sum(once(fn) for _ in range(k_fn)) / k_fn
        times.append(tf)
        ratios.append(tf / tb)
    return statistics.median(times), statistics.median(ratios)


def _same(A: Any, B: Any, what: str) -> None:
    A = sp.csr_matrix(A)
    B = sp.csr_matrix(B)
    scale = max(abs(B).max(), 1.0)
    err = abs(A - B).max() if A.nnz or B.nnz else 0.0
    if A.shape != B.shape or not err <= 1e-10 * scale:
        raise AssertionError(f"{what}: the sparse result differs from the reference "
                             f"(shapes {A.shape} {B.shape}, max difference {err:.2e})")


# ------------------------------------------------------------------ the rows

ROWS: list[dict[str, Any]] = []


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{v:.3g}"


def jacobian_row(problem: str, n: int, *, dense_max: int, casadi_max: int) -> dict[str, Any]:
    """One row for a residual problem at size ``n``."""
    rng = np.random.default_rng(n)
    if problem == "broyden":
        f, x = broyden, rng.uniform(-1, 1, n)
        hand = broyden_jac
        cas = _casadi_broyden
    else:
        N = round(np.sqrt(n))
        f, x = bratu2d, rng.uniform(0, 1, (N, N))
        hand = bratu2d_jac_factory(N)
        cas = _casadi_bratu2d
    n = x.size
    row: dict[str, Any] = {"problem": problem, "n": n}
    s = dr.sparse.jacobian_sparsity(f, x)
    row["detect"] = repeated(lambda: dr.sparse.jacobian_sparsity(f, x))
    assert s.structural, s.notes
    row["nnz"] = s.nnz
    colours = colour_columns(s.pattern)
    row["colour"] = repeated(lambda: colour_columns(s.pattern))
    row["colours"] = int(colours.max()) + 1
    row["prepare"] = repeated(lambda: dr.sparse.jacobian(f).prepare(x))
    J = dr.sparse.jacobian(f).prepare(x)
    row["mode"], row["seeds"] = J.mode, J.n_colours
    ref = hand(x)
    _same(J(x), ref, f"{problem} n={n}")
    _same(s.pattern, ref != 0, f"{problem} n={n} pattern")  # exact: no zero by chance
    row["f(x)"] = median_time(lambda: f(x))
    row["warm"], row["warm / f"] = paired(lambda: f(x), lambda: J(x))
    row["hand"], _ = paired(lambda: f(x), lambda: hand(x))
    _, row["warm / hand"] = paired(lambda: hand(x), lambda: J(x))
    if n <= dense_max:
        D = dr.jacobian(lambda v: f(v.reshape(x.shape)).ravel())
        _same(D(x.ravel()), ref, f"{problem} n={n} dense")
        row["dense J"] = repeated(lambda: D(x.ravel()), 3 if n < 5000 else 1)
        gc.collect()
    if ca is not None and n <= casadi_max:
        t0 = time.perf_counter()
        xs, expr = cas(n)
        row["casadi build"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pat = ca.jacobian_sparsity(expr, xs)
        row["casadi sparsity"] = time.perf_counter() - t0
        Jc = ca.Function("J", [xs], [ca.jacobian(expr, xs)])
        xc = x.ravel() if problem == "broyden" else x.T.ravel()  # CasADi's column order
        if n <= 10**5:  # CasADi agrees (its grid is the transposed one: compare traces)
            _same(Jc(xc).sparse(), _casadi_order(ref, x.shape) if problem != "broyden"
                  else ref, f"casadi {problem} n={n}")
        assert pat.nnz() == s.nnz
        row["casadi J"] = median_time(lambda: Jc(xc), cap=20)
        del Jc, expr, xs, pat
    gc.collect()
    return row


def _casadi_order(J: sp.csr_matrix, shape: tuple[int, ...]) -> sp.csr_matrix:
    """``J`` with rows and columns permuted from C order to CasADi's column order."""
    perm = np.arange(int(np.prod(shape))).reshape(shape).T.ravel()
    return J[perm][:, perm]


def hessian_row(n: int, *, dense_max: int, casadi_max: int) -> dict[str, Any]:
    """One row for the chained Rosenbrock Hessian at size ``n``."""
    x = np.random.default_rng(n).uniform(-1, 1, n)
    row: dict[str, Any] = {"problem": "rosenbrock hessian", "n": n}
    s = dr.sparse.hessian_sparsity(rosen, x)
    assert s.structural, s.notes
    row["detect"] = repeated(lambda: dr.sparse.hessian_sparsity(rosen, x))
    row["nnz"] = s.nnz
    colours = colour_symmetric(s.pattern)
    row["colour"] = repeated(lambda: colour_symmetric(s.pattern))
    row["colours"] = int(colours.max()) + 1
    row["prepare"] = repeated(lambda: dr.sparse.hessian(rosen).prepare(x))
    H = dr.sparse.hessian(rosen).prepare(x)
    row["mode"], row["seeds"] = "star", H.n_colours
    ref = rosen_hess(x)
    _same(H(x), ref, f"rosenbrock n={n}")
    _same(s.pattern, ref != 0, f"rosenbrock n={n} pattern")
    row["f(x)"] = median_time(lambda: rosen(x))
    row["warm"], row["warm / f"] = paired(lambda: rosen(x), lambda: H(x))
    row["hand"], _ = paired(lambda: rosen(x), lambda: rosen_hess(x))
    _, row["warm / hand"] = paired(lambda: rosen_hess(x), lambda: H(x))
    if n <= dense_max:
        D = dr.hessian(rosen)
        _same(D(x), ref, f"rosenbrock n={n} dense")
        row["dense J"] = repeated(lambda: D(x), 3 if n < 5000 else 1)
    if ca is not None and n <= casadi_max:
        t0 = time.perf_counter()
        xs, expr = _casadi_rosen(n)
        row["casadi build"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pat = ca.jacobian_sparsity(ca.gradient(expr, xs), xs)
        row["casadi sparsity"] = time.perf_counter() - t0
        Hc = ca.Function("H", [xs], [ca.hessian(expr, xs)[0]])
        if n <= 10**5:
            _same(Hc(x).sparse(), ref, f"casadi rosenbrock n={n}")
        assert pat.nnz() == s.nnz
        row["casadi J"] = median_time(lambda: Hc(x), cap=20)
        del Hc, expr, xs, pat
    gc.collect()
    return row


COLUMNS = ["problem", "n", "nnz", "detect", "colour", "colours", "prepare", "mode", "f(x)",
           "warm", "warm / f", "hand", "warm / hand", "dense J",
           "casadi build", "casadi sparsity", "casadi J"]

HEADERS = {"detect": "detect s", "colour": "colour s", "prepare": "prepare s",
           "f(x)": "numpy f(x) s", "warm": "warm J s", "warm / f": "warm / f(x)",
           "hand": "sp.diags J s", "warm / hand": "warm / sp.diags", "dense J": "dense J s",
           "casadi build": "casadi build s",
           "casadi sparsity": "casadi sparsity s", "casadi J": "casadi J s"}


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    lines = ["| " + " | ".join(HEADERS.get(c, c) for c in cols) + " |",
             "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return lines


def detection_before_after(sizes: Sequence[int]) -> list[str]:
    """The old numeric detector against structural detection on ``broyden``."""
    lines = ["| n | old numeric detector s | structural detect s | ratio |", "|---|---|---|---|"]
    for n in sizes:
        x = np.random.default_rng(n).uniform(-1, 1, n)
        _same(detect_sparsity(broyden, x), dr.sparse.jacobian_sparsity(broyden, x).pattern,
              f"old detector n={n}")
        old = repeated(lambda: detect_sparsity(broyden, x), 1)
        new = repeated(lambda: dr.sparse.jacobian_sparsity(broyden, x))
        lines.append(f"| {n} | {old:.3g} | {new:.3g} | {old / new:.0f} |")
        print(lines[-1], flush=True)
    return lines


def header() -> list[str]:
    cas = f", casadi {ca.__version__}" if ca is not None else ", casadi absent"
    return [f"Machine: {cpu_model()} ({platform.machine()}), "
            f"{os.cpu_count()} cores; Python {platform.python_version()}, numpy "
            f"{np.__version__}, scipy {scipy.__version__}{cas}; BLAS threads "
            f"{BLAS_THREADS}; mode {MODE}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark; returns its rows (the test suite runs ``--smoke``)."""
    global MODE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n <= 10^5, fewer repeats")
    ap.add_argument("--smoke", action="store_true", help="n = 10^3 only: seconds")
    ap.add_argument("--sizes", type=str, default=None,
                    help="comma-separated sizes (default 1e3,1e4,1e5,1e6)")
    ap.add_argument("--problems", type=str, default="broyden,bratu2d,rosenbrock")
    ap.add_argument("--dense-max", type=float, default=1e4)
    ap.add_argument("--casadi-max", type=float, default=1e6)
    ap.add_argument("--no-casadi", action="store_true")
    ap.add_argument("--save", type=str, default=None, help="write the tables as markdown")
    args = ap.parse_args(argv)
    MODE = "smoke" if args.smoke else "quick" if args.quick else "full"
    default = {"smoke": "1e3", "quick": "1e3,1e4,1e5", "full": "1e3,1e4,1e5,1e6"}[MODE]
    sizes = [int(float(v)) for v in (args.sizes or default).split(",")]
    casadi_max = -1 if args.no_casadi else int(args.casadi_max)
    dense_max = int(args.dense_max) if MODE != "smoke" else 1100
    old_sizes = {"smoke": [10**3], "quick": [10**3, 10**4],
                 "full": [10**3, 10**4, 3 * 10**4]}[MODE]
    lines = header()
    print(lines[0], flush=True)
    rows: list[dict[str, Any]] = []
    for problem in args.problems.split(","):
        for n in sizes:
            if problem == "rosenbrock":
                row = hessian_row(n, dense_max=min(dense_max, 10**3), casadi_max=casadi_max)
            else:
                row = jacobian_row(problem, n, dense_max=dense_max, casadi_max=casadi_max)
            rows.append(row)
            print("  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
    ROWS.extend(rows)
    lines += ["", *table(rows)]
    if "broyden" in args.problems:
        lines += ["", "Detection before/after (broyden):", "",
                  *detection_before_after(old_sizes)]
    print("\n".join(lines[1:]))
    if args.save:
        Path(args.save).write_text("\n".join(lines) + "\n")
    return rows


if __name__ == "__main__":
    main()
