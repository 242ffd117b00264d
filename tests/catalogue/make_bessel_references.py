"""Writes tests/catalogue/data/bessel_order_references.csv: high-precision values of the
first and second derivatives of jv, yv, iv, kv in their order v, and of hyp0f1 in b,
computed with mpmath (mpmath.diff of mpmath's besselj, bessely, besseli, besselk and
hyp0f1) at 50 and at 90 digits; a point is kept only where the two agree to 1e-25
(the derivative can be far smaller than the function: d/dv I_v(100) at v = 0 is
-K_0(100) ~ 5e-45 beside I_0(100) ~ 1e42). mpmath is not a test dependency: run this by hand
(``python tests/catalogue/make_bessel_references.py``) and commit the table.

The points cover the hard regions on purpose: small x (series), large x (oscillation),
v close to x (the transition, also at orders up to 300), integer and negative orders,
plus random points; every generator is seeded."""

from __future__ import annotations

import csv
import pathlib

import mpmath
import numpy as np

OUT = pathlib.Path(__file__).parent / "data" / "bessel_order_references.csv"
FUNCS = {"jv": mpmath.besselj, "yv": mpmath.bessely, "iv": mpmath.besseli,
         "kv": mpmath.besselk, "hyp0f1": lambda b, z: mpmath.hyp0f1(b, z)}


def points(name: str, rng: np.random.Generator) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    if name == "hyp0f1":  # (b, z)
        for b in (0.3, 0.5, 1.0, 1.5, 2.0, 3.7, 10.0, 25.5, -0.5, -2.3):
            for z in (-400.0, -50.0, -10.0, -1.0, -0.01, 0.01, 1.0, 10.0, 50.0, 400.0):
                pts.append((b, z))
        bs = rng.uniform(-5.0, 30.0, 100)
        zs = rng.choice([-1.0, 1.0], 100) * 10 ** rng.uniform(-3.0, 3.0, 100)
        return pts + [(float(b), float(z)) for b, z in zip(bs, zs, strict=True)
                      if abs(b - round(b)) > 1e-3 or b > 0]
    for v in (0.0, 0.5, 1.0, 2.0, 5.0, 20.0, 50.0, -0.5, -1.0, -2.0, -7.3, -30.2):
        for x in (1e-3, 0.1, 1.0, 7.5, 30.0, 100.0):
            pts.append((v, x))
    for v in (10.0, 30.0, 50.0, 12.5):  # the transition region x ~ v
        for r in (0.5, 0.8, 0.95, 1.0, 1.05, 1.2):
            pts.append((v, r * v))
    vs = rng.uniform(-50.0, 50.0, 130)
    xs = 10 ** rng.uniform(-3.0, 2.0, 130)
    pts += [(float(v), float(x)) for v, x in zip(vs, xs, strict=True)]
    # large orders, x in the transition region below them (J: Miller's recurrence)
    vs = rng.uniform(50.0, 300.0, 16) * rng.choice([-1.0, 1.0], 16)
    rs = rng.uniform(0.2, 1.1, 16)
    return pts + [(float(v), float(abs(v) * r)) for v, r in zip(vs, rs, strict=True)]


def main() -> None:
    rng = np.random.default_rng(20261206)
    rows = []
    dropped = 0
    for name, f in FUNCS.items():
        for v, x in points(name, rng):
            both = []
            for dps in (50, 90):
                with mpmath.workdps(dps):
                    both.append([f(v, x), mpmath.diff(lambda s, x=x, f=f: f(s, x), v, 1),
                                 mpmath.diff(lambda s, x=x, f=f: f(s, x), v, 2)])
            if any(abs(a - b) > 1e-25 * abs(b) for a, b in zip(*both, strict=True)):
                dropped += 1
                continue
            vals = [float(mpmath.re(q)) for q in both[1]]
            if all(np.isfinite(vals)) and all(abs(q) < 1e300 for q in vals):
                rows.append((name, repr(v), repr(x), *(repr(q) for q in vals)))
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("function", "v", "x", "value", "d1", "d2"))
        w.writerows(rows)
    print(f"{len(rows)} rows written to {OUT} ({dropped} points dropped: the precisions "
          "disagreed)")


if __name__ == "__main__":
    main()
