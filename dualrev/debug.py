"""The NaN debugging mode: stop at the first operation that makes a nan (or an inf).

``dualrev.debug_nans()`` (``dualrev.config``) turns it on. Nothing here runs while it is
off: the traces (forward.py, reverse.py, batching.py) and dualrev.replay register a
chooser with ``config.on_debug_nans`` that swaps their checking ``process`` and passes in
and out, and those call ``check_output`` after each primitive. Values are checked where
they are made, the derivatives where the transform returns (see docs/design.md, "the NaN
debugging mode", 2026-12-07):

- a primitive's *value* (the forward pass, at every level of nesting, and under ``vmap``)
  is checked as soon as it is computed, and a non-finite element the primitive made (not
  one it passed on: a nan fill, a ``-inf`` mask) raises ``NonFiniteError`` naming the
  primitive, the user's line, the elements and the inputs there;
- values computed *by derivative rules* (the backward pass, forward-mode tangents, a
  nested transform's rules recorded by an outer one) are not checked one by one: a
  masked branch's cotangent (``np.where(x > 0, np.sqrt(x), 0)`` at 0) is 0 * inf = nan
  before dualrev's strong zeros make it 0, so a check there would stop correct programs.
  The transform's result is checked instead, and a non-finite one is located by the
  careful replay that already backs ``NonFiniteDerivativeWarning`` (which applies the
  strong zeros): in the mode it raises ``NonFiniteError`` instead of warning.

Layer 2: it reads values under every level (``primitive.concrete``'s walk) and finds the
user's line (diagnose.py); the traces above import it.
"""

from __future__ import annotations

import ast
import linecache
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import config
from .diagnose import user_frame
from .errors import NonFiniteError, derivative_advice
from .primitive import Primitive, Tracer

__all__ = ["NonFiniteError", "check_output", "checking", "debug_nans", "derivative_error",
           "in_rules", "rhs_error", "rules"]

#: ``with dualrev.debug_nans(): ...`` (``dualrev.config.debug_nans``)
debug_nans = config.debug_nans

#: how many elements a report shows
SHOWN = 3

_STATE = threading.local()


def in_rules() -> bool:
    """Whether this thread runs derivative rules (a backward or forward pass over a
    tape, a forward-mode tangent): their values are checked at the transform's result,
    not one by one (see the module docstring)."""
    return getattr(_STATE, "rules", 0) > 0


