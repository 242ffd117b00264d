"""Generator 3 of issue 21: derivatives at the edges of each entry's domain.

For every scipy.stats distribution dualrev routes (dualrev/catalogue/scipy_stats.py) and
every method, and for scipy.special functions at their zeros, poles and branch points
(dualrev/catalogue/special.py), cases are generated from a table of each argument's
domain: parameters at the ends of their ranges (p = 0 and 1, mu = 0, shapes -> 0+ and
large, df = inf, a tiny or huge scale), points at the ends of the support and just
inside, far tails, quantiles at q = 0 and 1. Each case is differentiated in each of its
continuous arguments, forward (jvp) and reverse (grad), and judged against SciPy's own
values by finite differences taken *into* the domain (one-sided at an end):

- SciPy's value is reproduced (nan where SciPy's is nan);
- where the differences settle on a finite number, both modes give it;
- where they do not exist (SciPy's value is infinite there, or the differences grow
  without bound as the step shrinks), both modes give inf or nan - never a finite
  number;
- or both modes refuse with a named ``DualrevError``, as they do inside the domain
  (a refusal is a property of the argument, never of the point);
- forward and reverse agree everywhere (nan where the other is nan, inf of one sign).

Where the differences neither settle nor grow (SciPy's own rounding at the point), the
case is counted as unjudged and only forward == reverse is required; their number is
bounded below. Each (distribution, method, argument) is evaluated as one vector of cases
(every entry is elementwise), so the whole file runs in seconds.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as st

import dualrev as dr
from dualrev.catalogue.scipy_stats import CONTINUOUS, DISCRETE

INF = np.inf


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():  # SciPy's and the formulas' log(0), inf - inf at edges
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ------------------------------------------------------------------ the judge
@dataclass
class Tally:
    """Outcomes of one table: per outcome, the number of (case, mode) pairs."""

    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)
    refused_last: bool = False  # whether the last judged derivative was refused

    def fail(self, label: str, i: int, what: str) -> None:
        self.failures.append(f"{label} {self.where(i) if i >= 0 else ''}: {what}")

    where: Callable[[int], str] = str


def _differences(F: Callable[[np.ndarray], np.ndarray], v: np.ndarray, d: np.ndarray,
                 h: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """Second-order differences of the elementwise F at v: central where d == 0, else
    one-sided in the direction d (into the domain)."""
    s = np.where(d == 0, 1.0, d)
    # a power of two, and at least 64 ulps of v: v + h and v + 2h are then exact
    h = np.maximum(2.0 ** np.floor(np.log2(h)), 64 * np.spacing(np.abs(v)))
    p1 = v + s * h
    p2 = np.where(d == 0, v - h, v + 2 * s * h)
    f1, f2 = F(p1), F(p2)
    central = (f1 - f2) / (2 * h)
    one_sided = (-3 * f0 + 4 * f1 - f2) / (2 * s * h)
    moved = (f1 != f0) | (f2 != f0)
    return np.where(d == 0, central, one_sided), moved


def _agree(a: np.ndarray, b: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """Forward == reverse, elementwise: both nan, equal infinities, or close."""
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    with np.errstate(invalid="ignore"):
        # forward and reverse sum the same terms in other orders: where they cancel
        # (a shape of 1e3, a scale of 1e-8) the rounding shows at 1e-7
        close = np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b)) + 1e-8
    return both_nan | same_inf | (np.isfinite(a) & np.isfinite(b) & close)


def judge(label: str, plain: Callable[[np.ndarray], np.ndarray],
          traced: Callable[[np.ndarray], np.ndarray], v: np.ndarray, d: np.ndarray,
          h: np.ndarray, tally: Tally, inside: Callable[[], object] | None = None,
          exact: np.ndarray | None = None, rtol: float = 2e-4,
          describe: Callable[[int], str] = str, log_values: bool = False,
          convention: np.ndarray | None = None, nan_ok: np.ndarray | None = None,
          batched: Callable[[np.ndarray], np.ndarray] | None = None,
          skip: np.ndarray | None = None, off: np.ndarray | None = None) -> None:
    """Judge the derivative of the elementwise ``traced`` (a dualrev call) at each entry of
    ``v`` against SciPy's ``plain`` (see the module docstring). ``inside``: the same
    derivative at a point inside the domain, where a refusal must happen too; ``exact``:
    closed forms (nan where none is given) used instead of the differences;
    ``convention``: where a finite derivative of no derivative is dualrev's stated
    convention; ``nan_ok``: where inf/nan is, though the differences settle;
    ``batched``: the derivatives by vmap of grad over the cases, which must equal the
    forward ones; ``skip``: cases not judged (counted); ``off``: where SciPy's value is
    wrong (a quantile that does not invert SciPy's own cdf): only forward == reverse is
    judged."""
    v = np.asarray(v, dtype=float)
    n = v.size
    tally.where = describe
    tally.refused_last = False
    errors = []
    results = []
    for mode in ("forward", "reverse"):
        try:
            if mode == "forward":
                val, der = dr.jvp(traced, (v,), (np.ones_like(v),))
            else:
                val, der = dr.value_and_grad(lambda u: np.sum(traced(u)))(v)
                val = traced(v)
            results.append((np.broadcast_to(np.asarray(val, dtype=float), v.shape),
                            np.broadcast_to(np.asarray(der, dtype=float), v.shape)))
            errors.append(None)
        except dr.DualrevError as e:
            results.append(None)
            errors.append(e)
    if any(e is not None for e in errors):
        if not all(e is not None for e in errors):
            tally.fail(label, -1, f"one mode raised, the other did not: {errors}")
            return
        if type(errors[0]) is not type(errors[1]):
            tally.fail(label, -1, f"the modes raise differently: {errors}")
            return
        if inside is None:
            tally.fail(label, -1, f"raised with no interior point to compare: {errors[0]}")
            return
        try:  # the same refusal inside the domain: a property of the argument
            inside()
        except type(errors[0]):
            tally.counts["refused"] += 2 * n
            tally.refused_last = True
            return
        tally.fail(label, -1, f"refused at the edges only: {errors[0]}")
        return
    (val_f, fwd), (_, rev) = results
    if batched is not None:
        try:
            vb = np.broadcast_to(np.asarray(batched(v), dtype=float), v.shape)
        except dr.DualrevError as e:
            tally.fail(label, -1, f"vmap of grad raised where jvp did not: {e}")
            vb = fwd
        vm = _agree(vb, fwd) | ~np.isfinite(val_f)  # an infinite value: nothing to judge
        tally.counts["vmap == forward"] += int(np.sum(vm))
        for i in np.flatnonzero(~vm):
            tally.fail(label, int(i), f"vmap(grad) {vb.flat[i]!r} != forward {fwd.flat[i]!r}")
    want = np.broadcast_to(np.asarray(plain(v), dtype=float), v.shape)
    ok_value = (_agree(val_f, want, rtol=1e-9) | (
        np.isfinite(want) & (np.abs(val_f - want) <= 1e-9 * np.abs(want) + 1e-15))
        # a log density SciPy computes as log(pdf), -inf where the pdf underflows
        | (log_values & np.isneginf(want) & (val_f < -700)))
    # (both non-finite where the value itself is infinite, or so large that its
    # derivative overflows, each mode on its own way: inf - inf, inf * 0)
    same = _agree(fwd, rev) | ((~np.isfinite(val_f) | (np.abs(val_f) > 1e150))
                               & ~np.isfinite(fwd) & ~np.isfinite(rev))
    f0 = want
    runs = [_differences(plain, v, d, h / 4 ** j, f0) for j in range(3)]
    fds = [r[0] for r in runs]
    moved = runs[0][1] | runs[1][1] | runs[2][1]
    for i in range(n):
        if skip is not None and skip.flat[i]:
            tally.counts["not judged: infinite value or kink"] += 2
            continue
        tally.counts["value"] += 1
        if np.isnan(want.flat[i]) and not np.isnan(val_f.flat[i]):
            # SciPy's own formula overflows (inf * 0) at valid parameters, where dualrev
            # has a number: only forward == reverse is judged
            tally.counts["SciPy nan"] += 2
            if not same.flat[i]:
                tally.fail(label, i, f"forward {fwd.flat[i]!r} != reverse {rev.flat[i]!r}")
            continue
        if not ok_value.flat[i]:
            tally.fail(label, i, f"value {val_f.flat[i]!r} != SciPy's {want.flat[i]!r} "
                                 f"at {v.flat[i]!r}")
        if off is not None and off.flat[i]:
            # SciPy's value is wrong: its differences mean nothing (dualrev's own
            # quantile may differ from it, or be as wrong, its derivative then nan)
            tally.counts["not judged: SciPy's quantile off"] += 2
            if not same.flat[i]:
                tally.fail(label, i, f"forward {fwd.flat[i]!r} != reverse {rev.flat[i]!r}")
            continue
        if np.isinf(f0.flat[i]):
            # an infinite value has no derivative to judge (log(0), poles): forward mode
            # multiplies the inf partial by a zero tangent (nan), reverse masks it away
            tally.counts["value infinite"] += 2
            continue
        if (nan_ok is not None and nan_ok.flat[i] and not np.isfinite(fwd.flat[i])
                and not np.isfinite(rev.flat[i])):
            tally.counts["convention: inf slope at the end x 0"] += 2
            continue
        if not same.flat[i]:
            tally.fail(label, i, f"forward {fwd.flat[i]!r} != reverse {rev.flat[i]!r} "
                                 f"at {v.flat[i]!r}")
            continue
        g = fwd.flat[i]
        if exact is not None and not np.isnan(exact.flat[i]):
            e = exact.flat[i]
            good = (g == e) if np.isinf(e) else abs(g - e) <= 1e-9 * abs(e) + 1e-12
            tally.counts["closed form" if good else "wrong"] += 2
            if not good:
                tally.fail(label, i, f"derivative {g!r}, closed form {e!r} at {v.flat[i]!r}")
            continue
        a0, a, b = fds[0].flat[i], fds[1].flat[i], fds[2].flat[i]
        hh = h.flat[i] / 16
        # SciPy's own rounding: ~eps relative, and ~1e-9 relative for some (stdtr)
        noise = (1e3 * np.finfo(float).eps + 1e-9) * max(abs(f0.flat[i]), 1e-300) / hh
        stable = (np.isfinite(a) and np.isfinite(b)
                  and abs(a - b) <= 1e-3 * abs(b) + noise + 1e-12)
        # successive differences of a converging second-order difference shrink (by 16,
        # or by 2 near a power-law edge); those of an infinite derivative do not
        with np.errstate(all="ignore"):
            ratio = abs(b - a) / abs(a - a0) if a != a0 else 0.0
        if not moved.flat[i] and g != 0:
            # no step moves SciPy's value at all (q = 1e-300; a value rounded to 1)
            tally.counts["unjudged"] += 2
            tally.unjudged.append(f"{label} {describe(i)} below rounding")
            continue
        if (np.isfinite(v.flat[i]) and np.isfinite(f0.flat[i])
                and np.isnan([a0, a, b]).any()):
            # SciPy's own value is nan beside a finite one, inside the domain (its
            # betaincinv at q = 1e-300 with a = 2 +- 1e-6): nothing to compare with
            tally.counts["unjudged"] += 2
            tally.unjudged.append(f"{label} {describe(i)} SciPy nan beside")
            if not same.flat[i]:
                tally.fail(label, i, f"forward {fwd.flat[i]!r} != reverse {rev.flat[i]!r}")
            continue
        diverging = not (np.isfinite(a) and np.isfinite(b)) or (
            not stable and ratio > 0.75 and abs(b) > 1e-6)
        if np.isnan(f0.flat[i]) or diverging:
            if convention is not None and convention.flat[i]:
                tally.counts["convention: 0**y"] += 2
                continue
            # no derivative here: both modes must say so with inf or nan
            if np.isfinite(g):
                tally.fail(label, i, f"finite derivative {g!r} where none exists "
                                     f"(differences {a0!r}, {a!r}, {b!r}; value "
                                     f"{f0.flat[i]!r}) at {v.flat[i]!r}")
                tally.counts["wrong"] += 2
            else:
                tally.counts["no derivative: inf/nan"] += 2
            continue
        # (1e-7 absolute: SciPy's logcdf of a probability within 1e-16 of 1 is 0)
        tol = rtol * abs(b) + 4 * abs(a - b) + noise + 1e-7
        want_d = b
        if not stable:
            if ratio >= 0.75:  # neither settling nor growing: rounding noise
                tally.counts["unjudged"] += 2
                tally.unjudged.append(f"{label} {describe(i)} noisy")
                continue
            # converging slowly (a power law at an edge): extrapolated
            want_d = b + (b - a) * ratio / (1 - ratio)
            tol += 4 * abs(a - b)
        if np.isfinite(g) and abs(g - want_d) <= tol:
            tally.counts["right"] += 2
        else:
            tally.counts["wrong"] += 2
            tally.fail(label, i, f"derivative {g!r}, one-sided differences {a0!r}, {a!r}, "
                                 f"{b!r} (direction {d.flat[i]:+.0f}) at {v.flat[i]!r}")


# ------------------------------------------------------------------ scipy.stats tables
@dataclass
class Param:
    """A parameter's domain, its nominal value and its edge values."""

    name: str
    lo: float
    hi: float
    nominal: float
    edges: tuple[float, ...]
    count: bool = False  # an integer parameter: not differentiated


def _open_shape(name: str, nominal: float, extra: tuple[float, ...] = (),
                small: float = 1e-8, large: float = 1e3) -> Param:
    # a shape in (0, inf): towards 0, around 1 (where densities change character), large
    return Param(name, 0.0, INF, nominal, (small, 0.5, 1.0, 2.0, large, *extra))


CONT_PARAMS: dict[str, tuple[Param, ...]] = {
    "norm": (), "expon": (), "laplace": (), "cauchy": (), "logistic": (), "uniform": (),
    "gumbel_r": (), "gumbel_l": (), "halfnorm": (), "rayleigh": (),
    "gamma": (_open_shape("a", 2.5),),
    "beta": (_open_shape("a", 2.0), _open_shape("b", 3.0)),
    "t": (_open_shape("df", 3.5, (1e12, INF)),),
    "chi2": (_open_shape("df", 3.0),),
    # s -> 0 is a spike of width s, beyond any finite difference below s = 1e-3
    "lognorm": (_open_shape("s", 0.7, small=1e-3, large=20.0),),
    # c -> 0: the density's second derivative in c cancels 1/c**2 against (1/c)**2, to
    # 1e16 eps at c = 1e-8 (both modes alike, in their own order)
    "weibull_min": (_open_shape("c", 1.7, small=1e-4),),
    "weibull_max": (_open_shape("c", 1.7, small=1e-4),),
    # SciPy's pareto cdf (1 - z**-b) cancels to 1e-16 / b: b -> 0 below 1e-3 is noise
    "pareto": (_open_shape("b", 2.5, small=1e-3),),
    "invgamma": (_open_shape("a", 2.5),),
}
DISC_PARAMS: dict[str, tuple[Param, ...]] = {
    "poisson": (Param("mu", 0.0, INF, 2.5, (0.0, 1e-8, 1e3)),),
    "binom": (Param("n", 0.0, INF, 6.0, (0.0, 1.0, 40.0), count=True),
              Param("p", 0.0, 1.0, 0.3, (0.0, 1e-8, 1 - 1e-8, 1.0))),
    "geom": (Param("p", 0.0, 1.0, 0.3, (1e-8, 1 - 1e-8, 1.0)),),
    "bernoulli": (Param("p", 0.0, 1.0, 0.3, (0.0, 1e-8, 1 - 1e-8, 1.0)),),
    "nbinom": (Param("n", 0.0, INF, 2.5, (1e-8, 0.5, 1.0, 1e6)),
               Param("p", 0.0, 1.0, 0.4, (1e-8, 1 - 1e-8, 1.0))),
}
LOC, SCALE = 0.3, 1.7
SCALE_EDGES = (1e-8, 1e8)
Q_POINTS = (0.0, 1e-300, 1e-12, 0.3, 0.5, 1 - 1e-12, 1.0)


def _z_points(name: str) -> list[float]:
    """Standardised points: the support's ends and just inside, far tails, inside."""
    d = CONTINUOUS[name]
    a, b = d.support
    zs = [d.inside, d.inside + 0.37 * (1 if np.isinf(b) or b - d.inside > 0.37 else -1)]
    for end, inward in ((a, 1.0), (b, -1.0)):
        if np.isfinite(end):
            zs += [end, end + inward * 1e-6 * max(1.0, abs(end))]
        else:
            zs += [-inward * 40.0, -inward * 1e3]
    return zs


def _step(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, closed_lo: np.ndarray,
          closed_hi: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The direction (0: central, +1/-1: one-sided into the domain) and step at v for a
    domain (lo, hi) whose ends are kinks or edges."""
    d = np.zeros_like(v)
    d = np.where(closed_lo & (v <= lo), 1.0, d)
    d = np.where(closed_hi & (v >= hi), -1.0, d)
    room = np.minimum(np.where(v > lo, v - lo, INF), np.where(v < hi, hi - v, INF))
    h = np.minimum(base, room / 10)
    return d, h


def _cont_groups():
    """(label, method, argument index, cases, step base per case) per distribution."""
    for name in sorted(CONTINUOUS):
        params = CONT_PARAMS[name]
        nominal = tuple(p.nominal for p in params)
        d = CONTINUOUS[name]
        cases = []  # (point z or q, shapes, loc, scale)
        for z in _z_points(name):
            cases.append((z, nominal, LOC, SCALE))
        for i, p in enumerate(params):
            for e in p.edges:
                sh = nominal[:i] + (e,) + nominal[i + 1:]
                for z in _z_points(name)[:4]:  # inside, the lower end and just inside
                    cases.append((z, sh, LOC, SCALE))
        for s in SCALE_EDGES:
            cases.append((d.inside, nominal, LOC, s))
        qcases = [(q, nominal, LOC, SCALE) for q in Q_POINTS]
        for i, p in enumerate(params):
            for e in p.edges:
                sh = nominal[:i] + (e,) + nominal[i + 1:]
                qcases += [(q, sh, LOC, SCALE) for q in (1e-12, 0.3, 1 - 1e-12)]
        qcases += [(0.3, nominal, LOC, s) for s in SCALE_EDGES]
        methods = [(m, cases) for m in ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf")]
        methods += [(m, qcases) for m in ("ppf", "isf") if getattr(d, m) is not None]
        for method, cs in methods:
            yield name, method, params, cs


def _cont_columns(name, method, params, cases, wrt):
    """Arrays of the arguments (point, shapes..., loc, scale), the direction and step
    in argument ``wrt`` (0: the point, 1..: shapes, then loc, scale)."""
    d = CONTINUOUS[name]
    n = len(cases)
    point = np.array([c[0] for c in cases])
    shapes = [np.array([c[1][i] for c in cases]) for i in range(len(params))]
    loc = np.array([c[2] for c in cases])
    scale = np.array([c[3] for c in cases])
    quantile = method in ("ppf", "isf")
    x = point if quantile else loc + scale * point
    cols = [x, *shapes, loc, scale]
    nsh = len(params)
    v = cols[wrt]
    keep = np.ones(n, bool)
    if quantile:
        doms = [(0.0, 1.0, True, True)] + [(p.lo, p.hi, False, False) for p in params] + [
            (-INF, INF, False, False), (0.0, INF, False, False)]
        lo, hi, clo, chi = doms[wrt]
        base = 1e-5 * np.maximum(1.0, np.abs(v)) if wrt != 0 else np.full(n, 1e-5)
        dirn, h = _step(v, np.full(n, lo), np.full(n, hi), np.full(n, clo),
                        np.full(n, chi), base)
        return cols, v, dirn, h, keep
    a, b = d.support
    if wrt == 0 or wrt == nsh + 1 or wrt == nsh + 2:  # x, loc, scale move z
        z = point
        dzdv = {0: 1 / scale, nsh + 1: -1 / scale, nsh + 2: -z / scale}[wrt]
        dirn = np.zeros(n)
        room = np.full(n, INF)
        for end, inward in ((a, 1.0), (b, -1.0)):
            if not np.isfinite(end):
                continue
            at = z == end
            moving = dzdv != 0
            dirn = np.where(at & moving, np.sign(dzdv) * inward, dirn)
            with np.errstate(divide="ignore"):
                r = np.where(at | ~moving, INF, np.abs(z - end) / np.abs(dzdv))
            room = np.minimum(room, r)
        base = 1e-5 * scale * np.maximum(1.0, np.abs(z)) if wrt != nsh + 2 else 1e-5 * scale
        h = np.minimum(base, room / 10)
        if wrt == nsh + 2:  # scale's own domain (0, inf)
            h = np.minimum(h, scale / 10)
        return cols, v, dirn, h, keep
    p = params[wrt - 1]
    keep = np.isfinite(v)  # df = inf is not perturbed (the other arguments are)
    dirn, h = _step(v, np.full(n, p.lo), np.full(n, p.hi), np.full(n, False),
                    np.full(n, False), 1e-5 * np.maximum(1.0, np.abs(v)))
    return cols, v, dirn, h, keep


def _call(dist, method, cols, wrt, sub):
    """dist.method with argument ``wrt`` replaced by ``sub`` (plain or traced)."""
    args = list(cols)
    args[wrt] = sub
    *rest, loc, scale = args
    return getattr(dist, method)(*rest, loc=loc, scale=scale)


SECOND_METHODS = ("pdf", "logpdf", "cdf", "sf", "ppf")


def run_continuous(tally: Tally, second: bool = True) -> None:
    for name, method, params, cases in _cont_groups():
        dist = getattr(st, name)
        for wrt in range(len(params) + 3):
            cols, v, dirn, h, keep = _cont_columns(name, method, params, cases, wrt)
            cols = [c[keep] for c in cols]
            v, dirn, h = v[keep], dirn[keep], h[keep]
            argname = (["x" if method not in ("ppf", "isf") else "q"]
                       + [p.name for p in params] + ["loc", "scale"])[wrt]

            def plain(u, cols=cols, wrt=wrt, dist=dist, method=method):
                return _call(dist, method, [np.broadcast_to(c, u.shape) for c in cols],
                             wrt, u)

            def traced(u, cols=cols, wrt=wrt, dist=dist, method=method):
                return _call(dist, method, cols, wrt, u)

            def inside(cols=cols, wrt=wrt, dist=dist, method=method, v=v):
                # every table's first case is inside the domain (nominal parameters)
                return dr.grad(lambda u: np.sum(_call(dist, method, [c[:1] for c in cols],
                                                      wrt, u)))(v[:1])

            names = (["x" if method not in ("ppf", "isf") else "q"]
                     + [p.name for p in params] + ["loc", "scale"])

            def describe(i, cols=cols, names=names):
                pairs = zip(names, cols, strict=True)
                return "(" + ", ".join(f"{k}={c[i]:.10g}" for k, c in pairs) + ")"

            conv = exact = nan_ok = None
            if method not in ("ppf", "isf"):
                lo, hi = CONTINUOUS[name].support
                z = (cols[0] - cols[-2]) / cols[-1]
                at_end = (z == lo) | (z == hi)
                # the density's power of z at the end, z**(a - 1): 0**y has derivative
                # 0 in y (as in JAX) where a shape crossing 1 makes the density jump
                conv = at_end & (1 <= wrt <= len(params))
                # at an end at 0 z does not move with the scale, but the cdf's or the
                # density's slope there may be infinite: d/dscale is then 0 * inf, nan in
                # both modes (not differentiable in (x, loc, scale) jointly)
                nan_ok = (z == 0) & at_end & (wrt == len(params) + 2)
                if CONTINUOUS[name].open_density:
                    # every derivative of lognorm's and invgamma's density vanishes at
                    # 0, beyond what differences resolve: the closed form is 0
                    exact = np.where(z == lo, 0.0, np.nan)
            def batched(u, cols=cols, wrt=wrt, dist=dist, method=method):
                def one(w, *columns):
                    return dr.grad(functools.partial(_call, dist, method, list(columns), wrt))(w)
                return dr.vmap(one)(u, *cols)

            off = None
            if method in ("ppf", "isf") and 1 <= wrt <= len(params):
                # a shape's derivative is the implicit function theorem's at the
                # quantile: where SciPy's does not invert SciPy's cdf (t at df = 1e-8,
                # whose true quantile overflows; beta.ppf(1e-12, 0.5, 3), Boost's root
                # finding giving up) its differences are no reference
                # (standardised, loc 0 and scale 1: x = loc + scale z rounds z away; a
                # quantile at the support's end, the true one under- or overflowing,
                # is the end for every shape)
                with np.errstate(all="ignore"):
                    std = [np.broadcast_to(c, v.shape) for c in cols]
                    std[wrt] = v
                    q, shapes = std[0], std[1:-2]
                    z = getattr(dist, method)(q, *shapes)
                    back = getattr(dist, "cdf" if method == "ppf" else "sf")(z, *shapes)
                    lo_, hi_ = CONTINUOUS[name].support
                    # (beyond z's own rounding, pdf |z| eps: pareto's z = 1 + 1e-15)
                    slack = 4e-16 * np.abs(z) * dist.pdf(z, *shapes)
                    off = (np.isfinite(z) & (z != lo_) & (z != hi_)
                           & (np.abs(back - q) > 1e-6 * np.minimum(q, 1 - q) + 1e-305
                              + np.nan_to_num(slack)))
            judge(f"{name}.{method} d/d{argname}", plain, traced, v, dirn, h, tally,
                  inside=inside, describe=describe, convention=conv, exact=exact,
                  nan_ok=nan_ok, batched=batched,
                  log_values=method.startswith("log"), off=off)
            if second and method in SECOND_METHODS and not tally.refused_last:
                # second derivatives: dualrev's own first derivative (jvp), differentiated
                # forward and in reverse, against its differences
                def first(u, traced=traced):
                    return dr.jvp(traced, (u,), (np.ones_like(u),))[1]

                with np.errstate(all="ignore"):
                    f0 = plain(v)
                    # where the function is infinite (an infinite end of ppf) its first
                    # derivative means nothing; laplace's kink at 0 is abs's (abs'(0) = 0)
                    skip = ~np.isfinite(f0)
                    if off is not None:  # (its first derivative is nan there)
                        skip |= off
                    if name == "laplace":
                        skip |= (cols[0] == 0.5) if method in ("ppf", "isf") else (
                            cols[0] == cols[-2])
                conv2 = skip if conv is None else (conv | skip)
                nan2 = skip if nan_ok is None else (nan_ok | skip)
                judge(f"{name}.{method} d2/d{argname}2", first, first, v, dirn, h, tally,
                      describe=describe, convention=conv2, exact=exact, nan_ok=nan2,
                      skip=skip)


def run_discrete(tally: Tally) -> None:
    for name in sorted(DISCRETE):
        dist = getattr(st, name)
        params = DISC_PARAMS[name]
        nominal = tuple(p.nominal for p in params)
        lower = DISCRETE[name].lower
        cases = []
        for i, p in enumerate((None, *params)):
            edges = (None,) if p is None else p.edges
            for e in edges:
                sh = nominal if p is None else nominal[:i - 1] + (e,) + nominal[i:]
                upper = sh[0] if name == "binom" else (1.0 if name == "bernoulli" else 60.0)
                ks = sorted({lower, lower + 1, lower + 2, upper - 1, upper, 60.0})
                cases += [(k, sh) for k in ks if k >= lower]
        k = np.array([c[0] for c in cases])
        shapes = [np.array([c[1][i] for c in cases]) for i in range(len(params))]
        for method in ("pmf", "logpmf", "cdf", "logcdf", "sf", "logsf"):
            for j, p in enumerate(params):
                if p.count:
                    continue
                v = shapes[j]
                dirn, h = _step(v, np.full(v.shape, p.lo), np.full(v.shape, p.hi),
                                np.full(v.shape, True), np.full(v.shape, True),
                                1e-5 * np.maximum(1.0, np.abs(v)))

                def call(u, j=j, method=method, dist=dist, k=k, shapes=shapes):
                    args = list(shapes)
                    args[j] = u
                    return getattr(dist, method)(k, *args)

                def inside(j=j, method=method, dist=dist, k=k, shapes=shapes):
                    args = [s_[:1] for s_ in shapes]
                    return dr.grad(lambda u: np.sum(getattr(dist, method)(
                        k[:1], *args[:j], u, *args[j + 1:])))(shapes[j][:1])

                def describe(i, k=k, shapes=shapes, params=params):
                    pairs = zip(params, shapes, strict=True)
                    return f"(k={k[i]:g}, " + ", ".join(
                        f"{q.name}={s_[i]:.10g}" for q, s_ in pairs) + ")"

                def batched(u, j=j, method=method, dist=dist, k=k, shapes=shapes):
                    def one(w, kk, *params_):
                        def f(w_):
                            return getattr(dist, method)(kk, *params_[:j], w_, *params_[j + 1:])
                        return dr.grad(f)(w)
                    return dr.vmap(one)(u, k, *shapes)

                judge(f"{name}.{method} d/d{p.name}", call, call, v, dirn, h, tally,
                      inside=inside, describe=describe, log_values=method.startswith("log"),
                      batched=batched)
                if method in ("pmf", "logpmf", "cdf", "sf") and not tally.refused_last:
                    def first(u, call=call):
                        return dr.jvp(call, (u,), (np.ones_like(u),))[1]

                    with np.errstate(all="ignore"):
                        skip = ~np.isfinite(call(v))
                    judge(f"{name}.{method} d2/d{p.name}2", first, first, v, dirn, h, tally,
                          describe=describe, skip=skip, nan_ok=skip)


def test_scipy_stats_at_the_edges_of_their_domains():
    tally = Tally()
    run_continuous(tally)
    run_discrete(tally)
    print(dict(tally.counts))
    assert not tally.failures, "\n".join(tally.failures[:60]) + (
        f"\n... {len(tally.failures)} failures in all" if len(tally.failures) > 60 else "")


# ------------------------------------------------------------------ scipy.special
@dataclass
class Special:
    """A scipy.special function of one argument (the others fixed), its domain, and
    the special points where its derivative is checked (closed forms where given)."""

    label: str
    f: Callable[[np.ndarray], np.ndarray]
    points: tuple[float, ...]
    lo: float = -INF
    hi: float = INF
    exact: dict[float, float] = field(default_factory=dict)
    poles: tuple[float, ...] = ()  # singular points inside the domain: steps stay clear
    exact2: dict[float, float] = field(default_factory=dict)  # second derivatives
    kinks: tuple[float, ...] = ()  # |x|'s kink: derivatives by the abs'(0) = 0 convention


def _partial(f: Callable[..., np.ndarray], *fixed: float) -> Callable[[np.ndarray], np.ndarray]:
    """f with its leading arguments fixed: a function of its last."""
    return lambda x: f(*fixed, x)


def _fact(n: int) -> float:
    return float(math.factorial(n))


SPECIAL = [
    # zeros of 1/gamma: d/dx at -n is (-1)**n n!
    Special("rgamma", sc.rgamma, (0.0, -1.0, -2.0, -3.0, -10.0, -0.5, 1e-300, 2.0),
            exact={-float(n): (-1) ** n * _fact(n) for n in (0, 1, 2, 3, 10)},
            exact2={-float(n): 2 * (-1) ** (n + 1) * _fact(n) * sc.psi(n + 1)
                    for n in (0, 1, 2, 3, 10)}),
    # poles
    Special("gamma", sc.gamma, (0.0, -1.0, -2.0, -1 + 1e-9, 1e-300, 171.5),
            poles=(0.0, -1.0, -2.0)),
    Special("gammaln", sc.gammaln, (0.0, -1.0, -2.0, 1e-300, 1.0, 2.0, 1e300),
            poles=(0.0, -1.0, -2.0)),
    Special("loggamma", sc.loggamma, (0.0, 1e-300, 1.0, 2.0), lo=0.0),
    Special("psi", sc.psi, (0.0, -1.0, -2.5, 1.4616321449683622, 1e-300, 1e300),
            poles=(0.0, -1.0, -2.0, -3.0)),
    Special("beta(a, 2)", lambda a: sc.beta(a, 2.0), (0.0, -1.0, 1e-300, 1.0),
            poles=(0.0, -1.0)),
    Special("betaln(a, 2)", lambda a: sc.betaln(a, 2.0), (0.0, 1e-300, 1.0), poles=(0.0,)),
    # branch points and ends of domains
    Special("log1p", sc.log1p, (-1.0, -1 + 1e-12, 0.0, 1e300), lo=-1.0),
    Special("xlogy(x, 0) in x", lambda x: sc.xlogy(x, 0.0), (0.0, 1.0)),
    Special("xlogy(0, y) in y", lambda y: sc.xlogy(0.0, y), (0.0, 1.0), lo=0.0,
            exact={0.0: 0.0}),
    Special("xlogy(2, y) in y", lambda y: sc.xlogy(2.0, y), (0.0, 1e-300, 1.0), lo=0.0),
    Special("xlog1py(0, y) in y", lambda y: sc.xlog1py(0.0, y), (-1.0, 0.0), lo=-1.0,
            exact={-1.0: 0.0}),
    Special("xlog1py(x, -1) in x", lambda x: sc.xlog1py(x, -1.0), (0.0, 1.0)),
    Special("erfinv", sc.erfinv, (-1.0, 1.0, 1 - 1e-12, -1 + 1e-12, 0.0), lo=-1.0, hi=1.0),
    Special("erfcinv", sc.erfcinv, (0.0, 2.0, 1e-300, 1.0), lo=0.0, hi=2.0),
    Special("ndtri", sc.ndtri, (0.0, 1.0, 1e-300, 0.5, 1 - 1e-12), lo=0.0, hi=1.0),
    Special("ndtri_exp", sc.ndtri_exp, (0.0, -1e-300, -745.0, -1e10), hi=0.0),
    Special("log_ndtr", sc.log_ndtr, (-1e3, -40.0, 0.0, 40.0, 1e3)),
    Special("ndtr", sc.ndtr, (-1e3, -40.0, 40.0)),
    Special("erfcx", sc.erfcx, (-30.0, 0.0, 1e3, 1e5)),
    Special("erf", sc.erf, (-30.0, 0.0, 30.0)),
    Special("logit", sc.logit, (0.0, 1.0, 0.5, 1e-300, 1 - 1e-12), lo=0.0, hi=1.0,
            exact={0.5: 4.0}),
    Special("expit", sc.expit, (-800.0, 0.0, 800.0), exact={0.0: 0.25}),
    Special("log_expit", sc.log_expit, (-800.0, 0.0, 800.0), exact={0.0: 0.5}),
    Special("sinc", np.sinc, (0.0, 1.0, -1.0, 1e-300), exact={0.0: 0.0},
            exact2={0.0: -np.pi ** 2 / 3}),
    Special("exprel", sc.exprel, (0.0, 1e-300, -1e-10, 700.0), exact={0.0: 0.5},
            exact2={0.0: 1 / 3}),
    Special("boxcox(2, l) in l", lambda lm: sc.boxcox(2.0, lm), (0.0, 1e-300, 1.0),
            exact={0.0: np.log(2.0) ** 2 / 2}, exact2={0.0: np.log(2.0) ** 3 / 3}),
    Special("boxcox(x, 0) in x", lambda x: sc.boxcox(x, 0.0), (0.0, 1.0), lo=0.0),
    Special("boxcox1p(1, l) in l", lambda lm: sc.boxcox1p(1.0, lm), (0.0, 1e-300),
            exact={0.0: np.log(2.0) ** 2 / 2}),
    Special("inv_boxcox(1, l) in l", lambda lm: sc.inv_boxcox(1.0, lm), (0.0,),
            exact={0.0: -np.e / 2}),
    Special("spence", sc.spence, (0.0, 1.0, 1e-300, 2.0), lo=0.0, exact={1.0: -1.0}),
    Special("ellipk", sc.ellipk, (1.0, 1 - 1e-12, 0.0, -1e3), hi=1.0,
            exact={0.0: np.pi / 8}),
    Special("ellipkm1", sc.ellipkm1, (0.0, 1e-300, 1.0), lo=0.0),
    Special("ellipe", sc.ellipe, (1.0, 1 - 1e-12, 0.0), hi=1.0, exact={0.0: -np.pi / 8}),
    Special("entr", sc.entr, (0.0, 1e-300, 1.0), lo=0.0, exact={1.0: -1.0}),
    Special("kl_div(x, 1) in x", lambda x: sc.kl_div(x, 1.0), (0.0, 1.0), lo=0.0),
    Special("rel_entr(x, 1) in x", lambda x: sc.rel_entr(x, 1.0), (0.0, 1.0), lo=0.0),
    Special("cbrt", sc.cbrt, (0.0, -1.0, 1e-300), poles=(0.0,)),
    # Bessel functions at 0, integer and non-integer orders (x >= 0 for the latter)
    *(Special(f"jv({v}, x)", _partial(sc.jv, v), (0.0, 1e-300, 1.0),
              lo=-INF if float(v).is_integer() else 0.0,
              exact={0.0: {0: 0.0, 1: 0.5, 2: 0.0, -1: -0.5}.get(v, np.nan)})
      for v in (0, 1, 2, -1, 0.5, 1.5)),
    *(Special(f"iv({v}, x)", _partial(sc.iv, v), (0.0, 1e-300, 1.0),
              lo=-INF if float(v).is_integer() else 0.0,
              exact={0.0: {0: 0.0, 1: 0.5, 2: 0.0, -1: 0.5}.get(v, np.nan)})
      for v in (0, 1, 2, -1, 0.5, 1.5)),
    Special("i0", sc.i0, (0.0, 700.0), exact={0.0: 0.0}),
    Special("i0e", sc.i0e, (0.0, 1e300), kinks=(0.0,)),
    Special("k1e", sc.k1e, (0.0, 1e-300, 1e300), lo=0.0),
    Special("k1", sc.k1, (0.0, 1e-300, 700.0), lo=0.0),
    Special("i1", sc.i1, (0.0, 700.0, -700.0), exact={0.0: 0.5}),
    Special("i1", sc.i1, (0.0,), exact={0.0: 0.5}),
    Special("j0", sc.j0, (0.0,), exact={0.0: 0.0}),
    Special("j1", sc.j1, (0.0,), exact={0.0: 0.5}),
    Special("k0", sc.k0, (0.0, 1e-300, 1.0), lo=0.0),
    Special("y0", sc.y0, (0.0, 1e-300, 1.0), lo=0.0),
    Special("kv(0.5, x)", lambda x: sc.kv(0.5, x), (0.0, 1.0, 700.0), lo=0.0),
    # in the order: v = 0 (closed forms, DLMF 10.15.3, 10.38.4), integers, the reflection
    # to negative orders, large orders (tiny J, I; huge Y, K), x = 0 and x large
    Special("jv(v, 1) in v", lambda v: sc.jv(v, 1.0), (0.0, 1.0, -1.0, -2.5, 0.5, 50.0),
            exact={0.0: np.pi / 2 * sc.y0(1.0)}),
    Special("yv(v, 1) in v", lambda v: sc.yv(v, 1.0), (0.0, 1.0, -1.0, -2.5, 50.0),
            exact={0.0: -np.pi / 2 * sc.j0(1.0)}),
    Special("iv(v, 1) in v", lambda v: sc.iv(v, 1.0), (0.0, 2.0, -2.0, -2.5, 50.0),
            exact={0.0: -sc.k0(1.0)}),
    Special("kv(v, 1) in v", lambda v: sc.kv(v, 1.0), (0.0, 1.0, -1.0, 50.0),
            exact={0.0: 0.0}),
    Special("kve(v, 700) in v", lambda v: sc.kve(v, 700.0), (0.0, 3.5, -3.5)),
    Special("ive(v, 700) in v", lambda v: sc.ive(v, 700.0), (0.0, 3.5, -3.5)),
    Special("jv(v, 0) in v", lambda v: sc.jv(v, 0.0), (1.0, 2.5), exact={1.0: 0.0, 2.5: 0.0}),
    Special("hyp0f1(b, 1) in b", lambda b: sc.hyp0f1(b, 1.0), (1.0, 0.5, -0.5, -1.5, 30.0)),
    Special("hyp0f1(b, -300) in b", lambda b: sc.hyp0f1(b, -300.0), (1.0, 2.5, 25.0)),
    # incomplete gamma and beta functions at the ends of x
    *(Special(f"gammainc({a}, x)", _partial(sc.gammainc, a),
              (0.0, 1e-300, 1.0, 1e3), lo=0.0, exact={0.0: {1.0: 1.0, 2.0: 0.0}.get(a, np.nan)})
      for a in (0.5, 1.0, 2.0)),
    *(Special(f"gammaincc({a}, x)", _partial(sc.gammaincc, a),
              (0.0, 1.0, 1e3), lo=0.0, exact={0.0: {1.0: -1.0, 2.0: 0.0}.get(a, np.nan)})
      for a in (0.5, 1.0, 2.0)),
    *(Special(f"betainc({a}, {b}, x)", _partial(sc.betainc, a, b),
              (0.0, 1.0, 0.5, 1e-300), lo=0.0, hi=1.0,
              exact={0.0: {1.0: b, 2.0: 0.0}.get(a, np.nan),
                     1.0: {1.0: a, 2.0: 0.0}.get(b, np.nan)})
      for a, b in ((0.5, 1.0), (1.0, 2.0), (2.0, 0.5), (2.0, 2.0))),
    # ... and in their shape parameters (issue 22): at a shape 0 (SciPy's limits 1 or 0,
    # one-sided derivatives -E1(x) and E1(x)), tiny and huge shapes
    Special("gammainc(a, 1.5) in a", lambda a: sc.gammainc(a, 1.5), (0.0, 1e-300, 1e-3, 1.0, 1e4),
            lo=0.0, exact={0.0: -sc.exp1(1.5)}),
    Special("gammaincc(a, 0.3) in a", lambda a: sc.gammaincc(a, 0.3), (0.0, 1e-300, 1.0, 30.0),
            lo=0.0, exact={0.0: sc.exp1(0.3)}),
    Special("betainc(a, 2, 0.3) in a", lambda a: sc.betainc(a, 2.0, 0.3),
            (0.0, 1e-300, 1.0, 1e4), lo=0.0),
    Special("betainc(2, b, 0.3) in b", lambda b: sc.betainc(2.0, b, 0.3),
            (0.0, 1e-300, 1.0, 1e4), lo=0.0),
    Special("betaincc(0.5, b, 0.999) in b", lambda b: sc.betaincc(0.5, b, 0.999),
            (1e-3, 1.0, 300.0), lo=0.0),
    Special("gammaincinv(a, 0.3) in a", lambda a: sc.gammaincinv(a, 0.3),
            (1e-3, 1.0, 1e4), lo=0.0),
    Special("betaincinv(a, 2, 0.3) in a", lambda a: sc.betaincinv(a, 2.0, 0.3),
            (1e-3, 1.0, 1e3), lo=0.0),
    Special("stdtr(df, 1.5) in df", lambda d: sc.stdtr(d, 1.5), (1e-8, 1.0, 1e6, INF), lo=0.0),
    Special("chdtr(v, 2) in v", lambda v: sc.chdtr(v, 2.0), (0.0, 1e-300, 1.0), lo=0.0,
            exact={0.0: -0.5 * sc.exp1(1.0)}),
    Special("gammaincinv(2, y)", lambda y: sc.gammaincinv(2.0, y), (0.0, 1.0, 1e-300, 0.5),
            lo=0.0, hi=1.0),
    Special("betaincinv(2, 3, y)", lambda y: sc.betaincinv(2.0, 3.0, y), (0.0, 1.0, 0.5),
            lo=0.0, hi=1.0),
    Special("chdtr(2, x)", lambda x: sc.chdtr(2.0, x), (0.0, 1.0), lo=0.0,
            exact={0.0: 0.5}),
    Special("chdtr(1, x)", lambda x: sc.chdtr(1.0, x), (0.0, 1.0), lo=0.0),
    Special("gdtr(1, 1, x)", lambda x: sc.gdtr(1.0, 1.0, x), (0.0, 1.0), lo=0.0,
            exact={0.0: 1.0}),
    Special("pdtr(0, m)", lambda m: sc.pdtr(0.0, m), (0.0, 1.0), lo=0.0,
            exact={0.0: -1.0}),
    Special("pdtr(1, m)", lambda m: sc.pdtr(1.0, m), (0.0, 1.0), lo=0.0,
            exact={0.0: 0.0}),
    Special("bdtr(0, 5, p)", lambda p: sc.bdtr(0, 5, p), (0.0, 1.0, 0.5), lo=0.0,
            hi=1.0, exact={0.0: -5.0, 1.0: 0.0}),
    Special("bdtr(4, 5, p)", lambda p: sc.bdtr(4, 5, p), (0.0, 1.0), lo=0.0, hi=1.0,
            exact={0.0: 0.0, 1.0: -5.0}),
    Special("nbdtr(0, 3, p)", lambda p: sc.nbdtr(0, 3, p), (1.0, 0.5), lo=0.0, hi=1.0,
            exact={1.0: 3.0}),
    # exponential integrals and Struve functions at 0
    Special("exp1", sc.exp1, (0.0, 1e-300, 1.0, 700.0), lo=0.0),
    Special("expi", sc.expi, (0.0, 1e-300, -1e-300, 1.0), poles=(0.0,)),
    Special("expn(2, x)", lambda x: sc.expn(2, x), (0.0, 1e-300, 1.0), lo=0.0),
    Special("struve(0, x)", lambda x: sc.struve(0.0, x), (0.0, 1.0), exact={0.0: 2 / np.pi}),
    Special("struve(1, x)", lambda x: sc.struve(1.0, x), (0.0, 1.0), exact={0.0: 0.0}),
    Special("modstruve(0, x)", lambda x: sc.modstruve(0.0, x), (0.0,),
            exact={0.0: 2 / np.pi}),
    Special("polygamma(1, x)", lambda x: sc.polygamma(1, x), (0.0, -1.0, 1e-300, 1.0),
            poles=(0.0, -1.0)),
    Special("dawsn", sc.dawsn, (0.0, 1e5, -1e5), exact={0.0: 1.0}),
    Special("erfcx(-30)", sc.erfcx, (-30.0, -26.0)),
    Special("powm1(x, 2)", lambda x: sc.powm1(x, 2.0), (0.0, 1.0), exact={0.0: 0.0}),
    Special("powm1(x, 0.5)", lambda x: sc.powm1(x, 0.5), (0.0, 1.0), lo=0.0),
    Special("powm1(2, y)", lambda y: sc.powm1(2.0, y), (0.0, 1e-300),
            exact={0.0: np.log(2.0)}),
    Special("pseudo_huber(1, r)", lambda r: sc.pseudo_huber(1.0, r), (0.0, 1e-300, 1e300),
            exact={0.0: 0.0}),
    Special("huber(1, r)", lambda r: sc.huber(1.0, r), (1.0, -1.0, 0.0),
            exact={1.0: 1.0, -1.0: -1.0, 0.0: 0.0}, kinks=(1.0, -1.0)),
    Special("log_ndtr(0)", sc.log_ndtr, (0.0, -1e-300)),
    Special("ndtri_exp(-1e-300)", sc.ndtri_exp, (-1e-300, -1e-20), hi=0.0),
    Special("owens_t(x, 0.5)", lambda x: sc.owens_t(x, 0.5), (0.0, 40.0, -40.0)),
    Special("owens_t(1, a)", lambda a: sc.owens_t(1.0, a), (0.0, 1e300, -1e300)),
    Special("wrightomega", sc.wrightomega, (0.0, -800.0, 800.0, 1e300)),
    Special("k0e", sc.k0e, (0.0, 1e-300, 1e300), lo=0.0),
    Special("i1e", sc.i1e, (0.0, 1e300), exact={0.0: 0.5}, kinks=(0.0,)),
    Special("hyp1f1(1, 2, x)", lambda x: sc.hyp1f1(1.0, 2.0, x), (0.0, -700.0, 700.0),
            exact={0.0: 0.5}),
    Special("hyp2f1(1, 1, 2, z)", lambda z: sc.hyp2f1(1.0, 1.0, 2.0, z), (0.0, 1.0, -1.0),
            hi=1.0, exact={0.0: 0.5}),
    Special("gammasgn", sc.gammasgn, (0.0, -1.5, 2.0), kinks=(0.0,)),
    Special("poch(z, 2)", lambda z: sc.poch(z, 2.0), (0.0, -1.0, 1e-300),
            exact={0.0: 1.0, -1.0: -1.0}),
    Special("binom(n, 2)", lambda n: sc.binom(n, 2.0), (0.0, 1.0, 0.5),
            exact={0.0: -0.5, 1.0: 0.5, 0.5: 0.0}),
    Special("binom(2, k)", lambda k: sc.binom(2.0, k), (3.0, 1.0)),
    # NumPy's own at the ends of their domains
    Special("sqrt", np.sqrt, (0.0, 1e-300), lo=0.0),
    Special("arccos", np.arccos, (1.0, -1.0, 1 - 1e-12), lo=-1.0, hi=1.0),
    Special("arcsin", np.arcsin, (1.0, -1.0, 0.0), lo=-1.0, hi=1.0, exact={0.0: 1.0}),
    Special("arctanh", np.arctanh, (1.0, -1.0, 0.0), lo=-1.0, hi=1.0, exact={0.0: 1.0}),
    Special("arccosh", np.arccosh, (1.0, 1 + 1e-12), lo=1.0),
    Special("log", np.log, (0.0, 1e-300), lo=0.0),
    Special("log2", np.log2, (0.0, 1e-300), lo=0.0),
    Special("power(x, 0.5)", lambda x: np.power(x, 0.5), (0.0, 1e-300), lo=0.0),
    Special("power(x, 3)", lambda x: np.power(x, 3.0), (0.0,), exact={0.0: 0.0}),
    Special("power(0, y)", lambda y: np.power(0.0, y), (1.0, 2.0), lo=0.0),
    Special("power(x, 1.5)", lambda x: np.power(x, 1.5), (0.0,), lo=0.0, exact={0.0: 0.0}),
    Special("logaddexp(x, 0)", lambda x: np.logaddexp(x, 0.0), (-800.0, 800.0, 0.0),
            exact={0.0: 0.5}),
    Special("tanh", np.tanh, (-800.0, 800.0, 0.0), exact={0.0: 1.0}),
    Special("exp", np.exp, (-800.0, 700.0)),
    Special("expm1", np.expm1, (-800.0, -40.0, 0.0), exact={0.0: 1.0}),
    Special("log1p(x) at -1", np.log1p, (-1.0, -1 + 1e-12), lo=-1.0),
    Special("sinc", np.sinc, (1e-8, -1e-8)),
    # Student t at df = inf and huge: the normal
    Special("stdtr(inf, t)", lambda t: sc.stdtr(INF, t), (0.0, 1.5, -40.0),
            exact={0.0: 1 / np.sqrt(2 * np.pi), 1.5: np.exp(-1.125) / np.sqrt(2 * np.pi)}),
    Special("stdtr(1e12, t)", lambda t: sc.stdtr(1e12, t), (0.0, 1.5),
            exact={0.0: 1 / np.sqrt(2 * np.pi)}),
    Special("stdtrit(inf, p)", lambda p: sc.stdtrit(INF, p), (0.5, 0.0, 1.0), lo=0.0, hi=1.0,
            exact={0.5: np.sqrt(2 * np.pi)}),
]


def run_special(tally: Tally) -> None:
    for e in SPECIAL:
        v = np.array(e.points, dtype=float)
        d = np.where(v <= e.lo, 1.0, np.where(v >= e.hi, -1.0, 0.0))
        room = np.minimum(np.where(v > e.lo, v - e.lo, INF), np.where(v < e.hi, e.hi - v, INF))
        for pole in e.poles:
            room = np.minimum(room, np.where(v != pole, np.abs(v - pole), INF))
        # a point within rounding of an end (1 - 1e-16) is at it: one-sided, inward
        tight = room < 1e3 * np.spacing(np.abs(v))
        d = np.where(tight & (v - e.lo < e.hi - v), 1.0, np.where(tight, -1.0, d))
        room = np.where(tight, INF, room)
        h = np.minimum(1e-5 * np.maximum(1.0, np.abs(v)), room / 10)
        exact = np.array([e.exact.get(p, np.nan) for p in e.points])
        kink = np.isin(v, e.kinks)
        with np.errstate(all="ignore"):
            judge(e.label, e.f, e.f, v, d, h, tally, exact=exact, convention=kink,
                  describe=lambda i, v=v: f"(at {v[i]!r})",
                  batched=lambda u, f=e.f: dr.vmap(dr.grad(f))(u))
            # second derivatives: dualrev's own first derivative, differentiated forward
            # (forward over forward) and in reverse (reverse over forward), against its
            # differences, and vmap of grad of grad
            exact2 = np.array([e.exact2.get(p, np.nan) for p in e.points])

            def first(u, f=e.f):
                return dr.jvp(f, (u,), (np.ones_like(u),))[1]

            judge(e.label + " (2nd)", first, first, v, d, h, tally, exact=exact2,
                  skip=kink,
                  describe=lambda i, v=v: f"(at {v[i]!r})",
                  batched=lambda u, f=e.f: dr.vmap(dr.grad(dr.grad(f)))(u))


def test_scipy_special_at_zeros_poles_and_branch_points():
    tally = Tally()
    run_special(tally)
    print(dict(tally.counts))
    assert not tally.failures, "\n".join(tally.failures)
