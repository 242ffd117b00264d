"""``linearize`` (one evaluation of ``f``, then its JVP at that point as often as needed)
and ``linear_transpose`` (the transpose of a linear function), as in JAX.

``linearize`` records ``f`` once on a tape that keeps every value (``keep_all``, as
``dualrev.jacobian`` does); each call of the returned ``f_jvp`` pushes tangents forward
along the recorded entries with the primitives' JVP rules at the saved values
(``Tape.push``), so ``f``'s Python never runs again. An elementwise entry's partial
derivatives (``cos(x)`` for ``sin``) are computed at the first call and kept, so later calls
do only the products and the non-elementwise rules.

``linear_transpose`` checks linearity structurally: ``f`` runs once on staged inputs
(``dualrev.staging``, the trace below ``dualrev.replay``, which sees every primitive,
comparisons and roundings included, and every Python decision on a value), and each
operation reached by an input must be linear in the arguments the inputs reach, by the
table ``LINEAR`` below; then ``f`` is recorded on a tape at zeros and each call of the
transpose plays it back (the VJP of a linear map is its transpose, at any point).
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any, Literal, overload

import numpy as np

from .batching import Batched, scale
from .diagnose import user_frame
from .errors import DualrevError, NonLinearError, ReplayError
from .forward import _tangent_dtype, tangent_out
from .primitive import Primitive, Tracer, primitive_for_key, shape_of
from .reverse import Entry, Watch, forward_pass
from .staging import FinishedStagingTrace, Staged, StagingTrace
from .tracer import new_level, note_finished, note_running
from .transforms import (
    _careful_forward,
    _check_tangent,
    _checked_when_computed,
    _distinct,
    _dtype_of,
    _finite,
    _private_copy,
    _pushed_outputs,
    _Recording,
    _result,
    _run,
    _tracing,
    _warn_nonfinite,
)
from .tree import tree_flatten, tree_unflatten

__all__ = ["LINEAR", "linear_transpose", "linearize"]


# ------------------------------------------------------------------ linearize

class _Partials(Watch):
    """``forward_pass``'s step for a linearized tape: an elementwise entry's partial
    derivatives are computed at its first tangent and kept (they depend on the saved
    primals only), so that later pushes multiply; every other entry runs its JVP rule
    (``tangent_out``) as a plain push does."""

    __slots__ = ("cache",)

    def __init__(self) -> None:
        self.cache: dict[tuple[int, int], Any] = {}

    def step(self, i: int, entry: Entry, tangents: list[Any]) -> Any:
        prim = entry.prim
        partials = prim.fast_partials  # type: ignore[union-attr]
        if partials is None or prim.jvp_joint is not None:  # type: ignore[union-attr]
            return tangent_out(prim, tangents, entry.out, list(entry.kept),  # type: ignore[arg-type]
                               entry.params)
        # the same products tangent_out forms, with the partials read from the cache; its
        # shape and precision fixes then run on ``out`` given as a ready-made tangent
        cache = self.cache
        out = None
        for k, t in enumerate(tangents):
            if t is None or prim.jvps[k] is None:  # type: ignore[union-attr,index]
                continue
            d = cache.get((i, k))
            if d is None:
                d = cache[i, k] = partials[k](entry.out, *entry.kept)
            c = scale(t, d) if type(t) is Batched and not isinstance(d, Tracer) else t * d
            out = c if out is None else out + c
        if out is None:
            return None
        return _as_output_tangent(out, entry.out)


def _as_output_tangent(t: Any, ans: Any) -> Any:
    """An elementwise operation's tangent ``t`` in its output's shape and precision:
    ``tangent_out``'s last steps."""
    ta = type(ans)
    if ta is float or ta is np.float64:
        if type(t) in _F64_SCALARS:
            return t  # the common scalar case, without a call
    elif ta is np.ndarray and type(t) is np.ndarray and t.shape == ans.shape:
        if ans.dtype.char in "dD":
            return t.astype(ans.dtype) if t.dtype.char in "fF" else t
        return _tangent_dtype(t, ans)
    if shape_of(t) != shape_of(ans):
        t = np.broadcast_to(t, shape_of(ans))
    if ta is not float and ta is not np.float64 and (ta is not np.ndarray
                                                     or ans.dtype.char not in "dD"):
        return _tangent_dtype(t, ans)
    if ta is np.ndarray and type(t) is np.ndarray and t.dtype.char in "fF":
        return t.astype(np.result_type(t.dtype, ans.dtype))
    return t


