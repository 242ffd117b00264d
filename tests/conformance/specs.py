"""The spec table: every registered entry mapped to its cases.

Families share generators (``unary``, ``binary``, ``reduction`` ...), so one line per
entry says its sample domain, dtypes and keyword variants; ``CASES`` is the expansion.
To add an entry: add a line in the family it belongs to (or a ``fn(...)`` call in the
section of its module) -- tests/conformance/test_conformance.py::test_every_entry_has_a_spec
fails until you do.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.integrate as sintegrate
import scipy.interpolate as si
import scipy.linalg as sla
import scipy.ndimage as ndi
import scipy.optimize as so
import scipy.sparse as sps
import scipy.sparse.linalg as spla
import scipy.special as sp
import scipy.stats as st
from scipy.interpolate._polyint import _Interpolator1D

import dualrev  # noqa: F401  (installs the SciPy dispatchers)
from dualrev.catalogue.scipy_stats import RULES as STATS_RULES
from dualrev.errors import DualrevError, InPlaceError, NoDerivativeRule

from .cases import A, Case, F, Ints

CASES: list[Case] = []

# Entries checked by value only (their outputs are integers, booleans, shapes, dtypes,
# or the derivative is zero wherever it exists): the value check also asserts a zero
# tangent wherever the output is floating point.
F64, F32, C128 = "float64", "float32", "complex128"
REAL = (F64, F32)
ALL = (F64, F32, C128)


def _label(kw: dict[str, Any]) -> str:
    parts = []
    for k, v in kw.items():
        if v is True:
            parts.append(k)
        elif isinstance(v, (A, F, Ints)):
            parts.append(f"{k}=<array>")
        elif isinstance(v, np.ndarray):
            parts.append(f"{k}=<mask>")
        elif isinstance(v, type):
            parts.append(f"{k}={v.__name__}")
        elif callable(v):
            parts.append(f"{k}={getattr(v, '__name__', 'fn')}")
        else:
            # (no memory addresses: a case's id is its key in the pinned tables)
            parts.append(re.sub(r" at 0x[0-9a-fA-F]+", "", f"{k}={v!r}").replace("'", ""))
    return ",".join(parts)


def add(name: str, entry: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None,
        *, shape: str = "", dtypes: tuple[str, ...] = (F64,), fn: Callable[..., Any] | None = None,
        label: str | None = None, **opts: Any) -> None:
    """Add one case per dtype."""
    kwargs = kwargs or {}
    pos = [repr(a) for a in args if isinstance(a, (int, float, tuple)) and not isinstance(
        a, bool) and not any(isinstance(t, A) for t in np.ravel(np.array(a, dtype=object)))]
    lab = ",".join(p for p in [label, ",".join(pos).replace(" ", ""), _label(kwargs)] if p)
    for dt in dtypes:
        CASES.append(Case(name=name, entry=entry, fn=fn or entry, args=args, kwargs=kwargs,
                          label=lab, shape=shape, dtype=dt, **opts))


def variants(name: str, entry: Any, shapes: dict[str, tuple[Any, ...]],
             kws: list[dict[str, Any]] | None = None, *, dtypes: tuple[str, ...] = ALL,
             narrow: str | None = None, **opts: Any) -> None:
    """Cases for every shape class x keyword variant, float64; float32/complex128 on the
    ``narrow`` shape class (default: the first) only, to keep the harness fast."""
    kws = kws or [{}]
    narrow = narrow or next(iter(shapes))
    for sh, args in shapes.items():
        for kw in kws:
            dts = dtypes if sh == narrow and kw is kws[0] else (F64,)
            if sh == narrow and kw is not kws[0]:
                dts = tuple(d for d in dtypes if d != F32)  # complex for every keyword
            add(name, entry, args, kw, shape=sh, dtypes=tuple(d for d in dts if d in dtypes),
                optional=True, **opts)


# ====================================================================== ufuncs
UNARY_SHAPES = {"mat": (2, 3), "0d": (), "vec": (5,), "empty": (0,)}

# name: (domain, accepts complex)
UNARY = {
    np.negative: ("real", True), np.positive: ("real", True), np.square: ("real", True),
    np.absolute: ("real", True), np.fabs: ("real", False), np.conjugate: ("real", True),
    np.reciprocal: ("real", True), np.sqrt: ("pos", True), np.cbrt: ("real", False),
    np.exp: ("real", True), np.exp2: ("real", True), np.expm1: ("real", True),
    np.log: ("pos", True), np.log2: ("pos", True), np.log10: ("pos", True),
    np.log1p: ("pos", True), np.sin: ("real", True), np.cos: ("real", True),
    np.tan: ("unit", True), np.arcsin: ("unit", True), np.arccos: ("unit", True),
    np.arctan: ("real", True), np.sinh: ("real", True), np.cosh: ("real", True),
    np.tanh: ("real", True), np.arcsinh: ("real", True), np.arccosh: ("gt1", True),
    np.arctanh: ("unit", True), np.deg2rad: ("real", False), np.rad2deg: ("real", False),
    np.radians: ("real", False), np.degrees: ("real", False),
    sp.erf: ("real", True), sp.erfc: ("real", True), sp.erfinv: ("unit", False),
    sp.erfcinv: ("prob", False), sp.erfcx: ("real", True), sp.ndtr: ("real", True),
    sp.ndtri: ("prob", False), sp.log_ndtr: ("real", True), sp.gamma: ("pos", True),
    sp.gammaln: ("pos", False), sp.loggamma: ("pos", True), sp.psi: ("pos", True),
    sp.expit: ("real", False), sp.logit: ("prob", False), sp.log_expit: ("real", False),
    sp.entr: ("pos", False), sp.i0: ("real", False), sp.i0e: ("real", False),
    sp.i1: ("real", False), sp.i1e: ("real", False), sp.j0: ("real", False),
    sp.j1: ("real", False), sp.y0: ("pos", False), sp.y1: ("pos", False),
    sp.rgamma: ("pos", True), sp.exp1: ("pos", True), sp.expi: ("real", False),
    sp.exprel: ("real", False), sp.cbrt: ("real", False), sp.exp2: ("real", False),
    sp.expm1: ("real", True), sp.log1p: ("pos", True), sp.cosm1: ("real", False),
    sp.sindg: ("real", False), sp.cosdg: ("real", False), sp.tandg: ("real", False),
    sp.cotdg: ("real", False), sp.spence: ("pos", True), sp.wrightomega: ("real", True),
    sp.erfi: ("real", True), sp.dawsn: ("real", True), sp.ndtri_exp: ("neg", False),
    sp.ellipk: ("prob", False), sp.ellipe: ("prob", False), sp.ellipkm1: ("prob", False),
    sp.k0: ("pos", False), sp.k0e: ("pos", False), sp.k1: ("pos", False),
    sp.k1e: ("pos", False), sp.ber: ("pos", False), sp.bei: ("pos", False),
    sp.berp: ("pos", False), sp.beip: ("pos", False), sp.ker: ("pos", False),
    sp.kei: ("pos", False), sp.kerp: ("pos", False), sp.keip: ("pos", False),
    sp.itstruve0: ("pos", False), sp.it2struve0: ("pos", False),
    sp.itmodstruve0: ("pos", False),
    # multi-output ufuncs: a tuple of results
    sp.fresnel: ("real", True), sp.sici: ("real", True), sp.shichi: ("real", True),
    sp.airy: ("real", True), sp.iti0k0: ("pos", False), sp.itj0y0: ("pos", False),
    sp.it2i0k0: ("pos", False), sp.it2j0y0: ("pos", False), sp.itairy: ("pos", False),
}
UNARY_NONDIFF = {
    np.sign: ("real", True), np.floor: ("nonint", False), np.ceil: ("nonint", False),
    np.trunc: ("nonint", False), np.rint: ("nonint", True), np.signbit: ("real", False),
    np.isfinite: ("real", True), np.isinf: ("real", True), np.isnan: ("real", True),
    np.logical_not: ("real", True), sp.gammasgn: ("nonint", False), sp.round: ("nonint", False),
}


def _uname(u: Any) -> str:
    mod = "np" if isinstance(u, np.ufunc) and hasattr(np, u.__name__) and getattr(
        np, u.__name__) is u else "sp"
    return f"{mod}.{u.__name__}"


for table, kind in ((UNARY, "diff"), (UNARY_NONDIFF, "value")):
    for u, (dom, cplx) in table.items():
        dts = ALL if cplx else REAL
        for sh, shape in UNARY_SHAPES.items():
            add(_uname(u), u, (A(shape, dom),), shape=sh,
                dtypes=dts if sh == "mat" else ((F64, C128) if sh == "0d" and cplx else (F64,)),
                kind=kind)
add("np.sinc", np.sinc, (A((2, 3)),), shape="mat", dtypes=ALL)
add("np.sinc", np.sinc, (A(()),), shape="0d")
add("np.fix", np.fix, (A((2, 3), "nonint"),), shape="mat", dtypes=REAL, kind="value")

BINARY_SHAPES = {"same": ((2, 3), (2, 3)), "bcast1": ((2, 3), (1, 3)),
                 "scalar": ((), (3,)), "0d": ((), ()), "empty": ((0,), (0,))}
# name: (domain of a, domain of b, accepts complex)
BINARY = {
    np.add: ("real", "real", True), np.subtract: ("real", "real", True),
    np.multiply: ("real", "real", True), np.divide: ("real", "real", True),
    np.power: ("pos", "real", True), np.float_power: ("pos", "real", True),
    np.arctan2: ("real", "real", False), np.hypot: ("real", "real", False),
    np.logaddexp: ("real", "real", False), np.logaddexp2: ("real", "real", False),
    np.maximum: ("real", "real", False), np.minimum: ("real", "real", False),
    np.fmax: ("real", "real", False), np.fmin: ("real", "real", False),
    np.remainder: ("real", "pos", False), np.fmod: ("real", "pos", False),
    sp.beta: ("pos", "pos", False), sp.betaln: ("pos", "pos", False),
    sp.xlogy: ("real", "pos", True), sp.xlog1py: ("real", "pos", False),
    sp.rel_entr: ("pos", "pos", False), sp.kl_div: ("pos", "pos", False),
    sp.poch: ("pos", "pos", False), sp.binom: ("pos", "pos", False),
    sp.powm1: ("pos", "real", False), sp.boxcox: ("pos", "real", False),
    sp.boxcox1p: ("pos", "real", False), sp.inv_boxcox: ("unit", "unit", False),
    sp.inv_boxcox1p: ("unit", "unit", False), sp.huber: ("pos", "real", False),
    sp.pseudo_huber: ("pos", "real", False), sp.owens_t: ("real", "real", False),
    sp.ellipkinc: ("real", "prob", False), sp.ellipeinc: ("real", "prob", False),
}
BINARY_NONDIFF = {
    np.floor_divide: ("real", "pos", False), np.greater: ("real", "real", False),
    np.greater_equal: ("real", "real", False), np.less: ("real", "real", False),
    np.less_equal: ("real", "real", False), np.equal: ("real", "real", True),
    np.not_equal: ("real", "real", True), np.logical_and: ("real", "real", True),
    np.logical_or: ("real", "real", True), np.logical_xor: ("real", "real", True),
    np.heaviside: ("real", "real", False),
}
for table, kind in ((BINARY, "diff"), (BINARY_NONDIFF, "value")):
    for u, (da, db, cplx) in table.items():
        dts = ALL if cplx else REAL
        for sh, (sa, sb) in BINARY_SHAPES.items():
            add(_uname(u), u, (A(sa, da), A(sb, db)), shape=sh, kind=kind,
                dtypes=dts if sh == "same" else ((F64, C128) if sh == "bcast1" and cplx
                                                 else (F64,)))
# Bessel functions of a constant order, and of a traced one (x > 0: the derivative in the
# order is defined for real orders, negative ones by reflection)
for u, dom in ((sp.iv, "pos"), (sp.ive, "pos"), (sp.jv, "pos"), (sp.yv, "pos")):
    for sh, shape in (("mat", (2, 3)), ("0d", ())):
        add(_uname(u), u, (1.5, A(shape, dom)), shape=sh, dtypes=REAL if sh == "mat" else (F64,))
    add(_uname(u), u, (A((3,), "pos"), A((3,), dom)), label="order traced", shape="vec")
for u in (sp.iv, sp.ive, sp.jv, sp.yv, sp.kv, sp.kve, sp.jve, sp.yve):
    add(_uname(u), u, (A((3,), "nonint"), A((3,), "pos")), label="negative order traced",
        shape="vec")
# scipy.special functions with arguments dualrev does not differentiate (orders, degrees,
# shape parameters): those are constants (F, Ints) in the diff cases, and a traced one
# must be refused
CPLX_ORDER = (sp.kv, sp.kve)  # analytic in x: complex x checked too
for u in (sp.kv, sp.kve, sp.jve, sp.yve, sp.struve, sp.modstruve):
    for sh, shape in (("mat", (2, 3)), ("0d", ())):
        add(_uname(u), u, (1.5, A(shape, "pos")), shape=sh,
            dtypes=(ALL if u in CPLX_ORDER else REAL) if sh == "mat" else (F64,))
    add(_uname(u), u, (F((3,), "pos"), A((3,), "pos")), shape="vec", label="v=<array>")
    if u in (sp.struve, sp.modstruve):
        add(_uname(u), u, (A((3,), "pos"), A((3,), "pos")), label="order traced", shape="vec",
            kind="raises", raises=NoDerivativeRule)
    else:
        add(_uname(u), u, (A((3,), "pos"), A((3,), "pos")), label="order traced", shape="vec")
add("sp.kv", sp.kv, (A((3,), "pos", real=True), A((3,), "pos")), label="order traced",
    shape="vec", dtypes=(C128,), kind="raises", raises=NoDerivativeRule)  # complex x
add("sp.jve", sp.jve, (1.5, A((2, 3), "pos")), shape="mat", dtypes=(C128,),
    kind="raises", raises=NoDerivativeRule)  # the exp(-|Im z|) scaling is not analytic
for u in (sp.kn, sp.yn, sp.expn):
    for sh, shape in (("mat", (2, 3)), ("0d", ())):
        add(_uname(u), u, (2, A(shape, "pos")), shape=sh, dtypes=REAL if sh == "mat" else (F64,))
    add(_uname(u), u, (Ints((2, 3), 0, 4), A((2, 3), "pos")), shape="mat")
    add(_uname(u), u, (A((3,), "pos"), A((3,), "pos")), label="order traced", shape="vec",
        kind="raises", raises=NoDerivativeRule)
# the incomplete gamma and beta functions and their inverses: also in the shape
# parameters (issue 22), first and second derivatives
for u, dom in ((sp.gammainc, "pos"), (sp.gammaincc, "pos"), (sp.gammaincinv, "prob"),
               (sp.gammainccinv, "prob")):
    add(_uname(u), u, (F((2, 3), "pos"), A((2, 3), dom)), shape="mat", dtypes=REAL)
    add(_uname(u), u, (1.5, A((), dom)), shape="0d")
    add(_uname(u), u, (A((3,), "pos"), A((3,), dom)), label="a traced", shape="vec")
    add(_uname(u), u, (A((3,), "gt1"), 2.5 if dom == "pos" else 0.35),
        label="a traced only", shape="vec")
for u in (sp.betainc, sp.betaincc, sp.betaincinv, sp.betainccinv):
    add(_uname(u), u, (F((2, 3), "pos"), F((2, 3), "pos"), A((2, 3), "prob")), shape="mat",
        dtypes=REAL)
    add(_uname(u), u, (2.5, 0.7, A((), "prob")), shape="0d")
    add(_uname(u), u, (F((3,), "pos"), F((1,), "pos"), A((3,), "prob")), shape="bcast1")
    add(_uname(u), u, (A((3,), "pos"), 0.7, A((3,), "prob")), label="a traced", shape="vec")
    add(_uname(u), u, (0.7, A((3,), "pos"), A((3,), "prob")), label="b traced", shape="vec")
    add(_uname(u), u, (A((3,), "gt1"), A((3,), "gt1"), 0.35), label="a b traced",
        shape="vec")
for u, consts, dom in ((sp.hyp0f1, (1.5,), "real"), (sp.hyp1f1, (0.7, 1.5), "real"),
                       (sp.hyp2f1, (0.5, 0.7, 1.5), "unit"), (sp.hyperu, (0.7, 1.5), "pos"),
                       (sp.wright_bessel, (0.5, 1.2), "pos"),
                       (sp.log_wright_bessel, (0.5, 1.2), "pos")):
    cplx = u in (sp.hyp0f1, sp.hyp1f1, sp.hyp2f1)
    add(_uname(u), u, (*consts, A((2, 3), dom)), shape="mat", dtypes=ALL if cplx else REAL)
    add(_uname(u), u, (*consts, A((), dom)), shape="0d")
    if u is sp.hyp0f1:  # differentiable in b (bessel_order.py)
        add(_uname(u), u, (A((3,), "pos"), A((3,), dom)), label="traced", shape="vec")
    else:
        add(_uname(u), u, (*(A((3,), "pos") for _ in consts), A((3,), dom)), label="traced",
            shape="vec", kind="raises", raises=NoDerivativeRule)
# distribution functions: counts (Ints) and degrees of freedom (F) constant, a traced one
# refused; the continuous variables (A) differentiated
K, PV = Ints((2, 3), 0, 4), F((2, 3), "pos")
DIST: list[tuple[Any, tuple[Any, ...], tuple[Any, ...]]] = [
    (sp.chdtr, (PV, A((2, 3), "pos")), (A((3,), "pos"), A((3,), "pos"))),
    (sp.chdtrc, (PV, A((2, 3), "pos")), (A((3,), "pos"), A((3,), "pos"))),
    (sp.chdtri, (PV, A((2, 3), "prob")), (A((3,), "pos"), A((3,), "prob"))),
    (sp.gdtr, (A((2, 3), "pos"), PV, A((2, 3), "pos")),
     (A((3,), "pos"), A((3,), "pos"), A((3,), "pos"))),
    (sp.gdtrc, (A((2, 3), "pos"), PV, A((2, 3), "pos")),
     (A((3,), "pos"), A((3,), "pos"), A((3,), "pos"))),
    (sp.gdtrix, (A((2, 3), "pos"), PV, A((2, 3), "prob")),
     (A((3,), "pos"), A((3,), "pos"), A((3,), "prob"))),
    (sp.pdtr, (K, A((2, 3), "pos")), (A((3,), "pos"), A((3,), "pos"))),
    (sp.pdtrc, (K, A((2, 3), "pos")), (A((3,), "pos"), A((3,), "pos"))),
    (sp.pdtri, (K, A((2, 3), "prob")), (A((3,), "pos"), A((3,), "prob"))),
    (sp.stdtr, (F((2, 3), "gt1"), A((2, 3))), (A((3,), "gt1"), A((3,)))),
    (sp.stdtrit, (F((2, 3), "gt1"), A((2, 3), "prob")), (A((3,), "gt1"), A((3,), "prob"))),
    (sp.bdtr, (K, 6, A((2, 3), "prob")), (A((3,), "pos"), 6, A((3,), "prob"))),
    (sp.bdtrc, (K, 6, A((2, 3), "prob")), (A((3,), "pos"), 6, A((3,), "prob"))),
    (sp.bdtri, (K, 6, A((2, 3), "prob")), (A((3,), "pos"), 6, A((3,), "prob"))),
    (sp.nbdtr, (K, 3, A((2, 3), "prob")), (A((3,), "pos"), 3, A((3,), "prob"))),
    (sp.nbdtrc, (K, 3, A((2, 3), "prob")), (A((3,), "pos"), 3, A((3,), "prob"))),
    (sp.nbdtri, (K, 3, A((2, 3), "prob")), (2, A((3,), "gt1"), A((3,), "prob"))),
    (sp.fdtr, (F((2, 3), "gt1"), F((2, 3), "gt1"), A((2, 3), "pos")),
     (A((3,), "gt1"), 2.5, A((3,), "pos"))),
    (sp.fdtrc, (F((2, 3), "gt1"), F((2, 3), "gt1"), A((2, 3), "pos")),
     (2.5, A((3,), "gt1"), A((3,), "pos"))),
    (sp.fdtri, (F((2, 3), "gt1"), F((2, 3), "gt1"), A((2, 3), "prob")),
     (A((3,), "gt1"), 2.5, A((3,), "prob"))),
]
# (their continuous shape parameters differentiable since issue 22; counts refused)
SHAPE_DIFF = (sp.chdtr, sp.chdtrc, sp.chdtri, sp.gdtr, sp.gdtrc, sp.gdtrix, sp.stdtr,
              sp.stdtrit, sp.fdtr, sp.fdtrc, sp.fdtri)
for u, args, traced in DIST:
    add(_uname(u), u, args, shape="mat", dtypes=REAL)
    if u in SHAPE_DIFF:
        add(_uname(u), u, traced, label="parameter traced", shape="vec")
    else:
        add(_uname(u), u, traced, label="parameter traced", shape="vec", kind="raises",
            raises=NoDerivativeRule)
# the solvers for a shape parameter (issue 22), by the implicit function theorem; p
# where SciPy's solution exists (fdtridfd clamps to 1e100 past fdtr(dfn, inf, x))
for u, args, lab in ((sp.chdtriv, (A((3,), "prob"), A((3,), "pos")), None),
                     (sp.gdtrib, (A((3,), "pos"), A((3,), "prob"), A((3,), "pos")), None),
                     (sp.stdtridf, (A((3,), "tail"), 2.5), "p traced"),
                     (sp.stdtridf, (0.75, A((3,), "gt1")), "t traced"),
                     (sp.fdtridfd, (A((3,), "gt1"), 0.3, A((3,), "gt1")), "dfn x traced"),
                     (sp.fdtridfd, (2.5, A((3,), "prob"), 4.0), "p traced"),
                     (sp.btdtria, (A((3,), "prob"), A((3,), "gt1"), A((3,), "prob")), None),
                     (sp.btdtrib, (A((3,), "gt1"), A((3,), "prob"), A((3,), "prob")), None)):
    add(_uname(u), u, args, shape="vec", label=lab)
add("sp.nrdtrimn", sp.nrdtrimn, (A((2, 3), "prob"), A((2, 3), "pos"), A((2, 3))),
    shape="same", dtypes=REAL)
add("sp.nrdtrimn", sp.nrdtrimn, (A((), "prob"), A((3,), "pos"), A((2, 1))), shape="bcast1")
add("sp.nrdtrisd", sp.nrdtrisd, (A((2, 3)), A((2, 3), "tail"), A((2, 3))),
    shape="same", dtypes=REAL)
# orthogonal polynomials: integer degrees (Ints, and a constant), x in their interval
for u, dom, extra in (
        (sp.eval_hermite, "real", ()), (sp.eval_hermitenorm, "real", ()),
        (sp.eval_chebyt, "unit", ()), (sp.eval_chebyu, "unit", ()),
        (sp.eval_chebyc, "unit", ()), (sp.eval_chebys, "unit", ()),
        (sp.eval_sh_chebyt, "prob", ()), (sp.eval_sh_chebyu, "prob", ()),
        (sp.eval_legendre, "unit", ()), (sp.eval_sh_legendre, "prob", ()),
        (sp.eval_laguerre, "pos", ()), (sp.eval_genlaguerre, "pos", (0.7,)),
        (sp.eval_gegenbauer, "unit", (0.7,)), (sp.eval_jacobi, "unit", (0.7, 1.3))):
    add(_uname(u), u, (Ints((2, 3), 0, 5), *extra, A((2, 3), dom)), shape="mat", dtypes=REAL)
    add(_uname(u), u, (3, *extra, A((), dom)), shape="0d")
    if u not in (sp.eval_hermite, sp.eval_hermitenorm):  # those take integer degrees only
        add(_uname(u), u, (A((3,), "pos"), *extra, A((3,), dom)), label="degree traced",
            shape="vec", kind="raises", raises=NoDerivativeRule)
add("sp.eval_legendre", sp.eval_legendre, (2.5, A((3,), "unit")), label="non-integer",
    shape="vec", kind="raises", raises=NoDerivativeRule)
# complex-valued functions (real arguments give complex results too)
add("sp.wofz", sp.wofz, (A((2, 3)),), shape="mat", dtypes=(F64, C128))
add("sp.wofz", sp.wofz, (A(()),), shape="0d", dtypes=(C128,))
add("sp.kelvin", sp.kelvin, (A((2, 3), "pos"),), shape="mat")
add("sp.kelvin", sp.kelvin, (A((), "pos"),), shape="0d")
for u in (sp.hankel1, sp.hankel1e, sp.hankel2, sp.hankel2e):
    add(_uname(u), u, (1.5, A((2, 3), "pos")), shape="mat", dtypes=(F64, C128))
    add(_uname(u), u, (F((3,), "pos"), A((3,), "pos")), shape="vec", label="v=<array>",
        dtypes=(C128,))
    add(_uname(u), u, (A((3,), "pos", real=True), A((3,), "pos")), label="order traced",
        shape="vec", kind="raises", raises=NoDerivativeRule, dtypes=(C128,))
for sh, shapes in (("same", ((2, 3), (2, 3), (2, 3))), ("bcast1", ((), (3,), (2, 1)))):
    add("sp.voigt_profile", sp.voigt_profile, tuple(A(s, d) for s, d in zip(
        shapes, ("real", "pos", "pos"), strict=True)), shape=sh,
        dtypes=REAL if sh == "same" else (F64,))
add("sp.besselpoly", sp.besselpoly, (A((2, 3), "pos"), 1.5, 1.5), shape="mat", dtypes=REAL)
add("sp.besselpoly", sp.besselpoly, (A((), "pos"), 2.0, 0.0), shape="0d")
add("sp.besselpoly", sp.besselpoly, (A((3,), "pos"), A((3,), "pos"), 1.5),
    label="lmb traced", shape="vec", kind="raises", raises=NoDerivativeRule)
add("sp.lpmv", sp.lpmv, (1, 2.5, A((2, 3), "unit")), shape="mat", dtypes=REAL)
add("sp.lpmv", sp.lpmv, (Ints((2, 3), 0, 3), 3.0, A((2, 3), "unit")), shape="mat")
add("sp.lpmv", sp.lpmv, (1, A((3,), "pos"), A((3,), "unit")), label="v traced",
    shape="vec", kind="raises", raises=NoDerivativeRule)
add("sp.gdtria", sp.gdtria, (A((2, 3), "prob"), F((2, 3), "pos"), A((2, 3), "pos")),
    shape="same", dtypes=REAL)
add("sp.gdtria", sp.gdtria, (A((3,), "prob"), A((3,), "pos"), A((3,), "pos")),
    label="b traced", shape="vec")
for u in (sp.pbdv, sp.pbvv, sp.pbwa):
    add(_uname(u), u, (F((2, 3), "unit"), A((2, 3))), shape="mat", dtypes=REAL)
    add(_uname(u), u, (0.5, A(())), shape="0d")
    add(_uname(u), u, (A((3,)), A((3,))), label="order traced", shape="vec", kind="raises",
        raises=NoDerivativeRule)
for u in (sp.modfresnelp, sp.modfresnelm, sp.airye):
    add(_uname(u), u, (A((2, 3), "pos"),), shape="mat", dtypes=REAL)
    add(_uname(u), u, (A((), "pos"),), shape="0d")
add("sp.airye", sp.airye, (A((2, 3), "real"),), shape="mat", label="eBi: negative x",
    fn=lambda x: sp.airye(x)[2:])  # eAi is nan for negative real x
add("sp.airye", sp.airye, (A((3,), "pos"),), shape="vec", dtypes=(C128,), kind="raises",
    raises=NoDerivativeRule)  # eBi's exp(-|Re zeta|) is not analytic
add("sp.eval_sh_jacobi", sp.eval_sh_jacobi, (Ints((2, 3), 0, 5), 2.5, 1.3, A((2, 3), "prob")),
    shape="mat", dtypes=REAL)
add("sp.eval_sh_jacobi", sp.eval_sh_jacobi, (3, 2.5, 1.3, A((), "prob")), shape="0d")
add("sp.eval_sh_jacobi", sp.eval_sh_jacobi, (2, A((3,), "gt1"), 1.3, A((3,), "prob")),
    label="p traced", shape="vec", kind="raises", raises=NoDerivativeRule)
add("sp.tklmbda", sp.tklmbda, (A((2, 3), "unit"), A((2, 3), "unit")), shape="same",
    dtypes=REAL)
add("sp.tklmbda", sp.tklmbda, (A((2, 3), "unit"), A((), "unit")), shape="scalar")
add("sp.tklmbda", sp.tklmbda, (A((3,), "unit"), 0.0), shape="vec", label="lmbda=0")
for u, first in ((sp.chndtr, "pos"), (sp.chndtrix, "prob")):
    add(_uname(u), u, (A((2, 3), first), F((2, 3), "gt1"), A((2, 3), "pos")), shape="same",
        dtypes=REAL)
    add(_uname(u), u, (A((3,), first), A((3,), "gt1"), A((3,), "pos")), label="df traced",
        shape="vec", kind="raises", raises=NoDerivativeRule)
# the p whose nc is sought must lie below the central cdf (nc >= 0): p = chndtr at nc = 1
add("sp.chndtrinc", sp.chndtrinc, (A((2, 3), "pos"), 2.5, A((2, 3), "prob")), shape="same",
    fn=lambda x, df, p: sp.chndtrinc(x, df, sp.chndtr(x, df, 1.0) * p))
add("sp.radian", sp.radian, (A((2, 3)), A((2, 3)), A((2, 3))), shape="same", dtypes=REAL)
add("sp.radian", sp.radian, (A(()), A((3,)), A((2, 1))), shape="bcast1")
add("sp.ellipj", sp.ellipj, (A((2, 3)), F((2, 3), "prob")), shape="mat", dtypes=REAL)
add("sp.ellipj", sp.ellipj, (A(()), 0.4), shape="0d")
add("sp.ellipj", sp.ellipj, (A((3,)), A((3,), "prob")), label="m traced", shape="vec",
    kind="raises", raises=NoDerivativeRule)

MATMUL_SHAPES = {"mat": ((3, 4), (4, 2)), "stacked": ((2, 3, 4), (4, 2)),
                 "vec-vec": ((3,), (3,)), "mat-vec": ((2, 3), (3,)),
                 "vec-mat": ((3,), (3, 2)), "bcast1": ((1, 2, 3), (4, 3, 2)),
                 "empty": ((0, 3), (3, 2))}
for sh, (sa, sb) in MATMUL_SHAPES.items():
    add("np.matmul", np.matmul, (A(sa), A(sb)), shape=sh, dtypes=ALL if sh == "mat" else (F64,))

# ====================================================================== reductions
MAT, STACK = A((2, 3)), A((2, 2, 3))
RED_SHAPES = {"mat": (MAT,), "0d": (A(()),), "stacked": (STACK,), "empty": (A((0, 3)),)}
AXES = [{}, {"axis": 0}, {"axis": 1}, {"axis": -1, "keepdims": True}, {"axis": (0, 1)},
        {"keepdims": True}]
MASK = np.array([[True, False, True], [False, True, True]])

variants("np.sum", np.sum, RED_SHAPES, AXES + [{"where": MASK}, {"initial": 1.5},
                                               {"dtype": np.complex128}])
add("np.sum", np.sum, (A((2, 3)),), {"dtype": np.float64}, shape="mat", dtypes=(F32,))
variants("np.mean", np.mean, RED_SHAPES, AXES + [{"where": MASK}, {"dtype": np.complex128}])
add("np.mean", np.mean, (A((2, 3)),), {"dtype": np.float64}, shape="mat", dtypes=(F32,))
variants("np.prod", np.prod, RED_SHAPES, AXES + [{"where": MASK}, {"initial": 1.5},
                                                 {"dtype": np.complex128}])
add("np.prod", np.prod, (A((2, 0)),), {"axis": 1}, shape="empty-axis")
for nm, f in (("np.max", np.max), ("np.amax", np.amax), ("np.min", np.min),
              ("np.amin", np.amin)):
    D = {"mat": (A((2, 3), "distinct"),), "0d": (A((), "distinct"),),
         "stacked": (A((2, 2, 3), "distinct"),)}
    variants(nm, f, D, AXES + [{"initial": 0.1}, {"where": MASK, "initial": 0.1}],
             dtypes=REAL)
    add(nm, f, (A((0, 3)),), {"axis": 0, "initial": 0.1}, shape="empty")
for nm, f in (("np.var", np.var), ("np.std", np.std)):
    variants(nm, f, {"mat": (MAT,), "0d": (A(()),), "stacked": (STACK,)},
             AXES + [{"ddof": 1}, {"correction": 1, "axis": 0}, {"where": MASK},
                     {"axis": 1, "keepdims": True, "mean": A((2, 1))},
                     {"dtype": np.float64}])
for nm, f in (("np.cumsum", np.cumsum), ("np.cumprod", np.cumprod)):
    variants(nm, f, {"mat": (MAT,), "0d": (A(()),), "empty": (A((0, 3)),)},
             [{}, {"axis": 0}, {"axis": 1}, {"axis": -1, "dtype": np.complex128}])
variants("np.average", np.average, {"mat": (MAT,), "stacked": (STACK,)},
         [{}, {"axis": 1}, {"weights": A((2, 3), "pos")},
          {"axis": 1, "weights": A((3,), "pos")},
          {"axis": 0, "weights": A((2,), "pos"), "returned": True},
          {"axis": 1, "keepdims": True}])
NAN_MAT = (A((2, 3), "nan"),)
variants("np.nansum", np.nansum, {"mat": (MAT,), "nan": NAN_MAT},
         [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"dtype": np.complex128},
          {"initial": 1.5}])
variants("np.nanmean", np.nanmean, {"mat": (MAT,), "nan": NAN_MAT},
         [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"dtype": np.complex128}])

# the nan-ignoring reductions and the array-API cumulative functions
variants("np.nanprod", np.nanprod, {"mat": (MAT,), "nan": NAN_MAT},
         [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"dtype": np.complex128},
          {"initial": 1.5}, {"where": MASK}])
for nm, f in (("np.nanmax", np.nanmax), ("np.nanmin", np.nanmin)):
    variants(nm, f, {"mat": (A((2, 3), "distinct"),), "nan": NAN_MAT},
             [{}, {"axis": 1}, {"axis": 0, "keepdims": True}], dtypes=REAL)
    add(nm, f, (A((2, 3), "distinct"),), {"initial": 0.1}, shape="mat", kind="raises",
        raises=NoDerivativeRule)
    add(nm, f, (A((2, 3), "distinct"),), {"where": MASK, "initial": 0.1}, shape="mat",
        kind="raises", raises=NoDerivativeRule)
for nm, f in (("np.nancumsum", np.nancumsum), ("np.nancumprod", np.nancumprod)):
    variants(nm, f, {"mat": (MAT,), "nan": NAN_MAT},
             [{}, {"axis": 0}, {"axis": 1, "dtype": np.complex128}])
if hasattr(np, "cumulative_sum"):
    for nm, f in (("np.cumulative_sum", np.cumulative_sum),
                  ("np.cumulative_prod", np.cumulative_prod)):
        variants(nm, f, {"mat": (MAT,), "vec": (A((4,)),)},
                 [{"axis": 0}, {"axis": -1, "include_initial": True},
                  {"axis": 1, "dtype": np.complex128}])
        add(nm, f, (A((4,)),), {"include_initial": True}, shape="vec")
for nm, f in (("np.nanvar", np.nanvar), ("np.nanstd", np.nanstd)):
    variants(nm, f, {"mat": (MAT,), "nan": NAN_MAT, "stacked": (STACK,),
                     "nan3": (A((3, 3), "nan"),)},
             [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"ddof": 1},
              {"correction": 1, "axis": 1}, {"where": MASK}, {"dtype": np.float64},
              {"axis": 1, "keepdims": True, "mean": A((2, 1))}])
variants("np.ptp", np.ptp, {"mat": (A((2, 3), "distinct"),),
                            "stacked": (A((2, 2, 3), "distinct"),)},
         [{}, {"axis": 0}, {"axis": 1, "keepdims": True}, {"keepdims": True}], dtypes=REAL)

NORM_VEC = [{}, {"ord": 1}, {"ord": 2}, {"ord": np.inf}, {"ord": -np.inf}, {"ord": 3},
            {"ord": -1}, {"ord": 0.5}, {"keepdims": True}, {"ord": 0}]
NORM_MAT = [{}, {"ord": "fro"}, {"ord": "nuc"}, {"ord": 1}, {"ord": -1}, {"ord": 2},
            {"ord": -2}, {"ord": np.inf}, {"ord": -np.inf}, {"keepdims": True},
            {"ord": 2, "keepdims": True}, {"axis": 1}, {"axis": 0, "ord": 1}]
variants("np.linalg.norm", np.linalg.norm, {"vec": (A((4,), "distinct"),)}, NORM_VEC)
variants("np.linalg.norm", np.linalg.norm, {"mat": (A((3, 2), "svd"),)}, NORM_MAT)
variants("np.linalg.norm", np.linalg.norm, {"stacked": (A((2, 3, 2), "svd"),)},
         [{"axis": (1, 2)}, {"axis": (1, 2), "ord": 2}, {"axis": (1, 2), "ord": "nuc"},
          {"axis": -1}], dtypes=(F64, C128))
add("np.linalg.norm", np.linalg.norm, (A((0,)),), shape="empty")
# numpy.linalg's array-API functions
AT = A((2, 3, 3))
for nm, f in (("np.linalg.matrix_transpose", np.linalg.matrix_transpose),
              ("np.matrix_transpose", getattr(np, "matrix_transpose", None))):
    if f is not None:
        variants(nm, f, {"stacked": (AT,), "mat": (MAT,)})
variants("np.linalg.matmul", np.linalg.matmul, {"stacked": (AT, A((3, 2))), "mat": (MAT, A((3,)))})
variants("np.linalg.outer", np.linalg.outer, {"vec": (A((3,)), A((2,)))})
variants("np.linalg.tensordot", np.linalg.tensordot, {"mat": (A((2, 3, 2)), A((3, 2, 2)))},
         [{}, {"axes": 1}, {"axes": ([1, 0], [0, 2])}])
variants("np.linalg.trace", np.linalg.trace, {"stacked": (AT,), "mat": (A((3, 3)),)},
         [{}, {"offset": 1}, {"dtype": np.complex128}])
variants("np.linalg.diagonal", np.linalg.diagonal, {"stacked": (AT,), "mat": (MAT,)},
         [{}, {"offset": -1}])
variants("np.linalg.cross", np.linalg.cross, {"vec": (A((3,)), A((3,))),
                                              "stacked": (A((2, 3)), A((2, 3)))})
add("np.linalg.cross", np.linalg.cross, (A((3, 2)), A((3, 2))), {"axis": 0}, shape="mat")
variants("np.linalg.vecdot", np.linalg.vecdot, {"mat": (MAT, MAT), "bcast1": (MAT, A((3,)))},
         [{}, {"axis": 0}])
variants("np.linalg.vector_norm", np.linalg.vector_norm,
         {"stacked": (A((2, 2, 3), "distinct"),), "vec": (A((4,), "distinct"),)},
         [{}, {"axis": 1}, {"axis": (0, 2), "keepdims": True}, {"ord": 1}, {"ord": np.inf},
          {"ord": 3, "axis": -1}, {"keepdims": True}])
variants("np.linalg.matrix_norm", np.linalg.matrix_norm,
         {"mat": (A((3, 2), "svd"),), "stacked": (A((2, 3, 2), "svd"),)},
         [{}, {"ord": "nuc"}, {"ord": 2}, {"ord": 1, "keepdims": True}, {"keepdims": True}])

variants("sp.logsumexp", sp.logsumexp, {"mat": (MAT,), "0d": (A(()),)},
         [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"b": A((2, 3), "pos")},
          {"axis": 1, "b": A((3,), "pos")}, {"b": A((2, 3), "pos"), "return_sign": True}],
         dtypes=ALL)
add("sp.logsumexp", sp.logsumexp, (A((2, 3)),), {"b": F((2, 3))}, shape="mat",
    label="signed")
add("sp.logsumexp", sp.logsumexp, (A((2, 3)),), {"b": F((2, 3)), "return_sign": True},
    shape="mat", label="signed")
for nm, f in (("sp.softmax", sp.softmax), ("sp.log_softmax", sp.log_softmax)):
    variants(nm, f, {"mat": (MAT,), "0d": (A(()),), "stacked": (STACK,)},
             [{}, {"axis": 1}, {"axis": 0}, {"axis": (0, 1)}], dtypes=ALL)
variants("sp.softplus", sp.softplus, {"mat": (MAT,), "0d": (A(()),)}, dtypes=REAL)
for sh, shape in (("mat", (2, 3)), ("0d", ())):
    add("sp.polygamma", sp.polygamma, (1, A(shape, "pos")), shape=sh, label="n=1",
        dtypes=REAL if sh == "mat" else (F64,))
add("sp.polygamma", sp.polygamma, (Ints((2, 3), 0, 3), A((2, 3), "pos")), shape="mat",
    label="n=<array>")
add("sp.polygamma", sp.polygamma, (A((3,), "pos"), A((3,), "pos")), shape="vec",
    label="n traced", kind="raises", raises=DualrevError)

# ====================================================================== shape & indexing
V, M = A((4,)), A((2, 3))


def _row_stack(tup: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():  # deprecated alias of vstack since NumPy 2.0
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.row_stack(tup, **kw)

SHAPE_FUNCS: list[tuple[str, Any, dict[str, tuple[Any, ...]], list[dict[str, Any]]]] = [
    ("np.real", np.real, {"mat": (M,)}, [{}]),
    ("np.imag", np.imag, {"mat": (M,)}, [{}]),
    ("np.angle", np.angle, {"mat": (M,)}, [{}, {"deg": True}]),
    ("np.reshape", np.reshape, {"mat": (M, (3, 2)), "empty": (A((0, 3)), (3, 0))},
     [{}, {"order": "F"}]),
    ("np.reshape", np.reshape, {"mat": (M, -1)}, [{}]),
    ("np.reshape", np.reshape, {"mat": (M,)}, [{"shape": (3, 2)}, {"shape": (6,), "copy": True}]),
    ("np.ravel", np.ravel, {"mat": (M,), "0d": (A(()),)}, [{}, {"order": "F"}]),
    ("np.squeeze", np.squeeze, {"mat": (A((2, 1, 3)),)}, [{}, {"axis": 1}]),
    ("np.expand_dims", np.expand_dims, {"mat": (M,)}, [{"axis": 0}, {"axis": (0, 3)}]),
    ("np.transpose", np.transpose, {"mat": (A((2, 3, 2)),), "0d": (A(()),)},
     [{}, {"axes": (1, 0, 2)}]),
    ("np.swapaxes", np.swapaxes, {"mat": (A((2, 3, 2)), 0, 2)}, [{}]),
    ("np.moveaxis", np.moveaxis, {"mat": (A((2, 3, 2)), 0, -1)}, [{}]),
    ("np.moveaxis", np.moveaxis, {"mat": (A((2, 3, 2)), (0, 1), (2, 0))}, [{}]),
    ("np.broadcast_to", np.broadcast_to, {"mat": (A((3,)), (2, 3)), "0d": (A(()), (2,))},
     [{}]),
    ("np.flip", np.flip, {"mat": (M,)}, [{}, {"axis": 1}, {"axis": (0, 1)}]),
    ("np.fliplr", np.fliplr, {"mat": (M,)}, [{}]),
    ("np.flipud", np.flipud, {"mat": (M,)}, [{}]),
    ("np.roll", np.roll, {"mat": (M, 1)}, [{}, {"axis": 1}]),
    ("np.roll", np.roll, {"mat": (M, (1, 2))}, [{"axis": (0, 1)}]),
    ("np.repeat", np.repeat, {"mat": (M, 2)}, [{}, {"axis": 1}]),
    ("np.repeat", np.repeat, {"mat": (M, [1, 2])}, [{"axis": 0}]),
    ("np.tile", np.tile, {"mat": (M, 2), "0d": (A(()), 3)}, [{}]),
    ("np.tile", np.tile, {"mat": (M, (2, 1, 2))}, [{}]),
    ("np.diagonal", np.diagonal, {"mat": (A((3, 3)),), "stacked": (A((2, 3, 3)),)},
     [{}, {"offset": 1}, {"offset": -1, "axis1": 1, "axis2": 0}]),
    ("np.trace", np.trace, {"mat": (A((3, 3)),), "stacked": (A((2, 3, 3)),)},
     [{}, {"offset": 1}, {"axis1": 1, "axis2": 0}, {"dtype": np.complex128}]),
    ("np.diag", np.diag, {"vec": (A((3,)),), "mat": (A((3, 3)),)}, [{}, {"k": 1}]),
    ("np.triu", np.triu, {"mat": (A((3, 3)),), "stacked": (A((2, 3, 3)),)}, [{}, {"k": -1}]),
    ("np.tril", np.tril, {"mat": (A((3, 3)),), "stacked": (A((2, 3, 3)),)}, [{}, {"k": 1}]),
    ("np.copy", np.copy, {"mat": (M,), "0d": (A(()),)}, [{}, {"order": "F"}]),
    ("np.atleast_1d", np.atleast_1d, {"0d": (A(()),), "two": (A(()), A((2, 2)))}, [{}]),
    ("np.atleast_2d", np.atleast_2d, {"0d": (A(()),), "two": (A((3,)), A((2, 2)))}, [{}]),
    ("np.atleast_3d", np.atleast_3d, {"vec": (A((3,)),), "two": (A((3,)), A((2, 2)))},
     [{}]),
    ("np.broadcast_arrays", np.broadcast_arrays, {"bcast1": (A((2, 3)), A((1, 3)))}, [{}]),
    ("np.concatenate", np.concatenate, {"mat": ([A((2, 3)), A((1, 3))],),
                                        "empty": ([A((0, 3)), A((2, 3))],)},
     [{}, {"dtype": np.complex128}]),
    ("np.concatenate", np.concatenate, {"mat": ([A((2, 3)), A((2, 1))],)},
     [{"axis": 1}, {"axis": -1}]),
    ("np.concatenate", np.concatenate, {"mat": ([A((2, 3)), A((2, 1))],)}, [{"axis": None}]),
    ("np.stack", np.stack, {"mat": ([M, M],), "0d": ([A(()), A(())],)},
     [{}, {"axis": -1}, {"dtype": np.complex128}]),
    ("np.hstack", np.hstack, {"mat": ([A((2, 3)), A((2, 1))],), "vec": ([V, A((2,))],)},
     [{}, {"dtype": np.complex128}]),
    ("np.row_stack", _row_stack, {"mat": ([A((2, 3)), A((1, 3))],)},
     [{}, {"dtype": np.complex128}]),
    ("np.vstack", np.vstack, {"mat": ([A((2, 3)), A((1, 3))],), "vec": ([A((3,)), A((3,))],)},
     [{}, {"dtype": np.complex128}]),
    ("np.column_stack", np.column_stack, {"vec": ([A((3,)), A((3, 2))],)}, [{}]),
    ("np.dstack", np.dstack, {"mat": ([M, M],)}, [{}]),
    ("np.split", np.split, {"vec": (A((6,)), 3), "mat": (A((4, 3)), [1, 3])},
     [{}]),
    ("np.split", np.split, {"mat": (A((2, 4)), 2)}, [{"axis": 1}]),
    ("np.array_split", np.array_split, {"vec": (A((5,)), 3)}, [{}]),
    ("np.array_split", np.array_split, {"mat": (A((2, 5)), 2)}, [{"axis": 1}]),
    ("np.vsplit", np.vsplit, {"mat": (A((4, 3)), 2), "stacked": (A((4, 2, 2)), [1, 3])},
     [{}]),
    ("np.hsplit", np.hsplit, {"mat": (A((2, 4)), 2), "vec": (A((6,)), [2])}, [{}]),
    ("np.dsplit", np.dsplit, {"stacked": (A((2, 2, 4)), 2)}, [{}]),
    ("np.append", np.append, {"mat": (M, A((1, 3))), "vec": (V, 2.0)}, [{}, {"axis": 0}]),
    ("np.rot90", np.rot90, {"mat": (M,), "stacked": (A((2, 3, 2)),)},
     [{}, {"k": 2}, {"k": -1}, {"k": 0}, {"k": 3, "axes": (1, 0)}, {"axes": (-1, 0)}]),
    ("np.rollaxis", np.rollaxis, {"stacked": (A((2, 3, 4)), 2), "mat": (M, -1)},
     [{}, {"start": 1}, {"start": 3}, {"start": -1}]),
    ("np.real_if_close", np.real_if_close, {"mat": (M,)}, [{}, {"tol": 1e-3}]),
    ("np.diagflat", np.diagflat, {"vec": (A((3,)),), "mat": (A((2, 2)),)}, [{}, {"k": -1}]),
    ("np.fft.fftshift", np.fft.fftshift, {"mat": (A((3, 4)),), "vec": (A((5,)),)},
     [{}, {"axes": 0}, {"axes": (-1,)}]),
    ("np.fft.ifftshift", np.fft.ifftshift, {"mat": (A((3, 4)),), "vec": (A((5,)),)},
     [{}, {"axes": 1}]),
    ("np.take", np.take, {"vec": (V, [0, 3, 3]), "mat": (M, [[0, 2], [1, 1]])},
     [{}, {"axis": 0}, {"mode": "wrap"}, {"mode": "clip"}]),
    ("np.take_along_axis", np.take_along_axis, {"mat": (M, np.array([[0, 2, 2], [1, 0, 1]]))},
     [{"axis": 1}, {"axis": 0}]),
    ("np.pad", np.pad, {"mat": (M, 1), "vec": (V, (1, 2))},
     [{}, {"mode": "constant", "constant_values": 2.0}, {"mode": "edge"},
      {"mode": "reflect"}, {"mode": "wrap"}, {"mode": "symmetric"}]),
    ("np.diff", np.diff, {"vec": (V,), "mat": (M,)},
     [{}, {"n": 2}, {"axis": 0}, {"prepend": 0.5}, {"append": A((1,))}]),
    ("np.kron", np.kron, {"mat": (A((2, 2)), A((2, 3))), "vec": (A((2,)), A((3,)))}, [{}]),
]
if hasattr(np, "unstack"):  # NumPy >= 2.1
    SHAPE_FUNCS.append(("np.unstack", np.unstack, {"mat": (M,), "stacked": (A((2, 3, 2)),)},
                        [{}, {"axis": 1}, {"axis": -1}]))
SHAPE_FUNCS.append(("np.lib.stride_tricks.sliding_window_view",
                    np.lib.stride_tricks.sliding_window_view,
                    {"vec": (A((5,)), 3), "mat": (M, (2, 2))},
                    [{}]))
SHAPE_FUNCS.append(("np.lib.stride_tricks.sliding_window_view",
                    np.lib.stride_tricks.sliding_window_view, {"mat": (M, 2)},
                    [{"axis": 1}, {"axis": -2}]))
for nm, f, shapes, kws in SHAPE_FUNCS:
    if f is _row_stack and not hasattr(np, "row_stack"):
        continue  # removed in NumPy 2.5
    variants(nm, np.row_stack if f is _row_stack else f, shapes, kws, fn=f)
variants("np.full_like", np.full_like, {"mat": (M, 2.5)}, [{}, {"dtype": np.float32}],
         kind="value")
add("np.full_like", np.full_like, (M, 2.5), {"shape": (3,)}, shape="mat", kind="value")
for nm, f in (("np.zeros_like", np.zeros_like), ("np.ones_like", np.ones_like)):
    variants(nm, f, {"mat": (M,)}, [{}, {"dtype": np.float32}, {"shape": (3,)}], kind="value")
add("np.lib.stride_tricks.sliding_window_view", np.lib.stride_tricks.sliding_window_view,
    (A((5,)), 3), {"writeable": True}, shape="vec", kind="raises", raises=InPlaceError)
add("np.empty_like", np.empty_like, (M,), shape="mat", kind="value",
    fn=lambda a: np.empty_like(a).shape, label="shape of result")
for _kw in ({"dtype": np.float32}, {"shape": (3,)}):  # (uninitialised: compare shapes)
    add("np.empty_like", np.empty_like, (M,), _kw, shape="mat", kind="value",
        fn=lambda a, **k: np.empty_like(a, **k).shape + (np.empty_like(a, **k).dtype.itemsize,),
        label="shape and itemsize of result")



def _put_into_copy(a: Any, ind: Any, v: Any, **kw: Any) -> Any:
    b = a * 1.0  # a traced array of its own, written in place
    np.put(b, ind, v, **kw)
    return b


# np.put into a traced array is a recorded write (values cycled, mode= honoured)
add("np.put", np.put, (M, [0, 4], A((2,))), shape="mat", fn=_put_into_copy,
    label="into a traced array")
add("np.put", np.put, (M, [-1, 7, 2], A((1,))), {"mode": "wrap"}, shape="mat",
    fn=_put_into_copy, label="into a traced array")
for nm, f, args in (("np.place", np.place, (M, np.ones((2, 3), bool), [1.0])),
                    ("np.putmask", np.putmask, (M, np.ones((2, 3), bool), 1.0)),
                    ("np.fill_diagonal", np.fill_diagonal, (M, 0.0)),
                    ("np.put_along_axis", np.put_along_axis, (M, np.zeros((2, 1), int), 1.0,
                                                              1))):
    add(nm, f, args, shape="mat", kind="raises", raises=InPlaceError)
add("np.put", np.put, (np.zeros((2, 3)), [0], A(())), shape="0d", kind="raises",
    raises=InPlaceError, label="traced value")
variants("np.delete", np.delete, {"mat": (M, 1), "vec": (V, [0, 2])},
         [{}, {"axis": 0}, {"axis": -1}])
add("np.delete", np.delete, (M, slice(0, 2)), {"axis": 1}, shape="mat", label="slice")
variants("np.compress", np.compress, {"mat": ([True, False, True], M)}, [{}, {"axis": 1}])
add("np.compress", np.compress, ([False, True], M), {"axis": 0}, shape="mat", label="short")
variants("np.extract", np.extract, {"mat": (np.array([[True, False, True], [False, True,
                                                                             True]]), M)})
variants("np.choose", np.choose, {"mat": (np.array([[0, 1, 1], [1, 0, 1]]), [M, A((2, 3))]),
                                  "bcast1": (np.array([0, 1, 2]), [M, A((3,)), A(())])},
         [{}, {"mode": "clip"}, {"mode": "wrap"}])
add("np.choose", np.choose, (np.array([0, 3, 1]), [A((3,)), A((3,))]), {"mode": "wrap"},
    shape="vec", label="wrapped")
variants("np.resize", np.resize, {"mat": (M, (4, 2)), "vec": (V, 7), "empty": (V, 0)})
add("np.block", np.block, ([[M, A((2, 1))], [A((1, 3)), A((1, 1))]],), shape="mat",
    dtypes=ALL)
add("np.block", np.block, ([V, A(()), A((2,))],), shape="vec")
add("np.block", np.block, ([[V], [A((4,))]],), shape="stacked", label="promoted")
variants("np.unique", np.unique, {"vec": (A((5,), "distinct"),),
                                  "mat": (A((2, 3), "distinct"),)},
         [{}, {"return_index": True}, {"return_inverse": True, "return_counts": True},
          {"axis": 0}, {"equal_nan": False}])
# (complex values: NumPy's unsorted order is a hash table's, which finite differences
# reshuffle; the value check of that case is in tests/catalogue/test_shape.py)
add("np.unique", np.unique, (A((5,), "distinct"),), {"sorted": False}, shape="vec")
variants("np.apply_along_axis", np.apply_along_axis, {"mat": (np.cumsum, 1, M),
                                                      "stacked": (np.sum, 0, A((2, 3, 2)))})
add("np.apply_along_axis", np.apply_along_axis, (np.sort, 0, A((2, 3), "distinct")),
    {"kind": "stable"},
    shape="mat", label="kwargs", dtypes=REAL)
add("np.apply_along_axis", np.apply_along_axis,
    (lambda v: v[:, None] * v[None, :], 1, M), shape="mat", label="outer")
variants("np.apply_over_axes", np.apply_over_axes, {"mat": (np.sum, M, [0, 1]),
                                                    "stacked": (np.cumsum, A((2, 3, 2)), 1)})
variants("np.astype", np.astype, {"mat": (M, np.float64)}, [{}, {"copy": False}], dtypes=REAL)
add("np.astype", np.astype, (M, np.complex128), shape="mat", label="complex128")
variants("np.i0", np.i0, {"vec": (A((4,)),), "0d": (A(()),)}, dtypes=REAL)
add("np.copyto", np.copyto, (np.zeros((2, 3)), M), shape="mat", kind="raises",
    raises=InPlaceError, fn=np.copyto)
add("np.meshgrid", np.meshgrid, (A((3,)), A((2,))), shape="vec")
add("np.meshgrid", np.meshgrid, (A((3,)), A((2,))), {"indexing": "ij"}, shape="vec")
add("np.meshgrid", np.meshgrid, (A((3,)), A((2,))), {"sparse": True}, shape="vec")
add("np.meshgrid", np.meshgrid, (A((3,)), A((2,))), {"copy": False}, shape="vec")
add("np.linspace", np.linspace, (A(()), A(())), {"num": 5}, shape="0d", dtypes=REAL)
add("np.linspace", np.linspace, (A(()), A(())), {"num": 4, "endpoint": False}, shape="0d")
add("np.linspace", np.linspace, (A(()), A(())), {"num": 4, "retstep": True}, shape="0d")
add("np.linspace", np.linspace, (A((2,)), A((2,))), {"num": 3, "axis": 1}, shape="vec")
add("np.linspace", np.linspace, (A(()), A(())), {"num": 3, "dtype": np.float32}, shape="0d",
    tol=1e-3)  # finite differences of a float32 result
add("np.linspace", np.linspace, (A(()), A(())), {"num": 0}, shape="empty")

# ====================================================================== construction
# np.array & co. of traced values: the like= handlers (NEP 35 hands the call to the
# traced value's type), and the names replaced while a transform runs (looked up when
# the case runs), tests/catalogue/test_construction.py for the rest


def _like(f: Any) -> Callable[..., Any]:
    return lambda a, **k: f(a, like=np.asarray(a), **k)


def _listed(f: Any) -> Callable[..., Any]:
    return lambda a, b, **k: getattr(np, f.__name__)([[a[0], b], [b, a[1]]], **k)


for _nm, _f in (("np.array", np.array), ("np.asarray", np.asarray),
                ("np.asanyarray", np.asanyarray)):
    variants(_nm, _f, {"mat": (M,), "0d": (A(()),)},
             [{}, {"dtype": np.complex128}, {"copy": True}], fn=_like(_f), dtypes=REAL)
    add(_nm, _f, (V, A(())), shape="vec", fn=_listed(_f), label="nested list")
add("np.array", np.array, (M,), {"ndmin": 3}, shape="mat", fn=_like(np.array))
add("np.array", np.array, (V, A(())), {"dtype": np.complex128}, shape="vec",
    fn=_listed(np.array), label="nested list")
for _nm, _f in (("np.ascontiguousarray", np.ascontiguousarray),
                ("np.asfortranarray", np.asfortranarray)):
    variants(_nm, _f, {"mat": (M,), "0d": (A(()),)}, [{}, {"dtype": np.complex128}],
             fn=_like(_f), dtypes=REAL)
    add(_nm, _f, (V, A(())), shape="vec", fn=_listed(_f), label="nested list")
# constants like a traced value: NumPy's plain result
for _nm, _f, _args in (("np.zeros", np.zeros, (3,)), ("np.ones", np.ones, ((2, 2),)),
                       ("np.full", np.full, (3, 2.5)), ("np.arange", np.arange, (4,)),
                       ("np.eye", np.eye, (3,)), ("np.identity", np.identity, (2,))):
    add(_nm, _f, (M,), shape="mat", kind="value", label="like",
        fn=lambda a, _f=_f, _args=_args: _f(*_args, like=a) + 0 * np.sum(a))
add("np.empty", np.empty, (M,), shape="mat", kind="value", label="like, shape of result",
    fn=lambda a: np.empty((2, 3), like=a).shape)
add("np.full", np.full, (M,), shape="mat", kind="raises", raises=DualrevError,
    label="traced fill_value", fn=lambda a: np.full(3, a[0, 0], like=a))

# ====================================================================== elementwise funcs
variants("np.where", np.where, {"mat": (MASK, M, A((2, 3))), "bcast1": (MASK, A((1, 3)), 0.5),
                                "0d": (True, A(()), A(()))}, dtypes=ALL)
variants("np.clip", np.clip, {"mat": (A((2, 3), "real"), -0.8, 0.9),
                              "arrays": (A((2, 3)), A((2, 3)) , A((2, 3)))}, dtypes=REAL)
add("np.clip", np.clip, (A((2, 3)), None), {"a_max": 0.9}, shape="mat")
add("np.clip", np.clip, (A((2, 3)), None, 0.9), shape="mat", label="a_min=None")
add("np.clip", np.clip, (A((2, 3)),), {"min": -0.8, "max": 0.9}, shape="mat")
for nm, f in (("np.round", np.round), ("np.around", np.around)):
    variants(nm, f, {"mat": (A((2, 3), "nonint"),)}, [{}, {"decimals": 1}], kind="value",
             dtypes=ALL)
variants("np.nan_to_num", np.nan_to_num, {"mat": (M,), "nonfinite": (A((2, 3), "nonfinite"),)},
         [{}, {"nan": 2.0}, {"copy": False}, {"posinf": 5.0, "neginf": -4.0}], dtypes=REAL)
variants("np.interp", np.interp,
         {"vec": (A((4,), "prob"), F((3,), "distinct_sorted"), A((3,))),
          "list": (A((4,), "prob"), [0.0, 1.0], [0.0, 3.0])},
         [{}, {"left": -1.0, "right": 2.0}])
add("np.interp", np.interp, (A((4,), "prob"), A((3,), "distinct_sorted"), A((3,))),
    shape="vec", label="xp traced")
add("np.interp", np.interp, (A((4,), "prob"), [0.0, 0.5], [1.0, 3.0]), {"period": 1.0},
    shape="list")
variants("np.select", np.select, {"mat": ([MASK, ~MASK], [M, A((2, 3))])}, [{}, {"default": 0.5}])
add("np.piecewise", np.piecewise, (A((4,), "real"), F((4,), "mask"), [np.sin, np.cos]),
    shape="vec", label="funclist=[sin,cos]")
add("np.piecewise", np.piecewise, (A((4,), "real"), F((4,), "mask"),
                                   [lambda x, c: c * x, 1.0]), {}, shape="vec",
    fn=lambda x, m, fl: np.piecewise(x, m, fl, 2.0), label="extra args")
add("np.polyval", np.polyval, (A((3,)), A((4,))), shape="vec", dtypes=ALL)
add("np.polyval", np.polyval, (A((3,)), A(())), shape="0d")
add("np.polyval", np.polyval, ([1.0, 2.0, 3.0], A((4,))), shape="list")
variants("np.gradient", np.gradient, {"vec": (A((5,)),), "mat": (A((3, 4)),)},
         [{}, {"edge_order": 2}])
add("np.gradient", np.gradient, (A((3, 4)),), {"axis": 1}, shape="mat")
add("np.gradient", np.gradient, (A((5,)), 0.5), shape="vec", label="spacing")
for nm, f, modes in (("np.convolve", np.convolve, ("full", "same", "valid")),
                     ("np.correlate", np.correlate, ("valid", "same", "full"))):
    variants(nm, f, {"vec": (A((5,)), A((3,))), "0d": (A((1,)), A((3,)))},
             [{}] + [{"mode": m} for m in modes])
add("np.cross", np.cross, (A((3,)), A((3,))), shape="vec", dtypes=ALL)
add("np.cross", np.cross, (A((2, 3)), A((3,))), shape="bcast1")
add("np.cross", np.cross, (A((3, 2)), A((2, 3))), {"axisa": 0, "axisc": 0}, shape="mat")
add("np.cross", np.cross, (A((3, 2)), A((3, 2))), {"axis": 0}, shape="mat")
add("np.cross", np.cross, (A((2, 3)), A((3, 2))), {"axisb": 0}, shape="mat")
add("np.cross", np.cross, (A((2, 2)), A((2, 2))), shape="2d-vectors")

# ====================================================================== contraction
add("np.einsum", np.einsum, ("ij,jk->ik", A((2, 3)), A((3, 2))), shape="mat", dtypes=ALL)
for sub, shapes, sh in (
        ("ij,jk->ik", ((2, 1), (1, 3)), "size1"), ("ij,ij->i", ((2, 3), (1, 3)), "bcast1"),
        ("...ij,...jk->...ik", ((2, 2, 3), (3, 2)), "ellipsis"),
        ("i...,i...->...", ((3, 2), (3, 1)), "ellipsis-bcast"),
        ("ii->i", ((3, 3),), "diag"), ("ii", ((3, 3),), "trace"), ("ij->", ((2, 3),), "sum"),
        ("i,i", ((3,), (3,)), "implicit"), ("ij,jk,kl->il", ((2, 3), (3, 2), (2, 2)), "three"),
        ("ij,jk", ((0, 3), (3, 2)), "empty"), (",i->i", ((), (3,)), "0d")):
    add("np.einsum", np.einsum, (sub,) + tuple(A(s) for s in shapes), shape=sh,
        label=sub)
add("np.einsum", np.einsum, ("ij,jk,kl->il", A((2, 3)), A((3, 2)), A((2, 2))),
    {"optimize": True}, shape="three")
add("np.einsum", np.einsum, ("ij,jk->ik", A((2, 3)), A((3, 2))), {"dtype": np.complex128},
    shape="mat")
add("np.einsum", np.einsum, (A((2, 3)), [0, 1], A((3, 2)), [1, 2], [0, 2]), shape="mat",
    label="sublists")
add("np.einsum", np.einsum, (A((2, 3)), [0, 1], A((3, 2)), [1, 2]), shape="mat",
    label="sublists-implicit")
add("np.einsum", np.einsum, (A((2, 2, 3)), [Ellipsis, 1], A((3, 2)), [1, 30],
                             [Ellipsis, 30]), shape="ellipsis", label="sublists-ellipsis")
add("np.einsum", np.einsum, (A((3, 3)), [4, 4]), shape="trace", label="sublists-trace")
variants("np.tensordot", np.tensordot, {"mat": (A((2, 3)), A((3, 2)))}, [{"axes": 1}])
variants("np.tensordot", np.tensordot, {"mat": (A((2, 3, 2)), A((3, 2, 2)))},
         [{}, {"axes": ([1, 0], [0, 2])}, {"axes": 0}])
for nm, f in (("np.dot", np.dot), ("np.inner", np.inner), ("np.outer", np.outer),
              ("np.vdot", np.vdot)):
    shapes = {"vec": (A((3,)), A((3,))), "0d": (A(()), A(())) if nm != "np.vdot" else
              (A((1,)), A((1,)))}
    if nm in ("np.dot", "np.inner"):
        shapes |= {"mat": (A((2, 3)), A((4, 3) if nm == "np.inner" else (3, 2))),
                   "stacked": (A((2, 2, 3)), A((3, 2) if nm == "np.dot" else (2, 3))),
                   "empty": (A((0, 3)), A((3,)))}
    if nm in ("np.outer", "np.vdot"):
        shapes |= {"mat": (A((2, 2)), A((2, 2)))}
    variants(nm, f, shapes)
add("np.linalg.multi_dot", np.linalg.multi_dot, ([A((2, 3)), A((3, 4)), A((4, 2))],),
    shape="mat", dtypes=ALL)
add("np.linalg.multi_dot", np.linalg.multi_dot, ([A((3,)), A((3, 4)), A((4,))],), shape="vec")

# ====================================================================== linalg
def lin(name: str, f: Any, dom: str, shapes: dict[str, tuple[int, ...]],
        kws: list[dict[str, Any]] | None = None, extra: tuple[Any, ...] = (),
        **opts: Any) -> None:
    variants(name, f, {sh: (A(s, dom),) + extra for sh, s in shapes.items()}, kws, **opts)


SQ = {"mat": (3, 3), "stacked": (2, 3, 3), "1x1": (1, 1), "empty": (0, 3, 3)}
lin("np.linalg.inv", np.linalg.inv, "general", SQ)
lin("np.linalg.det", np.linalg.det, "general", SQ)
lin("np.linalg.det", np.linalg.det, "singular", {"singular": (3, 3)}, dtypes=(F64, C128))
lin("np.linalg.slogdet", np.linalg.slogdet, "general", SQ)
lin("np.linalg.cholesky", np.linalg.cholesky, "spd", SQ, [{}, {"upper": True}])


def _eig_gauge(res: Any) -> Any:
    # eigenvectors are defined up to a phase: compare the projectors v v^H
    w, v = res
    vt = np.swapaxes(v, -1, -2)
    return w, vt[..., :, :, None] * np.conj(vt[..., :, None, :])


def _svd_gauge(res: Any) -> Any:
    # singular vectors are defined up to a phase per pair: compare u_k vh_k
    u, s, vh = res
    return np.swapaxes(u, -1, -2)[..., :, :, None] * vh[..., :, None, :], s


lin("np.linalg.eigh", np.linalg.eigh, "sym", SQ, [{}, {"UPLO": "U"}], dtypes=REAL)
lin("np.linalg.eigh", np.linalg.eigh, "sym", {"mat": (3, 3), "stacked": (2, 3, 3)},
    [{}, {"UPLO": "U"}], dtypes=(F64, C128), fn=lambda a, **k: _eig_gauge(
        np.linalg.eigh(a, **k)), label="projectors")
lin("np.linalg.eigvalsh", np.linalg.eigvalsh, "sym", SQ, [{}, {"UPLO": "U"}])
# eig: NumPy's eigenvectors themselves (unit norm, largest component real), and their
# projectors; real matrices get complex results where their eigenvalues are complex
lin("np.linalg.eig", np.linalg.eig, "eig", SQ, dtypes=(F64, C128))
lin("np.linalg.eig", np.linalg.eig, "eig", {"mat": (3, 3), "stacked": (2, 3, 3)},
    dtypes=(F64, C128), fn=lambda a, **k: _eig_gauge(np.linalg.eig(a, **k)),
    label="projectors")
lin("np.linalg.eig", np.linalg.eig, "sym", {"real": (3, 3)}, dtypes=(F64,))
lin("np.linalg.eigvals", np.linalg.eigvals, "eig", SQ, dtypes=(F64, C128))
lin("np.linalg.eigvals", np.linalg.eigvals, "sym", {"real": (3, 3)}, dtypes=(F64,))
lin("np.linalg.cond", np.linalg.cond, "general", {"mat": (3, 3), "stacked": (2, 3, 3)},
    [{}, {"p": -2}, {"p": "fro"}, {"p": 1}, {"p": -np.inf}, {"p": "nuc"}])
add("np.linalg.tensorinv", np.linalg.tensorinv, (A((4, 4), "general"),), shape="mat",
    fn=lambda a, **k: np.linalg.tensorinv(np.reshape(a, (2, 2, 4)), **k), dtypes=ALL)
add("np.linalg.tensorinv", np.linalg.tensorinv, (A((4, 4), "general"),), {"ind": 1},
    shape="mat", fn=lambda a, **k: np.linalg.tensorinv(np.reshape(a, (4, 2, 2)), **k))
add("np.linalg.tensorsolve", np.linalg.tensorsolve, (A((4, 4), "general"), A((2, 2))),
    shape="mat", fn=lambda a, b, **k: np.linalg.tensorsolve(np.reshape(a, (2, 2, 2, 2)), b,
                                                             **k), dtypes=ALL)
add("np.linalg.tensorsolve", np.linalg.tensorsolve, (A((4, 4), "general"), A((2, 2))),
    {"axes": (0, 2)}, shape="mat",
    fn=lambda a, b, **k: np.linalg.tensorsolve(np.reshape(a, (2, 2, 2, 2)), b, **k))
lin("np.linalg.svd", np.linalg.svd, "svd", {"mat": (3, 2), "stacked": (2, 3, 2),
                                            "wide": (2, 3)},
    [{"full_matrices": False}, {"compute_uv": False}], dtypes=REAL)
lin("np.linalg.svd", np.linalg.svd, "svd", {"square": (3, 3)}, [{}], dtypes=REAL)
lin("np.linalg.svd", np.linalg.svd, "sym", {"mat": (3, 3)}, [{"hermitian": True,
                                                              "compute_uv": False}])
lin("np.linalg.svd", np.linalg.svd, "svd", {"mat": (3, 2), "stacked": (2, 3, 2)},
    [{"full_matrices": False}], dtypes=(F64, C128), label="u_k vh_k",
    fn=lambda a, **k: _svd_gauge(np.linalg.svd(a, **k)))
if hasattr(np.linalg, "svdvals"):  # NumPy >= 2.0
    lin("np.linalg.svdvals", np.linalg.svdvals, "svd",
        {"mat": (3, 2), "stacked": (2, 3, 2), "wide": (2, 3)})
lin("np.linalg.qr", np.linalg.qr, "svd", {"mat": (3, 2), "stacked": (2, 3, 2),
                                          "square": (3, 3)},
    [{}, {"mode": "r"}, {"mode": "complete"}])
lin("np.linalg.qr", np.linalg.qr, "svd", {"wide": (2, 3)}, [{}])
lin("np.linalg.pinv", np.linalg.pinv, "svd", {"mat": (3, 2), "stacked": (2, 3, 2),
                                              "wide": (2, 3)},
    [{}, {"rcond": 0.5}, {"rtol": 0.5}])
lin("np.linalg.pinv", np.linalg.pinv, "sym", {"mat": (3, 3)}, [{"hermitian": True}])
lin("np.linalg.matrix_power", np.linalg.matrix_power, "general",
    {"mat": (3, 3), "stacked": (2, 3, 3)}, [{"n": 2}, {"n": 0}, {"n": 1}, {"n": 3},
                                             {"n": -1}, {"n": -2}])
for sh, (sa, sb) in {"vec": ((3, 3), (3,)), "mat": ((3, 3), (3, 2)),
                     "stacked": ((2, 3, 3), (2, 3, 2)), "stacked-shared-b": ((2, 3, 3), (3,)),
                     "stacked-bcast": ((2, 3, 3), (3, 2)), "empty": ((0, 3, 3), (0, 3, 1))}.items():
    add("np.linalg.solve", np.linalg.solve, (A(sa, "general"), A(sb)), shape=sh,
        dtypes=ALL if sh == "vec" else (F64,))
for sh, (sa, sb) in {"vec": ((4, 2), (4,)), "mat": ((4, 2), (4, 3)),
                     "square": ((3, 3), (3,))}.items():
    for kw in ({}, {"rcond": None}, {"rcond": 0.5}):
        add("np.linalg.lstsq", np.linalg.lstsq, (A(sa, "svd"), A(sb)), kw, shape=sh,
            dtypes=ALL if sh == "vec" and not kw else (F64,))

# ====================================================================== fft
FFT1 = [{}, {"n": 6}, {"n": 3}, {"axis": 0}, {"norm": "ortho"}, {"norm": "forward"},
        {"norm": "backward"}]
FFTN = [{}, {"s": (3, 5), "axes": (-2, -1)}, {"axes": (0,)}, {"axes": (1, 0)}, {"norm": "ortho"},
        {"norm": "forward"}]
for nm, f in (("np.fft.fft", np.fft.fft), ("np.fft.ifft", np.fft.ifft),
              ("np.fft.rfft", np.fft.rfft)):
    variants(nm, f, {"mat": (A((2, 4)),), "vec": (A((5,)),)}, FFT1,
             dtypes=ALL if nm != "np.fft.rfft" else REAL)
variants("np.fft.irfft", np.fft.irfft, {"mat": (A((2, 4)),), "vec": (A((5,)),)}, FFT1,
         dtypes=(C128, F64), narrow="mat")
for nm, f in (("np.fft.fftn", np.fft.fftn), ("np.fft.ifftn", np.fft.ifftn),
              ("np.fft.fft2", np.fft.fft2), ("np.fft.ifft2", np.fft.ifft2),
              ("np.fft.rfftn", np.fft.rfftn)):
    variants(nm, f, {"mat": (A((2, 4)),), "stacked": (A((2, 3, 4)),)}, FFTN,
             dtypes=ALL if nm != "np.fft.rfftn" else REAL)
variants("np.fft.irfftn", np.fft.irfftn, {"mat": (A((2, 4)),), "stacked": (A((2, 3, 4)),)},
         FFTN, dtypes=(C128, F64))
FFT2 = [{}, {"s": (3, 5)}, {"axes": (1, 0)}, {"norm": "ortho"}, {"norm": "forward"}]
variants("np.fft.rfft2", np.fft.rfft2, {"mat": (A((2, 4)),), "stacked": (A((2, 3, 4)),)},
         FFT2, dtypes=REAL)
variants("np.fft.irfft2", np.fft.irfft2, {"mat": (A((2, 4)),), "stacked": (A((2, 3, 4)),)},
         FFT2, dtypes=(C128, F64))
variants("np.fft.hfft", np.fft.hfft, {"mat": (A((2, 4)),), "vec": (A((5,)),)}, FFT1,
         dtypes=(C128, F64), narrow="mat")
variants("np.fft.ihfft", np.fft.ihfft, {"mat": (A((2, 4)),), "vec": (A((5,)),)}, FFT1,
         dtypes=REAL)

# ====================================================================== statistics
variants("np.cov", np.cov, {"mat": (A((2, 4)),), "vec": (A((4,)),)},
         [{}, {"rowvar": False}, {"bias": True}, {"ddof": 2}, {"fweights": Ints((4,), 1, 3)},
          {"aweights": A((4,), "pos")}, {"dtype": np.complex128}])
add("np.cov", np.cov, (A((4,)), A((4,))), shape="vec", label="y")
add("np.cov", np.cov, (A((3, 2)),), {"rowvar": False}, shape="tall")
variants("np.corrcoef", np.corrcoef, {"mat": (A((2, 4)),)},
         [{}, {"rowvar": False}, {"dtype": np.float64}])
add("np.corrcoef", np.corrcoef, (A((4,)), A((4,))), shape="vec", label="y")

# ====================================================================== selection
variants("np.sort", np.sort, {"vec": (A((5,), "distinct"),), "mat": (A((2, 3), "distinct"),),
                              "empty": (A((0,)),)},
         [{}, {"axis": 0}, {"axis": None}, {"kind": "stable"}, {"stable": True}],
         dtypes=REAL)
add("np.sort", np.sort, (A((5,), "distinct"),), shape="vec", dtypes=(C128,))

# median and quantiles: sorted values interpolated (no ties in "distinct" samples)
DV, DM, DS = A((5,), "distinct"), A((2, 3), "distinct"), A((2, 2, 3), "distinct")
MEDIAN_KW = [{}, {"axis": 0}, {"axis": -1, "keepdims": True}, {"axis": (0, 1)}]
variants("np.median", np.median, {"vec": (DV,), "even": (A((4,), "distinct"),), "mat": (DM,),
                                  "stacked": (DS,)}, MEDIAN_KW)
variants("np.nanmedian", np.nanmedian, {"mat": (DM,), "nan": (A((2, 3), "nan"),),
                                        "vec": (DV,)}, MEDIAN_KW, dtypes=REAL)
METHODS = ("lower", "higher", "nearest", "midpoint", "hazen", "weibull", "median_unbiased",
           "normal_unbiased", "inverted_cdf", "averaged_inverted_cdf", "closest_observation",
           "interpolated_inverted_cdf")
for nm, f, q, qs in (("np.quantile", np.quantile, 0.3, [0.2, 0.75]),
                     ("np.percentile", np.percentile, 30.0, [20.0, 75.0]),
                     ("np.nanquantile", np.nanquantile, 0.3, [0.2, 0.75]),
                     ("np.nanpercentile", np.nanpercentile, 30.0, [20.0, 75.0])):
    shapes = {"mat": (DM, q), "vec": (DV, q), "qarray": (DM, qs), "stacked": (DS, qs)}
    if nm.startswith("np.nan"):
        shapes["nan"] = (A((2, 3), "nan"), qs)
    kws = [{}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"axis": (0, -1)}]
    variants(nm, f, shapes, kws + [{"method": m} for m in METHODS if m == "lower"
                                   or not nm.startswith("np.nan")], dtypes=REAL)
    variants(nm, f, {"mat": (DM, qs)}, [{"method": m, "axis": 1} for m in METHODS],
             dtypes=(F64,))
    add(nm, f, (DM, q), {"method": "inverted_cdf", "weights": F((2, 3), "pos")},
        shape="mat", kind="raises", raises=NoDerivativeRule)
variants("np.vander", np.vander, {"vec": (A((4,)),)},
         [{}, {"N": 3}, {"increasing": True}, {"N": 0}])
variants("np.logspace", np.logspace, {"0d": (A(()), A(()), 4)},
         [{}, {"endpoint": False}, {"base": 2.0}, {"dtype": np.float64}, {"axis": 0},
          {"num": 3}],
         dtypes=(F64,))
add("np.logspace", np.logspace, (A(()), 1.0, 3), {"base": A((), "pos")}, shape="0d",
    label="traced base")
for nm, f in (("np.polyadd", np.polyadd), ("np.polysub", np.polysub),
              ("np.polymul", np.polymul)):
    variants(nm, f, {"vec": (A((3,)), A((2,))), "same": (A((3,)), A((3,)))})
variants("np.polyder", np.polyder, {"vec": (A((4,)),)}, [{}, {"m": 2}, {"m": 0}])
variants("np.polyint", np.polyint, {"vec": (A((3,)),)},
         [{}, {"m": 2}, {"k": A(())}, {"m": 2, "k": A((2,))}, {"m": 3, "k": 0.5}])
variants("np.unwrap", np.unwrap, {"vec": (A((5,)),), "mat": (A((3, 4)),)},
         [{}, {"axis": 0}, {"discont": 4.0}, {"period": 1.0}], dtypes=REAL)
variants("np.trapezoid", np.trapezoid, {"vec": (A((5,)),), "mat": (M,)},
         [{}, {"dx": 0.3}, {"axis": 0}, {"x": F((3,), "distinct_sorted")}])
add("np.trapezoid", np.trapezoid, (A((2, 3)), A((2, 3))), shape="mat", label="x traced")
add("np.trapezoid", np.trapezoid, (A((2, 3)),), {"x": A((2,)), "axis": 0}, shape="mat")
variants("np.ediff1d", np.ediff1d, {"vec": (A((5,)),), "mat": (M,)},
         [{}, {"to_end": A((2,))}, {"to_begin": 2.0, "to_end": A(())}])
variants("np.sort_complex", np.sort_complex, {"vec": (DV,), "mat": (DM,)})
variants("np.partition", np.partition, {"vec": (DV, 2), "mat": (DM, 1)},
         [{}, {"axis": 0}, {"axis": None}, {"kind": "introselect"}], dtypes=REAL)
add("np.partition", np.partition, (DV, (0, 3)), shape="vec", label="kths")
# (NumPy rejects order= without fields, so this case is dropped; it names the keyword, and
# the refusal is tested in tests/catalogue/test_selection.py)
add("np.partition", np.partition, (DV, 2), {"order": "f"}, shape="vec", kind="raises",
    raises=NoDerivativeRule, optional=True)
add("np.real_if_close", np.real_if_close, (M,), shape="mat", label="close", dtypes=REAL,
    fn=lambda a, **k: np.real_if_close(a * (1 + 1e-15j), **k))

# ====================================================================== nondiff (value)
VAL = [
    ("np.shape", np.shape, (M,)), ("np.ndim", np.ndim, (M,)), ("np.size", np.size, (M,)),
    ("np.result_type", np.result_type, (M, 1.0)),
    ("np.iscomplexobj", np.iscomplexobj, (M,)), ("np.isrealobj", np.isrealobj, (M,)),
    ("np.can_cast", np.can_cast, (M, np.float32)),
    ("np.min_scalar_type", np.min_scalar_type, (A(()),)),
    ("np.argmax", np.argmax, (A((2, 3), "distinct"),)),
    ("np.argmin", np.argmin, (A((2, 3), "distinct"),)),
    ("np.argsort", np.argsort, (A((2, 3), "distinct"),)),
    ("np.argwhere", np.argwhere, (M,)), ("np.nonzero", np.nonzero, (M,)),
    ("np.flatnonzero", np.flatnonzero, (M,)), ("np.count_nonzero", np.count_nonzero, (M,)),
    ("np.searchsorted", np.searchsorted, (F((4,), "distinct_sorted"), A((3,)))),
    ("np.digitize", np.digitize, (A((3,)), F((4,), "distinct_sorted"))),
    ("np.any", np.any, (M,)), ("np.all", np.all, (M,)),
    ("np.isclose", np.isclose, (M, A((2, 3)))), ("np.allclose", np.allclose, (M, M)),
    ("np.array_equal", np.array_equal, (M, A((2, 3)))),
    ("np.array_equiv", np.array_equiv, (M, M)),
    ("np.iscomplex", np.iscomplex, (M,)), ("np.isreal", np.isreal, (M,)),
    ("np.isneginf", np.isneginf, (M,)), ("np.isposinf", np.isposinf, (M,)),
]
VAL += [("np.argpartition", np.argpartition, (A((2, 3), "distinct"), 1)),
        ("np.linalg.matrix_rank", np.linalg.matrix_rank, (A((3, 3)),)),
        ("np.nanargmax", np.nanargmax, (A((2, 3), "distinct"),)),
        ("np.nanargmin", np.nanargmin, (A((2, 3), "distinct"),)),
        ("np.common_type", np.common_type, (M,)),
        ("np.lexsort", np.lexsort, (A((2, 3), "distinct"),)),
        ("np.isin", np.isin, (M, A((3,)))),
        ("np.diag_indices_from", np.diag_indices_from, (A((3, 3)),)),
        ("np.tril_indices_from", np.tril_indices_from, (M,)),
        ("np.triu_indices_from", np.triu_indices_from, (M,))]
for nm, f, args in VAL:
    add(nm, f, args, shape="mat" if nm != "np.min_scalar_type" else "0d", kind="value",
        dtypes=(F64, C128) if nm not in ("np.searchsorted", "np.digitize", "np.argsort",
                                         "np.argmax", "np.argmin", "np.isneginf",
                                         "np.isposinf") else (F64,))
for nm, f in (("np.argmax", np.argmax), ("np.argmin", np.argmin),
              ("np.argsort", np.argsort)):
    add(nm, f, (A((2, 3), "distinct"),), {"axis": 1}, shape="mat", kind="value")
add("np.searchsorted", np.searchsorted, (F((4,), "distinct_sorted"), A((3,))),
    {"side": "right"}, shape="vec", kind="value")
add("np.count_nonzero", np.count_nonzero, (M,), {"axis": 0}, shape="mat", kind="value")
add("np.any", np.any, (M,), {"axis": 1, "keepdims": True}, shape="mat", kind="value")
add("np.isclose", np.isclose, (M, M), {"rtol": 0.1, "equal_nan": True}, shape="mat",
    kind="value")

# ====================================================================== scipy.linalg
for sh, (sa, sb) in {"vec": ((3, 3), (3,)), "mat": ((3, 3), (3, 2))}.items():
    for kw in ({}, {"lower": True}, {"trans": 1}, {"trans": 2}, {"trans": "T"},
               {"trans": "C"}, {"unit_diagonal": True}, {"lower": True, "trans": 2},
               {"check_finite": False}):
        add("sla.solve_triangular", sla.solve_triangular, (A(sa, "general"), A(sb)), kw,
            shape=sh, dtypes=ALL if sh == "vec" else (F64,))
add("sla.cho_factor", sla.cho_factor, (A((3, 3), "spd"),), shape="mat",
    fn=lambda a, **k: np.tril(sla.cho_factor(a, lower=True, **k)[0]), label="lower,tril",
    dtypes=ALL)
add("sla.cho_factor", sla.cho_factor, (A((3, 3), "spd"),), shape="mat",
    fn=lambda a, **k: np.triu(sla.cho_factor(a, **k)[0]), label="triu", dtypes=ALL)
for lower in (False, True):
    add("sla.cho_solve", sla.cho_solve, ((A((3, 3), "general"), lower), A((3,))),
        shape="vec", label=f"lower={lower}", dtypes=ALL)
add("sla.cho_solve", sla.cho_solve, ((A((3, 3), "general"), False), A((3, 2))),
    shape="mat", label="lower=False")
add("sla.lu_factor", sla.lu_factor, (A((3, 3), "general"),), shape="mat", dtypes=ALL)
for kw in ({}, {"trans": 1}, {"trans": 2}):
    add("sla.lu_solve", sla.lu_solve, (A((3, 3), "general"), A((3,))), kw, shape="vec",
        fn=lambda a, b, **k: sla.lu_solve(sla.lu_factor(a), b, **k),
        dtypes=ALL)
add("sla.expm", sla.expm, (A((3, 3)),), shape="mat", dtypes=ALL)
add("sla.expm", sla.expm, (A((2, 3, 3)),), shape="stacked")
add("sla.expm", sla.expm, (A((1, 1)),), shape="1x1")
add("sla.sqrtm", sla.sqrtm, (A((3, 3), "sqrtm"),), shape="mat", dtypes=ALL)
add("sla.sqrtm", sla.sqrtm, (A((2, 3, 3), "sqrtm"),), shape="stacked")
# eigenvalues in [-1.5, -1]: SciPy's root is complex (a real-to-complex function)
add("sla.sqrtm", sla.sqrtm, (A((3, 3), "sqrtm"),), shape="mat", label="negative",
    fn=lambda a, **k: sla.sqrtm(a - 2.5 * np.eye(3), **k))
add("sla.sqrtm", sla.sqrtm, (A((3, 3), "sqrtm"),), {"blocksize": 2}, shape="mat",
    fn=lambda a, **k: sla.sqrtm(a, **k) if k.get("blocksize") is None else _quiet(
        sla.sqrtm, a, **k))


def _quiet(f, *args, **kw):
    """SciPy >= 1.17 deprecates some keywords it still honours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return f(*args, **kw)


