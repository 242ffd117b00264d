"""Every float64 case of the conformance harness (tests/conformance/specs.py) run with its
differentiable arguments on the host-guard double (tests/device_array.py), as a CuPy
array would be: the JVP and the VJP along the harness's random directions, compared with
the same run on NumPy arrays. Prints how many entries stay on the "device", how many
refuse clearly (a DualrevError), and where the others first meet the host (a host copy
or a NumPy constant mixed in), grouped by the line of dualrev that did it.

    python benchmarks/duck_scan.py [--show 15] [--dask]

With ``--dask`` the arguments are Dask arrays instead, under a scheduler that raises:
"computes" counts the cases where a transform computed something while it ran.

A survey, not a test: the pinned checks are tests/test_duck_arrays.py.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np

# the checkout's root instead of benchmarks/ (where a module could shadow a package Dask
# imports, as a benchmarks/sparse.py once shadowed pydata `sparse`)
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import dualrev as dr  # noqa: E402
from dualrev.errors import DualrevError  # noqa: E402
from tests.conformance.checks import Prepared  # noqa: E402
from tests.conformance.specs import CASES  # noqa: E402
from tests.device_array import HOST_COPIES, DeviceArray, device, host  # noqa: E402

_PASSING = ("catalogue/construction.py", "primitive.py")  # wrappers: name their caller


def _site(e: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "/dualrev/" in f.filename]
    for f in reversed(frames):
        name = f.filename.split("/dualrev/")[-1]
        if name not in _PASSING or f is frames[0]:
            return f"{name}:{f.lineno} ({f.name})"
    return "(outside dualrev)"


class _Computed(RuntimeError):
    pass


def _refuse(*args: object, **kwargs: object) -> None:
    raise _Computed("computed during the transform")


MOVE = {"to": device, "back": host, "type": DeviceArray}


def scan_case(case) -> tuple[str, str]:
    p = Prepared(case)
    if not p.diff or not p.leaves:
        return "skip", ""
    vs = p.random_like(p.leaves)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out0, t0 = dr.jvp(p.g, p.leaves, vs)
            _, pb0 = dr.vjp(p.g, *p.leaves)
            us = p.random_like(out0)
            c0 = pb0(tuple(us))
        except Exception:  # noqa: BLE001  (refused on NumPy too: not this survey's)
            return "skip", ""
        HOST_COPIES.clear()
        to = MOVE["to"]
        try:
            with MOVE["guard"]():
                dl = [to(x) if isinstance(x, np.ndarray) else x for x in p.leaves]
                out, t = dr.jvp(p.g, dl, [to(v) for v in vs])
                _, pb = dr.vjp(p.g, *dl)
                c = pb(tuple(to(np.asarray(u)) for u in us))
        except _Computed as e:
            return "computes", _site(e)
        except DualrevError as e:
            return "refused", f"{type(e).__name__}: {str(e)[:90]}"
        except Exception as e:  # noqa: BLE001
            return "host", _site(e)
    for got, want in ((t, t0), (c, c0)):
        for g, w in zip(got, want, strict=True):
            if not isinstance(g, MOVE["type"]):
                return "host", f"a {type(g).__name__} came back"
            if not np.allclose(MOVE["back"](g), w, rtol=1e-8, atol=1e-10, equal_nan=True):
                return "WRONG", case.id
    return "ok", ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", type=int, default=15)
    ap.add_argument("--dask", action="store_true")
    args = ap.parse_args()
    MOVE["guard"] = contextlib.nullcontext
    if args.dask:
        import dask
        import dask.array as da

        MOVE.update(to=lambda x: da.from_array(np.asarray(x), chunks=2),
                    back=lambda g: g.compute(scheduler="sync"), type=da.Array,
                    guard=lambda: dask.config.set(scheduler=_refuse))
    outcomes: collections.Counter[str] = collections.Counter()
    entries: dict[str, set[str]] = collections.defaultdict(set)
    sites: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    wrong = []
    for case in CASES:
        if case.dtype != "float64" or case.kind != "diff":
            continue
        try:
            kind, why = scan_case(case)
        except Exception:  # noqa: BLE001  (the case's own setup)
            continue
        outcomes[kind] += 1
        entries[kind].add(case.name)
        if kind in ("host", "computes"):
            sites[f"{kind}: {why}"] += 1
            examples.setdefault(f"{kind}: {why}", case.id)
        if kind == "WRONG":
            wrong.append(why)
    print("cases:", dict(outcomes))
    print("entries:", {k: len(v) for k, v in entries.items()})
    print("WRONG (a derivative that differs from NumPy's):", wrong or "none")
    print("first host contact (or compute), by site:")
    for site, n in sites.most_common(args.show):
        print(f"  {n:4d}  {site}  e.g. {examples[site]}")


if __name__ == "__main__":
    main()
