"""Logistic regression's derivatives over rows on a dask.distributed LocalCluster: rows
per second of dualrev's ``value_and_grad`` and ``hvp`` of the plain NumPy loss against
hand-written (dask-glm-style) Dask derivatives on the same cluster, and of the gradient
in memory (plain NumPy on this process) where the rows fit.

    python benchmarks/dask_glm.py                       # 10^6, 10^7 rows, chunks of 2.5 10^5
    python benchmarks/dask_glm.py --sizes 1e6,1e7,1e8   # and 10^8 rows (4.8 GB on the workers)
    python benchmarks/dask_glm.py --smoke               # 10^4 rows: seconds (the test suite)
    python benchmarks/dask_glm.py --save FILE.md        # also write the table as markdown

The problem, its data and both derivatives are those of
``examples/dask_logistic_regression.py`` (5 features, standard normal rows drawn on the
workers from a seeded generator per chunk, persisted before timing). One cluster serves
every size: 2 worker processes with 1 thread each (``--workers``). A timed call is what
one Newton-CG step pays: building the graph (for dualrev: tracing the loss) and one
``dask.compute`` of its result, the arrays gathered to this process; computations the
transform makes on its own are counted (``computes``). Each pair (dualrev, hand-written)
is timed in alternating order, ``--repeats`` times; the table gives median seconds, rows
per second (rows / seconds per call) and the median of the paired ratios. Before timing,
the two are compared at the same point (the script raises where they differ by more than
1e-10 relatively). BLAS threads are pinned to one before NumPy loads, here and in the
workers (they inherit the environment; the table records what the workers report). Peak
memory is each worker process's peak resident set (``ru_maxrss``) since the cluster
started, so a row also bounds the rows before it.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# BLAS threads pinned before NumPy loads its BLAS, here and (inherited) in the workers
BLAS_THREADS = os.environ.setdefault("OMP_NUM_THREADS", "1")
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

import numpy as np  # noqa: E402
import scipy  # noqa: E402

# run as a script, this folder leads sys.path, where a module could shadow a package that
# dask.array imports (a benchmarks/sparse.py once shadowed pydata `sparse`): the folder
# goes, and the repository comes, for the example's import
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
import dualrev as dr  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402
from examples.dask_logistic_regression import (  # noqa: E402
    CountingScheduler,
    dualrev_problem,
    handwritten_problem,
    make_data,
)

FEATURES = 5


def _worker_state() -> dict[str, Any]:
    """Run on each worker: its BLAS threads setting and peak resident set (bytes)."""
    return {"blas": os.environ.get("OMP_NUM_THREADS"),
            "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def paired(ours: Callable[[], Any], hand: Callable[[], Any],
           repeats: int) -> tuple[float, float, float]:
    """Median seconds of ``ours`` and ``hand`` and the median of their ratios, timed in
    pairs whose order alternates (a shared machine's drift affects both alike)."""
    ours(), hand()  # warm-up: imports, first graph optimisations
    t_ours, t_hand = [], []
    for r in range(repeats):
        if r % 2:
            t_hand.append(_timed(hand))
            t_ours.append(_timed(ours))
        else:
            t_ours.append(_timed(ours))
            t_hand.append(_timed(hand))
    ratios = [a / b for a, b in zip(t_ours, t_hand, strict=True)]
    return statistics.median(t_ours), statistics.median(t_hand), statistics.median(ratios)


def _relative(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def bench_size(client: Any, rows: int, chunks: int, repeats: int,
               numpy_max: int) -> list[dict[str, Any]]:
    """The rows of one size: value_and_grad, hvp (on the cluster), and the in-memory
    gradient where ``rows <= numpy_max``."""
    import dask
    from dask.distributed import wait

    X, y = client.persist(make_data(rows, chunks, FEATURES, seed=0))
    wait([X, y])
    ours, hand = dualrev_problem(X, y), handwritten_problem(X, y)
    w, v = np.random.default_rng(1).standard_normal((2, FEATURES)) * 0.3
    counter = CountingScheduler(client.get)
    out = []
    with dask.config.set(scheduler=counter):
        g_ours, g_hand, h_ours, h_hand = dask.compute(ours[0](w)[1], hand[0](w)[1],
                                                      ours[1](w, v), hand[1](w, v))
        for what, diff in (("gradients", _relative(g_ours, g_hand)),
                           ("HVPs", _relative(h_ours, h_hand))):
            if not diff < 1e-10:
                raise AssertionError(f"{what} differ at {rows} rows: {diff:.1e}")
        for name, trace, hand_graph in (
                ("value_and_grad", lambda: ours[0](w), lambda: hand[0](w)),
                ("hvp", lambda: (ours[1](w, v),), lambda: (hand[1](w, v),))):
            def o(trace=trace):
                return dask.compute(*trace())

            def h(hand_graph=hand_graph):
                return dask.compute(*hand_graph())

            start = counter.count
            o()
            computes = counter.count - start
            # the transform's own call: tracing the loss into a graph (and any
            # computation it makes on its own)
            call = statistics.median(_timed(trace) for _ in range(max(1, repeats // 2)))
            t_o, t_h, ratio = paired(o, h, repeats)
            out.append({"workload": name, "rows": rows, "chunk rows": chunks,
                        "dualrev s": t_o, "hand s": t_h, "dualrev rows/s": rows / t_o,
                        "hand rows/s": rows / t_h, "ratio": ratio, "computes": computes,
                        "dualrev call s": call})
    if rows <= numpy_max:
        Xn, yn = client.compute([X, y], sync=True)  # gathered to this process
        ours_np, hand_np = dualrev_problem(Xn, yn)[0], handwritten_problem(Xn, yn)[0]
        diff = _relative(ours_np(w)[1], hand_np(w)[1])
        if not diff < 1e-10:
            raise AssertionError(f"in-memory gradients differ at {rows} rows: {diff:.1e}")
        t_o, t_h, ratio = paired(lambda: ours_np(w), lambda: hand_np(w), repeats)
        out.append({"workload": "value_and_grad in memory (NumPy, 1 thread)", "rows": rows,
                    "chunk rows": rows, "dualrev s": t_o, "hand s": t_h,
                    "dualrev rows/s": rows / t_o, "hand rows/s": rows / t_h, "ratio": ratio,
                    "computes": 0, "dualrev call s": t_o})
        del Xn, yn
    states = client.run(_worker_state)
    peak = max(s["peak"] for s in states.values())
    for row in out:
        row["worker peak MB"] = peak / 2**20
        row["data MB"] = (X.nbytes + y.nbytes) / 2**20
    return out  # (the persisted chunks are released with the last reference to X, y)


def _commit() -> str:
    """The checkout's commit (the dualrev measured), or '?' outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=_HERE.parent,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def header(client: Any, workers: int, mode: str) -> list[str]:
    import dask
    import distributed

    blas = sorted({s["blas"] for s in client.run(_worker_state).values()})
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return [f"Machine: {cpu_model()} ({platform.machine()}), {os.cpu_count()} cores (shared); "
            f"Python {platform.python_version()}, numpy {np.__version__}, scipy "
            f"{scipy.__version__}, dask {dask.__version__}, distributed "
            f"{distributed.__version__}, dualrev {dr.__version__} at {_commit()}; LocalCluster "
            f"{workers} worker processes x 1 thread; BLAS threads {BLAS_THREADS} here, "
            f"{'/'.join(map(str, blas))} in the workers; load average {load} at the start; "
            f"mode {mode}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]


COLUMNS = ["workload", "rows", "chunk rows", "dualrev s", "hand s", "dualrev rows/s",
           "hand rows/s", "ratio", "computes", "dualrev call s", "worker peak MB", "data MB"]


def table(rows: list[dict[str, Any]]) -> list[str]:
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return (["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
            + ["| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |" for r in rows])


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark; returns its rows (the test suite runs ``--smoke``)."""
    from dask.distributed import Client, LocalCluster

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=str, default=None, help="rows, comma-separated")
    ap.add_argument("--chunks", type=float, default=None, help="rows per chunk (2.5e5)")
    ap.add_argument("--repeats", type=int, default=None, help="timed pairs per row (5)")
    ap.add_argument("--numpy-max", type=float, default=1e7,
                    help="the largest size also timed in memory")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="10^4 rows, 2 repeats: seconds")
    ap.add_argument("--save", type=str, default=None, help="write the table as markdown")
    args = ap.parse_args(argv)
    mode = "smoke" if args.smoke else "full"
    sizes = [int(float(s)) for s in (args.sizes or ("1e4" if args.smoke else "1e6,1e7"))
             .split(",")]
    chunks = int(args.chunks or (5e3 if args.smoke else 2.5e5))
    repeats = args.repeats or (2 if args.smoke else 5)
    rows: list[dict[str, Any]] = []
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        lines = header(client, args.workers, mode)
        print(lines[0], flush=True)
        for n in sizes:
            new = bench_size(client, n, min(chunks, n), repeats, int(args.numpy_max))
            for line in table(new)[2:]:
                print(line, flush=True)
            rows += new
    lines += ["", *table(rows)]
    if args.save:
        Path(args.save).write_text("\n".join(lines) + "\n")
    return rows


if __name__ == "__main__":
    main()