_F64_SCALARS = (float, np.float64)


@overload
def linearize(f: Callable[..., Any], *primals: Any,
              has_aux: Literal[False] = False) -> tuple[Any, Callable[..., Any]]: ...


@overload
def linearize(f: Callable[..., Any], *primals: Any,
              has_aux: Literal[True]) -> tuple[Any, Callable[..., Any], Any]: ...


def linearize(f: Callable[..., Any], *primals: Any, has_aux: bool = False,
              ) -> tuple[Any, Callable[..., Any]] | tuple[Any, Callable[..., Any], Any]:
    """``f`` evaluated once at ``primals``, and its JVP there as a function: ``(out,
    f_jvp)`` where ``f_jvp(*tangents)`` is ``dualrev.jvp(f, primals, tangents)[1]``
    without running ``f`` again (JAX's ``linearize``).

    ``f`` is recorded once on a tape that keeps every value; each ``f_jvp`` call pushes
    its tangents along the recorded operations with their JVP rules at the saved values
    (an elementwise operation's partial derivatives are computed at the first call and
    kept). Use it where one point needs many JVPs: Newton-Krylov solvers (a
    ``scipy.sparse.linalg.LinearOperator`` with ``matvec=f_jvp``), sensitivity sweeps
    over many directions. ``f_jvp`` is linear and composes with every transform:
    ``dualrev.vmap(f_jvp)(T)`` pushes a batch of tangents in one pass (``vmap(f_jvp)(eye)``
    is the Jacobian's transpose layout, one row per basis tangent), ``dualrev.vjp`` and
    ``dualrev.jacfwd`` of it give ``f``'s Jacobian at the point, ``dualrev.grad`` of a
    loss of it differentiates through it. Inside an outer transform (``primals`` traced
    by an outer ``grad``), call ``f_jvp`` before that transform returns.

    The primals are copied first, as ``dualrev.vjp`` does, so writing into them
    afterwards does not change ``f_jvp``; so are the arrays the recorded operations read
    (a matrix ``f`` closes over). A ``custom_jvp`` function contributes its JVP rule; a
    ``custom_vjp`` one (which has no JVP: JAX refuses to linearize it) is pushed through
    its transposed backward rule, as ``dualrev.jvp`` and ``dualrev.jacobian`` do. Where a
    result holds nan or inf, ``f`` is recorded again carefully (strong zeros) and a
    ``NonFiniteDerivativeWarning`` names the operation, as for ``dualrev.jvp``.

    Args:
        f: the function; arguments and outputs may be pytrees. Every positional argument
            is differentiated.
        *primals: the point: ``f``'s positional arguments.
        has_aux: ``f`` returns ``(output, aux)``; ``aux`` is returned undifferentiated.
    Returns:
        ``(out, f_jvp)``, or ``(out, f_jvp, aux)`` with ``has_aux=True`` (JAX's order):
        ``out`` is ``f(*primals)``; ``f_jvp(*tangents)`` takes one tangent per primal, of
        its structure and shapes (floating point), and returns the output's tangent, of
        ``out``'s structure and shapes. Wrong structures or shapes raise ``DualrevError``
        as ``dualrev.jvp`` does.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> out, f_jvp = dr.linearize(lambda x: np.sin(x) * x, np.array([0.0, 1.0]))
        >>> print(out)
        [0.       0.841471]
        >>> print(f_jvp(np.array([1.0, 0.0])), f_jvp(np.array([0.0, 2.0])))
        [0. 0.] [0.       2.763547]
    """
    nums = tuple(range(len(primals)))
    # f_jvp runs later: it must see the primals as they were, not as the caller may have
    # rewritten them in place meanwhile
    primals = tuple(_private_copy_tree(p) for p in primals)
    p_def = tree_flatten(primals)[1]
    with _tracing:
        rec = _Recording(f, primals, nums, has_aux, "linearize", keep_all=True)
    out = tree_unflatten(rec.out_def, rec.values)
    watch = _Partials()

    def f_jvp(*tangents: Any) -> Any:
        if len(tangents) != len(primals):
            raise DualrevError(
                f"dualrev.linearize: f_jvp takes one tangent per primal: {len(primals)} "
                f"were linearized, {len(tangents)} tangents given")
        t_leaves, t_def = tree_flatten(tangents)
        if t_def != p_def:
            raise DualrevError(
                f"dualrev.linearize: tangents must have the same structure as primals; "
                f"the primals are {p_def} and the tangents {t_def}")
        t_leaves = [_check_tangent(x, t) for x, t in zip(rec.leaves, t_leaves, strict=True)]
        with _tracing:
            ts = forward_pass(rec.tape.nodes, dict(zip(rec.in_index, t_leaves, strict=True)),
                              watch)
            touts = _pushed_outputs(rec, ts)
            if not _finite(touts):
                touts = _careful_forward(
                    lambda tape, ins: dict(zip(ins, t_leaves, strict=True)),
                    lambda r, ts2, _: _pushed_outputs(r, ts2), touts, f, primals, nums,
                    has_aux, "linearize", rec.values)
            touts = _checked_when_computed(touts, "linearize", "forward")
        return tree_unflatten(rec.out_def, _distinct([_result(t) for t in touts]))

    f_jvp.__doc__ = (f"The JVP of {getattr(f, '__name__', 'f')} at the point given to "
                     "dualrev.linearize: f_jvp(*tangents) -> the output's tangent.")
    return (out, f_jvp, rec.aux) if has_aux else (out, f_jvp)


