"""Memory and time of grad over an n-step loop: the plain tape against checkpointing.

    python benchmarks/checkpoint.py [--quick | --smoke] [--repeat 3] [--save FILE] [--plot PNG]

The loop is RK4 of the Lorenz-96 system (40 variables, forcing F: a chaotic ODE used in
data assimilation), ``loss(F) = sum(x_n ** 2)``, differentiated by ``dr.grad`` with
``dr.checkpoint_loop`` under three schedules: ``store_all`` (the Python loop on the
tape), ``revolve`` (default snapshots: the least with at most two re-runs per step,
about sqrt(2 n)) and ``segments`` (default length ceil(sqrt(n))). For n = 100, 1000,
10000 (``--quick``: 100, 1000; ``--smoke``: 10, 100) each row gives the peak of Python's
traced allocations during one grad (``tracemalloc``: NumPy's arrays included), the
states the schedule held, the runs of ``step``, the time (the least of ``--repeat`` runs,
the schedules alternating in one process, tracemalloc off) and its ratio to the plain
tape's, and the gradient's relative difference from the plain tape's. The exponent
``b`` of ``peak ~ n^b`` is fitted per schedule (least squares on the logs). BLAS threads
are pinned to one. ``--plot`` draws peak memory against n, log-log.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import tracemalloc
from datetime import datetime, timezone

BLAS_THREADS = os.environ.setdefault("OMP_NUM_THREADS", "1")
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

# the checkout's dualrev, wherever the command runs from
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import scipy  # noqa: E402

import dualrev as dr  # noqa: E402

SCHEDULES = ("store_all", "revolve", "segments")
DT = 0.01


def rhs(x: np.ndarray, F: float) -> np.ndarray:
    """Lorenz-96: dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F."""
    return (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1) - x + F


def step(x: np.ndarray, F: float) -> np.ndarray:
    k1 = rhs(x, F)
    k2 = rhs(x + 0.5 * DT * k1, F)
    k3 = rhs(x + 0.5 * DT * k2, F)
    k4 = rhs(x + DT * k3, F)
    return x + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


X0 = 8.0 + 0.5 * np.sin(np.arange(40.0))


def gradient(n: int, schedule: str, calls: list[int] | None = None) -> float:
    def counted(x, F):
        if calls is not None:
            calls[0] += 1
        return step(x, F)

    def loss(F):
        return np.sum(dr.checkpoint_loop(counted, X0, n, F, schedule=schedule) ** 2)
    return dr.grad(loss)(8.0)


def peak_bytes(n: int, schedule: str) -> int:
    tracemalloc.start()
    try:
        gradient(n, schedule)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def held_states(n: int, schedule: str) -> int:
    """What the schedule holds besides one recorded stretch: snapshots, or n/m states."""
    if schedule == "store_all":
        return n
    if schedule == "segments":
        m = int(np.ceil(np.sqrt(n)))
        return -(-n // m)
    s = 1
    while (s + 2) * (s + 1) // 2 < n:
        s += 1
    return s


def measure(ns: list[int], repeat: int) -> list[dict]:
    rows = []
    for n in ns:
        times: dict[str, float] = {s: float("inf") for s in SCHEDULES}
        grads: dict[str, float] = {}
        for _ in range(repeat):  # the schedules alternate, so load hits them alike
            for s in SCHEDULES:
                t0 = time.perf_counter()
                grads[s] = gradient(n, s)
                times[s] = min(times[s], time.perf_counter() - t0)
        for s in SCHEDULES:
            calls = [0]
            gradient(n, s, calls)
            rows.append({"n": n, "schedule": s, "peak": peak_bytes(n, s),
                         "held": held_states(n, s), "calls": calls[0], "time": times[s],
                         "ratio": times[s] / times["store_all"],
                         "diff": abs(grads[s] - grads["store_all"]) / abs(grads["store_all"])})
            print(f"n={n:6d} {s:10s} peak {rows[-1]['peak'] / 1e6:9.3f} MB  "
                  f"steps run {calls[0]:7d}  {times[s]:8.3f} s  "
                  f"x{rows[-1]['ratio']:.2f}  rel.diff {rows[-1]['diff']:.1e}", flush=True)
    return rows


def exponents(rows: list[dict]) -> dict[str, float]:
    out = {}
    for s in SCHEDULES:
        pts = [(r["n"], r["peak"]) for r in rows if r["schedule"] == s]
        x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
        out[s] = float(np.polyfit(x, y, 1)[0])
    return out


def environment() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}; BLAS threads {BLAS_THREADS}")


def table(rows: list[dict], fits: dict[str, float], mode: str) -> str:
    lines = [
        "# Checkpointing: grad over an n-step loop, plain tape against checkpointing",
        "",
        f"Machine: {environment()}; mode {mode}; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "Loop: RK4 of Lorenz-96 (40 variables), grad of sum(x_n^2) in F, by "
        "`dr.checkpoint_loop`. Peak: tracemalloc's peak during one grad (NumPy arrays "
        "included). Held: states kept besides one recorded stretch (revolve: snapshots; "
        "segments: n/m stored states, plus an m-step tape). Time: least of the repeats, "
        "schedules alternating in one process, tracemalloc off (a shared 2-core machine: "
        "the ratios are what to read). Rel. diff: |g - g_plain| / |g_plain|.",
        "",
        "| n | schedule | peak MB | held states | steps run | seconds | time / plain | rel. diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['n']} | {r['schedule']} | {r['peak'] / 1e6:.3f} | {r['held']} | "
                     f"{r['calls']} | {r['time']:.3f} | {r['ratio']:.2f} | {r['diff']:.1e} |")
    lines += ["", "Fitted exponent b of peak ~ n^b (least squares on the logs): "
              + ", ".join(f"{s} {b:.2f}" for s, b in fits.items()) + ".", ""]
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for s, marker in zip(SCHEDULES, "osd", strict=True):
        pts = [(r["n"], r["peak"] / 1e6) for r in rows if r["schedule"] == s]
        ax.loglog([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=s)
    ns = sorted({r["n"] for r in rows})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("steps n")
    ax.set_ylabel("peak memory of grad (MB)")
    ax.set_title("grad over an RK4 loop (Lorenz-96, 40 variables)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 100, 1000")
    ap.add_argument("--smoke", action="store_true", help="n = 10, 100 (seconds)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--save", help="write the markdown table here")
    ap.add_argument("--plot", help="save the log-log figure here (PNG)")
    a = ap.parse_args(argv)
    ns = [10, 100] if a.smoke else [100, 1000] if a.quick else [100, 1000, 10000]
    mode = "smoke" if a.smoke else "quick" if a.quick else "full"
    rows = measure(ns, a.repeat)
    fits = exponents(rows)
    text = table(rows, fits, mode)
    print(text)
    if a.save:
        with open(a.save, "w") as fh:
            fh.write(text)
    if a.plot:
        plot(rows, a.plot)
    return rows


if __name__ == "__main__":
    main()
