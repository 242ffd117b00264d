"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp`` decorators.

Each decorated function becomes a primitive of its own, and its rules serve every mode:
reverse mode transposes a ``custom_jvp`` rule (it is linear in the tangents, so its VJP
is the reverse-mode derivative of the rule with respect to them), and forward mode
transposes a ``custom_vjp`` backward rule (linear in the cotangent), so neither body is
ever differentiated. Arguments that are not arrays (strings, callables, ``None``) and
those named by ``nondiff_argnums`` are static: passed through, never traced.
The output may be a tuple (any pytree) of arrays: the primitive returns them packed into one
vector, unpacked with differentiable slices (the machinery stays single-output).
"""

from __future__ import annotations

import copy
import functools
import inspect
import types
from collections.abc import Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar

import numpy as np

from .batching import Batched, without_derivatives
from .errors import CustomRuleError, DualrevError, TracerConversionError
from .forward import tangent_out
from .primitive import Primitive, Tracer, bind, dtype_of, is_complex, plain_view, shape_of
from .reverse import Tape, Traced, linear_transpose
from .tracer import new_level
from .tree import TreeDef, node_children, tree_flatten, tree_unflatten


def _zeros_like(x: Any) -> Any:
    # complex zeros for a complex x: a real input to a transposed rule would have the
    # imaginary part of its cotangent dropped
    return np.zeros(shape_of(x), complex if is_complex(x) else float)


# Arguments that can carry a derivative; anything else (a string, a callable, None, a
# Python bool flag) is static, passed to the function and rules as it is.
_ARRAYLIKE = (np.ndarray, np.generic, float, int, complex)


# Mixed magnitudes and signs: a rule that clips, thresholds or squares its (co)tangent
# departs from its own linearisation at some element of this probe.
_PROBE = np.array([1e4, -1e-3, 7.0, -0.3, 300.0, -3e-2, 1.7, -20.0])


_PROBES: dict[tuple[tuple[int, ...], str], np.ndarray] = {}


def _probe_point(shape: tuple[int, ...], dt: Any) -> np.ndarray:
    """The nonzero point a linear rule is recorded at (its derivative there is the rule
    itself), in ``shape`` and dtype ``dt``: read-only, one per shape and kind."""
    key = (shape, np.dtype(dt).kind)
    u = _PROBES.get(key)
    if u is None:
        n = int(np.prod(shape, dtype=np.int64))
        u = _PROBE[np.arange(n) % _PROBE.size]
        if key[1] == "c":
            u = u * (1.0 + 0.5j) if n < 2 else u + 1j * np.roll(u, 1)
        u = u.reshape(shape)
        u.flags.writeable = False
        if len(_PROBES) < 256:
            _PROBES[key] = u
    return u


_PLAIN = (np.ndarray, np.float64, np.complex128)


def _odd(a: Any, b: Any) -> bool:
    """Whether ``b``, a rule's value at -u, is minus ``a``, its value at u: exact for
    linear NumPy code (rounding is symmetric); a constant, the primal, ``abs``, a square
    or a ReLU of the (co)tangent breaks it. Plain or batched values (batch axes first);
    under a derivative level nothing is said."""
    if type(a) in _PLAIN and type(b) in _PLAIN and not (a + b).any():
        return True  # the usual case, exactly odd (no conversion, two operations)
    a, b = _batch_first(a), _batch_first(b)
    if a is None or b is None:
        return True
    if a.shape != b.shape:  # one batched, the other not: the plain one broadcasts
        try:
            a, b = np.broadcast_arrays(a, b)
        except ValueError:
            return True
    s = a + b
    return not bool(np.any(np.abs(s) > 1e-12 * (np.abs(a) + np.abs(b)) + 1e-300))


def _batch_first(v: Any) -> np.ndarray | None:
    """The plain values of ``v``, batch axes first, or None under a derivative level."""
    v = without_derivatives(v)
    while isinstance(v, Tracer):
        if not v._bdepth:
            return None
        v = v.primal
    return np.asarray(v)


def _plain_abs_sum(v: Any) -> float:
    while isinstance(v, Tracer):
        v = v.primal
    return float(np.sum(np.abs(v)))


def _plain_abs_max(v: Any) -> float:
    while isinstance(v, Tracer):
        v = v.primal
    return float(np.max(np.abs(v), initial=0.0))


def _fast_pairing(w: Any, c: Any) -> tuple[Any, float] | None:
    """``Re sum(w * c)`` per batch element and a bound on its terms, on plain arrays, for
    a plain ``c`` and a ``w`` plain or batched once (jvp, jacfwd, jacrev): None otherwise
    (the general path handles every level)."""
    if isinstance(c, Tracer):
        return None
    c = np.asarray(c)
    if isinstance(w, Tracer):
        if type(w) is not Batched or isinstance(w.primal, Tracer):
            return None
        wv = np.asarray(w.primal)
        if wv.ndim != c.ndim + 1:
            return None
        wv = wv.reshape(wv.shape[0], -1)
    else:
        wv = np.asarray(w)
        if wv.shape != c.shape:
            return None
        wv = wv.reshape(1, -1)
    cv = c.reshape(-1)
    return np.real(wv @ cv), float(np.abs(wv).max(initial=0.0) * np.abs(cv).sum())


def _euler_holds(pairs: Sequence[tuple[Any, Any]], back: Any, u: Any) -> bool:
    """Whether a rule ``L`` recorded at the probe ``u`` is linear as far as one identity
    can tell: ``sum <w_k, L_k(u)> == <J^T w, u>`` (real part of the bilinear pairing, the
    tape's convention), where ``J`` is the recorded derivative at ``u``, ``w`` the seeds
    of the pass and ``back = J^T w``. A linear map is its own derivative, so the two agree
    to rounding; a clipped, squared, thresholded or shifted (co)tangent breaks it. Only
    batch levels are kept (one check per batch element); a non-finite value decides
    nothing. Positively homogeneous maps (``abs``, a ReLU of the tangent) pass it."""
    # rounding bounds the disagreement of a linear rule: single precision anywhere in the
    # rule's values (g.astype(np.float32)) loosens the tolerance to its own
    tol = 1e-6
    for _, c in pairs:
        if np.dtype(dtype_of(c)).itemsize < (16 if is_complex(c) else 8):
            tol = 1e-3
    fast = [_fast_pairing(w, c) for w, c in pairs]
    fast.append(_fast_pairing(back, u))
    if all(f is not None for f in fast):
        lhs = sum(f[0] for f in fast[:-1])  # type: ignore[index]
        d = lhs - fast[-1][0]  # type: ignore[index]
        scale = sum(f[1] for f in fast)  # type: ignore[index]
        return not bool(np.any(np.abs(d) > tol * scale + 1e-300))
    lhs: Any = 0.0
    scale = 0.0
    for w, c in pairs:
        w, c = without_derivatives(w), without_derivatives(c)
        lhs = lhs + np.real(np.sum(w * c))
        scale += _plain_abs_max(w) * _plain_abs_sum(c)
    b = without_derivatives(back)
    d = lhs - np.real(np.sum(b * u))
    scale += _plain_abs_max(b) * float(np.sum(np.abs(u)))
    while isinstance(d, Tracer):
        d = d.primal
    return not bool(np.any(np.abs(d) > tol * scale + 1e-300))

def _is_dynamic(a: Any) -> bool:
    return isinstance(a, Tracer) or (isinstance(a, _ARRAYLIKE) and type(a) is not bool)


class _Static:
    """How a call's arguments map to the primitive's: static ones (``values``) are kept
    aside, and each dynamic one is one primitive argument, or several for a pytree of
    arrays (``slots``: position, tree structure or None, number of leaves). ``full``
    rebuilds the call's arguments from the primitive's (or its tangents')."""

    __slots__ = ("n", "slots", "values", "leaf_arg", "simple")

    def __init__(self, n: int, slots: list[tuple[int, TreeDef | None, int]],
                 values: dict[int, Any]) -> None:
        self.n = n
        self.slots = slots
        self.values = values
        self.leaf_arg = tuple(k for k, _, m in slots for _ in range(m))
        self.simple = not values and all(td is None for _, td, _ in slots)

    def full(self, leaves: Sequence[Any], with_static: bool = True) -> list[Any]:
        """The call's arguments from the primitive's ``leaves`` (static ones None unless
        ``with_static``)."""
        if self.simple:
            return list(leaves)
        out: list[Any] = [None] * self.n
        if with_static:
            for k, v in self.values.items():
                out[k] = v
        i = 0
        for k, td, m in self.slots:
            if td is None:
                out[k] = leaves[i]
            else:
                out[k] = tree_unflatten(td, list(leaves[i:i + m]))
            i += m
        return out


def _split(name: str, args: Sequence[Any],
           nondiff: frozenset[int]) -> tuple[list[Any], _Static]:
    leaves: list[Any] = []
    slots: list[tuple[int, TreeDef | None, int]] = []
    values: dict[int, Any] = {}
    for k, a in enumerate(args):
        if k not in nondiff:
            if _is_dynamic(a):
                leaves.append(a)
                slots.append((k, None, 1))
                continue
            if isinstance(a, (tuple, list, dict)) or node_children(a) is not None:
                sub, td = tree_flatten(a)
                if sub and all(_is_dynamic(v) for v in sub):  # a pytree of arrays
                    leaves.extend(sub)
                    slots.append((k, td, len(sub)))
                    continue
        if any(isinstance(v, Tracer) for v in tree_flatten(a)[0]):
            why = ("is in nondiff_argnums" if k in nondiff
                   else "mixes them with values that are not arrays")
            raise CustomRuleError(
                f"dualrev: argument {k} of {name} holds traced values but {why}, so its "
                "derivative would bypass the rules: pass it as an ordinary array argument "
                "(a pytree of arrays is one), with its own cotangent from the rule")
        values[k] = a
    return leaves, _Static(len(args), slots, values)


def _signature(fun: Callable[..., Any]) -> tuple[inspect.Signature | None, bool]:
    """``fun``'s signature (None where it has none) and whether a parameter has a
    default, looked up once per decorated function."""
    try:
        sig = inspect.signature(fun)
    except (TypeError, ValueError):
        return None, False
    return sig, any(p.default is not p.empty for p in sig.parameters.values())


def _resolve(owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Keyword arguments as positions (as JAX does): the primitive and the rules see
    every argument at its place in ``fun``'s signature, defaults filled in, however the
    function was called."""
    sig, has_defaults = owner._sig
    if not kwargs and not has_defaults:
        return args
    if sig is None:
        raise CustomRuleError(f"dualrev: {owner.prim.name} takes no keyword arguments "
                              "(its function has no inspectable signature)")
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as e:
        raise CustomRuleError(f"dualrev: calling {owner.prim.name}: {e}") from None
    bound.apply_defaults()
    if bound.kwargs:
        raise CustomRuleError(
            f"dualrev: {owner.prim.name} was called with keyword arguments "
            f"{sorted(bound.kwargs)} that cannot be placed by position (keyword-only "
            "parameters or **kwargs): the rules see every argument by position, so make "
            "them ordinary parameters of the function (before any *)")
    return tuple(bound.args)


def _run_body(owner: Any, args: Sequence[Any]) -> Any:
    """The decorated function on arguments none of which is traced (a plain call, or
    the primitive's implementation). A traced result means the body closes over a traced
    value: its derivative would go through the body, not the rules."""
    out = owner.fun(*args)
    if isinstance(out, Tracer) or (isinstance(out, (tuple, list, dict)) and any(
            isinstance(v, Tracer) for v in tree_flatten(out)[0])):
        raise CustomRuleError(
            f"dualrev: {owner.prim.name} returned a traced value for untraced arguments: "
            "its body uses a traced value it closes over (a variable of the enclosing "
            "function being differentiated), whose derivative would bypass the custom "
            "rules. Pass that value as an argument of the function instead")
    if getattr(owner, "_last_out", None) is _WATCHING:  # inside fwd: note it for the check
        owner._last_out = out
    return out


_WATCHING = object()


def _structure(out: Any) -> tuple[TreeDef, list[tuple[int, ...]]]:
    leaves, td = tree_flatten(out)
    return td, [shape_of(v) for v in leaves]


def _nondiff(nondiff_argnums: Sequence[int] | int) -> frozenset[int]:
    nums = (nondiff_argnums,) if isinstance(nondiff_argnums, int) else nondiff_argnums
    return frozenset(int(k) for k in nums)


def _describe(x: Any) -> str:
    if x is None:
        return "None"
    try:
        return f"shape {shape_of(x)} {dtype_of(x)}"
    except Exception:  # noqa: BLE001 - only for the message
        return type(x).__name__


def _check_cotangent(name: str, rule: str, k: int, ct: Any, primal: Any) -> None:
    """``ct`` must fit argument ``k`` (its ``primal``): same shape, and real for a real
    argument (JAX raises on both; a broadcast or a dropped imaginary part would be a
    silently different derivative)."""
    if not _is_dynamic(primal):
        if ct is not None:
            raise CustomRuleError(
                f"dualrev: the {rule} rule of {name} returned a {_describe(ct)} value for "
                f"argument {k}, which is not an array ({type(primal).__name__}) and takes "
                "no derivative: return None in its place")
        return
    if ct is None:
        return
    want = shape_of(primal)
    got = shape_of(ct)
    if got != want:
        raise CustomRuleError(
            f"dualrev: the {rule} rule of {name} returned a value of shape {got} for "
            f"argument {k}, whose shape is {want}: each must have its argument's shape "
            "(sum over the broadcast axes yourself where the function broadcast it)")
    if dtype_of(ct).kind == "c" and not is_complex(primal):
        raise CustomRuleError(
            f"dualrev: the {rule} rule of {name} returned a complex value for argument "
            f"{k}, which is real ({dtype_of(primal)}): return its real part (np.real) - "
            "under JAX's convention a real input's cotangent is real")


# ------------------------------------------------------------------ custom_jvp
class _Layout:
    """How a tuple (pytree) output is packed into one vector: its structure and each
    leaf's shape, dtype and size."""

    __slots__ = ("treedef", "shapes", "dtypes", "sizes", "packed")

    def __init__(self, treedef: TreeDef, shapes: list[tuple[int, ...]],
                 dtypes: list[np.dtype], packed: np.dtype) -> None:
        self.treedef = treedef
        self.shapes = shapes
        self.dtypes = dtypes
        self.sizes = [int(np.prod(s)) for s in shapes]
        self.packed = packed


class _Box:
    """Filled by the primitive's implementation with the output's layout (None for one
    array): a traced call learns it there, since its result is the packed vector."""

    __slots__ = ("layout",)

    def __init__(self) -> None:
        self.layout: _Layout | None = None


def _pack(name: str, out: Any, box: _Box) -> Any:
    """``out`` itself when it is one array, else its leaves raveled into one vector, the
    layout noted in ``box``. The leaves may be traced (a custom_vjp's ``fwd`` output)."""
    leaves, td = tree_flatten(out)
    if td.kind == "leaf":
        box.layout = None
        return out
    dtypes = [dtype_of(v) for v in leaves]
    for k, dt in enumerate(dtypes):
        if dt.kind not in "fc":
            raise CustomRuleError(
                f"dualrev: output {k} of {name} (in {td!r}) has dtype {dt}: the outputs of "
                "a function with custom rules are float or complex arrays; return integer "
                "or boolean results from a separate function")
    packed = np.result_type(*dtypes) if dtypes else np.dtype(float)
    box.layout = _Layout(td, [shape_of(v) for v in leaves], dtypes, packed)
    if not leaves:
        return np.zeros(0)
    parts = [np.ravel(v) if isinstance(v, Tracer) else np.ravel(np.asarray(v, dtype=packed))
             for v in leaves]
    return np.concatenate(parts)


def _unpack(flat: Any, layout: _Layout) -> Any:
    parts = []
    start = 0
    complex_packed = layout.packed.kind == "c"
    for shape, dt, size in zip(layout.shapes, layout.dtypes, layout.sizes, strict=True):
        v = np.reshape(flat[start:start + size], shape)
        if complex_packed and dt.kind != "c":
            v = np.real(v)
        parts.append(v)
        start += size
    return tree_unflatten(layout.treedef, parts)


P = ParamSpec("P")  # a custom_jvp/custom_vjp function is called as fun is
R = TypeVar("R")  # and returns what fun returns


class custom_jvp(Generic[P, R]):
    """Give ``fun`` a hand-written forward-mode rule, used by every transform.

    Decorate ``fun``, then set its rule with ``.defjvp`` (itself usable as a decorator). The
    rule receives tuples of primals and tangents (zeros for arguments that are not
    differentiated, None for static ones) and returns ``(output, output_tangent)``; it must
    be linear in the tangents and written with NumPy calls (so reverse mode and higher
    derivatives can differentiate it in turn). Reverse mode transposes the rule (being
    linear in the tangents, its VJP is the reverse-mode derivative of the rule with
    respect to them), so one rule serves ``jvp``, ``grad``, ``jacrev``, ``hessian`` and
    ``vmap`` alike. Calling ``fun`` before ``.defjvp`` raises ``DualrevError``.

    Arguments that are not arrays or numbers (a string, a callable, a Python bool) are
    static: the function and the rule get them unchanged, with tangent None (a pytree of
    arrays is an ordinary argument, its tangent of its structure). Arguments
    named in ``nondiff_argnums`` are static too and, as in JAX, come first in the rule's
    call: ``rule(*nondiff_args, primals, tangents)``, with ``primals`` and ``tangents``
    holding the other arguments. Keyword arguments are placed by ``fun``'s signature.
    The output may be a tuple (any pytree) of float or complex arrays; the rule then
    returns a tangent of the same structure. The rule's output and tangent must have the
    function's output shapes, and a real output a real tangent; otherwise
    ``CustomRuleError``.

    Args:
        fun: the function.
        nondiff_argnums: positions of arguments that are never differentiated.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> @dr.custom_jvp
        ... def log1pexp(x):
        ...     return np.log1p(np.exp(x))
        >>> @log1pexp.defjvp
        ... def log1pexp_jvp(primals, tangents):
        ...     (x,), (t,) = primals, tangents
        ...     return log1pexp(x), t * (1 - 1 / (1 + np.exp(x)))
        >>> print(dr.grad(log1pexp)(0.0))
        0.5
        >>> print(dr.grad(dr.grad(log1pexp))(0.0))
        0.25
    """

    def __init__(self, fun: Callable[P, R],
                 nondiff_argnums: Sequence[int] | int = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = _nondiff(nondiff_argnums)
        self._sig = _signature(fun)
        self.rule: Callable[..., Any] | None = None
        self.prim = Primitive(f"custom_jvp({getattr(fun, '__name__', 'f')})", self._impl)

    def defjvp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Set the forward-mode rule ``rule(primals, tangents) -> (out, out_tangent)``
        (``rule(*nondiff_args, primals, tangents)`` with ``nondiff_argnums``)."""
        self.rule = rule
        self.prim.defjvp_joint(self._jvp)
        self.prim.defvjp_indexed(self._vjp)
        return rule

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.rule is None:
            raise DualrevError(f"dualrev: {self.prim.name} has no rule yet; call .defjvp")
        args = _resolve(self, args, kwargs)
        dyn, static = _split(self.prim.name, args, self.nondiff_argnums)
        if not any(isinstance(a, Tracer) for a in dyn):
            return _run_body(self, args)
        box = _Box()
        out = bind(self.prim, dyn, {"static": static, "box": box})
        return out if box.layout is None else _unpack(out, box.layout)

    def _impl(self, *dyn: Any, static: _Static, box: _Box) -> Any:
        return _pack(self.prim.name, _run_body(self, static.full(dyn)), box)

    def _tangent_out(self, primals: Sequence[Any], tangents: Sequence[Any], ans: Any,
                     static: _Static, box: _Box) -> Any:
        full = static.full(primals)
        tfull = static.full(tangents, with_static=False)
        nd = self.nondiff_argnums
        keep = [k for k in range(static.n) if k not in nd]
        lead = [full[k] for k in sorted(nd) if k < static.n]
        res = self.rule(*lead, tuple(full[k] for k in keep),  # type: ignore[misc]
                        tuple(tfull[k] for k in keep))
        name = self.prim.name
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise CustomRuleError(f"dualrev: the jvp rule of {name} must return a pair "
                                  f"(output, output_tangent); it returned {type(res).__name__}")
        out, tan = res
        layout = box.layout
        if layout is None:
            self._check_out(out, tan, shape_of(ans), is_complex(ans), "the output")
            return tan
        out_leaves, out_def = tree_flatten(out)
        tan_leaves, tan_def = tree_flatten(tan)
        for what, d in (("output", out_def), ("tangent", tan_def)):
            if d != layout.treedef:
                raise CustomRuleError(
                    f"dualrev: the jvp rule of {name} returned an {what} of structure {d!r}; "
                    f"the function returns {layout.treedef!r}")
        parts = []
        for k, (o, t, shape, dt) in enumerate(zip(out_leaves, tan_leaves, layout.shapes,
                                                  layout.dtypes, strict=True)):
            self._check_out(o, t, shape, dt.kind == "c", f"output {k}")
            parts.append(np.ravel(t))
        return np.concatenate(parts) if parts else None

    def _check_out(self, out: Any, tan: Any, shape: tuple[int, ...], cplx: bool,
                   what: str) -> None:
        name = self.prim.name
        if shape_of(out) != shape:
            raise CustomRuleError(
                f"dualrev: the jvp rule of {name} returned a primal of shape "
                f"{shape_of(out)} for {what}, but the function returns shape {shape}")
        if tan is None:
            raise CustomRuleError(
                f"dualrev: the jvp rule of {name} returned None as the tangent of {what}: "
                "return zeros of the output's shape (np.zeros_like) for a zero tangent")
        if shape_of(tan) != shape:
            raise CustomRuleError(
                f"dualrev: the jvp rule of {name} returned a tangent of shape "
                f"{shape_of(tan)} for {what}, whose shape is {shape}: the tangent must have "
                "its output's shape")
        if not cplx and dtype_of(tan).kind == "c":
            raise CustomRuleError(
                f"dualrev: the jvp rule of {name} returned a complex tangent for {what}, "
                "which is real: the tangent of a real output is real (np.real)")

    def _jvp(self, tangents: list[Any], ans: Any, *primals: Any, static: _Static,
             box: _Box) -> Any:
        full = [_zeros_like(x) if t is None else t
                for t, x in zip(tangents, primals, strict=True)]
        return self._tangent_out(primals, full, ans, static, box)

    def _vjp(self, i: int, g: Any, ans: Any, *primals: Any, static: _Static,
             box: _Box) -> Any:
        # The rule is linear in t, so its reverse-mode derivative anywhere is its
        # transpose: recorded at a nonzero probe u rather than at 0, the value recorded
        # there and one untaped run at -u show a rule that is not linear, which reverse
        # mode would otherwise silently replace by its linearisation.
        x = primals[i]
        dt = np.result_type(dtype_of(x), np.float64) if is_complex(x) else np.float64
        u = _probe_point(shape_of(x), dt)
        tape = Tape(new_level(), f"the jvp rule of {self.prim.name}, transposed for reverse mode")
        t = tape.input(u)
        entry = t._index  # read now: the rule may write into t, rebinding it
        try:
            full = [t if j == i else _zeros_like(p) for j, p in enumerate(primals)]
            out = self._tangent_out(primals, full, ans, static, box)
        finally:
            tape.finish()
        traced = type(out) is Traced and out._trace is tape
        back = tape.backward({out._index: g})[entry] if traced else None
        if back is None:
            back = np.zeros(shape_of(x), dt)
        value = out.primal if traced else out
        if not traced:
            while isinstance(value, Tracer):
                value = value.primal
        if not traced:  # a constant: linear only if zero
            nonlinear = bool(np.any(np.abs(value) > 0))
        elif not _euler_holds([(g, value)], back, u):
            nonlinear = True
        else:
            # a second, untaped run at -u: a rule homogeneous but not linear (np.abs(t),
            # a ReLU of t) passes the identity at u, but is not odd
            full = [-u if j == i else _zeros_like(p) for j, p in enumerate(primals)]
            mirror = self._tangent_out(primals, full, ans, static, box)
            nonlinear = not _odd(value, mirror)
        if nonlinear:
            raise CustomRuleError(
                f"dualrev: the jvp rule of {self.prim.name} must be linear in the "
                f"tangents (reverse mode transposes it), but its output tangent for "
                f"argument {static.leaf_arg[i]} is not a linear function of that tangent "
                "(a constant or the primal added to it, or the tangent clipped, squared, "
                "thresholded, or its sign taken): return a linear map of the tangents")
        return back


# ------------------------------------------------------------------ custom_vjp
class _Residuals:
    """A recorded call's residuals, and the cotangents its backward rule gave for the
    cotangent ``g``: one ``bwd`` call serves every argument of the pass (a second
    request for an argument already served means a new pass, so ``bwd`` runs again)."""

    __slots__ = ("value", "g", "cts", "served")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.g: Any = None
        self.cts: Any = None
        self.served: set[int] = set()


class _CustomVJPPrimitive(Primitive):
    """The primitive of a ``custom_vjp`` function; ``custom`` is the decorator object,
    whose ``on_tape`` and ``forward`` the tape and the forward trace call instead of the
    generic path (see reverse.py, forward.py)."""

    __slots__ = ("custom",)

    def __init__(self, name: str, impl: Callable[..., Any], custom: custom_vjp) -> None:
        super().__init__(name, impl)
        self.custom = custom


class custom_vjp(Generic[P, R]):
    """Give ``fun`` a hand-written reverse-mode rule: ``fwd`` computes the output and
    residuals, ``bwd`` maps residuals and the output cotangent to one cotangent per
    argument. Both modes use the rules, never ``fun``'s body.

    Decorate ``fun``, then call ``fun.defvjp(fwd, bwd)``: ``fwd(*args)`` returns
    ``(output, residuals)`` and ``bwd(residuals, g)`` a tuple with one cotangent per
    argument (``None`` for a zero one, and for a static argument), each of its argument's
    shape, real for a real argument; anything else raises ``CustomRuleError`` naming the
    argument. ``bwd`` runs once per backward pass. Plain arrays among the residuals are
    copied onto the tape (as the tape copies plain arguments), and other objects among
    them deep-copied, so rewriting them after the call does not change the derivative.
    ``fwd`` should get the output by calling the decorated function: under an outer
    transform (grad of grad) it is then recorded by that transform instead of meeting
    traced values in opaque code; ``bwd`` written in NumPy calls is differentiable in turn.

    Forward mode (``jvp``, ``jacfwd``, ``jacobian``, ``hessian``) uses the rules too: the
    JVP is the transpose of ``bwd``, which is linear in ``g``, obtained by recording
    ``bwd`` on a tape and playing it back from the tangents, so ``fun``'s body need not be
    differentiable. ``bwd`` must then be NumPy code linear in ``g`` (a backward rule that
    clips or rescales ``g`` nonlinearly, like the example below, has no forward-mode
    meaning: forward mode refuses it with ``CustomRuleError``, judged on ``bwd`` at a
    probe cotangent and its negative; reverse mode uses it as written).

    Arguments that are not arrays or numbers (strings, callables, Python bools) are static;
    ``nondiff_argnums`` names more. An argument may be a pytree of arrays; its cotangent
    then has its structure. As in JAX, the backward rule then receives the
    ``nondiff_argnums`` arguments first, ``bwd(*nondiff_args, residuals, g)``, and returns
    cotangents for the other arguments only; ``fwd`` receives every argument. Keyword
    arguments are placed by ``fun``'s signature. The output may be a tuple (any pytree) of
    float or complex arrays (``fwd`` returning the same structure); ``bwd`` then receives
    ``g`` of that structure.

    The usual shape, for a library call with known derivatives:

        @dualrev.custom_vjp
        def f(x, y):
            return compiled_library_call(x, y)

        def f_fwd(x, y):
            out = f(x, y)                      # call f itself, not the library directly
            return out, (x, y, out)            # residuals for the backward pass

        def f_bwd(res, g):
            x, y, out = res
            return (g * dfdx(x, y), g * dfdy(x, y))

        f.defvjp(f_fwd, f_bwd)

    Args:
        fun: the function, returning an array or a pytree of arrays.
        nondiff_argnums: positions of arguments that are never differentiated.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> @dr.custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> def fwd(x):
        ...     return clip_gradient(x), None          # no residuals needed
        >>> def bwd(res, g):
        ...     return (np.clip(g, -1.0, 1.0),)        # one cotangent per argument
        >>> clip_gradient.defvjp(fwd, bwd)
        >>> print(dr.grad(lambda x: np.sum(3.0 * clip_gradient(x)))(np.array([1.0, 2.0])))
        [1. 1.]
        >>> dr.jvp(clip_gradient, (1.0,), (1.0,))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        dualrev.errors.CustomRuleError: dualrev: forward mode of ... is not (...
    """

    def __init__(self, fun: Callable[P, R],
                 nondiff_argnums: Sequence[int] | int = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = _nondiff(nondiff_argnums)
        self._sig = _signature(fun)
        # while fwd runs, the output of the body's plain run inside it: fwd's output is
        # checked against it when fwd got it by calling the function (as it should)
        self._last_out: Any = None
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None
        self.prim = _CustomVJPPrimitive(f"custom_vjp({getattr(fun, '__name__', 'f')})",
                                        self._impl, self)

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        """Set ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, g) -> cotangents``
        (``bwd(*nondiff_args, residuals, g)`` with ``nondiff_argnums``)."""
        self.fwd, self.bwd = fwd, bwd
        self.prim.defvjp_indexed(self._vjp)
        self.prim.defjvp_joint(self._jvp)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.bwd is None:
            raise DualrevError(f"dualrev: {self.prim.name} has no rule yet; call .defvjp")
        args = _resolve(self, args, kwargs)
        dyn, static = _split(self.prim.name, args, self.nondiff_argnums)
        if not any(isinstance(a, Tracer) for a in dyn):
            return _run_body(self, args)
        box = _Box()
        out = bind(self.prim, dyn, {"static": static, "box": box})
        return out if box.layout is None else _unpack(out, box.layout)

    def _impl(self, *dyn: Any, static: _Static, box: _Box, residuals: Any = None) -> Any:
        return _pack(self.prim.name, _run_body(self, static.full(dyn)), box)

    def _run_fwd(self, primals: Sequence[Any], params: dict[str, Any]) -> tuple[Any, Any]:
        """``fwd`` on the call's arguments: the output (packed when it is a tuple, its
        layout in the call's box) and the residuals."""
        saved, self._last_out = self._last_out, _WATCHING  # fwd may nest (grad of grad)
        try:
            res = self.fwd(*params["static"].full(primals))  # type: ignore[misc]
        finally:
            body, self._last_out = self._last_out, saved
        if not isinstance(res, tuple) or len(res) != 2:
            raise CustomRuleError(
                f"dualrev: the fwd rule of {self.prim.name} must return a pair (output, "
                f"residuals); it returned {_describe_structure(res)}")
        if body is not _WATCHING and body is not res[0]:
            got, want = _structure(res[0]), _structure(body)
            if got != want:
                raise CustomRuleError(
                    f"dualrev: the fwd rule of {self.prim.name} returned an output of "
                    f"structure {got[0]!r} and shapes {got[1]}, but the function returns "
                    f"{want[0]!r} and shapes {want[1]}: fwd's output must be the "
                    "function's")
        return _pack(self.prim.name, res[0], params["box"]), res[1]

    def on_tape(self, tape: Tape, primals: list[Any], args: Sequence[Any],
                params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Run ``fwd`` for a call the tape records: its output, and the params to keep
        with the entry (the residuals, each plain array among them a private copy)."""
        try:
            ans, res = self._run_fwd(primals, params)
        except TracerConversionError as e:
            if not any(isinstance(p, Tracer) for p in primals):
                raise
            # fwd met values an outer transform traces (hessian, grad of grad): the
            # conversion's own advice (wrap the code in custom_vjp) would mislead here
            fname = getattr(self.fun, "__name__", "the function")
            raise CustomRuleError(
                f"dualrev: the fwd rule of {self.prim.name} runs on values an outer "
                "transform traces (hessian, jacfwd of grad, grad of grad), and it converts "
                f"them: fwd must get its output by calling {fname} itself (not the code it "
                "wraps), so that the outer transform uses the rules too, and compute its "
                f"residuals with NumPy calls. The conversion: {e}") from e
        leaves, td = tree_flatten(res)
        copied = False
        for k, v in enumerate(leaves):
            # The traced arguments' values and the output belong to the tape; any other
            # plain array may be the caller's, rewritten in place before the pass (a
            # closed-over array is a PlainInput view of it while a transform runs).
            v = plain_view(v)
            if (type(v) is np.ndarray and v is not ans
                    and not any(v is p and p is not a for p, a in zip(primals, args, strict=True))):
                leaves[k] = tape.keep_copy(v)
                copied = True
            elif not isinstance(v, _ATOMIC_RESIDUALS):
                # an object that is not a pytree (a class holding arrays): its arrays may
                # be rewritten after the call as well, so it is deep-copied (an object
                # that cannot be copied, a compiled factorization, is kept as it is)
                leaves[k] = _snapshot(v)
                copied = True
        if copied:
            res = tree_unflatten(td, leaves)
        return ans, {**params, "residuals": _Residuals(res)}

    def forward(self, primals: list[Any], tangents: list[Any],
                params: dict[str, Any]) -> tuple[Any, Any]:
        """Forward mode: the output from ``fwd`` and its tangent from the transposed
        ``bwd`` (None when no tangent reaches it)."""
        ans, res = self._run_fwd(primals, params)
        p = {**params, "residuals": _Residuals(res)}
        return ans, tangent_out(self.prim, tangents, ans, primals, p)

    def _cotangents(self, res: Any, g: Any, ans: Any, primals: Sequence[Any],
                    static: _Static, box: _Box) -> list[Any]:
        """``bwd``'s cotangents, checked, one per dynamic argument (None for zero)."""
        full = static.full(primals)
        nd = self.nondiff_argnums
        lead = [full[k] for k in sorted(nd) if k < static.n]
        if box.layout is not None:  # a tuple output: bwd gets a tuple of cotangents
            g = _unpack(g, box.layout)
        cts = self.bwd(*lead, res, g)  # type: ignore[misc]
        positions = [k for k in range(static.n) if k not in nd]
        name = self.prim.name
        if not isinstance(cts, (tuple, list)) or len(cts) != len(positions):
            raise CustomRuleError(
                f"dualrev: the bwd rule of {name} must return a tuple of {len(positions)} "
                f"cotangent(s), one per argument{' not in nondiff_argnums' if nd else ''}; "
                f"it returned {_describe_structure(cts)}")
        by_pos = dict(zip(positions, cts, strict=True))
        out: list[Any] = []
        for k, td, m in static.slots:
            ct = by_pos[k]
            if td is None:
                _check_cotangent(name, "bwd", k, ct, full[k])
                out.append(ct)
            elif ct is None:
                out.extend([None] * m)
            else:
                leaves, ctd = tree_flatten(ct)
                if ctd != td:
                    raise CustomRuleError(
                        f"dualrev: the bwd rule of {name} returned a cotangent of structure "
                        f"{ctd!r} for argument {k}, whose structure is {td!r}")
                for c, p in zip(leaves, tree_flatten(full[k])[0], strict=True):
                    _check_cotangent(name, "bwd", k, c, p)
                out.extend(leaves)
        for k, v in static.values.items():  # static arguments take None
            if k not in nd:
                _check_cotangent(name, "bwd", k, by_pos[k], v)
        return out

    def _vjp(self, i: int, g: Any, ans: Any, *primals: Any, static: _Static, box: _Box,
             residuals: _Residuals) -> Any:
        r = residuals
        if r.g is not g or i in r.served:
            r.cts = self._cotangents(r.value, g, ans, primals, static, box)
            r.g = g
            r.served = set()
        r.served.add(i)
        ct = r.cts[i]
        return _zeros_like(primals[i]) if ct is None else ct

    def _jvp(self, tangents: list[Any], ans: Any, *primals: Any, static: _Static,
             box: _Box, residuals: _Residuals) -> Any:
        """The transpose of ``g -> bwd(residuals, g)`` applied to the tangents: ``bwd`` is
        recorded once, at a nonzero probe cotangent (a linear map is its own derivative
        there), and played back from the tangents; the value recorded at the probe shows a
        ``bwd`` that is not linear, which forward mode cannot transpose."""
        name = self.prim.name
        dt = np.result_type(dtype_of(ans), np.float64) if is_complex(ans) else np.float64
        tape = Tape(new_level(), f"the backward rule of {name}, transposed for forward mode")
        u = _probe_point(shape_of(ans), dt)
        g = tape.input(u)
        entry = g._index  # read now: bwd may write into g, rebinding it
        try:
            cts = self._cotangents(residuals.value, g, ans, primals, static, box)
        except DualrevError as e:
            if isinstance(e, CustomRuleError):
                raise
            raise CustomRuleError(
                f"dualrev: forward mode of {name} transposes its bwd rule (the function's "
                f"body is never differentiated), so bwd must be NumPy code that dualrev "
                f"can trace in its cotangent g; it failed: {e}") from e
        finally:
            tape.finish()
        seeds: dict[int, Any] = {}
        pairs: list[tuple[Any, Any]] = []
        for k, (ct, t) in enumerate(zip(cts, tangents, strict=True)):
            if ct is None:
                continue
            traced = type(ct) is Traced and ct._trace is tape
            value = ct.primal if traced else ct
            if not traced:
                while isinstance(value, Tracer):
                    value = value.primal
                if np.any(np.abs(value) > 0):
                    raise self._nonlinear(f"bwd gave a cotangent for argument "
                                          f"{static.leaf_arg[k]} that does not depend on g")
            elif t is not None:
                seeds[ct._index] = t if ct._index not in seeds else seeds[ct._index] + t
                pairs.append((t, value))
        if not seeds:
            return None
        out = tape.backward(seeds)[entry]
        if _euler_holds(pairs, out, u):
            # a second, untaped run at -u: a bwd homogeneous but not linear in g
            # (np.abs(g), a ReLU of g) passes the identity at u, but is not odd
            mirror = self._cotangents(residuals.value, -u, ans, primals, static, box)
            if all(_odd(c.primal if type(c) is Traced and c._trace is tape else c, m)
                   for c, m in zip(cts, mirror, strict=True)
                   if c is not None and m is not None):
                return out
        raise self._nonlinear("its value at a probe cotangent differs from its "
                              "derivative there applied to the probe")

    def _nonlinear(self, why: str) -> CustomRuleError:
        return CustomRuleError(
            f"dualrev: forward mode of {self.prim.name} transposes its bwd rule, which must be "
            f"linear in the cotangent g, but it is not ({why}: a constant added, or g "
            "clipped, squared or thresholded). Reverse mode (grad, vjp, jacrev) uses bwd as "
            "written; for forward mode (jvp, jacfwd, hessian) give the function a custom_jvp "
            "instead, or write bwd as a linear map of g")


# residual leaves that are never rewritten in place (or are the tape's own values)
_ATOMIC_RESIDUALS = (np.ndarray, np.generic, Tracer, int, float, complex, str, bytes, bool,
                     type(None), type, types.FunctionType, types.BuiltinFunctionType,
                     types.MethodType, functools.partial)


def _snapshot(v: Any) -> Any:
    """A deep copy of an opaque residual, so that a backward pass reads the values it
    held at the call; the object itself where it cannot be copied."""
    try:
        return copy.deepcopy(v)
    except Exception:  # noqa: BLE001  (any failure to copy: keep the object itself)
        return v


def _describe_structure(x: Any) -> str:
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    return f"a {type(x).__name__}"


def transpose_jvp(prim: Primitive) -> Primitive:
    """Give ``prim`` VJP rules derived from its JVP rules: a JVP is linear in the tangent,
    so the VJP of argument i is the reverse-mode derivative of ``t -> jvp_i(t)``. The
    result is exact, vectorised over batched cotangents, and differentiable in turn; it
    costs one recorded run of the JVP rule per backward step. Used where a closed-form
    VJP is long and error-prone (QR, SVD, eigh, ...)."""

    def vjp(i: int, g: Any, ans: Any, *primals: Any, **params: Any) -> Any:
        def linear(t: Any) -> Any:
            if prim.jvp_joint is not None:
                tangents: list[Any] = [None] * len(primals)
                tangents[i] = t
                return prim.jvp_joint(tangents, ans, *primals, **params)
            return prim.jvps[i](t, ans, *primals, **params)  # type: ignore[index]

        return linear_transpose(linear, primals[i], g)

    prim.defvjp_indexed(vjp)
    return prim