def _private_copy_tree(p: Any) -> Any:
    leaves, tdef = tree_flatten(p)
    return tree_unflatten(tdef, [_private_copy(v) for v in leaves])


# ------------------------------------------------------------------ linear_transpose

#: How each catalogue primitive is linear, by its portable key: ``("joint", positions)``
#: — linear in those arguments together (``add``: ``x + y`` with both reached by the
#: inputs), ``("one", positions)`` — linear in each of them while the others are
#: constants, so at most one may be reached (``multiply``, ``matmul``: a product of two
#: values that both depend on the inputs is not linear). ``None`` as positions: every
#: argument. Arguments outside the positions must not depend on the inputs (a divisor, a
#: matrix being solved with, a condition of ``where``). A primitive not listed is not
#: linear (or not known to be: ``np.sin``, ``np.abs``, ``np.maximum``), and refused.
LINEAR: dict[str, tuple[str, tuple[int, ...] | None]] = {
    # sums and scalings
    "add": ("joint", None),
    "subtract": ("joint", None),
    "negative": ("joint", None),
    "positive": ("joint", None),
    "multiply": ("one", None),
    "divide": ("joint", (0,)),
    "deg2rad": ("joint", None),
    "rad2deg": ("joint", None),
    "radian": ("joint", None),
    "sum": ("joint", (0,)),
    "cumsum": ("joint", (0,)),
    # complex parts: real-linear (transposed without conjugation, as in JAX)
    "real": ("joint", None),
    "imag": ("joint", None),
    "conjugate": ("joint", None),
    "astype": ("joint", (0,)),
    # shapes and selections
    "reshape": ("joint", (0,)),
    "transpose": ("joint", (0,)),
    "broadcast_to": ("joint", (0,)),
    "concatenate": ("joint", None),
    "pad": ("joint", (0,)),
    "getitem": ("joint", (0,)),
    "take_along_axis": ("joint", (0,)),
    "scatter_add": ("joint", (0,)),
    "put_along_axis_add": ("joint", (0,)),
    "set": ("joint", (0, 1)),
    "where": ("joint", (1, 2)),
    # products with constants
    "matmul": ("one", None),
    "einsum": ("one", None),
    "scipy.sparse (matrix @ dense)": ("joint", (0,)),
    "ndimage_correlate": ("one", (0, 1)),
    "ndimage_correlate_transpose": ("one", (0, 1)),
    "ndimage_spline_filter1d": ("joint", (0,)),
    "ndimage_spline_filter1d_transpose": ("joint", (0,)),
    # transforms and solves with constant matrices
    "fftn": ("joint", (0,)),
    "rfftn": ("joint", (0,)),
    "irfftn": ("joint", (0,)),
    "solve": ("joint", (1,)),
    "scipy.linalg.solve_triangular": ("joint", (1,)),
}


def _linear_rule(prim: Primitive) -> tuple[str, tuple[int, ...] | None] | None:
    key = prim.key
    if key is None or primitive_for_key(key) is not prim:
        return None  # a user's primitive (or one that took a catalogue key over)
    return LINEAR.get(key)


def _user_line() -> str | None:
    frame = user_frame()
    if frame is None:
        return None
    name, line = frame.f_code.co_filename, frame.f_lineno
    text = linecache.getline(name, line).strip()
    return f"{name}:{line}" + (f": `{text}`" if text else "")


