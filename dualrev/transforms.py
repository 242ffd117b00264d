"""The functional transforms: grad, value_and_grad, jvp, vjp, jacfwd, jacrev, jacobian,
hessian, hvp, vmap. They know nothing of particular primitives.

Conventions follow JAX: a Jacobian has shape ``out.shape + in.shape``; ``argnums`` is an
int (one result) or a tuple (a tuple of results); arguments and outputs may be pytrees.
Every call takes a fresh nesting level, so transforms nest without perturbation
confusion.
"""

from __future__ import annotations

import functools
import gc
import inspect
import math
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, NoReturn, ParamSpec, TypeVar, overload

import numpy as np
import scipy.sparse as sp

from . import config, namespace, pattern_rules
from .batching import Batched, BatchTrace, FinishedBatchTrace
from .buffers import PlainInput, hold_inputs, plain_input, release_inputs
from .debug import derivative_error
from .errors import (
    DualrevError,
    EscapedTracerError,
    NonFiniteDerivativeWarning,
    TracerConversionError,
)
from .forward import Dual, FinishedForwardTrace, ForwardTrace
from .primitive import (
    FLOAT64_SCALARS,
    Tracer,
    asarray_keep,
    concrete,
    dtype_of,
    eye_as,
    foreign_array,
    ones_as,
    peek,
    shape_of,
    unwrap_derivatives,
    zeros_as,
)
from .reverse import CarefulTape, FinishedTape, Tape, Traced, all_finite, is_lazy
from .sparsity import Pattern, SparsityTrace
from .staging import Staged
from .tracer import (
    defer_to_xarray,
    new_level,
    transform_entered,
    transform_exited,
)
from .tree import (
    LEAF,
    TreeDef,
    leaf_paths,
    node_children,
    not_a_container,
    tree_flatten,
    tree_map,
    tree_unflatten,
    unflatten_jacobian,
    wraps_one_array,
)