class rules:
    """``with rules(): ...`` marks derivative rules running (``in_rules``)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _STATE.rules = getattr(_STATE, "rules", 0) + 1

    def __exit__(self, *exc: Any) -> None:
        _STATE.rules -= 1


class checking:
    """``with checking(): ...`` checks values even inside derivative rules (a solver's
    right-hand side run again to locate a non-finite value)."""

    __slots__ = ("before",)

    def __enter__(self) -> None:
        self.before = getattr(_STATE, "rules", 0)
        _STATE.rules = 0

    def __exit__(self, *exc: Any) -> None:
        _STATE.rules = self.before


# ------------------------------------------------------------------ values
def _plain(v: Any) -> Any:
    """The plain value under every level (a batch keeps its axis); None under a
    dualrev.replay recording's or a sparsity detection's values, which have no values
    to check (looking would record a guard)."""
    while isinstance(v, Tracer):
        if v._staged:
            return None
        v = v.primal
    return v


def _numeric(a: Any) -> np.ndarray | None:
    """The plain numeric array under ``a``, or None (a stand-in, a sequence holding
    traced values, an object)."""
    v = _plain(a)
    if v is None or isinstance(v, (list, tuple)):
        return None
    try:
        arr = np.asarray(v)
    except Exception:  # noqa: BLE001  (not an array: nothing to say about it)
        return None
    return arr if arr.dtype.kind in "biufc" else None


def _bad(v: Any) -> Any:
    """A boolean array marking the elements of the plain value ``v`` that the mode
    reports (nan, and inf unless ``inf=False``), or None where there are none."""
    if v is None:
        return None
    tv = type(v)
    if tv is float or tv is np.float64:
        if v - v == 0.0:
            return None
    elif tv is tuple or tv is list:  # (a primitive with several outputs)
        for part in v:
            b = _bad(_plain(part))
            if b is not None:
                return b
        return None
    try:
        a = np.asarray(v)
    except Exception:  # noqa: BLE001  (not numeric: nothing to say)
        return None
    if a.dtype.kind not in "fc":
        return None
    bad = ~np.isfinite(a) if config.DEBUG_INFS else np.isnan(a)
    return bad if bad.any() else None


def check_output(prim: Primitive, args: Sequence[Any], out: Any,
                 batched: bool = False) -> None:
    """Raise ``NonFiniteError`` where ``prim``'s value ``out`` (computed from ``args``)
    holds a reported non-finite element; ``batched``: the values carry vmap's batch axis
    first."""
    v = _plain(out)
    bad = _bad(v)
    if bad is not None:
        if type(v) is tuple or type(v) is list:  # (several outputs: the first bad one)
            v = next(p for p in map(_plain, v) if _bad(p) is not None)
        bad = _made(prim, args, np.asarray(v), bad)
        if bad is not None:
            raise _forward_error(prim, args, v, bad, batched)


def _made(prim: Primitive, args: Sequence[Any], v: np.ndarray, bad: Any) -> Any:
    """Of the non-finite elements ``bad`` of ``v``, those the operation made: a nan where
    no input was nan (log of a negative, inf - inf, 0 * inf), an inf where no input was
    inf or nan (an overflow, a pole); not one it passed on, which is data: a ``np.nan``
    fill for ``np.nanmean``, SciPy's nan outside a distribution's support, a
    ``-np.inf`` mask through ``np.where``, ``max`` and ``exp``. None where there are
    none."""
    plains = [a for a in map(_numeric, args) if a is not None and a.dtype.kind in "fc"]
    if not plains:
        return bad
    nan_in: Any = False
    inf_in: Any = False
    for a in plains:
        n, i = np.isnan(a), np.isinf(a)
        try:
            if prim.elementwise:
                n, i = np.broadcast_to(n, v.shape), np.broadcast_to(i, v.shape)
            else:
                n, i = n.any(), i.any()
        except ValueError:  # (a batch whose axes do not line up: anywhere counts)
            n, i = n.any(), i.any()
        nan_in = nan_in | n
        inf_in = inf_in | i
    made = bad & ((np.isnan(v) & ~np.asarray(nan_in))
                  | (np.isinf(v) & ~np.asarray(inf_in | nan_in)))
    return made if made.any() else None


# ------------------------------------------------------------------ the reports
def _line() -> tuple[str | None, str | None]:
    """The user's ``file:line`` and its source text (innermost frame outside dualrev,
    NumPy and SciPy)."""
    frame = user_frame()
    if frame is None:
        return None, None
    file, no = frame.f_code.co_filename, frame.f_lineno
    return f"{file}:{no}", linecache.getline(file, no).strip() or None


# the operator each primitive is written with, for finding its arguments on the line
_OPERATORS = {"add": ast.Add, "subtract": ast.Sub, "multiply": ast.Mult,
              "divide": ast.Div, "true_divide": ast.Div, "power": ast.Pow,
              "matmul": ast.MatMult, "floor_divide": ast.FloorDiv, "mod": ast.Mod}
_MODULES = ("np", "numpy", "scipy", "sp", "special", "linalg", "la", "math", "jnp", "stats")


def _parse(source: str) -> ast.AST | None:
    """The user's line parsed: as it is, or the first line of a statement that goes on
    (closing brackets added), without its comment or the left side of an assignment."""
    text = source.strip().removeprefix("return ").rstrip(":")
    tries = [text]
    if "#" in text:
        tries.append(text[:text.rindex("#")].rstrip())
    if "=" in text:
        tries += [t.split("=", 1)[-1].strip() for t in list(tries)]
    for t in tries:
        for closing in ("", ")", "))", ")))", "])", "]))"):
            try:
                return ast.parse(t + closing, mode="exec")
            except SyntaxError:
                continue
    return None


def _arg_names(prim: str, n: int, source: str | None) -> list[str]:
    """Names for ``prim``'s ``n`` arguments: their source text where the user's line
    calls it once (``np.log(x - 1)`` gives ``x - 1``), else ``argument k``."""
    names = [f"argument {k}" if n > 1 else "its input" for k in range(n)]
    if not source:
        return names
    tree = _parse(source)
    if tree is None:
        return names
    found: list[list[str]] = []
    op = _OPERATORS.get(prim)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name != prim:
                continue
            args = [ast.unparse(a) for a in node.args]
            if isinstance(f, ast.Attribute) and ast.unparse(f.value).split(".")[0] not in _MODULES:
                args = [ast.unparse(f.value)] + args  # a method: x.sum()
            found.append(args)
        elif op is not None and isinstance(node, ast.BinOp) and isinstance(node.op, op):
            found.append([ast.unparse(node.left), ast.unparse(node.right)])
    if len(found) != 1:
        return names
    got = found[0]
    return [got[k] if k < len(got) else names[k] for k in range(n)]


def _fmt(v: Any) -> str:
    a = np.asarray(v)
    if a.ndim == 0:
        return np.format_float_positional(a.item(), trim="-") if a.dtype.kind == "f" else repr(
            a.item())
    return np.array2string(a, threshold=6, edgeitems=2)


def _at(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]" if index else ""


def _first(bad: Any) -> list[tuple[int, ...]]:
    b = np.asarray(bad)
    if b.ndim == 0:
        return [()]
    return [tuple(int(i) for i in row) for row in np.argwhere(b)[:SHOWN]]


# Per primitive: the domain where its value is finite, and what to write instead.
_WHERE = "the \"double where\": np.where(ok, f(np.where(ok, x, safe_x)), fallback)"
_LOG = ("x > 0; log(0) is -inf, the log of a negative nan",
        f"keep the argument positive ({_WHERE}, e.g. np.log(np.where(x > 0, x, 1.0))), "
        "or use the stable forms np.log1p(u) for log(1 + u), scipy.special.xlogy(a, x) "
        "for a * log(x) (0 where a == 0), np.logaddexp(a, b) for log(exp(a) + exp(b)), "
        "scipy.special.logsumexp")
_EXP = ("arguments up to about 709; exp overflows to inf beyond",
        "work in logarithms: np.logaddexp, scipy.special.logsumexp, scipy.special.expit "
        "for 1 / (1 + exp(-x)), np.expm1 for exp(x) - 1; or np.clip the argument")
_DIV = ("a nonzero denominator; x / 0 is inf, 0 / 0 nan",
        "guard the denominator: np.where(d != 0, n / np.where(d != 0, d, 1.0), fallback) "
        f"({_WHERE}), or add a small positive constant where the formula allows it")
_DOMAINS: dict[str, tuple[str, str]] = {
    "log": _LOG, "log2": _LOG, "log10": _LOG,
    "log1p": ("x > -1", "keep 1 + x positive: " + _WHERE),
    "sqrt": ("x >= 0", f"np.sqrt(np.clip(x, 0.0, None)), or {_WHERE} (a derivative at 0 "
             "is infinite too: np.sqrt(x * x + eps) where a smooth norm will do)"),
    "arcsin": ("-1 <= x <= 1", "np.clip(x, -1.0, 1.0) (rounding can step just outside)"),
    "arccos": ("-1 <= x <= 1", "np.clip(x, -1.0, 1.0) (rounding can step just outside)"),
    "arccosh": ("x >= 1", "np.clip(x, 1.0, None)"),
    "arctanh": ("-1 < x < 1", "np.clip(x, -1 + eps, 1 - eps)"),
    "divide": _DIV, "true_divide": _DIV, "reciprocal": _DIV,
    "power": ("a positive base for a non-integer exponent, a nonzero one for a negative "
              "exponent", f"np.abs(x) ** p where the sign does not matter, or {_WHERE}"),
    "float_power": ("a positive base for a non-integer exponent", _WHERE),
    "exp": _EXP, "exp2": _EXP, "expm1": _EXP, "cosh": _EXP, "sinh": _EXP,
    "tan": ("x away from odd multiples of pi / 2", _WHERE),
}
# primitives that run a user's function inside (the mode sees their results only)
_OPAQUE = {
    "checkpoint": "call the function without dr.checkpoint under the mode to locate the "
                  "operation inside it.",
    "scipy.integrate.solve_ivp": (
        "the solution left the finite numbers though every right-hand side value was "
        "finite (a blow-up before t_span's end, an overflow in the solver's sums): "
        "shorten t_span or bound the state, and check the parameters' domain."),
}
_GENERIC = (f"keep the input inside the domain (np.clip, {_WHERE}), give the "
            "computation a stable formula or its own derivative rule (dr.custom_jvp), or "
            "cut the derivative through it where none is wanted (dr.stop_gradient)")


def _forward_error(prim: Primitive, args: Sequence[Any], v: Any, bad: Any,
                   batched: bool) -> NonFiniteError:
    where, source = _line()
    name = prim.name
    plains = [_numeric(a) for a in args]
    labels = _arg_names(name, len(args), source)
    shape = np.shape(v)
    elements = _first(bad) if np.shape(bad) == shape else []
    count = int(np.count_nonzero(bad))
    # each input's values at the first elements (an elementwise primitive's inputs
    # broadcast to the output; others are shown whole when small)
    values: list[dict[str, Any]] = []
    inputs_bad = False
    cause = None
    numeric = [k for k, p in enumerate(plains) if p is not None]
    if prim.elementwise and elements:
        try:
            wide = {k: np.broadcast_to(plains[k], shape) for k in numeric}
        except ValueError:
            wide = {}
        for idx in elements:
            values.append({labels[k]: wide[k][idx] for k in wide})
        if wide:
            first = {k: w[elements[0]] for k, w in wide.items()}
            inputs_bad = any(not np.isfinite(x) for x in first.values())
            if not inputs_bad:
                out0 = np.asarray(v)[elements[0]]
                cause = ("domain" if np.isnan(out0) else
                         "pole" if any(x == 0 for x in first.values()) else "overflow")
    else:
        inputs_bad = any(not np.all(np.isfinite(plains[k])) for k in numeric)
        if not inputs_bad:
            cause = "domain" if np.isnan(np.asarray(v)).any() else "infinite"
    if inputs_bad:
        cause = "input"
    what = "nan" if np.isnan(np.asarray(v)[np.asarray(bad)]).any() else "inf"
    head = f"dualrev.debug_nans: {name} made {what} in the forward pass (its value)"
    head += f", at {where}: `{source}`" if source else (f", at {where}" if where else "")
    lines = [head + "."]
    if elements:
        shown = []
        for idx, vals in zip(elements, values or [{}] * len(elements), strict=False):
            at = ("batch element " + str(idx[0]) + (f", element {_at(idx[1:])}" if idx[1:]
                                                    else "")) if batched else _at(idx)
            parts = ", ".join(f"{k} = {_fmt(x)}" for k, x in vals.items())
            shown.append(f"{name} at {at}" + (f": {parts}" if parts else "") if at else
                         f"{name}: {parts}" if parts else f"{name}'s value")
        more = f" ({count - len(elements)} more elements)" if count > len(elements) else ""
        lines.append("Elements: " + "; ".join(shown) + more + ".")
    elif not prim.elementwise:
        lines.append("Inputs: " + "; ".join(
            f"{labels[k]} of shape {np.shape(plains[k])}" for k in numeric) + ".")
    domain, rewrite = _DOMAINS.get(name, (None, _GENERIC))
    if cause == "input":
        tracer = [isinstance(a, Tracer) for a in args]
        from_args = any(t and not np.all(np.isfinite(p))
                        for t, p in zip(tracer, plains, strict=True) if p is not None)
        lines.append(
            f"An input of {name} was already inf or nan there, and {name} made "
            f"{what} of it (inf - inf, 0 * inf, inf / inf, a function of inf): the input "
            + ("comes from the values the transform was called with or from an inf "
               "passed on since (an inf or nan an operation makes is reported where it "
               "is made)" if from_args else
               "is a plain constant the function reads (a global, a closure, a default "
               "argument), not a traced value")
            + f". Keep infinities away from {name} there (np.where on the input, a finite "
            "stand-in such as a large negative number for a -inf mask), and check the "
            "arguments with np.isfinite.")
    else:
        why = {"domain": f"all its inputs were finite: an argument outside the domain of "
                         f"{name}",
               "pole": f"all its inputs were finite: {name} has a pole at an input of 0",
               "overflow": "all its inputs were finite: the result overflowed",
               "infinite": "all its inputs were finite: the result is infinite (a "
                           "singular matrix, a logarithm of 0, a division by 0 or an "
                           "overflow inside it)"}.get(
            cause or "", "its inputs were finite")
        lines.append(why[0].upper() + why[1:] + (f" (it is finite for {domain})" if domain
                                                 else "") + ".")
        lines.append("Write instead: " + rewrite + ".")
    opaque = next((v for k, v in _OPAQUE.items() if name.startswith(k)), None)
    if opaque is not None:
        lines.append(f"{name} runs your function on plain values, so the mode sees only "
                     f"its result: {opaque}")
    if source and "where(" in source:
        lines.append(
            "This line calls np.where, which computes both branches: if the value is in "
            "the branch that is not selected, the result would still be right, but the "
            "mode stops at every non-finite value computed (as JAX's jax_debug_nans does) "
            "and its derivative can be 0 * inf: compute the branch on an input inside "
            f"the domain ({_WHERE}).")
    return NonFiniteError(" ".join(lines), prim=name, where=where, source=source,
                          pass_="forward", forward_finite=False, cause=cause,
                          elements=elements, values=values)


def derivative_error(what: str, tape: Any, mode: str) -> NonFiniteError | None:
    """The error for a transform ``what`` whose derivative (``mode``: "reverse" or
    "forward"; "foreign" for another library's arrays) holds nan/inf, from the careful
    replay's ``tape`` (its ``culprit``, ``culprit_at``, ``lines`` and entries; None
    where the replay could not run), or None where the mode lets it through (an inf
    with ``inf=False``)."""
    culprit = getattr(tape, "culprit", None)
    pass_ = "tangent" if mode == "forward" else "backward"
    if culprit is None:
        why = ("dualrev could not locate the operation (the function gave other values "
               "when run again, a custom_vjp function sits in a forward pass, or the "
               "result is another library's array)")
        return NonFiniteError(
            f"dualrev.debug_nans: the derivative computed by dualrev.{what} contains nan "
            f"or inf; {why}. Every value of the forward pass was finite. "
            + derivative_advice(None, None, mode), pass_=pass_, forward_finite=True,
            what=what)
    name, entry, cause = culprit
    argpos, mask, has_nan = getattr(tape, "culprit_at", None) or (None, None, True)
    if not has_nan and not config.DEBUG_INFS:
        return None
    hit = tape.lines.get(entry)
    where = f"{hit[0]}:{hit[1]}" if hit else None
    source = (linecache.getline(hit[0], hit[1]).strip() or None) if hit else None
    node = tape.nodes[entry] if entry < len(tape.nodes) else None
    kept = list(getattr(node, "kept", ()) or ())
    ans = _plain(getattr(node, "out", None))
    ruled = entry in getattr(tape, "ruled", ())
    # an operation of a nested transform's derivative rules: the line calls that
    # transform, and its text does not show the operation's arguments
    labels = _arg_names("" if ruled else name.split("(")[0], len(kept), source)
    elements: list[tuple[int, ...]] = []
    values: list[dict[str, Any]] = []
    forward_finite = cause != "overflow"
    if mask is not None:
        m = np.asarray(mask)
        # the values that the mask's elements index: the argument (reverse) or the
        # output (forward); a jacrev/jacfwd batch puts its axis first
        ref = _plain(kept[argpos]) if argpos is not None and argpos < len(kept) else ans
        ref_shape = np.shape(ref)
        lead = m.ndim - len(ref_shape)
        if m.any() and lead >= 0:
            rows = _first(m)
            elements = [r[lead:] for r in rows]
            for idx in elements:
                vals: dict[str, Any] = {}
                for k, p in enumerate(kept):
                    p = _plain(p)
                    try:
                        a = np.asarray(p)
                        if a.dtype.kind not in "biufc":
                            continue
                        vals[labels[k]] = (np.broadcast_to(a, ref_shape)[idx]
                                           if a.shape != ref_shape else a[idx])
                    except (ValueError, IndexError, TypeError):
                        continue
                values.append(vals)
    rule = "VJP (reverse-mode) rule" if pass_ == "backward" else "JVP (forward-mode) rule"
    head = (f"dualrev.debug_nans: the {rule} of {name} made a non-finite "
            f"{'cotangent' if pass_ == 'backward' else 'tangent'} from finite ones")
    head += f", at {where}: `{source}`" if source else (f", at {where}" if where else "")
    parts = [head + f" (in dualrev.{what})."]
    if ruled:
        parts.append(f"That {name} is part of the derivative an inner transform computes "
                     "for the code on that line (a second derivative: the first one's "
                     "rules are differentiated in turn).")
    if elements:
        shown = []
        for idx, vals in zip(elements, values, strict=False):
            vs = ", ".join(f"{k} = {_fmt(x)}" for k, x in vals.items())
            shown.append(f"{name} at {_at(idx)}" + (f": {vs}" if vs else "") if idx else
                         f"{name}: {vs}" if vs else f"{name}'s value")
        parts.append("Elements: " + "; ".join(shown) + ".")
    given = [k for vals in values[:1] for k, x in vals.items()
             if np.iscomplexobj(x) or not np.isfinite(x)]
    if forward_finite:
        parts.append("Its forward value there was finite.")
    elif given:
        cause = "input"
        parts.append(f"Its forward value there was not finite either, because its input "
                     f"{', '.join(given)} already was: a value the transform was given (an "
                     "argument or a constant holding nan or inf), which the mode passes on "
                     "as data (it reports a non-finite value where an operation makes "
                     "it). Check the arguments with np.isfinite, or mask them with "
                     "np.where before the computation.")
    else:
        parts.append("Its forward value there was not finite either (inf=False let it "
                     "through).")
    if cause != "input":
        parts.append(derivative_advice(name, cause, mode))
    if name.startswith("custom_"):
        parts.append(f"{name} is a function with a rule of your own: the non-finite "
                     "derivative comes from that rule.")
    return NonFiniteError(" ".join(parts), prim=name, where=where, source=source,
                          pass_=pass_, forward_finite=forward_finite, cause=cause,
                          elements=elements, values=values, what=what)


def rhs_error(name: str, fn: Any, t: float, y: Any, out: Any) -> NonFiniteError:
    """The error for a solver's right-hand side ``fn`` that returned the non-finite
    ``out`` at ``(t, y)`` where running it again on traced values did not locate the
    operation (a value computed outside the traced inputs)."""
    code = getattr(fn, "__code__", None)
    where = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None
    source = (linecache.getline(code.co_filename, code.co_firstlineno).strip() or None
              if code is not None else None)
    bad = np.asarray(_bad(np.asarray(out, float)))
    elements = _first(bad) if bad.ndim else [()]
    return NonFiniteError(
        f"dualrev.debug_nans: the right-hand side of {name}"
        + (f" (defined at {where}: `{source}`)" if where else "")
        + f" returned a non-finite derivative at t = {t!r}, y = {_fmt(y)}: elements "
        + ", ".join(_at(e) or "()" for e in elements)
        + ". SciPy's step control cannot recover from it (it may shrink the step for ever). "
        "The state or a parameter has left the domain of the model: keep parameters in "
        "their domain (fit log k instead of k, np.clip), and check the model's terms at "
        "that state.", prim=name, where=where, source=source, pass_="forward",
        cause="domain", elements=elements, values=[{"t": t, "y": np.asarray(y).copy()}])