class _LinearityTrace(StagingTrace):
    """A staging trace that refuses, as each operation is recorded, one that uses the
    inputs non-linearly (see ``LINEAR``), and every Python decision on a value the inputs
    reach (a guard on its truth or value): the error is raised at the user's line."""

    __slots__ = ("reached",)

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.reached: set[int] = set()  # slots whose value depends on the inputs
        # running, as a transform's trace is: buffers the user's code makes (np.zeros)
        # become its constants and take the inputs' writes (dualrev/buffers.py)
        note_running(self)

    def input(self, value: Any) -> Staged:
        x = super().input(value)
        self.reached.add(x._index)
        return x

    def process(self, prim: Primitive, args: Any, params: dict[str, Any]) -> Any:
        reached = self.reached
        hit = [k for k, a in enumerate(args)
               if type(a) is Staged and a._trace is self and a._index in reached]
        if hit:
            self._check(prim, hit)
        ans = super().process(prim, args, params)
        if hit:
            for v in (ans if type(ans) in (tuple, list) else (ans,)):
                if type(v) is Staged and v._trace is self:
                    reached.add(v._index)
        return ans

    def _check(self, prim: Primitive, hit: list[int]) -> None:
        name = prim.name
        if prim.nondiff:
            raise NonLinearError(
                f"{name} (a comparison, rounding or other step function) is applied to a "
                "value that depends on the inputs", _user_line())
        rule = _linear_rule(prim)
        if rule is None:
            opaque = (" (a function with custom rules is opaque to the check, linear or "
                      "not: transpose its body, or use dualrev.vjp)"
                      if name.startswith(("custom_jvp(", "custom_vjp(")) else "")
            raise NonLinearError(f"{name} is not linear in its arguments (or not known "
                                 "to be), and it is applied to a value that depends on "
                                 f"the inputs{opaque}", _user_line())
        mode, positions = rule
        if positions is not None:
            bad = [k for k in hit if k not in positions]
            if bad:
                raise NonLinearError(
                    f"{name}'s argument {bad[0]} depends on the inputs, and {name} is not "
                    "linear in it" + (" (a division by such a value)" if name == "divide"
                                      else ""), _user_line())
        if mode == "one" and len(hit) > 1:
            raise NonLinearError(
                f"{name} multiplies two values that both depend on the inputs (arguments "
                f"{hit[0]} and {hit[1]}): a product of them is not linear", _user_line())

    def guard(self, x: Staged, kind: str, expected: Any) -> None:
        if kind in ("truth", "equal") and x._trace is self and x._index in self.reached:
            raise NonLinearError(
                "a value that depends on the inputs becomes a plain or Python value (an "
                "`if`, float(), int(), a cast to integers, an index or parameter computed "
                "from it, or np.asarray in a function dualrev has no rule for), so the "
                "result depends on it non-linearly", _user_line())
        super().guard(x, kind, expected)

    def finish(self) -> None:
        self.__class__ = _FinishedLinearityTrace
        note_finished(self)


class _FinishedLinearityTrace(FinishedStagingTrace, _LinearityTrace):
    """A linearity check whose call has returned (``FinishedStagingTrace``'s refusals)."""

    __slots__ = ()
    finished = True


def _zeros_like_spec(p: Any) -> Any:
    """Zeros of the shape and dtype of ``p``: an array, a number, or anything with
    ``shape`` and ``dtype`` (``jax.ShapeDtypeStruct``)."""
    if isinstance(p, Tracer):
        p = np.zeros(shape_of(p), _dtype_of(p))
    elif not isinstance(p, (np.ndarray, np.generic, float, int, complex)) and \
            hasattr(p, "shape") and hasattr(p, "dtype"):
        p = np.zeros(tuple(p.shape), np.dtype(p.dtype))
    dt = np.result_type(p)
    if dt.kind not in "fc":
        raise DualrevError(
            f"dualrev.linear_transpose needs floating-point inputs, got dtype {dt}; give "
            "float primals (they set only the shapes and dtypes of the inputs)")
    z = np.zeros(np.shape(p), dt)
    return z[()] if z.ndim == 0 and not isinstance(p, np.ndarray) else z