class _Tracing:
    """Entered around every transform's run of the user's function (and a pullback's
    backward pass): installs the NumPy/math names replaced while a transform runs
    (dualrev/namespace.py), and pauses Python's cyclic garbage collector.

    A tape allocates many small containers that all stay alive until the backward pass;
    the collector would scan them again and again (a long scalar loop ran 3x slower).
    Nothing is lost: the collector resumes, and collects any cycles, on exit.

    The pause raises the collector's first threshold instead of calling ``gc.disable``,
    and is counted process-wide: ``gc.enable``/``gc.disable`` stay the user's alone (one
    made by another thread, or by ``f`` itself, while a transform runs is never undone),
    and the threshold is restored by the last transform to finish, unless someone set a
    new one meanwhile.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        global _gc_depth, _gc_saved
        with _gc_lock:
            if _gc_depth == 0:
                saved = _gc_saved = gc.get_threshold()
                if saved[0]:  # a threshold of 0 already disables collection
                    gc.set_threshold(_GC_PAUSED, *saved[1:])
            _gc_depth += 1
        namespace.installed.__enter__()
        transform_entered()

    def __exit__(self, *exc: Any) -> None:
        global _gc_depth
        transform_exited()
        namespace.installed.__exit__(*exc)
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and gc.get_threshold()[0] == _GC_PAUSED:
                gc.set_threshold(*_gc_saved)


# The pause's state is module-level: assigning class attributes would invalidate the
# interpreter's type caches on every call.
_gc_lock = threading.Lock()
_gc_depth = 0
_gc_saved: tuple[int, ...] = ()
_GC_PAUSED = 1 << 30  # collections practically never start; a value nobody else sets
_tracing = _Tracing()
_FINISHED = (FinishedTape, FinishedForwardTrace, FinishedBatchTrace)


ArgNums = int | Sequence[int]

# The static types of the transforms (docs/users.md, "Types, completion and type
# checkers"): a transformed function keeps f's parameters (P), since it is called with
# f's arguments; its result is Any where it depends on argnums and the arguments' pytrees
# (a gradient, a Jacobian), f's own type where dualrev returns f's output (R), and the
# auxiliary output's type (Aux) with has_aux=True.
P = ParamSpec("P")
R = TypeVar("R")
Aux = TypeVar("Aux")


# ------------------------------------------------------------------ argument handling


def _dtype_of(x: Any) -> np.dtype:
    t = type(x)
    if t is np.ndarray:
        return x.dtype
    return _F64 if t in FLOAT64_SCALARS else dtype_of(x)


_F64 = np.dtype(np.float64)


def _as_input(x: Any) -> Any:
    """A differentiable input: floats stay floats, integers and bools become float64."""
    if type(x) is np.ndarray and x.dtype.kind in "fc" and x.ndim:
        return x
    if isinstance(x, Tracer) or type(x) is float:
        return x
    if is_duck_array(x):
        # a Dask or CuPy array stays what it is (lazy, on its device): its operations
        # reach the catalogue through NumPy's protocols, and so do the rules' own calls
        if x.dtype.kind in "biu":
            return x.astype(np.float64)
        _check_input_kind(x.dtype)
        return x
    _refuse_subclass(x, "an input")
    a = np.asarray(x)
    kind = a.dtype.kind
    if kind in "biu":
        a = a.astype(np.float64)
    else:
        _check_input_kind(a.dtype)
    return a[()] if a.ndim == 0 else a


def _check_input_kind(dtype: np.dtype) -> None:
    if dtype.kind not in "fc":
        raise DualrevError(f"dualrev: cannot differentiate with respect to an input of dtype "
                           f"{dtype} (expected floats, ints or arrays of them)")


def is_duck_array(x: Any) -> bool:
    """Whether ``x`` is another library's array that NumPy's functions dispatch to
    (NEP 18: Dask, CuPy): it has ``__array_function__`` and ``__array_ufunc__``, a shape and
    a dtype, and is neither an ndarray nor a traced value. Such an input is differentiated
    as it is, never converted to NumPy."""
    t = type(x)
    return (not issubclass(t, np.ndarray) and not issubclass(t, Tracer)
            and hasattr(t, "__array_function__") and hasattr(t, "__array_ufunc__")
            and hasattr(x, "shape") and hasattr(x, "dtype"))


def _refuse_subclass(x: Any, what: str) -> None:
    """Masked arrays and matrices would become plain ndarrays (losing the mask, or
    turning ``*`` from a matrix product into an elementwise one): refuse them."""
    if isinstance(x, np.ma.MaskedArray):
        raise DualrevError(
            f"dualrev: {what} is a numpy masked array; differentiating it would drop its "
            "mask silently. Pass x.filled(value) (or np.ma.getdata(x)) and apply the mask "
            "with np.where(mask, ..., ...) inside the function")
    if isinstance(x, np.matrix):
        raise DualrevError(
            f"dualrev: {what} is a numpy.matrix, whose * is a matrix product; pass "
            "np.asarray(x) and write the products with @")


def _argnums(argnums: ArgNums, nargs: int) -> tuple[tuple[int, ...], bool]:
    if type(argnums) is int and 0 <= argnums < nargs:
        return (argnums,), True
    single = isinstance(argnums, (int, np.integer))
    nums = (int(argnums),) if single else tuple(int(a) for a in argnums)
    for a in nums:
        if not -nargs <= a < nargs:
            raise DualrevError(
                f"dualrev: argnums={argnums!r} is out of range for a function called with "
                f"{nargs} positional argument(s)"
            )
    nums = tuple(a % nargs for a in nums)
    if len(set(nums)) != len(nums):
        # As in JAX, which refuses it too: each argument is differentiated once.
        raise DualrevError(
            f"dualrev: argnums={argnums!r} names the same argument more than once; give "
            "each argument once (and reuse its derivative where it is needed twice)")
    return nums, single


def _split_inputs(args: Sequence[Any], nums: tuple[int, ...], what: str = "",
                  f: Any = None) -> tuple[list[Any], list[TreeDef]]:
    """Flattened leaves (promoted to float) of the differentiated arguments (``what``
    and ``f``, the transform and the user's function, name them in a refusal)."""
    leaves: list[Any] = []
    defs = []
    try:
        for i in nums:
            a = args[i]
            if type(a) is np.ndarray or type(a) is float or isinstance(a, Tracer):
                leaves.append(_as_input(a))
                defs.append(LEAF)
                continue
            ls, td = tree_flatten(a)
            leaves.extend(_as_input(v) for v in ls)
            defs.append(td)
    except DualrevError as e:
        _refuse_input(args, nums, what, f, e)
    return leaves, defs


def _refuse_input(args: Sequence[Any], nums: tuple[int, ...], what: str, f: Any,
                  error: DualrevError) -> NoReturn:
    """Raise ``error`` again, naming the argument, the place in its tree and the type of
    the leaf that is neither a number nor an array of numbers (an unregistered class:
    which containers work and how to register it)."""
    for i in nums:
        ls, td = tree_flatten(args[i])
        for v, (path, owner) in zip(ls, leaf_paths(td), strict=True):
            # (a Dask or CuPy leaf's dtype is read, never the array: no compute, no copy)
            dtype = getattr(v, "dtype", None)
            dt = dtype if isinstance(dtype, np.dtype) else np.asarray(v).dtype
            kind = dt.kind
            if kind in "biufc":
                continue
            name = _argument_name(f, i)
            where = (f"argument {i}" + (f" (`{name}`)" if name else "")
                     + (f" of {_function_name(f)}" if f is not None else "")
                     + (f", at {name or f'args[{i}]'}{path}" if path else ""))
            head = f"{what}: " if what.startswith("dualrev") else (
                f"dualrev.{what}: " if what else "dualrev: ")
            field = path.rpartition(".")[2]
            if kind == "O" or kind in "SU":
                raise DualrevError(f"{head}cannot differentiate {where}: " + not_a_container(
                    v, field, owner, "leave the argument out of argnums")) from None
            raise DualrevError(
                f"{head}cannot differentiate {where}, of dtype {dt} "
                "(expected floats, ints or arrays of them); leave the argument out of "
                "argnums, or make the value a static field of a registered dataclass "
                "(dataclasses.field(metadata={'static': True}))") from None
    raise error


def _function_name(f: Any) -> str:
    f = getattr(f, "func", f)  # (functools.partial: the keywords given to the transform)
    return f"`{getattr(f, '__qualname__', None) or type(f).__name__}`"


def _argument_name(f: Any, i: int) -> str:
    """The name of the ``i``-th positional parameter of ``f``, "" when it cannot be read."""
    try:
        params = [p for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # (builtins, some callables)
        return ""
    return params[i].name if i < len(params) else ""


def _rebuild_args(args: Sequence[Any], nums: tuple[int, ...], defs: list[TreeDef],
                  leaves: list[Any]) -> list[Any]:
    # the arrays not differentiated: their copies take traced writes (dualrev/buffers.py)
    new = [plain_input(a) for a in args]
    it = iter(leaves)
    for i, td in zip(nums, defs, strict=True):
        new[i] = next(it) if td is LEAF else tree_unflatten(
            td, [next(it) for _ in range(td.num_leaves)])
    return new


def _distinct(values: list[Any]) -> list[Any]:
    """Results the caller may write into: an array that is returned twice (``x + y``
    passes one cotangent to both) or is read-only (a slice of the cached identity) is
    copied."""
    seen: set[int] = set()
    out = []
    for v in values:
        if type(v) is np.ndarray:
            if id(v) in seen or not v.flags.writeable:
                v = v.copy()
            seen.add(id(v))
        elif type(v) is Staged and type(v.primal) is np.ndarray and (
                id(v) in seen or not v.primal.flags.writeable):
            v = v.copy()  # (a dr.replay recording: the copy is an operation of its own)
            seen.add(id(v))
        out.append(v)
    return out


def _chunked_like(g: Any, x: Any) -> Any:
    """A Dask derivative ``g`` of the Dask input ``x`` in ``x``'s chunks (the rules'
    operations unify chunks with the data's; lazy, no compute); anything else as it is."""
    chunks = getattr(x, "chunks", None)
    if (chunks is not None and hasattr(type(g), "__dask_graph__")
            and getattr(g, "chunks", chunks) != chunks and g.shape == x.shape):
        return g.rechunk(chunks)
    return g


def _group(values: list[Any], defs: list[TreeDef], single: bool) -> Any:
    """Per-leaf results back into one pytree per argnum (a tuple unless argnums was an int)."""
    values = _distinct(values)
    if single and defs[0] is LEAF:
        return values[0]
    it = iter(values)
    trees = [tree_unflatten(td, [next(it) for _ in range(td.num_leaves)]) for td in defs]
    return trees[0] if single else tuple(trees)


_NUMBERS = (np.ndarray, np.generic, int, float, complex)


def _check_output(o: Any, what: str, trace: Any) -> None:
    """An output leaf of the function ``trace`` traced: a float or complex number, array
    or traced value, and not a value traced by another transform that has returned."""
    if type(o) is Traced and o._trace is trace:
        p = o.primal
        if type(p) in FLOAT64_SCALARS or (type(p) is np.ndarray and p.dtype.char == "d"):
            return  # the common cases: a float64 scalar or array of this very tape
    if isinstance(o, Tracer):
        if o._trace is not trace and type(o._trace) in _FINISHED:
            raise EscapedTracerError(o._trace.what, f"the output of the function given to {what}")
    elif not isinstance(o, _NUMBERS) and not is_duck_array(o):
        # (a Dask or CuPy array that does not depend on the inputs: an inner gradient
        # whose derivative is zero, hessian of a piecewise-linear loss over Dask data)
        raise DualrevError(
            f"dualrev: {what} needs a function returning numbers or arrays (or pytrees of "
            f"them: tuples, lists, dicts), but it returned a {type(o).__name__}: {o!r:.80}")
    if type(o) is not np.ndarray:
        _refuse_subclass(peek(o), f"an output of the function given to {what}")
    if _dtype_of(o).kind not in "fc":
        raise DualrevError(
            f"dualrev: {what} needs floating-point outputs, but the function returned a "
            f"value of dtype {dtype_of(o)}; integer and boolean outputs have no "
            "derivative (cast with .astype(float) if the value is meant to be continuous)"
        )


@functools.lru_cache(maxsize=16)
def _cached_identity(n: int, dtype: np.dtype) -> np.ndarray:
    e = np.eye(n, dtype=dtype)
    e.setflags(write=False)
    return e


_CACHED_EYE = [2048]  # the largest cached basis; none where the shortcuts are off


@config.on_shortcuts
def _choose_identity(on: bool) -> None:
    _CACHED_EYE[0] = 2048 if on else -1


def _identity(n: int, dtype: np.dtype = _F64) -> np.ndarray:
    """The basis pushed through a vectorised Jacobian pass; small ones are cached
    (read-only), saving a fresh n-by-n allocation per call."""
    if n <= _CACHED_EYE[0]:
        return _cached_identity(n, dtype)
    return np.eye(n, dtype=dtype)


_BASIS_DTYPE: dict[np.dtype, np.dtype] = {}


def _basis_dtype(v: Any) -> np.dtype:
    """The real dtype of basis tangents for ``v``: float32 for float32 and complex64, so
    that a Jacobian keeps its inputs' precision, as in JAX."""
    dt = _dtype_of(v)
    r = _BASIS_DTYPE.get(dt)
    if r is None:
        r = _BASIS_DTYPE[dt] = np.finfo(dt).dtype
    return r


def _basis(values: list[Any], shapes: list[tuple[int, ...]] | None = None,
           sizes: list[int] | None = None) -> list[Any]:
    """One slice of the identity per value, shaped ``(n,) + value.shape`` (``shapes``
    and ``sizes``, where the caller has them, are the values' shapes and sizes)."""
    if shapes is None:
        shapes = [shape_of(v) for v in values]
    if sizes is None:
        sizes = [math.prod(s) for s in shapes]
    n = sum(sizes)
    dts = [_basis_dtype(v) for v in values]
    dt = (dts[0] if len(dts) == 1 or len(set(dts)) == 1
          else np.result_type(*dts) if dts else _F64)
    eye = _identity(n, dt)
    eyes: dict[type, Any] = {}  # another library's value: its basis made in its library
    out, off = [], 0
    for v, s, k, want in zip(values, shapes, sizes, dts, strict=True):
        e = eye
        if type(v) is not np.ndarray and not (type(v) is Traced and type(v.primal) is np.ndarray) \
                and (p := foreign_array(v)) is not None:
            e = eyes.get(type(p))
            if e is None:
                e = eyes[type(p)] = eye_as(n, dt, p)
        e = e[:, off:off + k] if k != n else e
        e = e.reshape((n,) + s)
        out.append(e if want == dt else e.astype(want))
        off += k
    return out


def _zeros(shape: tuple[int, ...], like: Any = None) -> np.ndarray:
    """Zeros of ``shape`` in the dtype of ``like`` (a zero derivative keeps the value's
    kind and precision)."""
    if like is None:
        return np.zeros(shape)
    dt = _dtype_of(like)
    return zeros_as(shape, dt if dt.kind in "fc" else _F64, like)


def _result(x: Any) -> Any:
    """A plain scalar result as a NumPy float, arrays and tracers as they are (a value of
    a dr.replay recording as the plain value it stands for: its 0-d array indexed)."""
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return x[()]
        if type(x) is PlainInput:  # a non-differentiated argument returned: the caller's
            return x.plain()
    elif type(x) is Staged and type(x.primal) is np.ndarray and not x.primal.ndim:
        return x[()]
    return x


def _split_aux(out: Any, has_aux: bool) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise DualrevError("dualrev: with has_aux=True the function must return a pair "
                           "(output, auxiliary data)")
    # auxiliary data carries no derivative (under vmap it is still batched)
    return out[0], tree_map(_aux_leaf, out[1])


def _aux_leaf(v: Any) -> Any:
    v = unwrap_derivatives(v)
    return v.plain() if type(v) is PlainInput else v


# ------------------------------------------------------------------ forward mode
def _raise_conversion_cause(e: ValueError) -> None:
    """NumPy re-raises a failed store of a scalar (``out[i] = x`` into a NumPy array) as
    "setting an array element with a sequence"; the dualrev error that caused it says
    what happened and what to write: raise that one, at the user's line."""
    cause = e.__cause__
    if isinstance(cause, TracerConversionError):
        raise cause.with_traceback(e.__traceback__) from None


def _run(f: Callable[..., Any], trace: Any, *args: Any, **kwargs: Any) -> Any:
    """``f(*args, **kwargs)`` on traced values: a conversion error raised with the cause
    found on the user's line; the ``trace`` finished and the inputs ``f`` holds released
    however ``f`` ends."""
    defer_to_xarray()
    held = hold_inputs(f)
    try:
        return f(*args, **kwargs)
    except ValueError as e:
        _raise_conversion_cause(e)
        raise
    finally:
        trace.finish()
        release_inputs(held)


def _forward(f: Callable[..., Any], args: Sequence[Any], nums: tuple[int, ...],
             leaves: list[Any], defs: list[TreeDef], tangents: list[Any],
             what: str) -> tuple[Any, ForwardTrace]:
    """Run ``f`` with the differentiated leaves carrying ``tangents``."""
    trace = ForwardTrace(new_level(), what)
    duals = [Dual(x, t, trace) for x, t in zip(leaves, tangents, strict=True)]
    with _tracing:
        return _run(f, trace, *_rebuild_args(args, nums, defs, duals)), trace


def _unpack_forward(out: Any, trace: ForwardTrace,
                    what: str) -> tuple[list[Any], list[Any], TreeDef]:
    outs, out_def = tree_flatten(out)
    primals, tangents = [], []
    for o in outs:
        _check_output(o, what, trace)
        if type(o) is Dual and o._trace is trace:
            primals.append(_result(o.primal))
            tangents.append(o.tangent)
        else:
            primals.append(_result(o))
            tangents.append(_zeros(shape_of(o), o))
    return primals, tangents, out_def


def _unbatch(v: Any, btrace: BatchTrace) -> Any:
    """The whole batch behind a value of ``btrace`` (an unbatched one is the same for
    every element: broadcast)."""
    if type(v) is Batched and v._trace is btrace:
        return v.primal
    return np.broadcast_to(v, (btrace.size,) + tuple(shape_of(v)))


def _check_tangent(x: Any, t: Any) -> Any:
    if isinstance(t, Tracer) or (type(t) is not np.ndarray and foreign_array(t) is not None):
        ts, tk = tuple(shape_of(t)), dtype_of(t).kind
    else:
        _refuse_subclass(t, "a tangent or cotangent")
        if (type(t) is np.ndarray and t.ndim and type(x) is not np.ndarray
                and not (type(x) is Traced and type(x.primal) is np.ndarray)
                and (p := foreign_array(x)) is not None and not is_lazy(p)):
            # (a CuPy primal: its library refuses to mix with a host array; Dask mixes)
            raise DualrevError(
                f"dualrev: a NumPy tangent or cotangent of shape {t.shape} was given for a "
                f"{type(p).__module__}.{type(p).__name__} primal; give it in the primal's "
                "library (cupy.asarray(t) for CuPy), as the primal's own derivatives are")
        t = np.asarray(t) if not isinstance(t, float) else t
        ts, tk = np.shape(t), np.result_type(t).kind
    if ts != shape_of(x):
        raise DualrevError(f"dualrev: a tangent of shape {ts} was given for a primal of shape "
                           f"{shape_of(x)}; they must match")
    if tk not in "fc":
        raise DualrevError(f"dualrev: tangents must be floating point, got dtype "
                           f"{dtype_of(t)} for a primal of dtype "
                           f"{dtype_of(x)}")
    return t


@overload
def jvp(f: Callable[..., R], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: Literal[False] = False) -> tuple[R, Any]: ...
@overload
def jvp(f: Callable[..., tuple[R, Aux]], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: Literal[True]) -> tuple[R, Any, Aux]: ...
@overload
def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple[Any, ...]: ...


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple[Any, ...]:
    """Forward mode: ``(f(*primals), J @ tangents)``, by dual numbers.

    One forward pass computes the output and its directional derivative along
    ``tangents`` (a Jacobian-vector product), without forming the Jacobian. Every
    argument of ``f`` is differentiated; ``primals`` and ``tangents`` are tuples with one
    entry per positional argument of ``f``, of the same pytree structure, and each tangent
    has its primal's shape (tangents must be floating point).

    Args:
        f: the function, of the positional arguments in ``primals``; it may take and
            return pytrees.
        primals: a tuple (or list) of ``f``'s arguments, the point to differentiate at.
        tangents: a tuple with one tangent per primal, each of its primal's structure and
            shape.
        has_aux: ``f`` returns ``(output, aux)``; ``aux`` is passed back undifferentiated.
    Returns:
        ``(primals_out, tangents_out)``: ``f(*primals)`` and its tangent, of the same pytree
        structure, each tangent leaf of its output leaf's shape; ``(primals_out,
        tangents_out, aux)`` with ``has_aux=True``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> x = np.array([0.0, 1.0])
        >>> y, t = dr.jvp(lambda x: np.sin(x) * 2.0, (x,), (np.ones(2),))
        >>> print(y)
        [0.       1.682942]
        >>> print(t)
        [2.       1.080605]
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise DualrevError("dualrev.jvp: primals and tangents must have the same length")
    nums = tuple(range(len(primals)))
    leaves, defs = _split_inputs(primals, nums, "jvp", f)
    t_leaves, t_def = tree_flatten(tangents)
    p_def = tree_flatten(primals)[1]
    if t_def != p_def:
        # Pairing leaves by position would give dict keys or nestings that differ a
        # silently wrong tangent.
        raise DualrevError(f"dualrev.jvp: tangents must have the same structure as primals; "
                           f"the primals are {p_def} and the tangents {t_def}")
    t_leaves = [_check_tangent(x, t) for x, t in zip(leaves, t_leaves, strict=True)]
    out, trace = _forward(f, primals, nums, leaves, defs, t_leaves, "jvp")
    out, aux = _split_aux(out, has_aux)
    p, t, od = _unpack_forward(out, trace, "jvp")
    if not _finite(t):
        t = _careful_forward(lambda tape, ins: {j: x for j, x in zip(ins, t_leaves, strict=True)},
                             lambda rec, ts, _: _pushed_outputs(rec, ts), t, f, primals, nums,
                             has_aux, "jvp", p)
    t = _checked_when_computed(t, "jvp", "forward")
    res = (tree_unflatten(od, p), tree_unflatten(od, _distinct([_result(v) for v in t])))
    return res + (aux,) if has_aux else res


def _check_fwd_inputs(leaves: list[Any], holomorphic: bool, name: str = "jacfwd") -> None:
    """jacfwd's basis tangents are real: for a complex input they give only the derivative
    along the real axis, which is the whole Jacobian for a holomorphic function alone.
    Like JAX, refuse complex inputs unless holomorphic=True, and real ones with it.
    ``name``: the transform the user called (hessian's outer pass is jacfwd's)."""
    for x in leaves:
        kind = _dtype_of(x).kind
        if kind == "c" and not holomorphic:
            other = "for a real-valued one use jacrev; " if name != "hessian" else ""
            raise DualrevError(
                f"dualrev.{name} needs real inputs, got {_dtype_of(x)}: its basis tangents "
                "see only the derivative along the real axis. For a holomorphic function "
                f"pass holomorphic=True; {other}otherwise split the input into real and "
                "imaginary parts, or use dualrev.jvp directly")
        if kind != "c" and holomorphic:
            raise DualrevError(f"dualrev.{name} with holomorphic=True needs complex inputs, "
                               f"got {_dtype_of(x)}")


@overload
def jacfwd(f: Callable[P, Any], argnums: ArgNums = 0,
           has_aux: Literal[False] = False, holomorphic: bool = False
           ) -> Callable[P, Any]: ...
@overload
def jacfwd(f: Callable[P, tuple[Any, Aux]], argnums: ArgNums = 0, *,
           has_aux: Literal[True], holomorphic: bool = False
           ) -> Callable[P, tuple[Any, Aux]]: ...
@overload
def jacfwd(f: Callable[P, tuple[Any, Aux]], argnums: ArgNums,
           has_aux: Literal[True], holomorphic: bool = False
           ) -> Callable[P, tuple[Any, Aux]]: ...
@overload
def jacfwd(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable[P, Any]: ...


def jacfwd(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable[P, Any]:
    """Jacobian by forward mode: all basis tangents pushed through one vectorised pass.

    Cheaper than ``jacrev`` when the inputs have fewer elements than the outputs. Inputs
    must be real, or complex with ``holomorphic=True`` (giving f'(z)). Keyword arguments
    (here and in jacrev, jacobian, hessian, hvp) are passed to ``f`` and not
    differentiated.

    Args:
        f: the function; arguments and outputs may be pytrees.
        argnums: the positional argument(s) to differentiate: an int, or a tuple of ints.
        has_aux: ``f`` returns ``(output, aux)``; ``aux`` is returned undifferentiated.
        holomorphic: ``f`` is holomorphic and its inputs complex: the complex derivative.
    Returns:
        A function with ``f``'s signature returning the Jacobian: for each output leaf, of
        shape ``out.shape + in.shape`` (JAX's convention; a scalar output gives
        ``in.shape``, a scalar input ``out.shape``). For an int ``argnums`` that block
        itself (a pytree argument gives a pytree of blocks, one per leaf); for a tuple, a
        tuple with one per argument. A pytree output gives that pytree with the blocks as
        leaves. With ``has_aux=True``: ``(jacobian, aux)``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: np.stack([x[0] * x[1], np.sin(x[0]), x[1] ** 2])
        >>> J = dr.jacfwd(f)(np.array([1.0, 2.0]))
        >>> J.shape
        (3, 2)
        >>> print(J)
        [[2.       1.      ]
         [0.540302 0.      ]
         [0.       4.      ]]
    """
    return _jacobian_forward(f, argnums, has_aux, holomorphic, "jacfwd")


def _jacobian_forward(f: Callable[P, Any], argnums: ArgNums, has_aux: bool,
                      holomorphic: bool, name: str) -> Callable[P, Any]:
    """jacfwd, whose errors and warnings name ``name``: the transform the user called
    (``"hessian"`` for hessian's outer pass)."""

    @functools.wraps(f)
    def jac(*args: Any, **kwargs: Any) -> Any:
        fk = functools.partial(f, **kwargs) if kwargs else f
        nums, single = _argnums(argnums, len(args))
        leaves, defs = _split_inputs(args, nums, name, f)
        _check_fwd_inputs(leaves, holomorphic, name)
        sizes = [math.prod(shape_of(x)) for x in leaves]
        n = sum(sizes)
        # all basis tangents as one batch: the rules see one tangent each; the traces keep
        # jacfwd's name (what a drawing of hessian shows: jacfwd over jacrev)
        btrace = BatchTrace(new_level(), n, "jacfwd")
        tangents = [Batched(e, btrace) for e in _basis(leaves)]
        try:
            out, trace = _forward(fk, args, nums, leaves, defs, tangents, "jacfwd")
        finally:
            btrace.finish()
        out, aux = _split_aux(out, has_aux)
        p, touts, od = _unpack_forward(out, trace, name)
        res = _forward_jacobian([_unbatch(t, btrace) for t in touts], od, leaves, defs,
                                single)
        if not _finite(res):
            res = _careful_forward(
                lambda bt, ins: {j: Batched(e, bt) for j, e in
                                 zip(ins, _basis(leaves), strict=True)},
                lambda rec, ts, bt: _forward_jacobian(
                    [_unbatch(t, bt) for t in _pushed_outputs(rec, ts)], rec.out_def,
                    rec.leaves, rec.defs, single),
                res, fk, args, nums, has_aux, name, p, batch=n)
        res = _checked_when_computed(res, name, "forward")
        return (res, aux) if has_aux else res

    return jac


def _batch_axis_last(a: Any) -> Any:
    """``a`` with its leading (batch) axis moved last: a view, as np.moveaxis gives,
    without its argument normalisation."""
    if type(a) is np.ndarray:
        nd = a.ndim
        return a.transpose(tuple(range(1, nd)) + (0,)) if nd > 1 else a
    return np.moveaxis(a, 0, -1)


def _forward_jacobian(touts: list[Any], od: TreeDef, leaves: list[Any], defs: list[TreeDef],
                      single: bool) -> Any:
    """The Jacobian blocks from the outputs' batched tangents (batch axis first, one
    element per input element): the batch axis moved last and split per input."""
    sizes = [math.prod(shape_of(x)) for x in leaves]
    n = sum(sizes)
    per_out = []
    for t in touts:
        oshape = shape_of(t)[1:]
        blocks, off = [], 0
        for x, k in zip(leaves, sizes, strict=True):
            part = t[off:off + k] if k != n else t
            xs = shape_of(x)
            if len(xs) == 1:  # move the batch axis last: a view, no copy
                block = _batch_axis_last(part)
            else:
                block = np.reshape(_batch_axis_last(np.reshape(part, (k,) + oshape)),
                                   oshape + xs)
            blocks.append(_result(block))
            off += k
        per_out.append(_distinct(blocks))
    return unflatten_jacobian(od, defs, per_out, single)


# ------------------------------------------------------------------ reverse mode
class _Recording:
    """``f`` evaluated on a tape: its outputs and the tape entries of its inputs. Run it
    and its ``pull`` with the collector paused (``_tracing``): once around both where
    they follow each other, since a nested pause costs a lock each way."""

    def __init__(self, f: Callable[..., Any], args: Sequence[Any], nums: tuple[int, ...],
                 has_aux: bool, what: str, keep_all: bool = False,
                 careful: bool = False) -> None:
        leaves, defs = _split_inputs(args, nums, what, f)
        tape = CarefulTape(new_level(), what) if careful else Tape(new_level(), what, keep_all)
        inputs = [tape.input(x) for x in leaves]
        # the inputs' entries, read now: f may write into its inputs, rebinding them
        in_index = [t._index for t in inputs]
        out = _run(f, tape, *_rebuild_args(args, nums, defs, inputs))
        out, aux = _split_aux(out, has_aux)
        self._set(tape, leaves, defs, in_index, out, aux, what)

    @classmethod
    def from_output(cls, tape: Tape, leaves: list[Any], defs: list[TreeDef],
                    inputs: list[Any], out: Any, what: str) -> _Recording:
        """A recording of a function already run on ``inputs`` (entries of ``tape``)."""
        rec = cls.__new__(cls)
        rec._set(tape, leaves, defs, [t._index for t in inputs], out, None, what)
        return rec

    def _set(self, tape: Tape, leaves: list[Any], defs: list[TreeDef], in_index: list[int],
             out: Any, aux: Any, what: str) -> None:
        self.tape, self.aux = tape, aux
        self.leaves, self.defs = leaves, defs
        self.in_index = in_index
        if isinstance(out, Tracer):  # one traced output: no tree to flatten
            self.outs, self.out_def = [out], LEAF
        else:
            self.outs, self.out_def = tree_flatten(out)
        for o in self.outs:
            _check_output(o, what, tape)
        self.values = [
            _result(o.primal) if type(o) is Traced and o._trace is tape else _result(o)
            for o in self.outs
        ]

    def pull(self, cotangents: list[Any], keep: bool) -> list[Any]:
        """Cotangents of the inputs' leaves given those of the outputs' leaves (a batch
        of them when they are ``Batched``)."""
        seeds: dict[int, Any] = {}
        for o, ct in zip(self.outs, cotangents, strict=True):
            if type(o) is Traced and o._trace is self.tape:
                i = o._index
                seeds[i] = ct if i not in seeds else seeds[i] + ct
        cts = self.tape.backward(seeds, keep=keep) if seeds else {}
        grads = []
        for j, x in zip(self.in_index, self.leaves, strict=True):
            g = cts[j] if seeds else None
            if g is None:
                g = _zeros(shape_of(x), x)
            elif type(g) is not np.ndarray and type(g) is not Batched \
                    and type(g) not in FLOAT64_SCALARS:
                g = _chunked_like(g, x)
            grads.append(g)
        return grads


def _seed_one(value: Any) -> Any:
    dt = _dtype_of(value)
    if type(value) is not Traced or type(value.primal) is not np.ndarray:
        p = foreign_array(value)
        if p is not None:  # a Dask or CuPy output: the seed in its library (lazy, on its device)
            return ones_as((), dt, p)  # (p may hold a batch: shape (), not p's)
    return 1.0 if dt == _F64 else np.ones((), dt)[()]


@overload
def value_and_grad(f: Callable[P, R], argnums: ArgNums = 0,
                   has_aux: Literal[False] = False, holomorphic: bool = False
                   ) -> Callable[P, tuple[R, Any]]: ...
@overload
def value_and_grad(f: Callable[P, tuple[R, Aux]], argnums: ArgNums = 0, *,
                   has_aux: Literal[True], holomorphic: bool = False
                   ) -> Callable[P, tuple[tuple[R, Aux], Any]]: ...
@overload
def value_and_grad(f: Callable[P, tuple[R, Aux]], argnums: ArgNums,
                   has_aux: Literal[True], holomorphic: bool = False
                   ) -> Callable[P, tuple[tuple[R, Aux], Any]]: ...
@overload
def value_and_grad(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
                   holomorphic: bool = False) -> Callable[P, Any]: ...


def value_and_grad(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
                   holomorphic: bool = False) -> Callable[P, Any]:
    """``(f(*args), gradient)`` by one reverse pass (a tape).

    ``f`` must return a real scalar, or with ``holomorphic=True`` a complex scalar of a
    holomorphic ``f`` (giving f'(z)). For complex arguments of a real ``f`` the result
    follows JAX's convention (``grad(lambda z: abs(z)**2)(z) == 2 * conj(z)``). Keyword
    arguments are passed to ``f`` and not differentiated.

    Args:
        f: the function; it must return a scalar (0-d) value. Arguments may be pytrees.
        argnums: the positional argument(s) to differentiate: an int, or a tuple of ints.
        has_aux: ``f`` returns ``(value, aux)``; ``aux`` is returned undifferentiated.
        holomorphic: ``f`` is holomorphic with a complex output: the complex derivative.
    Returns:
        A function with ``f``'s signature returning ``(value, gradient)``: the gradient has
        the shape and pytree structure of ``args[argnums]`` for an int ``argnums``, and is a
        tuple of such, one per argument, for a tuple. With ``has_aux=True``:
        ``((value, aux), gradient)``, as JAX's ``value_and_grad``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x, y: np.sum(x ** 2 * y)
        >>> v, g = dr.value_and_grad(f)(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
        >>> print(round(float(v), 6))
        19.0
        >>> print(g)
        [ 6. 16.]
    """
    return _value_and_grad(f, argnums, has_aux, holomorphic, "value_and_grad")


def _value_and_grad(f: Callable[..., Any], argnums: ArgNums, has_aux: bool,
                    holomorphic: bool, what: str) -> Callable[..., Any]:

    @functools.wraps(f)
    def vg(*args: Any, **kwargs: Any) -> Any:
        fk = functools.partial(f, **kwargs) if kwargs else f
        nums, single = _argnums(argnums, len(args))
        with _tracing:  # once, around the recording and the backward pass
            rec = _Recording(fk, args, nums, has_aux, what)
            grads = _scalar_gradient(rec, holomorphic)
            if not _finite(grads):
                grads = _careful_reverse(lambda r: _scalar_gradient(r, holomorphic), grads,
                                         fk, args, nums, has_aux, what, rec.values)
            grads = _checked_when_computed(grads, what)
        # the value as f returned it (a 0-d DataArray keeps its coordinates)
        value = rec.values[0] if rec.out_def is LEAF else tree_unflatten(rec.out_def, rec.values)
        grad = _group([_result(g) for g in grads], rec.defs, single)
        # JAX's convention: ((value, aux), gradient)
        return ((value, rec.aux), grad) if has_aux else (value, grad)

    return vg


def _scalar_gradient(rec: _Recording, holomorphic: bool) -> list[Any]:
    """The checks grad makes of its output, then the backward pass from it."""
    o = rec.outs[0] if len(rec.outs) == 1 else None
    if type(o) is Traced and type(o.primal) in FLOAT64_SCALARS and rec.out_def is LEAF:
        return rec.pull([1.0], keep=False)  # a real float64 scalar: nothing to check
    if not holomorphic and rec.outs and _dtype_of(rec.outs[0]).kind == "c":
        raise DualrevError("dualrev.grad needs a real-valued output; for a holomorphic "
                           "complex function pass holomorphic=True")
    # (a 0-d DataArray is a scalar too: xarray's reductions return one)
    if not wraps_one_array(rec.out_def) or shape_of(rec.outs[0]) != ():
        got = (f"shape {shape_of(rec.outs[0])}" if wraps_one_array(rec.out_def)
               else rec.out_def)
        raise DualrevError(
            f"dualrev.grad needs a function with a scalar output, got {got}; use "
            "dualrev.jacrev / dualrev.jacobian for vector outputs, or dualrev.vjp")
    return rec.pull([_seed_one(rec.outs[0])], keep=False)


@overload
def grad(f: Callable[P, Any], argnums: ArgNums = 0,
         has_aux: Literal[False] = False, holomorphic: bool = False
         ) -> Callable[P, Any]: ...
@overload
def grad(f: Callable[P, tuple[Any, Aux]], argnums: ArgNums = 0, *,
         has_aux: Literal[True], holomorphic: bool = False
         ) -> Callable[P, tuple[Any, Aux]]: ...
@overload
def grad(f: Callable[P, tuple[Any, Aux]], argnums: ArgNums,
         has_aux: Literal[True], holomorphic: bool = False
         ) -> Callable[P, tuple[Any, Aux]]: ...
@overload
def grad(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
         holomorphic: bool = False) -> Callable[P, Any]: ...


def grad(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
         holomorphic: bool = False) -> Callable[P, Any]:
    """Gradient of a scalar function by reverse mode (a tape); see value_and_grad.

    One recorded forward pass and one backward pass, whatever the number of inputs.
    ``f`` must return a real scalar (or, with ``holomorphic=True``, a complex scalar of a
    holomorphic ``f``); for vector outputs use ``jacrev``/``jacobian`` or ``vjp``.
    Keyword arguments are passed to ``f`` and not differentiated.

    Args:
        f: the function; it must return a scalar (0-d) value. Arguments may be pytrees.
        argnums: the positional argument(s) to differentiate: an int, or a tuple of ints.
        has_aux: ``f`` returns ``(value, aux)``; ``aux`` is returned undifferentiated.
        holomorphic: ``f`` is holomorphic with a complex output: the complex derivative.
    Returns:
        A function with ``f``'s signature returning the gradient: for an int ``argnums`` of
        the shape and pytree structure of ``args[argnums]`` (a dict of arrays for a dict
        argument); for a tuple, a tuple of such, one per argument. With ``has_aux=True``:
        ``(gradient, aux)``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x, y: np.sum(x ** 2 * y)
        >>> x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
        >>> print(dr.grad(f)(x, y))
        [ 6. 16.]
        >>> gx, gy = dr.grad(f, argnums=(0, 1))(x, y)
        >>> print(gy)
        [1. 4.]
        >>> print(dr.grad(lambda p: np.sum(p["w"] ** 2))({"w": x})["w"])
        [2. 4.]
    """
    vg = _value_and_grad(f, argnums, has_aux, holomorphic, "grad")

    @functools.wraps(f)
    def g(*args: Any, **kwargs: Any) -> Any:
        if has_aux:
            (_, aux), gr = vg(*args, **kwargs)
            return gr, aux
        return vg(*args, **kwargs)[1]

    return g


@overload
def vjp(f: Callable[..., R], *primals: Any,
        has_aux: Literal[False] = False) -> tuple[R, Callable[[Any], tuple[Any, ...]]]: ...
@overload
def vjp(f: Callable[..., tuple[R, Aux]], *primals: Any,
        has_aux: Literal[True]) -> tuple[R, Callable[[Any], tuple[Any, ...]], Aux]: ...
@overload
def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]: ...


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Reverse mode: ``(f(*primals), pullback)`` where ``pullback(ct)`` gives the
    cotangents of all ``primals`` (a tuple). The pullback may be called repeatedly.

    ``f`` runs once, recorded on a tape; each call of ``pullback`` plays the tape back
    from an output cotangent (a vector-Jacobian product ``ct @ J``). The primals are copied
    first, so rewriting them in place afterwards does not change the pullback.

    Args:
        f: the function; arguments and outputs may be pytrees.
        *primals: the positional arguments of ``f`` (all differentiated).
        has_aux: ``f`` returns ``(output, aux)``; ``aux`` is returned undifferentiated.
    Returns:
        ``(output, pullback)``, or ``(output, pullback, aux)`` with ``has_aux=True``.
        ``pullback(ct)`` takes a cotangent of the output's structure and shapes (floating
        point) and returns a tuple with one cotangent per primal, each of its primal's
        shape and structure.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> out, pullback = dr.vjp(lambda a, b: a * b, np.array([1.0, 2.0]),
        ...                        np.array([3.0, 4.0]))
        >>> print(out)
        [3. 8.]
        >>> ca, cb = pullback(np.ones(2))
        >>> print(ca, cb)
        [3. 4.] [1. 2.]
    """
    nums = tuple(range(len(primals)))
    # The pullback runs later: it must read the inputs as they were, not as the caller
    # may have rewritten them in place meanwhile.
    primals = tree_map(_private_copy, primals)
    with _tracing:
        rec = _Recording(f, primals, nums, has_aux, "vjp")
    out = tree_unflatten(rec.out_def, rec.values)

    def pullback(ct: Any) -> tuple[Any, ...]:
        cts, cdef = tree_flatten(ct)
        if cdef != rec.out_def:
            raise DualrevError(f"dualrev.vjp: the cotangent's structure {cdef} does not match "
                               f"the output's {rec.out_def}")
        cts = [_check_tangent(o, c) for o, c in zip(rec.outs, cts, strict=True)]
        with _tracing:
            grads = rec.pull(cts, keep=True)
            if not _finite(grads):
                grads = _careful_reverse(lambda r: r.pull(cts, keep=True), grads, f, primals,
                                         nums, has_aux, "vjp", rec.values)
            grads = _checked_when_computed(grads, "vjp")
        return _group([_result(g) for g in grads], rec.defs, False)

    return (out, pullback, rec.aux) if has_aux else (out, pullback)


def _private_copy(v: Any) -> Any:
    """An array argument of ``vjp`` copied (in its own library: a CuPy array on its
    device, a Dask array's lazy copy), so that writes into the caller's array after the
    call do not reach the pullback; anything else as it is."""
    if isinstance(v, np.ndarray) or (not isinstance(v, Tracer) and not isinstance(v, float)
                                     and foreign_array(v) is not None):
        return v.copy()
    return v


def _jacrev_from(rec: _Recording, single: bool, holomorphic: bool = False) -> Any:
    if not holomorphic:
        for o in rec.outs:
            if _dtype_of(o).kind == "c":
                raise DualrevError(
                    "dualrev.jacrev needs real-valued outputs (reverse mode pairs "
                    "cotangents as Re(ct * t), which sees only the real part); use "
                    "jacfwd, or holomorphic=True for a holomorphic function")
    shapes = [shape_of(o) for o in rec.outs]
    sizes = [math.prod(s) for s in shapes]
    if len(shapes) == 1 and shapes[0] == ():
        # A scalar output: an unbatched pass (the gradient) is the whole Jacobian.
        grads = rec.pull([_seed_one(rec.outs[0])], keep=False)
        return unflatten_jacobian(rec.out_def, rec.defs, [_distinct([_result(g) for g in grads])],
                                  single)
    m = sum(sizes)
    # all basis cotangents as one batch: the rules see one cotangent each
    btrace = BatchTrace(new_level(), m, "jacrev")
    try:
        grads = rec.pull([Batched(e, btrace) for e in _basis(rec.outs, shapes, sizes)],
                         keep=False)
    finally:
        btrace.finish()
    grads = [_unbatch(g, btrace) for g in grads]
    per_out, off = [], 0
    for s, k in zip(shapes, sizes, strict=True):
        blocks = []
        for g, x in zip(grads, rec.leaves, strict=True):
            part = g[off:off + k] if k != m else g
            want = s + shape_of(x)
            blocks.append(_result(part.reshape(want) if type(part) is np.ndarray
                                  else np.reshape(part, want)))
        per_out.append(_distinct(blocks))
        off += k
    return unflatten_jacobian(rec.out_def, rec.defs, per_out, single)


@overload
def jacrev(f: Callable[P, Any], argnums: ArgNums = 0,
           has_aux: Literal[False] = False, holomorphic: bool = False
           ) -> Callable[P, Any]: ...
@overload
def jacrev(f: Callable[P, tuple[Any, Aux]], argnums: ArgNums = 0, *,
           has_aux: Literal[True], holomorphic: bool = False
           ) -> Callable[P, tuple[Any, Aux]]: ...
@overload
def jacrev(f: Callable[P, tuple[Any, Aux]], argnums: ArgNums,
           has_aux: Literal[True], holomorphic: bool = False
           ) -> Callable[P, tuple[Any, Aux]]: ...
@overload
def jacrev(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable[P, Any]: ...


def jacrev(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable[P, Any]:
    """Jacobian by reverse mode: all output cotangents pulled back in one vectorised pass.

    Cheaper than ``jacfwd`` when the outputs have fewer elements than the inputs. Outputs
    must be real, or ``holomorphic=True`` for a holomorphic complex function. Keyword
    arguments are passed to ``f`` and not differentiated.

    Args:
        f: the function; arguments and outputs may be pytrees.
        argnums: the positional argument(s) to differentiate: an int, or a tuple of ints.
        has_aux: ``f`` returns ``(output, aux)``; ``aux`` is returned undifferentiated.
        holomorphic: ``f`` is holomorphic and complex-valued: the complex derivative.
    Returns:
        A function with ``f``'s signature returning the Jacobian, laid out as ``jacfwd``'s:
        per output leaf a block of shape ``out.shape + in.shape`` for an int ``argnums``
        (a pytree of blocks for a pytree argument), a tuple of blocks for a tuple; a pytree
        output gives that pytree of them. With ``has_aux=True``: ``(jacobian, aux)``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
        >>> Jx, Jy = dr.jacrev(lambda x, y: x * y, argnums=(0, 1))(x, y)
        >>> print(Jx)
        [[3. 0.]
         [0. 4.]]
        >>> dr.jacrev(lambda x: np.outer(x, x))(x).shape
        (2, 2, 2)
    """

    @functools.wraps(f)
    def jac(*args: Any, **kwargs: Any) -> Any:
        fk = functools.partial(f, **kwargs) if kwargs else f
        nums, single = _argnums(argnums, len(args))
        with _tracing:
            rec = _Recording(fk, args, nums, has_aux, "jacrev")
            res = _jacrev_from(rec, single, holomorphic)
            if not _finite(res):
                res = _careful_reverse(lambda r: _jacrev_from(r, single, holomorphic), res,
                                       fk, args, nums, has_aux, "jacrev", rec.values)
            res = _checked_when_computed(res, "jacrev")
        return (res, rec.aux) if has_aux else res

    return jac


@overload
def jacobian(f: Callable[P, Any], argnums: ArgNums = 0,
             has_aux: Literal[False] = False, holomorphic: bool = False
             ) -> Callable[P, Any]: ...
@overload
def jacobian(f: Callable[P, tuple[Any, Aux]], argnums: ArgNums = 0, *,
             has_aux: Literal[True], holomorphic: bool = False
             ) -> Callable[P, tuple[Any, Aux]]: ...
@overload
def jacobian(f: Callable[P, tuple[Any, Aux]], argnums: ArgNums,
             has_aux: Literal[True], holomorphic: bool = False
             ) -> Callable[P, tuple[Any, Aux]]: ...
@overload
def jacobian(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
             holomorphic: bool = False) -> Callable[P, Any]: ...


def jacobian(f: Callable[P, Any], argnums: ArgNums = 0, has_aux: bool = False,
             holomorphic: bool = False) -> Callable[P, Any]:
    """Jacobian by the cheaper mode: reverse when outputs are no more than inputs
    (counting elements), forward otherwise; always reverse for complex inputs of a
    real-valued function (forward mode needs ``holomorphic=True`` for them).

    ``f`` runs once, on a tape that keeps every value; the basis cotangents are then pulled
    back, or the basis tangents pushed forward along the same tape (a ``custom_vjp``
    function by its transposed backward rule). Keyword arguments are passed to ``f`` and
    not differentiated.

    Args:
        f: the function; arguments and outputs may be pytrees.
        argnums: the positional argument(s) to differentiate: an int, or a tuple of ints.
        has_aux: ``f`` returns ``(output, aux)``; ``aux`` is returned undifferentiated.
        holomorphic: ``f`` is holomorphic with complex inputs: the complex derivative.
    Returns:
        A function with ``f``'s signature returning the Jacobian, laid out as ``jacfwd``'s
        and ``jacrev``'s: per output leaf a block of shape ``out.shape + in.shape`` for an
        int ``argnums``, a tuple of blocks for a tuple, inside the output's pytree. With
        ``has_aux=True``: ``(jacobian, aux)``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> J = dr.jacobian(lambda x: {"s": np.sum(x), "p": 2 * x})(np.array([1.0, 2.0]))
        >>> print(J["s"])
        [1. 1.]
        >>> print(J["p"])
        [[2. 0.]
         [0. 2.]]
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        res, values, _ = once(args, kwargs, False)
        jac = _checked_when_computed(res[0] if has_aux else res, "jacobian")
        res = (jac, res[1]) if has_aux else jac
        if values is not None and not _finite(jac):
            if _foreign_leaf(jac):  # (no careful replay of another library's arrays)
                _warn_nonfinite("jacobian", None, "foreign")
                return res
            try:
                res2, values2, tape = once(args, kwargs, True)
                ok = (values2 is not None and _same_values(values, values2)
                      and _agrees_where_finite(jac, res2[0] if has_aux else res2))
            except Exception:  # noqa: BLE001  (the careful replay is only a second look)
                ok = False
            if not ok:
                _warn_nonfinite("jacobian", None, "reverse")
                return res
            if not _finite(res2[0] if has_aux else res2):
                _warn_nonfinite("jacobian", tape, "reverse")
            return res2
        return res

    def once(args: Sequence[Any], kwargs: dict[str, Any], careful: bool) -> Any:
        # f runs once, on a tape that keeps everything: then either the basis cotangents
        # are pulled back, or the basis tangents are pushed forward along the same tape
        fk = functools.partial(f, **kwargs) if kwargs else f
        nums, single = _argnums(argnums, len(args))
        rec = _Recording(fk, args, nums, has_aux, "jacobian", keep_all=True, careful=careful)
        n_in = sum(math.prod(shape_of(x)) for x in rec.leaves)
        n_out = sum(math.prod(shape_of(o)) for o in rec.outs)
        complex_out = any(_dtype_of(o).kind == "c" for o in rec.outs)
        complex_in = any(_dtype_of(x).kind == "c" for x in rec.leaves)
        if (holomorphic or not complex_out) and (n_out <= n_in or
                                                 (complex_in and not holomorphic)):
            res = _jacrev_from(rec, single, holomorphic)
            return ((res, rec.aux) if has_aux else res), rec.values, rec.tape
        _check_fwd_inputs(rec.leaves, holomorphic)
        btrace = BatchTrace(new_level(), n_in, "jacobian")
        try:
            ts = rec.tape.push({j: Batched(e, btrace) for j, e in
                                zip(rec.in_index, _basis(rec.leaves), strict=True)})
        finally:
            btrace.finish()
        touts = [_unbatch(t, btrace) for t in _pushed_outputs(rec, ts)]
        res = _forward_jacobian(touts, rec.out_def, rec.leaves, rec.defs, single)
        return ((res, rec.aux) if has_aux else res), rec.values, rec.tape

    @functools.wraps(f)
    def jac(*args: Any, **kwargs: Any) -> Any:
        with _tracing:
            return run(*args, **kwargs)

    return jac


# ------------------------------------------------------------------ non-finite results
def _finite(tree: Any) -> bool:
    """Whether every leaf of a transform's result is finite: the one check the normal
    path pays (one pass over the result, none per operation)."""
    if type(tree) is list and len(tree) == 1:
        return all_finite(tree[0])
    return all(all_finite(v) for v in tree_flatten(tree)[0])


_EAGER = (np.ndarray, float, np.float64)


def _checked_when_computed(tree: Any, what: str, mode: str = "reverse") -> Any:
    """``tree`` with each lazy leaf (a Dask array) checked for nan/inf when it is computed:
    ``_finite`` cannot look at it without computing the whole graph during the transform
    call, so each block warns (``NonFiniteDerivativeWarning``, cause ``"lazy"``) as it is
    made. A tree without lazy leaves comes back as it is (one pass over its leaves)."""
    if type(tree) in _EAGER or type(tree) is list and all(type(v) in _EAGER for v in tree):
        return tree  # the common cases, without flattening
    leaves, tdef = tree_flatten(tree)
    if not any(is_lazy(v) for v in leaves):
        return tree
    return tree_unflatten(tdef, [v.map_blocks(_warn_nonfinite_block, what, mode, dtype=v.dtype,
                                              meta=np.empty((0,) * v.ndim, v.dtype))
                                 if is_lazy(v) else v for v in leaves])


def _warn_nonfinite_block(block: Any, what: str, mode: str) -> Any:
    """One computed block of a lazy derivative, warning if it holds nan/inf."""
    if block.dtype.kind in "fc" and not np.isfinite(block).all():
        warnings.warn(NonFiniteDerivativeWarning(what, None, None, "lazy", mode),
                      stacklevel=2)
    return block


def _plain(v: Any) -> Any:
    return concrete(v)  # (a dr.replay recording relies on the value: an "equal" guard)


def _same_values(a: list[Any], b: list[Any]) -> bool:
    """Whether two runs of ``f`` gave the same outputs, bit for bit (nan included): a
    careful replay of a function that draws random numbers must not pass off another
    sample's derivative as this one's."""
    if len(a) != len(b):
        return False
    try:
        return all(np.array_equal(asarray_keep(_plain(x)), asarray_keep(_plain(y)),
                                  equal_nan=True) for x, y in zip(a, b, strict=True))
    except TypeError:
        return False


def _agrees_where_finite(old: Any, new: Any) -> bool:
    """Whether the careful result ``new`` equals ``old`` wherever ``old`` was finite:
    strong zeros only replace elements no seed reaches (0 or nan before), so anything
    else is a bug of the replay, and the first result then stands."""
    a, b = tree_flatten(old)[0], tree_flatten(new)[0]
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        x, y = asarray_keep(_plain(x)), asarray_keep(_plain(y))  # (CuPy: on its device)
        if x.shape != y.shape:
            return False
        keep = np.isfinite(x)
        if not np.allclose(y[keep], x[keep], rtol=1e-9, atol=1e-300):
            return False
    return True


def _foreign_leaf(tree: Any) -> bool:
    """Whether a result holds another library's array (CuPy, ...): the careful replay,
    which builds its masks and probes in NumPy, is not run for it."""
    return any(foreign_array(v) is not None for v in tree_flatten(tree)[0])


def _warn_nonfinite(what: str, tape: Any, mode: str) -> None:
    """Warn that ``what``'s result holds nan/inf, naming the operation that made it and
    the user's line when the careful ``tape`` found them; under dualrev.debug_nans,
    raise ``NonFiniteError`` instead."""
    if config.DEBUG_NANS:  # (read once a result is found non-finite, never per operation)
        error = derivative_error(what, tape, mode)
        if error is not None:
            raise error
    culprit = getattr(tape, "culprit", None)
    if culprit is None:
        warnings.warn(NonFiniteDerivativeWarning(what, None, None, None, mode), stacklevel=4)
        return
    name, entry, zero = culprit
    w = NonFiniteDerivativeWarning(what, name, tape.where(entry), zero, tape.mode)
    hit = tape.lines.get(entry)
    if hit is None:
        warnings.warn(w, stacklevel=4)
    else:  # reported at the user's line that called the primitive
        warnings.warn_explicit(w, NonFiniteDerivativeWarning, hit[0], hit[1])


def _careful_reverse(run: Callable[[_Recording], Any], old: Any, f: Callable[..., Any],
                     args: Sequence[Any], nums: tuple[int, ...], has_aux: bool, what: str,
                     values: list[Any]) -> Any:
    """A reverse-mode result ``old`` held nan/inf: record ``f`` again on a careful tape,
    run the same backward pass (``run``) with strong zeros, and warn if it is still not
    finite. The old result stands when the replay differs (``f`` is not deterministic)."""
    if _foreign_leaf(old):
        _warn_nonfinite(what, None, "foreign")
        return old
    try:
        rec = _Recording(f, args, nums, has_aux, what, careful=True)
        same = _same_values(values, rec.values)
    except Exception:  # noqa: BLE001  (the careful replay is only a second look)
        same = False
    if not same:
        _warn_nonfinite(what, None, "reverse")
        return old
    try:
        new = run(rec)
        ok = _agrees_where_finite(old, new)
    except Exception:  # noqa: BLE001  (a rule that cannot take the strong zeros)
        ok = False
    if not ok:
        _warn_nonfinite(what, None, "reverse")
        return old
    if not _finite(new):
        _warn_nonfinite(what, rec.tape, "reverse")
    return new


def _pushed_outputs(rec: _Recording, ts: list[Any]) -> list[Any]:
    """The outputs' tangents after ``Tape.push`` (zeros for an output no tangent reached)."""
    out = []
    for o in rec.outs:
        t = ts[o._index] if type(o) is Traced and o._trace is rec.tape else None
        out.append(_zeros(shape_of(o), o) if t is None else t)
    return out


def _careful_forward(seed: Callable[[Any, list[int]], dict[int, Any]],
                     build: Callable[[_Recording, list[Any], Any], Any], old: Any,
                     f: Callable[..., Any], args: Sequence[Any], nums: tuple[int, ...],
                     has_aux: bool, what: str, values: list[Any], batch: int = 0) -> Any:
    """A forward-mode result ``old`` held nan/inf: record ``f`` on a careful tape and
    push the same tangents (``seed``, given a batch trace when ``batch``) along it with
    strong zeros; ``build`` makes the result from the pushed tangents."""
    if _foreign_leaf(old):
        _warn_nonfinite(what, None, "foreign")
        return old
    btrace = BatchTrace(new_level(), batch, what) if batch else None
    try:
        try:
            rec = _Recording(f, args, nums, has_aux, what, careful=True)
            same = _same_values(values, rec.values)
            ts = rec.tape.push(seed(btrace, rec.in_index)) if same else None
        except Exception:  # noqa: BLE001  (f differs the second time, or raises)
            ts = None
        try:
            new = None if ts is None else build(rec, ts, btrace)
            if new is not None and not _agrees_where_finite(old, new):
                new = None
        except Exception:  # noqa: BLE001
            new = None
        if new is None:
            _warn_nonfinite(what, None, "forward")
            return old
    finally:
        if btrace is not None:
            btrace.finish()
    if not _finite(new):
        _warn_nonfinite(what, rec.tape, "forward")
    return new


# ------------------------------------------------------------------ second order
def hessian(f: Callable[P, Any], argnums: ArgNums = 0,
            holomorphic: bool = False) -> Callable[P, Any]:
    """Hessian by forward-over-reverse, shape ``in.shape + in.shape`` for a scalar ``f``
    (``out.shape + in.shape + in.shape`` in general); complex inputs need a holomorphic
    ``f`` and ``holomorphic=True``, as in JAX.

    ``hessian(f) == jacfwd(jacrev(f))``, with the same ``argnums`` for both. Keyword
    arguments are passed to ``f`` and not differentiated.

    Args:
        f: the function (usually scalar-valued); arguments may be pytrees.
        argnums: the positional argument(s) to differentiate: an int, or a tuple of ints.
        holomorphic: ``f`` is holomorphic with complex inputs: the complex derivative.
    Returns:
        A function with ``f``'s signature returning the Hessian: for an int ``argnums`` an
        array of shape ``out.shape + in.shape + in.shape``; for a tuple, a tuple of tuples
        ``H[i][j]`` of shape ``out.shape + in_i.shape + in_j.shape``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> print(dr.hessian(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0])))
        [[ 6.  0.]
         [ 0. 12.]]
    """
    return _jacobian_forward(jacrev(f, argnums, holomorphic=holomorphic), argnums, False,
                             holomorphic, "hessian")


def hvp(f: Callable[..., Any], argnums: ArgNums = 0) -> Callable[..., Any]:
    """``hvp(f)(*args, v)``: the Hessian of scalar ``f`` times ``v``, by forward-over-reverse,
    without forming the Hessian. ``v`` matches ``args[argnums]`` (a tuple for tuple argnums).

    The cost is that of a few gradient evaluations, whatever the size of the input. Keyword
    arguments are passed to ``f`` and not differentiated.

    Args:
        f: a scalar-valued function.
        argnums: the positional argument(s) the Hessian is taken in: an int, or a tuple.
    Returns:
        A function of ``(*args, v)`` (``f``'s arguments, then the vector) returning
        ``H @ v``: of the shape of ``args[argnums]`` for an int ``argnums``; for a tuple,
        ``v`` is a tuple with one vector per argument and the result a tuple likewise.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: np.sum(x ** 3)
        >>> print(dr.hvp(f)(np.array([1.0, 2.0]), np.array([1.0, 1.0])))
        [ 6. 12.]
    """

    @functools.wraps(f)  # (__wrapped__: dualrev.replay checks f's closure and globals)
    def h(*args_and_v: Any, **kwargs: Any) -> Any:
        *args, v = args_and_v
        nums, single = _argnums(argnums, len(args))
        g = grad(f, argnums)

        def g_of(*xs: Any) -> Any:
            new = list(args)
            for i, x in zip(nums, xs, strict=True):
                new[i] = x
            return g(*new, **kwargs)

        primals = tuple(args[i] for i in nums)
        tangents = (v,) if single else tuple(v)
        out = jvp(g_of, primals, tangents)[1]
        if single and type(out) is not np.ndarray:
            return _chunked_like(out, primals[0])  # (a Dask input's chunks)
        return out

    return h


def jvp_batched(f: Callable[..., Any], x: Any, tangents: Any) -> tuple[Any, Any]:
    """``(f(x), T)`` where ``T[b] = J(x) @ tangents[b]``: a batch of JVPs in one forward
    pass (``tangents`` has shape ``(B,) + x.shape``). A result holding nan/inf is looked
    at again as ``jacfwd``'s is (strong zeros), and a ``NonFiniteDerivativeWarning`` says
    where it stays.

    Example:
        >>> import numpy as np
        >>> from dualrev.transforms import jvp_batched
        >>> y, T = jvp_batched(lambda x: x ** 2, np.array([1.0, 3.0]), np.eye(2))
        >>> print(T)
        [[2. 0.]
         [0. 6.]]
    """
    return _jvp_batched(f, x, tangents, "jvp_batched")


def _jvp_batched(f: Callable[..., Any], x: Any, tangents: Any, what: str) -> tuple[Any, Any]:
    x = _as_input(x)
    if shape_of(tangents)[1:] != shape_of(x):
        raise DualrevError(f"dualrev.{what}: tangents must have shape (B,) + x.shape")
    batch = shape_of(tangents)[0]
    btrace = BatchTrace(new_level(), batch, what)
    try:
        out, trace = _forward(f, (x,), (0,), [x], [LEAF], [Batched(tangents, btrace)], what)
    finally:
        btrace.finish()
    p, t, od = _unpack_forward(out, trace, what)
    if od.kind != "leaf":
        raise DualrevError(f"dualrev.{what}: f must return a single array, got {od}")
    res = _unbatch(t[0], btrace)
    if not _finite(res):
        res = _careful_forward(
            lambda bt, ins: {ins[0]: Batched(tangents, bt)},
            lambda rec, ts, bt: _unbatch(_pushed_outputs(rec, ts)[0], bt),
            res, f, (x,), (0,), False, what, p, batch=batch)
    return p[0], _checked_when_computed(res, what, "forward")


def vjp_batched(f: Callable[..., Any], x: Any, cotangents: Any) -> tuple[Any, Any]:
    """``(f(x), C)`` where ``C[b] = cotangents[b] @ J(x)``: a batch of VJPs, ``f``
    recorded once and its tape played back once with a batch of cotangents (as
    ``jacrev`` does with the basis). ``cotangents`` has shape ``(B,) + f(x).shape`` and
    is cast to the output's precision; ``C`` has shape ``(B,) + x.shape``. ``f`` must
    return one real array. A result holding nan/inf is looked at again as ``jacrev``'s is.

    Example:
        >>> import numpy as np
        >>> from dualrev.transforms import vjp_batched
        >>> y, C = vjp_batched(lambda x: x[1:] * x[:-1], np.array([1.0, 2.0, 3.0]),
        ...                    np.array([[1.0, 0.0], [0.0, 1.0]]))
        >>> print(C)
        [[2. 1. 0.]
         [0. 3. 2.]]
    """
    return _vjp_batched(f, x, cotangents, "vjp_batched")


def _vjp_batched(f: Callable[..., Any], x: Any, cotangents: Any,
                 what: str) -> tuple[Any, Any]:
    x = _as_input(x)
    with _tracing:
        rec = _Recording(f, (x,), (0,), False, what)
        if rec.out_def.kind != "leaf":
            raise DualrevError(f"dualrev.{what}: f must return a single array, got "
                               f"{rec.out_def}")
        o = rec.outs[0]
        if _dtype_of(o).kind == "c":
            raise DualrevError(
                f"dualrev.{what}: reverse mode needs a real-valued output (it pairs "
                "cotangents as Re(ct * t), which sees only the real part); use forward "
                "mode for a complex output")
        if shape_of(cotangents)[1:] != shape_of(o):
            raise DualrevError(f"dualrev.{what}: cotangents must have shape (B,) + "
                               f"f(x).shape = (B,) + {shape_of(o)}, got "
                               f"{shape_of(cotangents)}")
        cts = np.asarray(cotangents, dtype=_basis_dtype(o))
        batch = cts.shape[0]

        def run(r: _Recording) -> Any:
            btrace = BatchTrace(new_level(), batch, what)
            try:
                g = r.pull([Batched(cts, btrace)], keep=False)[0]
            finally:
                btrace.finish()
            return _unbatch(g, btrace)

        res = run(rec)
        if not _finite(res):
            res = _careful_reverse(run, res, f, (x,), (0,), False, what, rec.values)
        res = _checked_when_computed(res, what)
    return rec.values[0], res


class Dependencies:
    """What ``dependencies`` found: ``pattern``, a boolean ``scipy.sparse.csr_matrix``
    with one row per output element and one column per input element (each output leaf
    and each differentiated input leaf flattened in C order, leaves one after another);
    ``value``, the output at the given point; ``out_shapes`` and ``in_shapes``, the
    leaves' shapes; ``notes``, what the pattern relies on (decisions taken on values at
    the given point, primitives without a pattern rule), one line each with the user's
    line; ``structural`` is True when no decision on values was taken."""

    __slots__ = ("pattern", "value", "out_shapes", "in_shapes", "notes", "out_tree",
                 "in_defs")

    def __init__(self, pattern: Any, value: Any, out_shapes: list[tuple[int, ...]],
                 in_shapes: list[tuple[int, ...]], notes: list[str], out_tree: TreeDef,
                 in_defs: list[TreeDef]) -> None:
        self.pattern = pattern
        self.value = value
        self.out_shapes = out_shapes
        self.in_shapes = in_shapes
        self.notes = notes
        self.out_tree = out_tree
        self.in_defs = in_defs

    @property
    def structural(self) -> bool:
        """Whether the pattern holds for every input (no decision taken on values)."""
        return not any(n.startswith(("a value", "a branch")) for n in self.notes)


def dependencies(f: Callable[..., Any], args: Sequence[Any],
                 argnums: ArgNums = 0) -> Dependencies:
    """Structural sparsity detection: run ``f(*args)`` once with the differentiated
    arguments as ``Pattern`` values (dualrev/sparsity.py) and read which input elements
    each output element depends on. Transforms run inside ``f`` nest above the
    detection (the pattern of ``grad(f)`` is the Hessian's)."""
    nums, _ = _argnums(argnums, len(args))
    leaves, defs = _split_inputs(args, nums)
    shapes = [shape_of(x) for x in leaves]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    trace = SparsityTrace(new_level(), int(sum(sizes)))
    offset = 0
    inputs = []
    for x, size in zip(leaves, sizes, strict=True):
        inputs.append(trace.input(x, offset))
        offset += size
    with _tracing:
        out = _run(f, trace, *_rebuild_args(args, nums, defs, inputs))
    outs, od = tree_flatten(out)
    blocks = []
    values = []
    out_shapes = []
    for o in outs:
        if type(o) is Pattern and o._trace is trace:
            blocks.append(o.tangent)
            values.append(o.primal)
        else:
            if isinstance(o, Tracer):
                raise EscapedTracerError("a sparsity detection", "its output")
            v = np.asarray(o)
            blocks.append(pattern_rules.empty(v.size, trace.n))
            values.append(o)
        out_shapes.append(shape_of(values[-1]))
    pattern = (sp.vstack(blocks, format="csr") if len(blocks) != 1 else blocks[0]
               ) if blocks else pattern_rules.empty(0, trace.n)
    return Dependencies(sp.csr_matrix(pattern, dtype=bool), tree_unflatten(od, values),
                        out_shapes, shapes, list(trace.notes), od, defs)


# ------------------------------------------------------------------ batching
AxisSpec = Any  # an int, None, or a pytree prefix of them


def _same_aux(a: Any, b: Any) -> bool:
    try:
        return a is b or bool(a == b)
    except ValueError:  # (arrays)
        return False


def _prefix_axes(spec: AxisSpec, tree: Any, what: str) -> list[Any]:
    """One axis (int or None) per leaf of ``tree``, from ``spec``: an int or None applies
    to the whole subtree, a container must match the tree's container (a prefix of its
    structure), as JAX reads in_axes/out_axes."""
    if spec is None or isinstance(spec, (int, np.integer)):
        return [spec] * len(tree_flatten(tree)[0])
    if isinstance(spec, dict) and isinstance(tree, dict) and sorted(spec) == sorted(tree):
        return [a for k in sorted(tree) for a in _prefix_axes(spec[k], tree[k], what)]
    if (isinstance(spec, (tuple, list)) and isinstance(tree, (tuple, list))
            and len(spec) == len(tree)):
        return [a for s, t in zip(spec, tree, strict=True) for a in _prefix_axes(s, t, what)]
    if type(spec) is type(tree) and (node := node_children(tree)) is not None:
        # a registered node's prefix: the same type and aux data (as JAX), an axis spec
        # per child
        kids, aux = node_children(spec)
        if len(kids) == len(node[0]) and _same_aux(aux, node[1]):
            return [a for s, t in zip(kids, node[0], strict=True)
                    for a in _prefix_axes(s, t, what)]
    raise DualrevError(
        f"dualrev.vmap: {what}={spec!r} does not match the structure "
        f"{tree_flatten(tree)[1]}: give an int or None for a whole argument, or a "
        "container of the same kind and length (dict: the same keys) as the value")


def _refuse_mapped(f: Any, args: Sequence[Any], tdef: TreeDef, leaves: list[Any],
                   k: int) -> NoReturn:
    """Refuse leaf ``k`` of ``(args, kwargs)`` (structure ``tdef``), an object vmap cannot
    map: name the argument, the place in its tree, and how to register its type."""
    path = leaf_paths(tdef)[k][0]
    # "[0][i]..." for a positional argument, "[1]['key']..." for a keyword one
    head, _, rest = path[4:].partition("]")
    if path.startswith("[0]"):
        i = int(head)
        name = _argument_name(f, i)
        where = f"argument {i}" + (f" (`{name}`)" if name else "")
        at = f"{name or f'args[{i}]'}{rest}"
    else:
        where = f"keyword argument {head.strip(chr(39))}"
        at = f"{head.strip(chr(39))}{rest}"
    raise DualrevError(
        f"dualrev.vmap: cannot map {where} of {_function_name(f)}"
        + (f", at {at}" if rest else "") + ": " + not_a_container(
            leaves[k], instead="give it in_axes=None (not mapped)" if path.startswith("[0]")
            else "pass it positionally with in_axes=None (keyword arguments are mapped)"))


def vmap(f: Callable[P, Any], in_axes: AxisSpec = 0, out_axes: AxisSpec = 0,
         axis_size: int | None = None) -> Callable[P, Any]:
    """Map ``f`` over an axis of its arguments, vectorised: ``vmap(f)(xs)[i] ==
    f(xs[i])``, computed in one pass in which each primitive's batching rule moves the
    batch axis through (JAX's ``vmap``). ``f`` is ordinary NumPy code, as for every other
    transform.

    ``vmap`` nests with itself and with every transform in any order — ``vmap(grad(f))``
    (per-example gradients), ``grad(lambda xs: np.sum(vmap(f)(xs)))``, ``jacfwd(vmap(f))``,
    ``vmap(jacrev(f))``, ``vmap(hessian(f))``, ``vmap(vmap(f))`` — with no perturbation
    confusion: each call takes its own nesting level.

    **How it works.** Inside the mapped function each mapped argument is a ``Batched`` value
    that reports the shape of *one* element (``x.shape``, ``len(x)``, ``x.ndim`` are per
    element, so the code reads as it would for one example). Every NumPy call on it reaches a
    catalogue primitive, whose batching rule (``Primitive.defbatch``, see
    [extending.md](extending.md)) computes the whole batch at once: elementwise entries align
    the batch axis themselves, reductions and shape functions shift their axes past it,
    matmul/einsum/solve/the decompositions treat it as one more stack axis. A primitive with
    no rule is mapped by a Python loop over the batch (correct, slower: today
    ``scipy.linalg.solve_triangular``, ``lu_factor`` and ``sqrtm``, which SciPy itself loops
    over anyway). Plain functions of the values (``np.argmax``, ``np.argsort``,
    ``np.searchsorted``) run once per element; indices they return are batched too and select
    per element (``x[np.argmax(x)]``, ``np.sort``, ``np.interp``). ``jacfwd``, ``jacrev`` and
    ``hessian`` use the same machinery internally: they push (pull) all basis tangents
    (cotangents) through as one batch.

    **What refuses, and why.** A batched value holds a different value per element, so
    anything that needs *one* plain value raises ``dualrev.errors.BatchedValueError`` (a
    ``DualrevError``) with a message saying what to write instead:

    - ``if``/``while``/``bool()`` on a batched value (``if np.sum(x) > 0:``) — Python takes
      one branch for the whole batch. Write ``np.where(cond, a, b)``; or keep the value that
      decides the branch out of the mapped arguments (``in_axes=None``).
    - Results whose size depends on the values: ``np.nonzero``, one-argument ``np.where``,
      ``x[mask]`` with a batched boolean mask, ``np.linalg.lstsq``'s residuals when the rank
      differs between elements. Use ``np.where(mask, x, 0)`` and reductions with ``where=``.
    - ``float(x)``, ``int(x)``, ``np.asarray(x)`` of a traced value, and
      ``dualrev.strip(x)`` of a batched one (``dualrev.stop_gradient(x)`` works: it stays
      batched).
    - A value traced by a ``vmap`` that has returned (stored in a list or a global) raises
      ``EscapedTracerError`` when used.

    Everything that refuses without ``vmap`` (a function without a derivative rule, in-place
    writes) refuses under it too, with the same error. Wrong specifications raise
    ``DualrevError``: a list for ``in_axes``, a tuple of the wrong length, an axis out of
    range, mapped axes of different sizes, no mapped argument without ``axis_size``.

    Args:
        f: the function to map; it may take and return pytrees (tuples, lists, dicts).
        in_axes: which axis of each positional argument is mapped: an int (every argument
            over that axis, negative counting from the end), ``None`` (not mapped: the same
            value for every element), or a tuple with one entry per positional argument,
            each an int, ``None``, or a container matching that argument's pytree (a
            *prefix*: an int or ``None`` stands for a whole subtree, a dict must have the
            argument's keys). A list is refused, as in JAX. Keyword arguments are always
            mapped over axis 0.
        out_axes: where the batch axis goes in each output: an int (negative counting from
            the end of the output, batch axis included), ``None`` (the output is the same
            for every element and comes back once, unbatched; an output that does depend on
            the mapped arguments raises), or a pytree prefix of the output.
        axis_size: the batch size; needed only when no argument is mapped, checked against
            the mapped axes otherwise.
    Returns:
        A function with the signature of ``f``. Each output has the batch axis inserted at
        its ``out_axes`` position: an output of shape ``s`` per element becomes ``(n,) + s``
        for ``out_axes=0``. Outputs that do not depend on the mapped arguments are broadcast
        to the batch (fresh, writable arrays).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> def loss(w, x, y):
        ...     return np.sum((np.tanh(x @ w) - y) ** 2)
        >>> w = np.full(3, 0.1)
        >>> xs, ys = np.ones((8, 4, 3)), np.zeros((8, 4))   # 8 batches of 4 examples
        >>> # per-batch losses and per-batch gradients, w shared (in_axes=None)
        >>> losses = dr.vmap(loss, in_axes=(None, 0, 0))(w, xs, ys)
        >>> grads = dr.vmap(dr.grad(loss), in_axes=(None, 0, 0))(w, xs, ys)
        >>> losses.shape, grads.shape
        ((8,), (8, 3))
        >>> np.allclose(grads[0], dr.grad(loss)(w, xs[0], ys[0]))
        True
        >>> # a pytree prefix: one entry per argument, a dict spec for the dict argument
        >>> params = {"w": w, "b": np.zeros(8)}          # w shared, one b per element
        >>> f = lambda p, x: np.tanh(x @ p["w"] + p["b"])
        >>> dr.vmap(f, in_axes=({"w": None, "b": 0}, 0))(params, xs).shape
        (8, 4)
        >>> # out_axes: the batch axis last
        >>> dr.vmap(np.cumsum, out_axes=-1)(np.ones((5, 3))).shape
        (3, 5)
        >>> print(dr.vmap(lambda x: x[np.argmax(x)])(np.array([[1.0, 3.0], [5.0, 4.0]])))
        [3. 5.]
    """

    @functools.wraps(f)
    def mapped(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_axes, list):
            raise DualrevError("dualrev.vmap: in_axes must be an int, None or a tuple "
                               "(a list would be read as one pytree prefix, as in JAX)")
        spec = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        if len(spec) != len(args):
            raise DualrevError(f"dualrev.vmap: in_axes has {len(spec)} entries for "
                               f"{len(args)} positional argument(s)")
        leaves, tdef = tree_flatten((tuple(args), kwargs))
        axes = _prefix_axes((tuple(spec), 0), (tuple(args), kwargs), "in_axes")
        sizes = set()
        moved = []
        for x, ax in zip(leaves, axes, strict=True):
            if ax is None:
                moved.append(x)
                continue
            if type(x) in (list, tuple) or not hasattr(x, "shape") and not isinstance(x, Tracer):
                x = np.asarray(x)
                if x.dtype.kind == "O":
                    _refuse_mapped(f, args, tdef, leaves, len(moved))
            nd = len(shape_of(x))
            if not -nd <= ax < nd:
                raise DualrevError(f"dualrev.vmap: in_axes {ax} is out of range for an "
                                   f"argument of shape {shape_of(x)}")
            ax %= nd
            sizes.add(shape_of(x)[ax])
            moved.append(np.moveaxis(x, ax, 0) if ax else x)
        if axis_size is not None:
            sizes.add(int(axis_size))
        if len(sizes) != 1:
            raise DualrevError(
                "dualrev.vmap: " + ("no argument is mapped; pass axis_size=" if not sizes
                                    else f"the mapped axes have different sizes {sorted(sizes)}"))
        trace = BatchTrace(new_level(), sizes.pop(), "vmap")
        new = [plain_input(x) if ax is None else Batched(x, trace)
               for x, ax in zip(moved, axes, strict=True)]
        new_args, new_kwargs = tree_unflatten(tdef, new)
        with _tracing:
            out = _run(f, trace, *new_args, **new_kwargs)
        outs, odef = tree_flatten(out)
        oaxes = _prefix_axes(out_axes, out, "out_axes")
        res = []
        for o, ax in zip(outs, oaxes, strict=True):
            if isinstance(o, Tracer) and o._trace is not trace and type(o._trace) in _FINISHED:
                raise EscapedTracerError(o._trace.what, "the output of the function given "
                                                        "to vmap")
            if ax is None:
                if type(o) is Batched and o._trace is trace:
                    raise DualrevError("dualrev.vmap: out_axes=None for an output that "
                                       "depends on the mapped arguments")
                res.append(o)
                continue
            v = _unbatch(o, trace)
            nd = len(shape_of(v))
            if not -nd <= ax < nd:
                raise DualrevError(f"dualrev.vmap: out_axes {ax} is out of range for an "
                                   f"output of {nd} axes (batch axis included)")
            v = np.moveaxis(v, 0, ax % nd) if ax % nd else v
            if type(v) is np.ndarray and not v.flags.writeable:
                v = v.copy()  # an output the same for every element was broadcast
            res.append(_result(v))
        return tree_unflatten(odef, res)

    return mapped
