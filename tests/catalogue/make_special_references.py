"""Writes tests/catalogue/data/incomplete_references.json: derivatives of the regularised
incomplete gamma and beta functions (and of the inverses and Student's t cdf built on
them) in their shape parameters, computed with mpmath at 40 digits.

mpmath is not a test dependency: run this script by hand (``python
tests/catalogue/make_special_references.py``, a few minutes) after changing the points;
the tests read the committed table. Each function is differentiated on the side of the
mean where it is small (P or Q, I or 1 - I), so that no digit cancels, and the
incomplete beta function is evaluated as x**a (1-x)**b / (a B(a, b)) 2F1(a+b, 1; a+1; x),
a series of positive terms there.
"""

from __future__ import annotations

import json
import pathlib

import mpmath as mp
import numpy as np

mp.mp.dps = 40
OUT = pathlib.Path(__file__).parent / "data" / "incomplete_references.json"


def P(a, x, low):
    """P(a, x) (or -Q(a, x) above the mean, ``low`` false: the same derivatives in a;
    the side is chosen once per point, not per evaluation of the differences)."""
    if low:
        return mp.gammainc(a, 0, x, regularized=True)
    return -mp.gammainc(a, x, mp.inf, regularized=True)


def _ibeta_low(a, b, x):
    return (x ** a * (1 - x) ** b / (a * mp.beta(a, b))
            * mp.hyp2f1(a + b, 1, a + 1, x, maxterms=10 ** 7))


def ibeta(a, b, x, low):
    """I_x(a, b) (or -(1 - I_x(a, b)) = -I_{1-x}(b, a) above the mean, ``low`` false)."""
    if low:
        return _ibeta_low(a, b, x)
    return -_ibeta_low(b, a, 1 - x)


def f(v):
    return float(v)


def beta_partials(a_, b_, x_, lo, order=1):
    """d/da and d/db of I (order 1), or d2/da2, d2/dadb, d2/db2 (order 2), at 40 digits."""
    def in_a(t):
        return ibeta(t, b_, x_, lo)

    def in_b(t):
        return ibeta(a_, t, x_, lo)

    if order == 1:
        return mp.diff(in_a, a_), mp.diff(in_b, b_)
    return (mp.diff(in_a, a_, 2),
            mp.diff(lambda s, t: ibeta(s, t, x_, lo), (a_, b_), (1, 1)),
            mp.diff(in_b, b_, 2))


def gamma_rows():
    rows = []
    for a in (1e-3, 0.01, 0.1, 0.5, 1.0, 2.5, 7.0, 14.9, 15.1, 40.0, 150.0, 1e3, 1e4):
        xs = {1e-3 * a, 0.1 * a, 0.5 * a, 0.9 * a, a, 1.1 * a, 2 * a, 10 * a, 1e-3, 1.0, 30.0}
        if a >= 100:
            s = np.sqrt(a)
            xs |= {a - 3 * s, a - s, a + s, a + 3 * s}
        for x in sorted(xs):
            a_, x_, low = mp.mpf(a), mp.mpf(x), x < a
            d1 = mp.diff(lambda t, x_=x_, low=low: P(t, x_, low), a_)
            if abs(d1) < mp.mpf(10) ** -290:
                continue
            d2 = mp.diff(lambda t, x_=x_, low=low: P(t, x_, low), a_, 2)
            rows.append([a, x, f(d1), f(d2)])
    return rows


def beta_rows():
    rows = []
    shapes = (1e-3, 0.1, 0.5, 1.0, 2.5, 10.0, 50.0, 300.0, 1e4)
    for a in shapes:
        for b in shapes:
            m = a / (a + b)
            for x in sorted({1e-4, 0.01, 0.5 * m, m, min(1.1 * m, (1 + m) / 2), 0.99,
                             1 - 1e-4}):
                if not 0 < x < 1:
                    continue
                a_, b_, x_, lo = mp.mpf(a), mp.mpf(b), mp.mpf(x), x <= m
                try:
                    da, db = beta_partials(a_, b_, x_, lo)
                    if abs(da) < mp.mpf(10) ** -290:
                        continue
                    second = None
                    if (a * 7 + b * 3 + x * 1e4) % 3 < 1:  # a third of the points
                        second = [f(v) for v in beta_partials(a_, b_, x_, lo, 2)]
                except (ValueError, ZeroDivisionError, mp.libmp.libhyper.NoConvergence):
                    continue
                rows.append([a, b, x, f(da), f(db), second])
    return rows


def inverse_rows():
    import scipy.special as sc
    gam, bet = [], []
    for a in (0.05, 0.5, 2.5, 30.0, 1e3):
        for y in (1e-6, 0.1, 0.5, 0.9):
            x = float(sc.gammaincinv(a, y))
            a_, x_ = mp.mpf(a), mp.mpf(x)
            dens = x_ ** (a_ - 1) * mp.exp(-x_) / mp.gamma(a_)
            d = mp.diff(lambda t, x_=x_, low=x < a: P(t, x_, low), a_)
            gam.append([a, y, x, f(-d / dens)])
    for a, b in ((0.5, 0.5), (2.0, 3.0), (0.1, 5.0), (40.0, 7.0), (300.0, 500.0)):
        for y in (1e-4, 0.3, 0.8):
            x = float(sc.betaincinv(a, b, y))
            a_, b_, x_ = mp.mpf(a), mp.mpf(b), mp.mpf(x)
            dens = x_ ** (a_ - 1) * (1 - x_) ** (b_ - 1) / mp.beta(a_, b_)
            da, db = beta_partials(a_, b_, x_, x <= a / (a + b))
            bet.append([a, b, y, x, f(-da / dens), f(-db / dens)])
    return gam, bet


def t_rows():
    rows = []
    for df in (0.5, 1.0, 3.0, 10.0, 100.0, 1e4):
        for t in (-30.0, -3.0, -0.5, -1e-3, 1e-3, 0.7, 5.0):
            t_ = mp.mpf(t)

            def cdf(d, t_=t_, t=t):  # the smaller tail, as I_w(d/2, 1/2) / 2
                w = d / (d + t_ * t_)
                half = mp.betainc(d / 2, mp.mpf(1) / 2, 0, w, regularized=True) / 2
                return half if t < 0 else -half

            rows.append([df, t, f(mp.diff(cdf, mp.mpf(df)))])
    return rows


def main() -> None:
    gam, bet = inverse_rows()
    table = {"gammainc": gamma_rows(), "betainc": beta_rows(), "gammaincinv": gam,
             "betaincinv": bet, "stdtr": t_rows()}
    OUT.parent.mkdir(exist_ok=True)
    # one row a line
    body = ",\n".join(
        f"{json.dumps(k)}: [\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]"
        for k, rows in table.items())
    OUT.write_text("{\n" + body + "\n}\n")
    print({k: len(v) for k, v in table.items()})


if __name__ == "__main__":
    main()