# banded systems: a diagonally dominant band (entries below 0.8, 3 added to the stored
# diagonal)
_DIAG3 = np.array([[0.0], [3.0], [0.0]])
for sh, sb in {"vec": (4,), "mat": (4, 2)}.items():
    for kw in ({}, {"check_finite": False}):
        add("sla.solve_banded", sla.solve_banded, ((1, 1), A((3, 4), "unit"), A(sb)), kw, shape=sh,
            fn=lambda lu, ab, b, **k: sla.solve_banded(lu, ab + _DIAG3, b, **k),
            dtypes=ALL if sh == "vec" and not kw else (F64,))
    add("sla.solve_banded", sla.solve_banded, ((2, 0), A((3, 4), "unit"), A(sb)), shape=sh,
        fn=lambda lu, ab, b, **k: sla.solve_banded(lu, ab + _DIAG3[::-1], b, **k))
    for kw in ({}, {"lower": True}, {"check_finite": False}):
        add("sla.solveh_banded", sla.solveh_banded, (A((2, 4), "unit"), A(sb)), kw, shape=sh,
            fn=lambda ab, b, **k: sla.solveh_banded(
                ab + (_DIAG3[1:] if k.get("lower") else _DIAG3[:2]), b, **k),
            dtypes=ALL if sh == "vec" and "check_finite" not in kw else (F64,))
