"""The 2-D Bratu problem -Δu = λ e^u on the unit square, u = 0 on the boundary, on an
N x N grid of interior points (N = 317 by default: n = 100 489 unknowns), solved three
ways with sparse derivatives that dualrev finds by itself:

(a) ``dualrev.optimize.least_squares`` on the residual -Δ_h u - λ e^u, its sparse
    Jacobian detected structurally (``sparsity="auto"``) and coloured: 5 colours, so
    each Jacobian is one forward pass of 5 tangents, whatever N;
(b) ``dualrev.optimize.minimize(method="newton-cg", hess="sparse")`` of the energy
    h² Σ (½|∇_h u|² - λ e^u), whose gradient is h² times the residual, with its exact
    sparse Hessian (``dr.sparse.hessian``: the same 5-point pattern, 5 colours of a star
    colouring); ``--method trust-constr`` takes the same Hessian (the default for the
    reaction-diffusion problem);
(c) Newton's method written out: ``scipy.sparse.linalg.spsolve`` with
    ``dr.sparse.jacobian`` of the residual.

SciPy's least_squares solves each step with ``lsmr`` (no preconditioner), whose
iterations grow like N² on the Laplacian: (a) runs on Bratu up to ``--lsq-max`` unknowns
(2·10^4). ``--problem reaction-diffusion`` solves the steady state of
u_t = D Δu - u - u³ + s (D = 10^-4, the same stencil, better conditioned) all three ways
at any size. The residuals and energies are plain NumPy: the Laplacian is slicing of
``np.pad(u, 1)``. The script checks what it prints (the solutions agree, each residual is
small, the detected patterns are the 5-point stencil) and exits with status 1 otherwise.

    python examples/pde_bratu_2d.py              # Bratu, n = 317^2 = 100 489 unknowns
    python examples/pde_bratu_2d.py --problem reaction-diffusion
    python examples/pde_bratu_2d.py --n 2500     # a 50 x 50 grid, a few seconds
    python examples/pde_bratu_2d.py --figures docs/figures   # also the pictures
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import dualrev as dr

LAM = 6.0  # below the fold (λ* ≈ 6.81): the lower solution branch is a minimum of the energy
D = 1e-4  # the reaction-diffusion problem's diffusivity: a boundary layer of ~3 cells at N = 317


def residual(u: Any, lam: float = LAM) -> Any:
    """Bratu: -Δ_h u - λ e^u on the N x N interior grid (a 2-D array like ``u``)."""
    h = 1.0 / (u.shape[0] + 1)
    p = np.pad(u, 1)  # the zero Dirichlet boundary around the grid
    lap = (p[2:, 1:-1] + p[:-2, 1:-1] + p[1:-1, 2:] + p[1:-1, :-2] - 4 * u) / h**2
    return -lap - lam * np.exp(u)


def energy(u: Any, lam: float = LAM) -> Any:
    """Bratu: h² Σ (½ |∇_h u|² - λ e^u); its gradient is h² * residual(u)."""
    h = 1.0 / (u.shape[0] + 1)
    p = np.pad(u, 1)
    dx = (p[1:-1, 1:] - p[1:-1, :-1]) / h  # differences across every vertical edge
    dy = (p[1:, 1:-1] - p[:-1, 1:-1]) / h
    return h**2 * (0.5 * (np.sum(dx**2) + np.sum(dy**2)) - lam * np.sum(np.exp(u)))


def source(N: int) -> np.ndarray:
    """The reaction-diffusion problem's source s(x, y) = 10 sin²(πx) sin(2πy)."""
    t = np.linspace(0.0, 1.0, N + 2)[1:-1]
    return 10 * np.sin(np.pi * t)[:, None] ** 2 * np.sin(2 * np.pi * t)[None, :]


def rd_residual(u: Any) -> Any:
    """The steady state of u_t = D Δu - u - u³ + s: -D Δ_h u + u + u³ - s."""
    h = 1.0 / (u.shape[0] + 1)
    p = np.pad(u, 1)
    lap = (p[2:, 1:-1] + p[:-2, 1:-1] + p[1:-1, 2:] + p[1:-1, :-2] - 4 * u) / h**2
    return -D * lap + u + u**3 - source(u.shape[0])


