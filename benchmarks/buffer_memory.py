"""Peak memory of ``grad`` through a traced buffer written once per step.

    python benchmarks/buffer_memory.py [--steps 250 500 1000 2000] [--nx 201] [--figure PATH]

Each configuration runs in a fresh subprocess and reports its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``): ``grad`` of the loop with the history
buffer (``history[n + 1] = u`` each step), the same loop without it, and the plain NumPy
run with the history (the floor: the buffer itself). Before 2026-12-06 each write kept a
buffer-sized mask on the tape, so the peak grew with the square of the steps; a write now
keeps what it wrote, and the peak grows linearly. BLAS threads are pinned (as in
benchmarks/run.py) and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BLAS_THREADS = os.environ.setdefault("OMP_NUM_THREADS", "1")
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, resource, sys, time
import numpy as np
import dualrev as dr

mode, nt, nx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def step(u):
    return u + 0.1 * (np.roll(u, 1) - 2.0 * u + np.roll(u, -1)) - 0.01 * u ** 3

def with_history(u0):
    u = u0
    history = np.zeros_like(u, shape=(nt + 1, nx))
    history[0] = u
    for n in range(nt):
        u = step(u)
        history[n + 1] = u
    return np.sum(history ** 2)

def without_history(u0):
    u = u0
    total = np.sum(u ** 2)
    for n in range(nt):
        u = step(u)
        total = total + np.sum(u ** 2)
    return total

u0 = np.sin(np.linspace(0.0, np.pi, nx))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if mode == "numpy":
    value = with_history(u0)
elif mode == "history":
    value = dr.grad(with_history)(u0)
else:
    value = dr.grad(without_history)(u0)
t = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mb": peak / 1024, "base_mb": base / 1024, "seconds": t}))
"""


def run(mode: str, nt: int, nx: int) -> dict[str, float]:
    """One configuration in a fresh interpreter: its peak and import-time RSS in MB."""
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(nt), str(nx)],
                         capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--nx", type=int, default=201)
    ap.add_argument("--figure", default=None, help="save a PNG of peak MB against steps")
    args = ap.parse_args()
    import numpy as np
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; "
          f"BLAS threads {BLAS_THREADS}; nx = {args.nx}; peak RSS above the import")
    print(f"{'steps':>6} {'numpy MB':>9} {'grad, history MB':>17} {'grad, none MB':>14} "
          f"{'history/numpy':>14} {'grad s':>7}")
    rows = []
    t0 = time.perf_counter()
    for nt in args.steps:
        r = {m: run(m, nt, args.nx) for m in ("numpy", "history", "none")}
        mb = {m: r[m]["peak_mb"] - r[m]["base_mb"] for m in r}
        rows.append((nt, mb["numpy"], mb["history"], mb["none"]))
        print(f"{nt:>6} {mb['numpy']:>9.1f} {mb['history']:>17.1f} {mb['none']:>14.1f} "
              f"{mb['history'] / max(mb['numpy'], 0.1):>14.1f} {r['history']['seconds']:>7.2f}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        steps = [r[0] for r in rows]
        for k, label in ((2, "grad, history buffer"), (3, "grad, no buffer"),
                         (1, "NumPy, history buffer")):
            ax.plot(steps, [r[k] for r in rows], marker="o", label=label)
        ax.set_xlabel("steps (one buffer row written per step)")
        ax.set_ylabel("peak memory above import (MB)")
        ax.set_title(f"grad through a written buffer, nx = {args.nx}")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