add("sla.solve_sylvester", sla.solve_sylvester,
    (A((3, 3), "general"), A((2, 2), "general"), A((3, 2))), shape="mat", dtypes=ALL)
add("sla.solve_sylvester", sla.solve_sylvester,
    (A((2, 3, 3), "general"), A((2, 2), "general"), A((3, 2))), shape="stacked")
add("sla.solve_continuous_lyapunov", sla.solve_continuous_lyapunov,
    (A((3, 3), "general"), A((3, 3))), shape="mat", dtypes=ALL)
for kw in ({}, {"method": "direct"}, {"method": "bilinear"}):
    add("sla.solve_discrete_lyapunov", sla.solve_discrete_lyapunov,
        (A((3, 3), "general"), A((3, 3))), kw, shape="mat",
        fn=lambda a, q, **k: sla.solve_discrete_lyapunov(0.3 * a, q, **k),
        dtypes=ALL if not kw else (F64,))
for nm, solver in (("sla.solve_continuous_are", sla.solve_continuous_are),
                   ("sla.solve_discrete_are", sla.solve_discrete_are)):
    for kw in ({}, {"balanced": False}):
        # q and r Hermitian positive definite, as the equations need
        add(nm, solver, (A((3, 3), "general"), A((3, 2)), A((3, 3)), A((2, 2))), kw,
            shape="mat", fn=lambda a, b, q, r, solver=solver, **k: solver(
                a, b, q @ np.conj(q.T) + np.eye(3), r @ np.conj(r.T) + np.eye(2), **k),
            dtypes=(F64, C128) if not kw else (F64,))
    # the generalised equation: e invertible, s small
    add(nm, solver, (A((3, 3), "general"), A((3, 2)), A((3, 3)), A((2, 2))),
        {"e": A((3, 3), "spd"), "s": A((3, 2), "unit")}, shape="mat",
        fn=lambda a, b, q, r, solver=solver, e=None, s=None, **k: solver(
            a, b, q @ np.conj(q.T) + np.eye(3), r @ np.conj(r.T) + np.eye(2), e=e,
            s=0.2 * s, **k))