def rd_energy(u: Any) -> Any:
    """h² Σ (D/2 |∇_h u|² + u²/2 + u⁴/4 - s u), convex; its gradient is h² * rd_residual."""
    h = 1.0 / (u.shape[0] + 1)
    p = np.pad(u, 1)
    dx = (p[1:-1, 1:] - p[1:-1, :-1]) / h
    dy = (p[1:, 1:-1] - p[:-1, 1:-1]) / h
    return h**2 * (0.5 * D * (np.sum(dx**2) + np.sum(dy**2))
                   + np.sum(0.5 * u**2 + 0.25 * u**4 - source(u.shape[0]) * u))


PROBLEMS = {"bratu": (residual, energy, f"-Δu = λ e^u, λ = {LAM}"),
            "reaction-diffusion": (rd_residual, rd_energy,
                                   f"-D Δu + u + u³ = s, D = {D}")}


def stencil_pattern(N: int) -> sp.csr_matrix:
    """The 5-point stencil's pattern on the N x N grid (C order), written by hand."""
    T = sp.diags([np.ones(N - 1), np.ones(N), np.ones(N - 1)], [-1, 0, 1])
    eye = sp.identity(N)
    return ((sp.kron(T, eye) + sp.kron(eye, T)) != 0).tocsr()


def _since(t0: tuple[float, float]) -> str:
    """Wall and CPU seconds since ``t0 = _now()`` (the CPU time tells a loaded
    machine's waiting apart)."""
    return (f"{time.perf_counter() - t0[0]:7.2f} s ({time.process_time() - t0[1]:.2f} s "
            "CPU)")


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def newton(residual: Any, u0: np.ndarray, tol: float,
           trace: list[float]) -> tuple[np.ndarray, int]:
    """Newton's method on ``residual`` with its sparse Jacobian and a sparse direct
    solve; returns the solution and the iterations."""
    J = dr.sparse.jacobian(residual)
    u = u0.copy()
    for it in range(30):
        r = residual(u)
        trace.append(float(np.linalg.norm(r)))
        if trace[-1] < tol:
            return u, it
        u = u - spla.spsolve(J(u).tocsc(), r.ravel()).reshape(u.shape)
    return u, it


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=317**2,
                    help="unknowns (rounded to a square grid N x N)")
    ap.add_argument("--problem", choices=sorted(PROBLEMS), default="bratu")
    ap.add_argument("--method", choices=("newton-cg", "trust-constr"), default=None,
                    help="the method of (b), both with the sparse Hessian (default: "
                         "newton-cg for bratu, trust-constr for reaction-diffusion)")
    ap.add_argument("--lsq-max", type=int, default=20_000,
                    help="run least_squares on Bratu up to this n (its lsmr steps grow "
                         "like N^4 on the Laplacian)")
    ap.add_argument("--figures", type=str, default=None,
                    help="a folder to write the pictures into (needs matplotlib)")
    args = ap.parse_args(argv)
    residual, energy, equation = PROBLEMS[args.problem]
    # Newton-CG's line search compares energies: on the reaction-diffusion energy at 10^5
    # unknowns it stops at a relative residual of 1e-4 (precision loss), where
    # trust-constr's CG steps reach 1e-8 in seconds; on Bratu trust-constr's CG is the
    # slow one (its Laplacian's condition number, ~4e4 at N = 317)
    args.method = args.method or ("newton-cg" if args.problem == "bratu" else "trust-constr")
    N = max(3, round(np.sqrt(args.n)))
    n = N * N
    h = 1.0 / (N + 1)
    u0 = np.zeros((N, N))
    r0 = float(np.linalg.norm(residual(u0)))
    tol = 1e-10 * r0  # Newton's stopping test on |residual|_2
    print(f"{args.problem}: {equation} on the unit square, u = 0 on the boundary, "
          f"grid {N} x {N}: n = {n} unknowns")
    ok = True

    # the pattern, found once by running the residual on Pattern values
    t0 = _now()
    sparsity = dr.sparse.jacobian_sparsity(residual, u0)
    t_detect = _since(t0).strip()
    t0 = _now()
    colours = dr.sparse.colour_columns(sparsity.pattern)
    t_colour = _since(t0).strip()
    exact = (sparsity.pattern != stencil_pattern(N)).nnz == 0
    print(f"sparsity: {sparsity.nnz} entries ({sparsity.nnz / n:.2f} a row), structural = "
          f"{sparsity.structural}, the 5-point stencil = {exact}; detected in "
          f"{t_detect}, {int(colours.max()) + 1} colours in {t_colour}")
    ok &= exact and sparsity.structural
    Hs = dr.sparse.hessian_sparsity(energy, u0)
    print(f"the energy's Hessian: {Hs.nnz} entries, the same pattern = "
          f"{(Hs.pattern != sparsity.pattern).nnz == 0}")
    ok &= (Hs.pattern != sparsity.pattern).nnz == 0

    # (c) Newton written out: the reference, and the convergence trace
    trace_newton: list[float] = []
    t0 = _now()
    u_newton, it_newton = newton(residual, u0, tol, trace_newton)
    print(f"{'(c) Newton + spsolve:':30s}{_since(t0)}, {it_newton} iterations, "
          f"|residual| = {trace_newton[-1]:.1e}, max |u| = {np.abs(u_newton).max():.6f}")
    results = {"n": n, "colours": int(colours.max()) + 1, "newton": trace_newton[-1]}
    scale = float(np.max(np.abs(u_newton)))

    # (a) least squares on the residual, its Jacobian sparse by structural detection
    trace_lsq: list[float] = []
    if args.problem == "bratu" and n > args.lsq_max:
        print(f"(a) least_squares: skipped above n = {args.lsq_max} for Bratu: SciPy's "
              "trf solves each step with lsmr, unpreconditioned, whose iterations grow "
              "like N^2 on the Laplacian (--lsq-max to run it)")
    else:
        def traced_residual(u: Any) -> Any:
            r = residual(u)
            if isinstance(r, np.ndarray):  # a plain evaluation, not a derivative pass
                trace_lsq.append(float(np.linalg.norm(r)))
            return r

        t0 = _now()
        res_a = dr.optimize.least_squares(
            traced_residual, u0, sparsity="auto", method="trf", tr_solver="lsmr",
            tr_options={"regularize": False, "atol": 1e-10, "btol": 1e-10},
            ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=100)
        t_lsq = _since(t0)
        r_lsq = float(np.linalg.norm(residual(res_a.x)))
        d_a = float(np.max(np.abs(res_a.x - u_newton))) / scale
        jac = res_a.sparse_jacobian
        J1 = dr.sparse.jacobian(residual).prepare(u0)
        J1(u0)
        t0 = _now()
        J1(res_a.x)
        print(f"{'(a) least_squares (trf/lsmr):':30s}{t_lsq}, {res_a.nfev} residuals, "
              f"{res_a.njev} sparse Jacobians of {jac.n_colours} colours (one: "
              f"{_since(t0).strip()}), |residual| = {r_lsq:.1e}, max |u_a - u_c| / "
              f"max |u_c| = {d_a:.1e}")
        ok &= _check("least_squares", r_lsq / r0, d_a, 1e-9, 1e-7)
        results.update(lsq=r_lsq, d_a=d_a)

    # (b) Newton minimisation of the energy with the sparse exact Hessian
    trace_min: list[float] = [r0]  # the callback adds one after each iteration

    def callback(x: np.ndarray, state: Any = None) -> None:
        trace_min.append(float(np.linalg.norm(residual(x.reshape(N, N)))))

    t0 = _now()
    options = ({"gtol": 1e-10 * h**2, "xtol": 1e-14, "maxiter": 300}
               if args.method == "trust-constr" else {"xtol": 1e-13, "maxiter": 100})
    res_b = dr.optimize.minimize(energy, u0, method=args.method, hess="sparse",
                                 callback=callback, options=options)
    t_min = _since(t0)
    r_min = float(np.linalg.norm(residual(res_b.x)))
    d_b = float(np.max(np.abs(res_b.x - u_newton))) / scale
    print(f"{f'(b) minimize({args.method}):':30s}{t_min}, {res_b.nit} iterations, "
          f"{res_b.njev} gradients, {res_b.nhev} sparse Hessians of "
          f"{res_b.sparse_hessian.n_colours} colours, |residual| = {r_min:.1e}, "
          f"max |u_b - u_c| / max |u_c| = {d_b:.1e}")
    # a minimisation resolves the gradient to about sqrt(machine epsilon) of its scale:
    # its line search compares energies, which differ by |gradient|² near the minimum
    ok &= _check("minimize", r_min / r0, d_b, 1e-5, 1e-4)
    ok &= _check("Newton", trace_newton[-1] / r0, 0.0, 1e-9, 0.0)
    results.update(minimize=r_min, d_b=d_b)
    if args.figures:
        figures(Path(args.figures), args.problem, args.method, residual, u_newton, trace_newton,
                trace_lsq, trace_min)
    if not ok:
        sys.exit(1)
    return results


