"""dualrev.debug_nans on against off, in one process and in alternation (the shared
machine's load cancels in the per-round ratios): ``python benchmarks/debug_nans.py``.
The mode off costs nothing by construction (the classes hold the functions of the
import); ``benchmarks/ab.py`` against another checkout measures that."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dualrev as dr  # noqa: E402
from dualrev import config  # noqa: E402

W = np.random.default_rng(0).standard_normal((20, 20)) / 4


def loop(y):
    for _ in range(1000):
        y = np.sin(y) * 1.0001 + 0.001
    return y


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def mlp(x):
    return np.sum(np.tanh(W @ np.tanh(W @ x)))


work = [("grad scalar loop 1e3", dr.grad(loop), 0.3, 3),
        ("grad rosen n=10", dr.grad(rosen), np.linspace(0.1, 1, 10), 50),
        ("grad rosen n=1e5", dr.grad(rosen), np.linspace(0.1, 1, 100000), 3),
        ("jacrev tanh(Wx) n=20", dr.jacrev(lambda v: np.tanh(W @ v)), np.ones(20), 50),
        ("hessian MLP n=20", dr.hessian(mlp), np.ones(20), 10)]
for name, f, x, n in work:
    ratios: list[float] = []
    toff: list[float] = []
    ton: list[float] = []
    for _ in range(10):
        for on in (False, True):
            config.set_debug_nans(on)
            t0 = time.perf_counter()
            for _ in range(n):
                f(x)
            t = (time.perf_counter() - t0) / n
            (ton if on else toff).append(t)
        ratios.append(ton[-1] / toff[-1])
    config.set_debug_nans(False)
    print(f"{name:24s} off {min(toff) * 1e6:9.1f} us  on {min(ton) * 1e6:9.1f} us  "
          f"median ratio on/off {statistics.median(ratios):.2f}")