for kw in ({}, {"method": "SPS"}, {"method": "blockEnlarge"}, {"compute_expm": False},
           {"check_finite": False}):
    add("sla.expm_frechet", sla.expm_frechet, (A((3, 3)), A((3, 3))), kw, shape="mat",
        dtypes=ALL if not kw else (F64,))

# ====================================================================== scipy.stats
# Each distribution: the point's domain, its shape parameters' domains, and whether its
# cdf/sf refuse those shapes' derivatives (none since issue 22: the incomplete gamma and
# beta functions are differentiable in their shapes).
# The keyword case puts x in gt1 and loc in prob, so that z = (x - loc) / scale stays
# positive and away from laplace's kink.
STATS_CONT = {
    "norm": ("real", (), False), "expon": ("pos", (), False),
    "gamma": ("pos", (("a", "gt1"),), False),
    "beta": ("prob", (("a", "gt1"), ("b", "gt1")), False),
    "t": ("real", (("df", "gt1"),), False), "chi2": ("pos", (("df", "gt1"),), False),
    "lognorm": ("pos", (("s", "pos"),), False), "laplace": ("real", (), False),
    "cauchy": ("real", (), False),
    "weibull_min": ("pos", (("c", "gt1"),), False),
    "weibull_max": ("neg", (("c", "gt1"),), False),
    "logistic": ("real", (), False), "uniform": ("prob", (), False),
    "gumbel_r": ("real", (), False), "gumbel_l": ("real", (), False),
    "pareto": ("gt1", (("b", "gt1"),), False), "halfnorm": ("pos", (), False),
    "invgamma": ("pos", (("a", "gt1"),), False), "rayleigh": ("pos", (), False),
}
# The keyword cases' point domain and loc/scale, keeping z inside the support: z in
# (0.11, 0.71) for the unit-interval supports, z > 1.76 for pareto, z < 0 for weibull_max
_UNIT_KW = ("gt1", {"loc": A((), "prob"), "scale": 4.0})
STATS_KW = {"beta": _UNIT_KW, "uniform": _UNIT_KW,
            "pareto": ("gt1", {"loc": A((), "neg"), "scale": A((), "prob")}),
            "weibull_max": ("neg", {"loc": A((), "prob"), "scale": A((), "pos")})}