def _check(name: str, r: float, d: float, r_limit: float, d_limit: float) -> bool:
    """The residual ``r`` (relative to the initial one) is at most ``r_limit``, and the
    relative distance ``d`` to Newton's solution at most ``d_limit``."""
    if not (r <= r_limit and d <= d_limit):
        print(f"FAILED: {name}: |residual| / |initial residual| = {r:.1e} (at most "
              f"{r_limit:.0e}), relative distance to Newton's solution {d:.1e} (at most "
              f"{d_limit:.0e})")
        return False
    return True


def figures(folder: Path, problem: str, method: str, residual: Any, u: np.ndarray,
            newton_trace: list[float], lsq_trace: list[float], min_trace: list[float]) -> None:
    """The solution with the convergence traces, and the Jacobian's pattern on an 8 x 8
    grid coloured by the column colouring."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no pictures")
        return
    folder.mkdir(parents=True, exist_ok=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    im = a1.imshow(u, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
    fig.colorbar(im, ax=a1, shrink=0.85)
    a1.set_title(f"{problem}: u on the {u.shape[0]} x {u.shape[1]} grid")
    a1.set_xlabel("second coordinate (axis 1)")
    a1.set_ylabel("first coordinate (axis 0)")
    a2.semilogy(newton_trace, "o-", label="(c) Newton + spsolve")
    if lsq_trace:
        a2.semilogy(lsq_trace, "s-", ms=3, label="(a) least_squares: each residual")
    a2.semilogy(min_trace, ".-", label=f"(b) minimize({method}): each iteration")
    a2.set_xlabel("step")
    a2.set_ylabel("|residual|₂")
    a2.set_title(f"convergence, n = {u.size}")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / f"{problem}_solution.png", dpi=90)
    plt.close(fig)

    small = np.zeros((8, 8))
    P = dr.sparse.jacobian_sparsity(residual, small).pattern.tocoo()
    colours = dr.sparse.colour_columns(P)
    fig, ax = plt.subplots(figsize=(5.2, 5.2))
    ax.scatter(P.col, P.row, c=colours[P.col], cmap="tab10", vmin=0, vmax=9, s=12,
               marker="s")
    ax.set_xlim(-0.5, 63.5)
    ax.set_ylim(63.5, -0.5)
    ax.set_aspect("equal")
    ax.set_title(f"Jacobian pattern, 8 x 8 grid: {P.nnz} entries, "
                 f"{int(colours.max()) + 1} column colours", fontsize=10)
    ax.set_xlabel("column (input element, C order)")
    ax.set_ylabel("row (residual element)")
    fig.tight_layout()
    fig.savefig(folder / "bratu_pattern.png", dpi=90)
    plt.close(fig)
    print(f"wrote {folder / (problem + '_solution.png')} and {folder / 'bratu_pattern.png'}")


if __name__ == "__main__":
    main()