def linear_transpose(f: Callable[..., Any], *primals: Any) -> Callable[..., tuple[Any, ...]]:
    """The transpose of the linear function ``f``: ``f_t(ct)`` gives the cotangent of
    each input for the output cotangent ``ct`` (JAX's ``linear_transpose``).

    ``primals`` give only the inputs' shapes, dtypes and pytree structure (arrays, numbers,
    or objects with ``shape`` and ``dtype``): a linear map has one transpose. ``f`` is
    checked for linearity (each operation an input reaches must be linear in it; see
    ``dualrev.linearization.LINEAR``) and recorded once, at zeros; each ``f_t`` call plays
    the recording back. For a matrix map ``x -> A @ x``, ``f_t(ct) == (A.T @ ct,)``.

    Non-linear functions are refused with ``NonLinearError``, naming the operation and
    the user's line: a product of two values that both depend on the inputs (``x * x``),
    a non-linear function of one (``np.sin(x)``), a division by one, a comparison or a
    Python decision on one (``np.where(x > 0, x, 0)``). As in JAX, an added constant is
    accepted: ``x + 1`` transposes as ``x`` (the transpose of the linear part). Complex
    maps are transposed without conjugation, as in JAX: ``z -> c * z`` gives ``ct -> c *
    ct``; real-linear ones (``np.conj``, ``np.real``) by the real pairing ``Re(sum(ct *
    y))``: ``np.conj`` gives ``ct -> conj(ct)``.

    Args:
        f: the linear function of the positional arguments ``primals``; arguments and
            outputs may be pytrees.
        *primals: examples of ``f``'s arguments (only shapes and dtypes are read).
    Returns:
        ``f_t(ct)``: ``ct`` has the output's structure and shapes; the result is a tuple
        with one cotangent per primal, of its structure, shapes and dtype.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        >>> f_t = dr.linear_transpose(lambda x: A @ x, np.zeros(2))
        >>> print(f_t(np.array([1.0, 0.0, 1.0])))
        (array([6., 8.]),)
    """
    zeros = tuple(_zeros_tree(p) for p in primals)
    nums = tuple(range(len(zeros)))
    leaves, in_def = tree_flatten(zeros)
    check = _LinearityTrace(new_level())
    try:
        staged = [check.input(v) for v in leaves]
        args = tree_unflatten(in_def, staged)
        with _tracing:
            _run(f, check, *args)
    except ReplayError as e:
        raise DualrevError(
            "dualrev.linear_transpose: the function closes over a value traced by an "
            "outer transform, which the linearity check cannot follow; for a linear "
            "function its transpose is its VJP: use dualrev.vjp(f, *primals)[1] inside "
            f"the outer transform ({e})") from None
    finally:
        check.finish()
    with _tracing:
        rec = _Recording(f, zeros, nums, False, "linear_transpose")

    def f_t(ct: Any) -> tuple[Any, ...]:
        cts, cdef = tree_flatten(ct)
        if cdef != rec.out_def:
            raise DualrevError(
                f"dualrev.linear_transpose: the cotangent's structure {cdef} does not match "
                f"the output's {rec.out_def}")
        checked = []
        for o, c in zip(rec.outs, cts, strict=True):
            c = _check_tangent(o, c)
            if _dtype_of(o).kind != "c" and _dtype_of(c).kind == "c":
                raise DualrevError(
                    f"dualrev.linear_transpose: a complex cotangent was given for a real "
                    f"output of dtype {_dtype_of(o)}; give a real one (the output's dtype)")
            checked.append(c)
        with _tracing:
            grads = rec.pull(checked, keep=True)
            if not _finite(grads) and _finite(checked):
                _warn_nonfinite("linear_transpose", None, "reverse")
        values = _distinct([_result(g) for g in grads])
        it = iter(values)
        return tuple(tree_unflatten(td, [next(it) for _ in range(td.num_leaves)])
                     for td in rec.defs)

    f_t.__doc__ = (f"The transpose of the linear {getattr(f, '__name__', 'f')} "
                   "(dualrev.linear_transpose): f_t(ct) -> a tuple of input cotangents.")
    return f_t


def _zeros_tree(p: Any) -> Any:
    if isinstance(p, (np.ndarray, float, Tracer)) or (
            hasattr(p, "shape") and hasattr(p, "dtype") and not isinstance(p, (tuple, list, dict))):
        return _zeros_like_spec(p)
    leaves, tdef = tree_flatten(p)
    return tree_unflatten(tdef, [_zeros_like_spec(v) for v in leaves])