_KW = ("gt1", {"loc": A((), "prob"), "scale": A((), "pos")})


def _frozen(dist: Any, method: str) -> Callable[..., Any]:
    """``dist(*params, **kw).method(x)``: the frozen distribution's method."""
    def call(x: Any, *params: Any, **kw: Any) -> Any:
        return getattr(dist(*params, **kw), method)(x)
    return call


for dname, (xdom, shapes, refuses) in STATS_CONT.items():
    dist = getattr(st, dname)
    xk, kw = STATS_KW.get(dname, _KW)
    for m in ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"):
        f, nm = getattr(dist, m), f"st.{dname}.{m}"
        plain = refuses and m not in ("pdf", "logpdf")  # shapes constant: refused below
        sh = tuple(2.5 if plain else A((), d) for _, d in shapes)
        add(nm, f, (A((3,), xdom), *sh), shape="vec", dtypes=REAL)
        add(nm, f, (A((), xdom), *sh), shape="0d")
        if dname == "beta":  # z = (x - loc) / scale inside (0, 1)
            add(nm, f, (A((3,), "prob"), *sh, 0.0, A((), "gt1")), shape="vec",
                label="loc,scale")
        named = {p: v for (p, _), v in zip(shapes, sh, strict=True)}
        add(nm, f, (A((3,), xk),), {**named, **kw}, shape="vec")
        bkw = {"loc": A((3,), kw["loc"].dom)} | (
            {"scale": kw["scale"]} if not isinstance(kw["scale"], A) else {})
        add(nm, f, (A((2, 3), xk), *sh), bkw, shape="mat", label="bcast")
        add(nm, f, (A((3,), xk), *sh), kw, shape="vec", fn=_frozen(dist, m), label="frozen")
        if plain:
            for p, d in shapes:
                add(nm, f, (A((3,), xdom),), {**named, p: A((), d)}, shape="vec",
                    label=f"{p} traced", kind="raises", raises=NoDerivativeRule)
    # quantiles: q away from 1/2 where loc is 0 (the symmetric ones vanish there); the
    # shapes of an inverse incomplete gamma/beta constant, refused when traced
    for m in ("ppf", "isf"):
        f, nm = getattr(dist, m), f"st.{dname}.{m}"
        sh = tuple(2.5 if refuses else A((), d) for _, d in shapes)
        named = {p: v for (p, _), v in zip(shapes, sh, strict=True)}
        add(nm, f, (A((3,), "tail"), *sh), shape="vec", dtypes=REAL)
        add(nm, f, (A((), "tail"), *sh), shape="0d")
        qkw = {"loc": A((), "prob"), "scale": A((), "pos")}
        add(nm, f, (A((3,), "prob"),), {**named, **qkw}, shape="vec")
        add(nm, f, (A((2, 3), "prob"), *sh), {"loc": A((3,), "prob")}, shape="mat",
            label="bcast")
        add(nm, f, (A((3,), "prob"), *sh), qkw, shape="vec", fn=_frozen(dist, m),
            label="frozen")
        if refuses:
            for p, d in shapes:
                add(nm, f, (A((3,), "prob"),), {**named, p: A((), d)}, shape="vec",
                    label=f"{p} traced", kind="raises", raises=NoDerivativeRule)

# Discrete: the counts k are plain integers (a traced k, or binom's n, is refused);
# each distribution's parameters, their names and the counts drawn (inside the support,
# where the log methods are finite)
STATS_DISC = {"poisson": ((A((), "pos"),), ("mu",), (0, 5)),
              "binom": ((6, A((), "prob")), ("n", "p"), (0, 5)),
              "geom": ((A((), "prob"),), ("p",), (1, 6)),
              "bernoulli": ((A((), "prob"),), ("p",), (0, 2)),
              "nbinom": ((A((), "gt1"), A((), "prob")), ("n", "p"), (0, 5))}
for dname, (params, names, (lo, hi)) in STATS_DISC.items():
    dist = getattr(st, dname)
    for m in ("pmf", "logpmf", "cdf", "logcdf", "sf", "logsf"):
        f, nm = getattr(dist, m), f"st.{dname}.{m}"
        ps = params
        top = 1 if dname == "bernoulli" and m == "logsf" else hi  # sf(1) = 0
        add(nm, f, (Ints((3,), lo, top), *ps), shape="vec")
        add(nm, f, (Ints((), lo, top), *ps), shape="0d")
        add(nm, f, (Ints((3,), lo + 1, top + 1), *ps), {"loc": 1}, shape="vec")
        add(nm, f, (Ints((2, 3), lo, top),), dict(zip(names, ps, strict=True)), shape="mat")
        add(nm, f, (Ints((3,), lo, top), *ps), shape="vec", fn=_frozen(dist, m),
            label="frozen")
        add(nm, f, (A((3,), "pos"), *ps), shape="vec", label="k traced", kind="raises",
            raises=NoDerivativeRule)
        add(nm, f, (Ints((3,), lo, top), *ps), {"loc": A(())}, shape="vec",
            label="loc traced", kind="raises", raises=NoDerivativeRule)
for m in ("logpmf", "cdf"):
    add(f"st.binom.{m}", getattr(st.binom, m), (Ints((3,), 0, 5), A((), "gt1"), 0.3),
        shape="vec", label="n traced", kind="raises", raises=NoDerivativeRule)
for m in ("cdf", "logcdf", "sf", "logsf"):  # n of a real > 0 (an incomplete beta's shape)
    add(f"st.nbinom.{m}", getattr(st.nbinom, m), (Ints((3,), 0, 5), A((), "gt1"), 0.3),
        shape="vec", label="n traced")

