"""What ``progress=`` costs: BFGS fits of about 10^4 cheap evaluations in all, with
progress off, on (a live terminal line, drawn to a string), and a callable recording
every iteration; the modes alternate within each round, in one process, and the median of
the per-round ratios is reported (the shared machine's load moves absolute times).

    python benchmarks/progress_overhead.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dualrev import optimize  # noqa: E402
from dualrev.progress import ProgressDisplay  # noqa: E402


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_value_and_grad(x):
    # NumPy's own value and gradient: the cheapest evaluation, the worst case for overhead
    d = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * d - 2.0 * (1 - x[:-1])
    g[1:] += 200.0 * d
    return np.sum(100.0 * d ** 2 + (1 - x[:-1]) ** 2), g


STARTS = [np.random.default_rng(seed).uniform(-1.5, 1.5, 10) for seed in range(400)]


def fits(progress, jac, target=10_000):
    """BFGS fits from the seeded starts until ``target`` evaluations; (seconds, nfev)."""
    nfev, t0 = 0, time.perf_counter()
    for x0 in STARTS:
        fun = rosen_value_and_grad if jac else rosen
        p = progress() if callable(progress) else progress
        res = optimize.minimize(fun, x0, method="BFGS", jac=jac or None, progress=p)
        nfev += res.nfev
        if nfev >= target:
            break
    return time.perf_counter() - t0, nfev


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    rounds = ap.parse_args().rounds
    modes = {"off": False,
             "terminal": lambda: ProgressDisplay(_Terminal(), notebook=False),
             "callable": lambda: [].append}
    for jac, label in ((None, "dualrev's value and gradient"),
                       (True, "NumPy's value and gradient (jac=True)")):
        ratios: dict[str, list[float]] = {"terminal": [], "callable": []}
        nfev = 0
        for _ in range(rounds):
            times = {}
            for name, progress in modes.items():
                times[name], nfev = fits(progress, jac)
            for name in ratios:
                ratios[name].append(times[name] / times["off"])
        print(f"{label}: {nfev} evaluations per run, off {times['off']:.2f} s (last round)")
        for name, r in ratios.items():
            q = np.percentile(r, [25, 50, 75])
            print(f"  {name:9s} / off: median {q[1]:.3f} (quartiles {q[0]:.3f}-{q[2]:.3f})")


if __name__ == "__main__":
    main()
