"""Two checkouts of dualrev in one process, interleaved: the dynamic rows of
benchmarks/run.py's workloads timed for each, and the median of the per-round ratios
(this checkout / the other). On a shared, loaded machine the table of run.py drifts by
2-4x between runs; timings taken in alternation in one process share the load, so their
ratio is what can be compared.

    python benchmarks/ab.py /path/to/other/checkout [--rounds 25] [--only jacrev,hessian]

The other checkout's package is loaded under the name ``dualrev_other``; the two never
trace the same call. Rows: scalar loop (grad of 10^3 steps of sin), rosen n=10 and 10^5,
jacrev/jacfwd/jacobian of tanh(W x) n=20, hessian MLP n=20, value_and_grad rosen n=100,
and Tape.process alone (one np.sin on a traced array).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent.parent


def load(name: str, package: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = mod
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


W = np.random.default_rng(0).standard_normal((20, 20)) / 4


def loop(y: Any) -> Any:
    for _ in range(1000):
        y = np.sin(y) * 1.0001 + 0.001
    return y


def rosen(x: Any) -> Any:
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def mlp(x: Any) -> Any:
    return np.sum(np.tanh(W @ np.tanh(W @ x)))


def tanh_wx(v: Any) -> Any:
    return np.tanh(W @ v)


def process_only(d: Any) -> Any:
    """One recorded np.sin on a traced array, the Tape.process path alone."""
    rev, tr = sys.modules[d.__name__ + ".reverse"], sys.modules[d.__name__ + ".tracer"]

    def run(x: Any) -> Any:
        tape = rev.Tape(tr.new_level())
        t = tape.input(x)
        for _ in range(100):
            np.sin(t)
        tape.finish()
        return 0.0
    return run


WORK = [("grad scalar loop 1e3", lambda d: d.grad(loop), 0.5, 3),
        ("grad rosen n=10", lambda d: d.grad(rosen), np.linspace(0.1, 0.9, 10), 300),
        ("grad rosen n=1e5", lambda d: d.grad(rosen), np.linspace(0, 1, 100_000), 5),
        ("jacrev tanh(Wx) n=20", lambda d: d.jacrev(tanh_wx), np.linspace(-1, 1, 20), 200),
        ("jacfwd tanh(Wx) n=20", lambda d: d.jacfwd(tanh_wx), np.linspace(-1, 1, 20), 200),
        ("jacobian tanh(Wx) n=20", lambda d: d.jacobian(tanh_wx), np.linspace(-1, 1, 20), 200),
        ("hessian MLP n=20", lambda d: d.hessian(mlp), np.linspace(-1, 1, 20), 50),
        ("value_and_grad rosen n=100", lambda d: d.value_and_grad(rosen),
         np.linspace(0, 1, 100), 300),
        ("Tape.process (100 x np.sin)", process_only, np.ones(3), 20)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", help="the other checkout (its dualrev/ package is compared)")
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--only", help="comma-separated substrings of the row names")
    args = ap.parse_args()
    other = load("dualrev_other", Path(args.other).resolve() / "dualrev")
    sys.path.insert(0, str(HERE))
    import dualrev as this

    gc.disable()  # (the transforms pause it anyway; a pause must not land in one side)
    print(f"this: {Path(this.__file__).parent}  other: {Path(other.__file__).parent}")
    for name, make, arg, n in WORK:
        if args.only and not any(o in name for o in args.only.split(",")):
            continue
        fa, fb = make(other), make(this)
        ta: list[float] = []
        tb: list[float] = []
        ratios = []
        for r in range(args.rounds):
            for f, acc in ((fa, ta), (fb, tb)) if r % 2 else ((fb, tb), (fa, ta)):
                t0 = time.perf_counter()
                for _ in range(n):
                    f(arg)
                acc.append((time.perf_counter() - t0) / n)
            ratios.append(tb[-1] / ta[-1])
        q = statistics.quantiles(ratios, n=4)
        print(f"{name:28s} other {min(ta) * 1e6:9.1f} us  this {min(tb) * 1e6:9.1f} us  "
              f"median ratio {statistics.median(ratios):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f})")


if __name__ == "__main__":
    main()