for m in ("logpdf", "pdf"):
    MVN = getattr(st.multivariate_normal, m)
    nm = f"st.multivariate_normal.{m}"
    add(nm, MVN, (A((3,)), A((3,)), A((3, 3), "spd")), shape="vec")
    add(nm, MVN, (A((2, 3)), A((3,)), A((3, 3), "spd")), shape="mat")
    add(nm, MVN, (A((3,)),), shape="vec", label="defaults")
    add(nm, MVN, (A((3,)),), {"mean": A((3,)), "cov": 2.0}, shape="vec")
    add(nm, MVN, (A(()),), {"mean": A(()), "cov": A((), "pos")}, shape="0d")
    add(nm, MVN, (A((3,)), A((3,)), A((3, 3), "spd")), {"allow_singular": True}, shape="vec")
    add(nm, MVN, (A((3,)), A((3,)), A((3, 3), "spd")), shape="vec", label="frozen",
        fn=lambda x, mean, cov, m=m: getattr(st.multivariate_normal(mean, cov), m)(x))
    add(nm, MVN, (A((2, 3)),), shape="mat", label="frozen plain",
        fn=lambda x, m=m: getattr(st.multivariate_normal(np.ones(3), 2 * np.eye(3)), m)(x))

    DIR = getattr(st.dirichlet, m)
    nm = f"st.dirichlet.{m}"
    # x/3 of two entries in prob: the first K - 1 quantiles, inside the simplex
    add(nm, DIR, (A((2,), "prob"), A((3,), "gt1")), shape="vec", label="K-1",
        fn=lambda x, a, m=m: getattr(st.dirichlet, m)(x / 3, a))
    add(nm, DIR, (A((3,), "prob"), A((3,), "gt1")), shape="vec", label="K",
        fn=lambda x, a, m=m: getattr(st.dirichlet, m)(x / np.sum(x), a))
    add(nm, DIR, (A((2, 4), "prob"), A((3,), "gt1")), shape="mat", label="K-1 points",
        fn=lambda x, a, m=m: getattr(st.dirichlet, m)(x / 3, a))
    add(nm, DIR, (A((2,), "prob"), A((3,), "gt1")), shape="vec", label="frozen",
        fn=lambda x, a, m=m: getattr(st.dirichlet(a), m)(x / 3))


# ====================================================================== scipy.integrate
# Small smooth problems solved tightly, so that the finite differences the checks compare
# with see the exact solution's derivatives (the rules are exact up to the tolerance).
_TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def _rotating_decay(t: Any, y: Any, k: Any, w: Any) -> Any:
    """y' = -k y + w J y (J a quarter turn): decay and rotation, closed form known."""
    return -k * y + w * np.stack([-y[1], y[0]])


def _ivp(y0: Any, k: Any, w: Any, t1: float = 0.8, **kw: Any) -> Any:
    opts = {"t_eval": [0.3, t1], **_TIGHT, **kw}
    return sintegrate.solve_ivp(_rotating_decay, (0.0, t1), y0, args=(k, w), **opts).y


add("integrate.solve_ivp", sintegrate.solve_ivp, (A((2,)), A((), "pos"), A(())), shape="vec",
    fn=_ivp, label="args", batch_tol=1e-8)
add("integrate.solve_ivp", sintegrate.solve_ivp, (A((2,)), A((), "pos"), A(())),
    {"method": "DOP853"}, shape="vec", fn=_ivp, batch_tol=1e-8)
add("integrate.solve_ivp", sintegrate.solve_ivp, (A((2,)), A((), "pos"), A(())),
    {"vectorized": True}, shape="vec", fn=_ivp, batch_tol=1e-8)
add("integrate.solve_ivp", sintegrate.solve_ivp, (A((2,)), A((), "pos")), shape="vec",
    label="t_span,t_eval", fn=lambda y0, t1: sintegrate.solve_ivp(
        lambda t, y: -0.5 * y, (0.0, t1), y0, **_TIGHT).y[:, -1], batch_tol=1e-8)
add("integrate.solve_ivp", sintegrate.solve_ivp, (A((2,)), A((), "pos"), A(())),
    {"dense_output": True}, shape="vec", fn=_ivp, kind="raises", raises=NoDerivativeRule)


def _clock(t: Any, y: Any, k: Any, w: Any) -> Any:
    """Crosses zero once near t = 0.5 (|0.1 k y[0]| < 0.25): cheap to locate, and its time
    depends on the state and on k."""
    return t - 0.5 - 0.1 * k * y[0]


_clock.terminal = True


def _ivp_event(y0: Any, k: Any, w: Any, **kw: Any) -> Any:
    """The event's time and state and the state at the end (a terminal event): with the
    event given in ``kw`` (taking args=) or, without it, a closure over ``k`` (issue 22)."""
    if "events" not in kw:
        def closure(t: Any, y: Any, *args: Any) -> Any:  # SciPy passes args= to events
            return t - 0.5 - 0.1 * k * y[0]

        closure.terminal = True
        kw["events"] = closure
    r = sintegrate.solve_ivp(_rotating_decay, (0.0, 1.0), y0, args=(k, w), **_TIGHT, **kw)
    return np.concatenate([r.t_events[0], r.y_events[0][0], r.y[:, -1]])


# second derivatives of event times: tests/test_integrate.py (Hessian against the closed
# form); here they would cost 13 s of the harness
add("integrate.solve_ivp", sintegrate.solve_ivp, (A((2,)), A((), "pos"), A(())),
    {"events": _clock}, shape="vec", fn=_ivp_event, second=False)
add("integrate.solve_ivp", sintegrate.solve_ivp, (A((2,)), A((), "pos"), A(())),
    shape="vec", fn=_ivp_event, label="events closing over k", second=False)
add("integrate.quad", sintegrate.quad, (A((), "pos"), A((), "gt1")), shape="0d",
    label="b,closure", fn=lambda b, c: sintegrate.quad(
        lambda t: np.exp(-c * t) * np.sin(t), 0.0, b)[0])
add("integrate.quad", sintegrate.quad, (A((), "pos"), A((), "unit"), A((), "gt1")), shape="0d",
    label="a,b,args", fn=lambda a, b, c: sintegrate.quad(
        lambda t, c: np.exp(-c * t) * np.sin(t), a, b, args=(c,))[0])
add("integrate.quad", sintegrate.quad, (A((), "gt1"),), {"epsabs": 1e-12, "epsrel": 1e-12,
                                                  "limit": 80}, shape="0d",
    fn=lambda c, **kw: sintegrate.quad(lambda t, c: np.exp(-c * t * t), 0.0, np.inf,
                                       args=(c,), **kw)[0])
add("integrate.quad", sintegrate.quad, (A((), "pos"),), {"points": [0.5]}, shape="0d",
    fn=lambda c, **kw: sintegrate.quad(lambda t, c: np.abs(t - 0.5) * c * c, 0.0, 1.0,
                                       args=(c,), **kw)[0])
add("integrate.quad", sintegrate.quad, (A((), "pos"),), {"weight": "cos", "wvar": 2.0},
    shape="0d", fn=lambda c, **kw: sintegrate.quad(lambda t, c: np.exp(-c * t), 0.0, 1.0,
                                                   args=(c,), **kw)[0])
add("integrate.quad", sintegrate.quad, (A((), "pos"),), {"full_output": 1}, shape="0d",
    fn=lambda c, **kw: sintegrate.quad(lambda t, c: c * t, 0.0, 1.0, args=(c,), **kw)[0],
    kind="raises", raises=NoDerivativeRule)
add("integrate.quad", sintegrate.quad, (A((), "pos"),), {"complex_func": True}, shape="0d",
    fn=lambda c, **kw: sintegrate.quad(lambda t, c: c * t, 0.0, 1.0, args=(c,), **kw)[0],
    kind="raises", raises=NoDerivativeRule)
add("integrate.quad", sintegrate.quad, (A((), "pos"),), {"weight": "cos", "wvar": 2.0,
                                                  "limlst": 60}, shape="0d",
    label="infinite", fn=lambda c, **kw: sintegrate.quad(
        lambda t, c: np.exp(-c * t), 0.0, np.inf, args=(c,), **kw)[0])
add("integrate.quad", sintegrate.quad, (A((), "pos"),), {"weight": "sin", "wvar": 3.0,
                                                  "maxp1": 80}, shape="0d",
    fn=lambda c, **kw: sintegrate.quad(lambda t, c: np.exp(-c * t), 0.0, 2.0, args=(c,),
                                       **kw)[0])


def _ode(y0: Any, k: Any, w: Any, **kw: Any) -> Any:
    """odeint of the rotating decay, func(y, t, *args) order (t[0] = 0 the start)."""
    return sintegrate.odeint(lambda y, t, k, w: _rotating_decay(t, y, k, w), y0,
                             [0.0, 0.3, 0.8], args=(k, w), **{**_TIGHT, **kw})


def _ode_jac(y: Any, t: Any, k: Any, w: Any) -> Any:
    return np.array([[-k, -w], [w, -k]])


add("integrate.odeint", sintegrate.odeint, (A((2,)), A((), "pos"), A(())), _TIGHT, shape="vec",
    batch_tol=1e-8, fn=_ode, label="y0,args")
add("integrate.odeint", sintegrate.odeint, (A((2,)), A((2,), "pos")), shape="vec",
    batch_tol=1e-8,
    label="t", fn=lambda y0, t: sintegrate.odeint(
        lambda y, t: -0.5 * y, y0, np.concatenate([np.zeros(1), np.cumsum(t)]), **_TIGHT))
add("integrate.odeint", sintegrate.odeint, (A((2,)), A((), "pos"), A(())), shape="vec",
    batch_tol=1e-8,
    label="tfirst,func", fn=lambda y0, k, w: sintegrate.odeint(
        _rotating_decay, y0, [0.0, 0.3, 0.8], args=(k, w), tfirst=True, **_TIGHT))
add("integrate.odeint", sintegrate.odeint, (A((2,)), A((), "pos"), A(())),
    {"Dfun": _ode_jac, "col_deriv": 0}, shape="vec", batch_tol=1e-8, fn=_ode)
add("integrate.odeint", sintegrate.odeint, (A((2,)), A((), "pos"), A(())),
    {"ml": 1, "mu": 1, "h0": 1e-4, "hmax": 0.5, "hmin": 1e-14, "mxstep": 5000,
     "mxhnil": 1, "mxordn": 10, "mxords": 4, "tcrit": [0.9], "ixpr": 0, "printmessg": 0},
    shape="vec", batch_tol=1e-8, fn=_ode)
add("integrate.odeint", sintegrate.odeint, (A((2,)), A((), "pos"), A(())),
    {"full_output": 1}, shape="vec", batch_tol=1e-8, fn=lambda *a, **kw: _ode(*a, **kw)[0])
add("integrate.dblquad", sintegrate.dblquad, (A((), "pos"), A((), "pos"), A((), "pos")),
    shape="0d", label="a,b,args,func,gfun,hfun", fn=lambda a, b, c: sintegrate.dblquad(
        lambda y, x, c: np.exp(-c * (x + y)), a, a + b, 0.0, lambda x: x, args=(c,))[0])
add("integrate.dblquad", sintegrate.dblquad, (A((), "pos"), A((), "pos")),
    {"epsabs": 1e-12, "epsrel": 1e-12}, shape="0d", label="traced gfun,hfun",
    fn=lambda g, h, **kw: sintegrate.dblquad(lambda y, x: np.cos(x * y), 0.0, 1.0, g,
                                             g + h, **kw)[0])

add("integrate.tplquad", sintegrate.tplquad, (A((), "pos"),),
    {"epsabs": 1e-9, "epsrel": 1e-9}, shape="0d", label="b,args", second=False,
    fn=lambda b, **kw: sintegrate.tplquad(lambda z, y, x, c: np.exp(-c * x) * (1 + y * z),
                                          0.0, b, 0.0, 1.0, 0.0, 1.0, args=(0.7,), **kw)[0])
add("integrate.tplquad", sintegrate.tplquad, (A((), "pos"),), shape="0d", second=False,
    label="gfun,hfun,qfun,rfun closing over c", fn=lambda c: sintegrate.tplquad(
        lambda z, y, x: x + y * z, 0.0, 1.0, 0.0, lambda x: c * x, 0.0,
        lambda x, y: c + x * y)[0])
add("integrate.nquad", sintegrate.nquad, (A((), "pos"), A((), "pos")), shape="0d",
    label="ranges,args,opts", fn=lambda b, c: sintegrate.nquad(
        lambda x, y, c: np.exp(-c * x * y), [lambda y, c: (0.0, b * y), (0.0, 1.0)],
        args=(c,), opts={"epsabs": 1e-11, "epsrel": 1e-11})[0])
add("integrate.nquad", sintegrate.nquad, (A((), "pos"),), {"full_output": True}, shape="0d",
    fn=lambda c, **kw: sintegrate.nquad(lambda x: c * x, [(0.0, 1.0)], **kw)[0],
    kind="raises", raises=NoDerivativeRule)


def _qv(x: Any, c: Any) -> Any:
    return np.stack([np.exp(-c * x), np.sin(c * x) * x])


add("integrate.quad_vec", sintegrate.quad_vec, (A((), "pos"), A((), "unit"), A((), "gt1")),
    shape="vec", label="a,b,args,f", fn=lambda a, b, c: sintegrate.quad_vec(
        _qv, a, b, args=(c,))[0])
add("integrate.quad_vec", sintegrate.quad_vec, (A((), "gt1"),),
    {"epsabs": 1e-12, "epsrel": 1e-12, "norm": "max", "limit": 500, "cache_size": 1e6,
     "workers": 1, "quadrature": "gk21"}, shape="vec",
    fn=lambda c, **kw: sintegrate.quad_vec(_qv, 0.0, 2.0, args=(c,), **kw)[0])
add("integrate.quad_vec", sintegrate.quad_vec, (A((), "pos"),), {"points": [0.5]},
    shape="vec", fn=lambda c, **kw: sintegrate.quad_vec(
        lambda t, c: np.stack([np.abs(t - 0.5) * c * c, c * t]), 0.0, 1.0, args=(c,), **kw)[0])
add("integrate.quad_vec", sintegrate.quad_vec, (A((), "pos"),), {"full_output": True},
    shape="vec", fn=lambda c, **kw: sintegrate.quad_vec(_qv, 0.0, 1.0, args=(c,), **kw)[0],
    kind="raises", raises=NoDerivativeRule)

# ====================================================================== scipy.optimize
for nm, f in (("so.rosen", so.rosen), ("so.rosen_der", so.rosen_der)):
    add(nm, f, (A((5,)),), shape="vec", dtypes=ALL)
    add(nm, f, (A((4, 3)),), shape="mat")
add("so.rosen_hess", so.rosen_hess, (A((5,)),), shape="vec", dtypes=ALL)
add("so.rosen_hess_prod", so.rosen_hess_prod, (A((5,)), A((5,))), shape="vec", dtypes=ALL)

# ====================================================================== scipy.sparse
# constant sparse operators (entries not differentiated) times traced dense operands
_SPARSE_RNG = np.random.default_rng(20261202)
_SP_DENSE = np.where(_SPARSE_RNG.uniform(size=(4, 3)) < 0.6, _SPARSE_RNG.standard_normal((4, 3)),
                     0.0)
SP_CSR = sps.csr_matrix(_SP_DENSE)
SP_CSC = sps.csc_array(_SP_DENSE)
SP_COO = sps.coo_array(_SP_DENSE)
SP_CPLX = sps.csr_array(_SP_DENSE + 1j * _SPARSE_RNG.standard_normal((4, 3)) * (_SP_DENSE != 0))
SP_SQUARE = sps.csc_matrix(_SPARSE_RNG.standard_normal((4, 4)) * 0.3 + 2.0 * np.eye(4))
_MATMUL = sps._base._spbase._matmul_dispatch
_RMATMUL = sps._base._spbase._rmatmul_dispatch
for sh, u in {"vec": A((3,)), "mat": A((3, 2))}.items():
    add("sparse.matmul", _MATMUL, (u,), fn=lambda u: SP_CSR @ u, shape=sh, label="csr_matrix",
        dtypes=ALL if sh == "vec" else (F64,))
    add("sparse.matmul", _MATMUL, (u,), fn=lambda u: SP_CSC @ u, shape=sh, label="csc_array")
    add("sparse.matmul", _MATMUL, (u,), fn=lambda u: SP_CPLX @ u, shape=sh, label="complex",
        dtypes=(F64, C128))
add("sparse.matmul", _MATMUL, (A((3,)),), fn=lambda u: SP_CSR.dot(u), shape="vec",
    label="dot")
add("sparse.matmul", _MATMUL, (A((3,)),), fn=lambda u: SP_CSR * u, shape="vec",
    label="spmatrix *")
for sh, u in {"vec": A((4,)), "mat": A((2, 4))}.items():
    add("sparse.rmatmul", _RMATMUL, (u,), fn=lambda u: u @ SP_CSR, shape=sh,
        label="csr_matrix", dtypes=ALL if sh == "vec" else (F64,))
    add("sparse.rmatmul", _RMATMUL, (u,), fn=lambda u: u @ SP_CPLX, shape=sh, label="complex",
        dtypes=(F64, C128))
    add("sparse.coo_rmatmul", sps._coo._coo_base._rmatmul_dispatch, (u,),
        fn=lambda u: u @ SP_COO, shape=sh)
for sh, u in {"vec": A((3,)), "mat": A((3, 2))}.items():
    add("sparse.coo_matmul", sps._coo._coo_base._matmul_dispatch, (u,),
        fn=lambda u: SP_COO @ u, shape=sh, dtypes=ALL if sh == "vec" else (F64,))
    add("sparse.coo_dot", sps._coo._coo_base.dot, (u,), fn=lambda u: SP_COO.dot(u), shape=sh)
for sh, b in {"vec": A((4,)), "mat": A((4, 2))}.items():
    add("spla.spsolve", spla.spsolve, (b,), fn=lambda b, **k: spla.spsolve(SP_SQUARE, b, **k),
        shape=sh, dtypes=ALL if sh == "vec" else (F64,))
add("spla.spsolve", spla.spsolve, (A((4,)),), {"permc_spec": "NATURAL", "use_umfpack": False},
    fn=lambda b, **k: spla.spsolve(SP_SQUARE, b, **k), shape="vec")

# ====================================================================== scipy.interpolate
# Data abscissae whose knots lie outside the sample range |t| in [0.3, 1.5] (linear
# interpolation has kinks there); XS ends inside it, for the fill values outside.
XD = np.array([-2.0, -1.6, -0.2, 0.2, 1.7, 2.2])
XS = np.array([-1.25, -0.9, -0.2, 0.2, 0.95, 1.25])
YD = np.random.default_rng(7).standard_normal(6)
YD2 = np.random.default_rng(8).standard_normal((2, 6))
CS = si.CubicSpline(XD, YD)
CS_AXIS = si.CubicSpline(XD, YD2, axis=1)
BS = si.make_interp_spline(XD, YD)
KNOTS = BS.t
T = A((4,), real=True)
_PPCALL = si.PPoly.__call__
for sh, t in {"vec": T, "0d": A((), real=True), "mat": A((2, 3), real=True)}.items():
    for kw in ({}, {"nu": 1}, {"nu": 2}):
        add("si.PPoly.__call__", _PPCALL, (t,), kw, fn=lambda t, **k: CS(t, **k), shape=sh,
            label="CubicSpline")
    add("si.PPoly.__call__", _PPCALL, (t,), fn=lambda t: CS_AXIS(t), shape=sh, label="axis=1")
    add("si.BSpline.__call__", si.BSpline.__call__, (t,), {"nu": 1},
        fn=lambda t, **k: BS(t, **k), shape=sh)
    add("si.interp1d.__call__", _Interpolator1D.__call__, (t,),
        fn=lambda t: si.interp1d(XD, YD2, kind="cubic")(t), shape=sh, label="cubic")
for kw in ({"extrapolate": False}, {"extrapolate": "periodic"}):
    add("si.PPoly.__call__", _PPCALL, (T,), kw, fn=lambda t, **k: CS(t, **k), shape="vec")
add("si.PPoly.__call__", _PPCALL, (T,), fn=lambda t: si.PchipInterpolator(XD, YD)(t),
    shape="vec", label="Pchip")
add("si.PPoly.__call__", _PPCALL, (T,), fn=lambda t: si.Akima1DInterpolator(XD, YD)(t),
    shape="vec", label="Akima")
if si.BPoly.__call__ is not _PPCALL:  # SciPy >= 1.18: BPoly has a __call__ of its own
    _BP = si.BPoly.from_derivatives(XD, [[y, 0.5 * y] for y in YD])
    for kw in ({}, {"nu": 1}, {"extrapolate": False}):
        add("si.BPoly.__call__", si.BPoly.__call__, (T,), kw,
            fn=lambda t, **k: _BP(t, **k), shape="vec", label="BPoly")
add("si.BSpline.__call__", si.BSpline.__call__, (T,), {"extrapolate": False},
    fn=lambda t, **k: BS(t, **k), shape="vec")
for kind in ("linear", "slinear", "quadratic", "zero"):
    add("si.interp1d.__call__", _Interpolator1D.__call__, (T,),
        fn=lambda t, kind=kind: si.interp1d(XD, YD, kind=kind)(t), shape="vec", label=kind)
add("si.interp1d.__call__", _Interpolator1D.__call__, (T,),
    fn=lambda t: si.interp1d(XD, YD, kind="nearest")(t), shape="vec", label="nearest",
    kind="value")
add("si.interp1d.__call__", _Interpolator1D.__call__, (T,),
    fn=lambda t: si.interp1d(XS, YD, bounds_error=False, fill_value=(0.5, -1.0))(t),
    shape="vec", label="fill_value")
add("si.interp1d.__call__", _Interpolator1D.__call__, (T,),
    fn=lambda t: si.KroghInterpolator(XD, YD)(t), shape="vec", label="Krogh",
    kind="raises", raises=NoDerivativeRule)

# traced data values (and traced points: both differentiated together)
_CSNEW = si.CubicSpline.__new__
for kw in ({}, {"bc_type": "natural"}, {"bc_type": "clamped"},
           {"bc_type": ((1, 0.5), (2, -1.0))}, {"extrapolate": False}):
    add("si.CubicSpline", _CSNEW, (A((6,)), T), kw,
        fn=lambda y, t, **k: si.CubicSpline(XD, y, **k)(t), shape="vec",
        dtypes=ALL if not kw else (F64, C128))
add("si.CubicSpline", _CSNEW, (A((2, 6)), T), {"axis": 1},
    fn=lambda y, t, **k: si.CubicSpline(XD, y, **k)(t), shape="mat")
add("si.CubicSpline", _CSNEW, (A((5,)), T), fn=lambda y, t: si.CubicSpline(
    XD, np.concatenate([y, y[:1]]), bc_type="periodic")(t), shape="vec", label="periodic")
add("si.CubicSpline", _CSNEW, (A((6,)), T),
    fn=lambda y, t: si.CubicSpline(XD, y).derivative()(t), shape="vec", label="derivative")
add("si.CubicSpline", _CSNEW, (A((6,)),),
    fn=lambda y: si.CubicSpline(XD, y).integrate(-1.0, 1.5), shape="vec", label="integrate")
add("si.CubicSpline", _CSNEW, (A((6,)), A((6,), "distinct_sorted", real=True)),
    fn=lambda y, x: si.CubicSpline(x, y)(0.5), shape="vec", label="traced x",
    kind="raises", raises=NoDerivativeRule)
_CHNEW = si.CubicHermiteSpline.__new__
add("si.CubicHermiteSpline", _CHNEW, (A((6,)), A((6,)), T), fn=lambda y, d, t, **k:
    si.CubicHermiteSpline(XD, y, d, **k)(t), shape="vec", dtypes=ALL)
add("si.CubicHermiteSpline", _CHNEW, (A((2, 6)), A((2, 6)), T), {"axis": 1,
    "extrapolate": False}, fn=lambda y, d, t, **k: si.CubicHermiteSpline(XD, y, d, **k)(t),
    shape="mat")
# nonlinear in the data (limited slopes): refused with traced data, whatever the options
for nm, cls, kw in (("si.PchipInterpolator", si.PchipInterpolator, {}),
                    ("si.Akima1DInterpolator", si.Akima1DInterpolator, {"method": "makima"})):
    add(nm, cls.__new__, (A((6,)), T), {"axis": 0, "extrapolate": True, **kw},
        fn=lambda y, t, cls=cls, **k: cls(XD, y, **k)(t), shape="vec", kind="raises",
        raises=NoDerivativeRule)
_MIS = si.make_interp_spline
for kw in ({}, {"k": 1}, {"k": 2}, {"bc_type": "natural"},
           {"bc_type": ([(1, 0.3)], [(1, -0.2)])}, {"t": KNOTS}):
    add("si.make_interp_spline", _MIS, (A((6,)), T), kw,
        fn=lambda y, pts, **k: si.make_interp_spline(XD, y, **k)(pts), shape="vec",
        dtypes=ALL if not kw else (F64,))
add("si.make_interp_spline", _MIS, (A((2, 6)), T), {"axis": 1},
    fn=lambda y, t, **k: si.make_interp_spline(XD, y, **k)(t), shape="mat")
add("si.make_interp_spline", _MIS, (A((5,)), T), fn=lambda y, t: si.make_interp_spline(
    XD, np.concatenate([y, y[:1]]), bc_type="periodic")(t), shape="vec", label="periodic")
_I1NEW = si.interp1d.__new__
for kw in ({}, {"kind": "cubic"}, {"kind": "quadratic"}, {"fill_value": "extrapolate"},
           {"assume_sorted": True}, {"copy": False}):
    add("si.interp1d", _I1NEW, (A((6,)), T), kw,
        fn=lambda y, t, **k: si.interp1d(XD, y, **k)(t), shape="vec",
        dtypes=ALL if not kw else (F64,))
add("si.interp1d", _I1NEW, (A((6,)), F((4,))), {"kind": "nearest"},
    fn=lambda y, t, **k: si.interp1d(XD, y, **k)(t), shape="vec")
add("si.interp1d", _I1NEW, (A((6, 2)), T), {"axis": 0},
    fn=lambda y, t, **k: si.interp1d(XD, y, **k)(t), shape="mat")
add("si.interp1d", _I1NEW, (A((6,)), T), {"bounds_error": False, "fill_value": 2.5},
    fn=lambda y, t, **k: si.interp1d(XS, y, **k)(t), shape="vec")
_BSNEW = si.BSpline.__new__
for kw in ({}, {"extrapolate": False}):
    add("si.BSpline", _BSNEW, (A((6,)), T), kw,
        fn=lambda c, t, **k: si.BSpline(KNOTS, c, 3, **k)(t), shape="vec",
        dtypes=ALL if not kw else (F64,))
add("si.BSpline", _BSNEW, (A((2, 6)), T), {"axis": 1},
    fn=lambda c, t, **k: si.BSpline(KNOTS, c, 3, **k)(t), shape="mat")


# ====================================================================== issue 21 additions
# sparse matrices times traced scalars/vectors (SciPy's meaning of *, /, +, -, multiply
# per kind; traced entries come back as a dualrev TracedSparse, compared densely)
def _dense(r: Any) -> Any:
    return r.toarray() if hasattr(r, "toarray") else r


_SP_DOK = sps.dok_array(_SP_DENSE)
_SP_LIL = sps.lil_array(_SP_DENSE)
_SP_DIA = sps.dia_array(_SP_DENSE)
_SPB, _SPM = sps._base._spbase, sps._matrix.spmatrix
for nm, entry, args, fn in (
        ("sparse.mul", _SPB.__mul__, (A((3,)),), lambda u: _dense(SP_CSC * u)),
        ("sparse.mul", _SPB.__mul__, (A(()),), lambda a: _dense(SP_CSC * a)),
        ("sparse.rmul", _SPB.__rmul__, (A(()),), lambda a: _dense(a * SP_CSC)),
        ("sparse.rmul", _SPB.__rmul__, (A((4, 1)),), lambda w: _dense(w * SP_CSC)),
        ("sparse.spmatrix_mul", _SPM.__mul__, (A((3,)),), lambda u: _dense(SP_CSR * u)),
        ("sparse.spmatrix_rmul", _SPM.__rmul__, (A((4,)),), lambda w: _dense(w * SP_CSR)),
        ("sparse.truediv", _SPB.__truediv__, (A((), "pos"),), lambda a: _dense(SP_CSC / a)),
        ("sparse.dok_truediv", sps._dok._dok_base.__truediv__, (A((), "pos"),),
         lambda a: _dense(_SP_DOK / a)),
        ("sparse.lil_truediv", sps._lil._lil_base.__truediv__, (A((), "pos"),),
         lambda a: _dense(_SP_LIL / a)),
        ("sparse.multiply", _SPB.multiply, (A((3,)),), lambda u: _dense(SP_CSC.multiply(u))),
        ("sparse.dia_multiply", sps._dia._dia_base.multiply, (A((4, 1)),),
         lambda w: _dense(_SP_DIA.multiply(w))),
        ("sparse.add", _SPB.__add__, (A((3,)),), lambda u: SP_CSC + u),
        ("sparse.radd", _SPB.__radd__, (A((4, 3)),), lambda u: u + SP_CSC),
        ("sparse.dok_add", sps._dok._dok_base.__add__, (A((3,)),), lambda u: _SP_DOK + u),
        ("sparse.dok_radd", sps._dok._dok_base.__radd__, (A((3,)),), lambda u: u + _SP_DOK),
        ("sparse.sub", _SPB.__sub__, (A((3,)),), lambda u: SP_CSC - u),
        ("sparse.rsub", _SPB.__rsub__, (A((3,)),), lambda u: u - SP_CSC)):
    # (a scalar operand is labelled: its id must differ from the array operand's)
    add(nm, entry, args, fn=fn, shape="mat", label="scalar" if args[0].shape == () else None)
# which classes define their own multiply differs between SciPy versions (the compressed
# formats' on 1.15): each one patched gets its case
for _owner in (sps._compressed._cs_matrix,):
    if "multiply" in _owner.__dict__:
        add("sparse.cs_multiply", _owner.multiply, (A((3,)),),
            fn=lambda u: _dense(SP_CSC.multiply(u)), shape="mat")
# (SciPy's own answers NotImplemented, so plain u / A is a TypeError: called directly)
add("sparse.rtruediv", _SPB.__rtruediv__, (A((3,)),),
    fn=lambda u: _SPB.__rtruediv__(SP_CSC, u), shape="mat", kind="raises",
    raises=NoDerivativeRule)
# traced entries used as an operator, entries and operand both traced
add("sparse.mul", _SPB.__mul__, (A((3,)), A((3,))),
    fn=lambda w, u: (SP_CSC * w) @ u + u @ (SP_CSC * w).T @ np.ones(4), shape="vec",
    label="TracedSparse @")
for nm, build in (("sparse.diags", sps.diags), ("sparse.diags_array", sps.diags_array)):
    add(nm, build, (A((4,)),), {"offsets": [-1, 0, 1], "shape": (4, 4), "format": "csr",
                                "dtype": np.float64},
        fn=lambda d, build=build, **k: _dense(build([d[:-1], 2.0 * d, d[1:]], **k)),
        shape="mat")
    add(nm, build, (A((3,)), A((4,))), {"offsets": 1},
        fn=lambda d, v, build=build, **k: build(d, **k) @ v, shape="vec")
add("sparse.spdiags", sps.spdiags, (A((2, 4)),), {"m": 4, "n": 4, "format": "csc"},
    fn=lambda d, **k: _dense(sps.spdiags(d, [0, 1], **k)), shape="mat")
add("spla.factorized", spla.factorized, (A((4,)),),
    fn=lambda b: spla.factorized(sps.csc_matrix(SP_SQUARE))(b), shape="vec")

# RegularGridInterpolator / interpn: traced values and/or points (the *_legacy methods
# are SciPy's exact tensor-product splines, which dualrev's cubic/quintic equal)
_RG = (np.linspace(0.0, 2.5, 6), np.array([0.0, 0.3, 0.7, 1.0, 1.2, 1.6, 2.0, 2.4]))
_RG_XI = np.array([[0.31, 0.75], [0.93, 1.9], [0.55, 0.1]])
_RGI = si.RegularGridInterpolator
_RGNEW, _RGCALL = _RGI.__new__, _RGI.__call__
for method in ("linear", "slinear", "cubic_legacy", "quintic_legacy"):
    add("si.RegularGridInterpolator", _RGNEW, (A((6, 8)),), {"method": method},
        fn=lambda v, **k: _RGI(_RG, v, **k)(_RG_XI), shape="mat")
add("si.RegularGridInterpolator", _RGNEW, (A((6, 8)),), {"method": "nearest"},
    fn=lambda v, **k: _RGI(_RG, v, **k)(_RG_XI), shape="mat")
add("si.RegularGridInterpolator", _RGNEW, (A((6, 8, 2)),),
    {"bounds_error": False, "fill_value": -1.0},
    fn=lambda v, **k: _RGI(_RG, v, **k)(np.vstack([_RG_XI, [[1.5, 0.5]]])), shape="mat")
add("si.RegularGridInterpolator", _RGNEW, (A((6, 8)),), {"method": "pchip"},
    fn=lambda v, **k: _RGI(_RG, v, **k)(_RG_XI), shape="mat", kind="raises",
    raises=NoDerivativeRule)
add("si.RegularGridInterpolator", _RGNEW, (A((6, 8)),),
    {"method": "cubic", "solver": spla.gmres, "solver_args": {"atol": 1e-12}},
    fn=lambda v, **k: _RGI(_RG, v, **k)(_RG_XI), shape="mat", kind="raises",
    raises=NoDerivativeRule)
_RG_PLAIN = _RGI(_RG, np.random.default_rng(21).standard_normal((6, 8)), method="slinear")
_RG_XIA = A((3, 2), "pos", real=True)
for kw in ({}, {"method": "cubic_legacy"}, {"method": "nearest"}):
    add("si.RegularGridInterpolator.__call__", _RGCALL, (_RG_XIA,), kw,
        fn=lambda x, **k: _RG_PLAIN(x, **k), shape="mat", kind=(
            "value" if kw.get("method") == "nearest" else "diff"))
add("si.RegularGridInterpolator.__call__", _RGCALL, (_RG_XIA,), {"nu": (1, 0)},
    fn=lambda x, **k: _RGI(_RG, _RG_PLAIN.values, method="slinear")(x, **k), shape="mat")
for kw in ({}, {"method": "cubic_legacy", "bounds_error": False, "fill_value": None}):
    add("si.interpn", si.interpn, (A((6, 8)), _RG_XIA), kw,
        fn=lambda v, x, **k: si.interpn(_RG, v, x, **k), shape="mat")
add("si.interpn", si.interpn, (A((6, 8)),), {"method": "splinef2d"},
    fn=lambda v, **k: si.interpn(_RG, v, _RG_XI, **k), shape="mat", kind="raises",
    raises=NoDerivativeRule)

# solvers: the solution differentiated by the implicit function theorem (dualrev.implicit),
# solved tightly so that the finite differences of re-solving are accurate
def _quartic(x, t):
    return 0.5 * np.sum((x - t) ** 2) + 0.25 * np.sum(x ** 4) + 0.1 * x[0] * x[-1]


def _quartic_grad(x, t):
    g = (x - t) + x ** 3
    return g + 0.1 * np.concatenate([x[-1:], np.zeros(x.size - 2), x[:1]])


def _quartic_hess(x, t):
    H = np.eye(x.size) + np.diag(3 * x ** 2)
    H[0, -1] += 0.1
    H[-1, 0] += 0.1
    return H


_X3 = np.zeros(3)
add("so.minimize", so.minimize, (A((3,)),), {"method": "BFGS", "tol": 1e-13},
    fn=lambda t, **k: so.minimize(lambda x: _quartic(x, t), _X3, **k).x, shape="vec",
    tol=1e-5, batch_tol=1e-8)
add("so.minimize", so.minimize, (A((3,)),), {"method": "trust-exact", "jac": _quartic_grad,
                                             "hess": _quartic_hess,
                                             "options": {"gtol": 1e-12}},
    fn=lambda t, **k: so.minimize(_quartic, _X3, args=(t,), **k).x, shape="vec",
    label="args", tol=1e-5, batch_tol=1e-8)
add("so.minimize", so.minimize, (A((3,)),), {"method": "trust-ncg",
                                             "hessp": lambda x, p, t: _quartic_hess(x, t) @ p,
                                             "jac": _quartic_grad,
                                             "callback": lambda *a: None,
                                             "options": {"gtol": 1e-12}},
    fn=lambda t, **k: so.minimize(_quartic, _X3, args=(t,), **k).fun, shape="vec",
    label="fun", tol=1e-5, batch_tol=1e-8)
add("so.minimize", so.minimize, (A((3,)),), {"method": "L-BFGS-B",
                                             "bounds": [(-0.1, 0.1), (None, None), (0, 5)],
                                             "options": {"gtol": 1e-13, "ftol": 1e-15}},
    fn=lambda t, **k: so.minimize(lambda x: _quartic(x, 3 * t), _X3, **k).x, shape="vec",
    tol=1e-5, batch_tol=1e-8, second=False)  # L-BFGS-B re-solves too loosely for 2nd FD
add("so.minimize", so.minimize, (A((3,)),), {"method": "SLSQP", "constraints": [
    {"type": "eq", "fun": lambda x: np.sum(x) - 1.0}], "options": {"ftol": 1e-15}},
    fn=lambda t, **k: so.minimize(lambda x: _quartic(x, t), _X3, **k).x, shape="vec",
    # SLSQP re-solves to ~1e-8, so its differences are good to ~1e-5 only (too loose for
    # second differences); tests/test_implicit.py checks this tangent to 1e-8 against
    # differences of the KKT system solved by Newton's method
    label="KKT", tol=1e-4, batch_tol=1e-8, second=False)
add("so.minimize", so.minimize, (A((3,)),), {"constraints": [
    {"type": "ineq", "fun": lambda x: np.sum(x) - 1.0}]},
    fn=lambda t, **k: so.minimize(lambda x: _quartic(x, t), _X3, **k).x, shape="vec",
    kind="raises", raises=NoDerivativeRule)
add("so.root", so.root, (A((2,), "pos"),), {"method": "hybr", "tol": 1e-14,
                                           "jac": lambda x, t: np.diag(3 * x ** 2),
                                           "options": {"xtol": 1e-14},
                                           "callback": None},
    fn=lambda t, **k: so.root(lambda x, s: x ** 3 - s - 1.0, np.ones(2), args=(t,), **k).x,
    label="args", shape="vec", tol=1e-5, batch_tol=1e-8)
add("so.fsolve", so.fsolve, (A((2,), "pos"),),
    {"xtol": 1e-14, "fprime": lambda x, t: np.diag(3 * x ** 2), "col_deriv": False,
     "maxfev": 0, "band": None, "epsfcn": None, "factor": 100, "diag": None,
     "full_output": False},
    fn=lambda t, **k: so.fsolve(lambda x, s: x ** 3 - s - 1.0, np.ones(2), args=(t,), **k),
    label="args", shape="vec", tol=1e-5, batch_tol=1e-8)
_LSQ_A = np.array([[1.0, 0.5], [0.2, 1.0], [1.0, -1.0], [0.3, 0.1]])
for kw in ({"method": "trf", "ftol": 1e-15, "xtol": 1e-15, "gtol": 1e-15, "loss": "soft_l1",
            "f_scale": 0.7, "x_scale": 1.0, "max_nfev": 1000, "verbose": 0,
            "tr_solver": "exact", "tr_options": {}, "diff_step": None,
            "jac_sparsity": None, "callback": None, "workers": None},
           {"method": "lm", "ftol": 1e-15, "xtol": 1e-15, "gtol": 1e-15, "jac": "3-point"},
           {"method": "dogbox", "bounds": ([0.0, -np.inf], [0.3, np.inf]), "ftol": 1e-15,
            "xtol": 1e-15, "gtol": 1e-15}):
    add("so.least_squares", so.least_squares, (A((4,)),), kw,
        fn=lambda y, **k: so.least_squares(
            lambda x, s: _LSQ_A @ (x + 0.1 * x ** 3) - s, np.zeros(2), args=(y,),
            kwargs={}, **k).x, label="args,kwargs", shape="vec",
        # (MINPACK's lm with a differenced Jacobian re-solves to ~1e-9 on SciPy 1.15, so
        # the differences of its solutions are good to ~1e-4 there)
        tol=1e-4 if kw.get("jac") == "3-point" else 1e-5, batch_tol=1e-8)
_CF_X = np.linspace(0.0, 2.0, 6)
for kw in ({"p0": [1.0, 0.5], "method": "lm", "absolute_sigma": False,
            "check_finite": True, "full_output": False, "nan_policy": None,
            "xtol": 1e-15, "ftol": 1e-15},
           {"p0": [1.0, 0.5], "method": "trf", "bounds": ([0.0, 0.0], [10.0, 10.0]),
            "absolute_sigma": True, "jac": "3-point", "xtol": 1e-15, "ftol": 1e-15,
            "gtol": 1e-15}):
    add("so.curve_fit", so.curve_fit, (A((6,), "pos"),), kw,
        fn=lambda y, **k: so.curve_fit(lambda x, a, b: a * np.exp(-b * x), _CF_X, 2.0 * np.exp(
            -0.7 * _CF_X) + 0.1 * y, **k)[0], label="ydata", shape="vec", tol=1e-5,
        batch_tol=1e-8)
    add("so.curve_fit", so.curve_fit, (A((6,), "pos"),), kw,
        fn=lambda s, **k: so.curve_fit(lambda x, a, b: a * np.exp(-b * x), _CF_X,
                                       2.0 * np.exp(-0.7 * _CF_X) + 0.05 * np.cos(7 * _CF_X),
                                       sigma=s, **k)[1], label="sigma,pcov", shape="vec",
        tol=1e-5, batch_tol=1e-8)
add("so.fixed_point", so.fixed_point, (A((2,), "pos"),), {"xtol": 1e-14, "maxiter": 500,
                                                         "method": "del2"},
    fn=lambda t, **k: so.fixed_point(lambda x, s: np.sqrt(s + x), np.ones(2), args=(t,), **k),
    label="args", shape="vec", tol=1e-5, batch_tol=1e-8)
add("so.newton", so.newton, (A((), "pos"),), {"tol": 1e-14, "maxiter": 50, "rtol": 0.0,
                                             "fprime": lambda x, s: 3 * x ** 2,
                                             "fprime2": lambda x, s: 6 * x, "x1": None,
                                             "full_output": False, "disp": True},
    fn=lambda t, **k: so.newton(lambda x, s: x ** 3 - s - 1.0, 1.0, args=(t,), **k),
    label="args", shape="0d", tol=1e-5, batch_tol=1e-8)
add("so.newton", so.newton, (A((3,), "pos"),), {"tol": 1e-14},
    fn=lambda t, **k: so.newton(lambda x: x ** 3 - t - 1.0, np.ones(3), **k),
    shape="vec", tol=1e-5, batch_tol=1e-8)
for kw in ({"method": "brentq", "bracket": (0.0, 3.0), "xtol": 1e-14, "rtol": 1e-15,
            "maxiter": 100, "options": {}},
           {"method": "newton", "x0": 1.0, "fprime": lambda x, s: 3 * x ** 2},
           {"method": "halley", "x0": 1.0, "fprime": lambda x, s: 3 * x ** 2,
            "fprime2": lambda x, s: 6 * x},
           {"method": "secant", "x0": 1.0, "x1": 1.5, "xtol": 1e-14}):
    add("so.root_scalar", so.root_scalar, (A((), "pos"),), kw,
        fn=lambda t, **k: so.root_scalar(lambda x, s: x ** 3 - s - 1.0, args=(t,), **k).root,
        label="args", shape="0d", tol=1e-5, batch_tol=1e-8)
for kw in ({"method": "brent", "bracket": (0.0, 1.0), "tol": 1e-12},
           {"method": "bounded", "bounds": (0.0, 5.0), "options": {"xatol": 1e-12}},
           {"method": "golden", "tol": 1e-12}):
    add("so.minimize_scalar", so.minimize_scalar, (A((), "pos"),), kw,
        fn=lambda t, **k: so.minimize_scalar(lambda x, s: (x - s) ** 2 + 0.3 * x ** 4,
                                             args=(t,), **k).x,
        label="args", shape="0d", tol=1e-5, batch_tol=1e-8)
for nm, solver in (("so.brentq", so.brentq), ("so.brenth", so.brenth),
                   ("so.ridder", so.ridder), ("so.bisect", so.bisect),
                   ("so.toms748", so.toms748)):
    kw = {"xtol": 1e-14, "rtol": 1e-15, "maxiter": 200, "full_output": True}
    if nm == "so.toms748":
        kw["k"] = 2
    add(nm, solver, (A((), "pos"),), kw,
        fn=lambda a, solver=solver, **k: solver(lambda x: x * x - a, 0.0, 3.0, **k)[0],
        shape="0d", tol=1e-5, batch_tol=1e-8)
    add(nm, solver, (A((), "pos"),), {"xtol": 1e-14}, fn=lambda a, solver=solver, **k: solver(
        lambda x, s: x * x - s, 0.0, 3.0, args=(a,), **k), label="args", shape="0d",
        tol=1e-5, batch_tol=1e-8)


# ====================================================================== scipy.ndimage
# linear filters: input, weights, sigma and cval traced; every boundary mode
IMG = A((4, 5))
for _m in ("reflect", "constant", "nearest", "mirror", "wrap", "grid-mirror",
           "grid-constant", "grid-wrap"):
    add("ndi.correlate1d", ndi.correlate1d, (IMG, A((3,))),
        {"axis": 0, "mode": _m, "cval": A(())}, shape="mat")
add("ndi.correlate1d", ndi.correlate1d, (IMG, A((4,))), {"origin": -2, "output": np.float64},
    shape="mat", dtypes=ALL)
add("ndi.convolve1d", ndi.convolve1d, (IMG, A((2,))),
    {"axis": -1, "mode": "wrap", "cval": 0.5, "origin": 0, "output": None}, shape="mat",
    dtypes=ALL)
add("ndi.convolve1d", ndi.convolve1d, (IMG, A((3,))), {"mode": "constant", "cval": A(())},
    shape="mat")
add("ndi.correlate", ndi.correlate, (IMG, A((2, 3))),
    {"mode": "mirror", "origin": (0, 1), "cval": 0.0, "output": np.float64}, shape="mat",
    dtypes=ALL)
add("ndi.correlate", ndi.correlate, (A((3, 4, 2)), A((2, 2))),
    {"axes": (2, 0), "mode": "constant", "cval": A(())}, shape="3d")
add("ndi.convolve", ndi.convolve, (IMG, A((3, 2))),
    {"mode": "nearest", "origin": (-1, 0), "cval": 0.0, "output": np.float64}, shape="mat",
    dtypes=ALL)
add("ndi.convolve", ndi.convolve, (A((3, 4, 2)), A((3,))),
    {"axes": (1,), "mode": "grid-constant", "cval": A(())}, shape="3d")
add("ndi.gaussian_filter1d", ndi.gaussian_filter1d, (IMG, 1.1),
    {"axis": 0, "order": 1, "mode": "reflect", "cval": 0.0, "truncate": 3.0,
     "output": np.float64}, shape="mat", dtypes=REAL)
add("ndi.gaussian_filter1d", ndi.gaussian_filter1d, (IMG, A((), "pos")),
    {"order": 2, "radius": 2, "mode": "constant", "cval": A(())}, shape="mat", label="sigma")
add("ndi.gaussian_filter", ndi.gaussian_filter, (IMG, 1.2),
    {"order": (0, 1), "mode": ("wrap", "nearest"), "cval": 0.0, "truncate": 2.5,
     "output": np.float64}, shape="mat", dtypes=REAL)
# (a real output dtype is an error for complex input in SciPy's multi-pass filters)
add("ndi.gaussian_filter", ndi.gaussian_filter, (IMG, 0.9), {"mode": "mirror"}, shape="mat",
    dtypes=ALL)
add("ndi.gaussian_filter", ndi.gaussian_filter, (A((3, 4, 2)), A((2,), "pos")),
    {"radius": (1, 2), "axes": (2, 0), "mode": "constant", "cval": A(())}, shape="3d",
    label="sigma")
add("ndi.uniform_filter1d", ndi.uniform_filter1d, (IMG, 3),
    {"axis": 0, "mode": "constant", "cval": A(()), "origin": -1, "output": np.float64},
    shape="mat", dtypes=ALL)
add("ndi.uniform_filter", ndi.uniform_filter, (IMG,),
    {"size": (2, 3), "origin": (0, 1), "mode": "mirror", "cval": 0.0, "axes": (0, 1),
     "output": np.float64}, shape="mat", dtypes=ALL)
for _nm in ("sobel", "prewitt"):
    add(f"ndi.{_nm}", getattr(ndi, _nm), (IMG,),
        {"axis": 0, "mode": "reflect", "cval": 0.0, "output": np.float64}, shape="mat",
        dtypes=REAL)
    add(f"ndi.{_nm}", getattr(ndi, _nm), (IMG,), {"mode": ("constant", "wrap"), "cval": A(())},
        shape="mat", dtypes=ALL)
add("ndi.laplace", ndi.laplace, (IMG,),
    {"mode": "nearest", "cval": 0.0, "axes": (0, 1), "output": np.float64}, shape="mat",
    dtypes=REAL)
add("ndi.laplace", ndi.laplace, (IMG,), {"mode": "wrap"}, shape="mat", dtypes=ALL)
add("ndi.gaussian_laplace", ndi.gaussian_laplace, (IMG, A((), "pos")),
    {"mode": "mirror", "cval": 0.0, "axes": None, "output": np.float64, "radius": 2},
    shape="mat", label="sigma")
add("ndi.gaussian_laplace", ndi.gaussian_laplace, (IMG, (0.8, 1.3)),
    {"mode": "constant", "cval": A(()), "truncate": 3.0}, shape="mat", dtypes=ALL)
add("ndi.gaussian_gradient_magnitude", ndi.gaussian_gradient_magnitude, (IMG, 1.0),
    {"mode": "reflect", "cval": 0.0, "axes": (1, 0), "output": np.float64}, shape="mat",
    dtypes=REAL)
add("ndi.gaussian_gradient_magnitude", ndi.gaussian_gradient_magnitude, (IMG, A((), "pos")),
    {"radius": 2}, shape="mat", label="sigma")


def _ndi_d2(x, axis, output, mode, cval, a, s=1.0):
    """A second-difference callback in SciPy's style (writes and returns its output)."""
    return ndi.correlate1d(x, [s, -a, s], axis, output, mode, cval)


add("ndi.generic_laplace", ndi.generic_laplace, (IMG, _ndi_d2),
    {"mode": "wrap", "cval": 0.0, "extra_arguments": (2.0,), "extra_keywords": {"s": 1.0},
     "axes": (0, 1), "output": np.float64}, shape="mat", dtypes=REAL)
add("ndi.generic_laplace", ndi.generic_laplace, (IMG, _ndi_d2), {"extra_arguments": (2.0,)},
    shape="mat", dtypes=ALL)
add("ndi.generic_gradient_magnitude", ndi.generic_gradient_magnitude, (IMG, ndi.sobel),
    {"mode": "nearest", "cval": 0.0, "extra_arguments": (), "extra_keywords": None,
     "axes": None, "output": np.float64}, shape="mat", dtypes=REAL)


# interpolation: input, coordinates / shift / matrix / offset / angle and cval traced
PTS2 = A((2, 6), "pos", real=True)  # inside the 4 x 5 image, off the knots
for _m, _o, _pre in (("constant", 3, True), ("nearest", 2, True), ("mirror", 5, False),
                     ("grid-constant", 1, True), ("wrap", 4, True), ("grid-wrap", 0, True),
                     ("reflect", 3, False), ("grid-mirror", 2, True)):
    # order 0 rounds the coordinates: they are constants there (zero derivative)
    add("ndi.map_coordinates", ndi.map_coordinates, (IMG, PTS2 if _o else F((2, 6), "pos")),
        {"order": _o, "mode": _m, "cval": A(()), "prefilter": _pre, "output": np.float64},
        shape="mat", dtypes=ALL if _m == "constant" else (F64,))
add("ndi.spline_filter", ndi.spline_filter, (IMG,), {"order": 3, "mode": "mirror",
                                                     "output": np.float64},
    shape="mat", dtypes=ALL)
add("ndi.spline_filter1d", ndi.spline_filter1d, (IMG,),
    {"order": 5, "axis": 0, "mode": "grid-wrap", "output": np.float64}, shape="mat",
    dtypes=ALL)
add("ndi.shift", ndi.shift, (IMG, A((2,), "unit", real=True)),
    {"order": 3, "mode": "nearest", "cval": 0.0, "prefilter": True, "output": np.float64},
    shape="mat", dtypes=ALL)
add("ndi.zoom", ndi.zoom, (IMG, (1.5, 0.8)),
    {"order": 2, "mode": "grid-constant", "cval": A(()), "prefilter": True,
     "grid_mode": True, "output": np.float64}, shape="mat")
# (SciPy's complex path drops grid_mode: a complex case without it)
add("ndi.zoom", ndi.zoom, (IMG, 1.3), {"mode": "mirror"}, shape="mat", dtypes=ALL)
add("ndi.affine_transform", ndi.affine_transform,
    (IMG, A((2, 2), "general", real=True), A((2,), "unit", real=True)),
    {"output_shape": (3, 4), "order": 1, "mode": "mirror", "cval": 0.0, "prefilter": False,
     "output": np.float64}, shape="mat", dtypes=ALL)
add("ndi.affine_transform", ndi.affine_transform, (IMG, A((2,), "pos", real=True)),
    {"offset": 0.25, "order": 3, "mode": "reflect"}, shape="mat", label="diagonal")
add("ndi.rotate", ndi.rotate, (IMG, A((), "pos", real=True)),
    {"axes": (0, 1), "reshape": False, "order": 3, "mode": "nearest", "cval": 0.0,
     "prefilter": True, "output": np.float64}, shape="mat", dtypes=ALL)
# rank filters: the derivative of the selected element (distinct samples: no ties)
DIMG = A((4, 5), "distinct")
_FP = np.array([[1, 0, 1], [0, 1, 1]], bool)
for _nm, _kw in (("minimum_filter", {"size": 3, "mode": "reflect", "cval": 0.0, "origin": 0,
                                     "axes": None}),
                 ("minimum_filter", {"footprint": _FP.T, "axes": (1, 0), "output": np.float64}),
                 ("maximum_filter", {"size": (2, 3), "axes": (1, 0), "mode": ("wrap", "mirror"),
                                     "origin": (0, 1)}),
                 ("maximum_filter", {"footprint": _FP, "mode": "constant", "cval": A(()),
                                     "origin": (0, -1), "output": np.float64}),
                 ("median_filter", {"size": (3, 2), "mode": "nearest", "axes": (1, 0),
                                    "cval": 0.0, "origin": 0, "footprint": None,
                                    "output": np.float64}),
                 ("rank_filter", {"size": 3, "mode": "wrap", "cval": 0.0, "origin": 0,
                                  "footprint": None, "axes": None, "output": np.float64})):
    args = (DIMG, 1) if _nm == "rank_filter" else (DIMG,)
    add(f"ndi.{_nm}", getattr(ndi, _nm), args, _kw, shape="mat")
add("ndi.percentile_filter", ndi.percentile_filter, (DIMG, 70),
    {"size": 3, "footprint": None, "mode": "mirror", "cval": 0.0, "origin": 0, "axes": None,
     "output": np.float64}, shape="mat")
for _nm in ("minimum_filter1d", "maximum_filter1d"):
    add(f"ndi.{_nm}", getattr(ndi, _nm), (DIMG, 3),
        {"axis": 0, "mode": "grid-constant", "cval": A(()), "origin": -1,
         "output": np.float64}, shape="mat")

#: which registry key each dispatcher of dualrev.catalogue.scipy_functions stands for
SCIPY_NAMES: dict[Any, str] = {
    sp.logsumexp: "sp.logsumexp", sp.softmax: "sp.softmax", sp.log_softmax: "sp.log_softmax",
    sp.polygamma: "sp.polygamma", sp.softplus: "sp.softplus",
    sintegrate.solve_ivp: "integrate.solve_ivp", sintegrate.quad: "integrate.quad",
    sintegrate.odeint: "integrate.odeint", sintegrate.dblquad: "integrate.dblquad",
    sintegrate.quad_vec: "integrate.quad_vec", sintegrate.tplquad: "integrate.tplquad",
    sintegrate.nquad: "integrate.nquad",
    sla.solve_triangular: "sla.solve_triangular", sla.cho_factor: "sla.cho_factor",
    sla.cho_solve: "sla.cho_solve", sla.lu_factor: "sla.lu_factor",
    sla.lu_solve: "sla.lu_solve", sla.expm: "sla.expm", sla.sqrtm: "sla.sqrtm",
    sla.solve_banded: "sla.solve_banded", sla.solveh_banded: "sla.solveh_banded",
    sla.solve_sylvester: "sla.solve_sylvester",
    sla.solve_continuous_lyapunov: "sla.solve_continuous_lyapunov",
    sla.solve_discrete_lyapunov: "sla.solve_discrete_lyapunov",
    sla.solve_continuous_are: "sla.solve_continuous_are",
    sla.solve_discrete_are: "sla.solve_discrete_are", sla.expm_frechet: "sla.expm_frechet",
    **{getattr(getattr(st, d), m): f"st.{d}.{m}" for d, m in STATS_RULES},
    so.rosen: "so.rosen", so.rosen_der: "so.rosen_der", so.rosen_hess: "so.rosen_hess",
    so.rosen_hess_prod: "so.rosen_hess_prod",
    _MATMUL: "sparse.matmul", _RMATMUL: "sparse.rmatmul",
    sps._coo._coo_base._matmul_dispatch: "sparse.coo_matmul",
    sps._coo._coo_base._rmatmul_dispatch: "sparse.coo_rmatmul",
    sps._coo._coo_base.dot: "sparse.coo_dot", spla.spsolve: "spla.spsolve",
    si.BPoly.__call__: "si.BPoly.__call__",
    _PPCALL: "si.PPoly.__call__", si.BSpline.__call__: "si.BSpline.__call__",
    _Interpolator1D.__call__: "si.interp1d.__call__", _CSNEW: "si.CubicSpline",
    _MIS: "si.make_interp_spline", si.PchipInterpolator.__new__: "si.PchipInterpolator",
    si.Akima1DInterpolator.__new__: "si.Akima1DInterpolator", _I1NEW: "si.interp1d",
    _BSNEW: "si.BSpline", _CHNEW: "si.CubicHermiteSpline",
    _RGNEW: "si.RegularGridInterpolator", _RGCALL: "si.RegularGridInterpolator.__call__",
    si.interpn: "si.interpn", so.brentq: "so.brentq", so.brenth: "so.brenth",
    so.ridder: "so.ridder", so.bisect: "so.bisect", so.toms748: "so.toms748",
    so.minimize: "so.minimize", so.root: "so.root", so.fsolve: "so.fsolve",
    so.least_squares: "so.least_squares", so.curve_fit: "so.curve_fit",
    so.fixed_point: "so.fixed_point", so.newton: "so.newton",
    so.root_scalar: "so.root_scalar", so.minimize_scalar: "so.minimize_scalar",
    sps.diags: "sparse.diags",
    sps.diags_array: "sparse.diags_array", sps.spdiags: "sparse.spdiags",
    spla.factorized: "spla.factorized",
    **{getattr(ndi, _n): f"ndi.{_n}" for _n in (
        "correlate1d", "convolve1d", "correlate", "convolve", "gaussian_filter1d",
        "gaussian_filter", "uniform_filter1d", "uniform_filter", "sobel", "prewitt",
        "laplace", "gaussian_laplace", "gaussian_gradient_magnitude", "generic_laplace",
        "generic_gradient_magnitude", "map_coordinates", "spline_filter", "spline_filter1d",
        "shift", "zoom", "affine_transform", "rotate", "minimum_filter", "maximum_filter",
        "median_filter", "rank_filter", "percentile_filter", "minimum_filter1d",
        "maximum_filter1d")},
}

#: keywords of a handler's signature that no case exercises, with the reason
KEYWORD_EXEMPT: dict[str, str] = {
    "out": "out= on traced values raises InPlaceError (tests/test_errors.py)",
    "subok": "ndarray subclasses are not traced",
    "casting": "only the default casting applies to traced values",
    "overwrite_a": "a performance hint; traced arrays are never overwritten",
    "overwrite_b": "a performance hint; traced arrays are never overwritten",
    "overwrite_ab": "a performance hint; traced arrays are never overwritten (plain ones are: "
                    "the harness reuses its samples; tests/catalogue/test_scipy_linalg.py)",
    "device": "NumPy's array-API device keyword: only 'cpu' exists",
    "order": "memory layout only (covered for reshape/ravel/copy)",
    "newshape": "deprecated alias of shape=",
    "exact": "array_split's keyword of NumPy >= 2.3 (not in every supported NumPy)",
    "disp": "sqrtm's deprecated keyword; disp=False's error estimate is rounding noise, "
            "which finite differences cannot check (tests/catalogue/test_scipy_linalg.py)",
    "check_finite": "input validation only; traced values are checked by the value check",
    "x": "np.where's x and y are positional-only in NumPy (covered positionally)",
    "y": "np.where's x and y are positional-only in NumPy (covered positionally)",
    "where": "copyto's where=: copyto on traced values raises InPlaceError",
    "blocksize": "sqrtm's deprecated keyword",
    "wopts": "quad's precomputed Chebyshev moments for weight='cos'/'sin' (a cache: SciPy "
             "computes the same moments without it; passed through unchanged)",
    "use_umfpack": "spsolve's choice of solver: no value changes beyond rounding",
    "overwrite_input": "median/quantile's permission to sort the input in place: plain NumPy "
                       "then changes the samples the harness reuses; no value changes "
                       "(tests/catalogue/test_selection.py)",
}

#: cases the installed NumPy/SciPy rejects (a keyword or shape it does not know): dropped
#: here; test_conformance checks that in the recorded environment only cross-product
#: (``optional``) cases are dropped
DROPPED = [c for c in CASES if not c.applies()]
_dropped = {id(c) for c in DROPPED}
CASES = [c for c in CASES if id(c) not in _dropped]
