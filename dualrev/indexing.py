"""Indexing: ``x[idx]`` (gather_p) and its transpose, the scatter_p-add that builds its
cotangent, and ``update_p``, the write ``x[idx] = v``. Repeated integer indices
accumulate, as the chain rule requires.

These are the primitives a traced value's own ``__getitem__`` and its writes run
(tracer.py, at.py), so they sit in layer 2, below the traces and the catalogue (which
re-exports them from catalogue/indexing.py, with ``np.take``); see docs/design.md,
2026-12-06, "The traced values' methods reach their code by imports".

Both primitives take ``nb``, the number of leading axes the index does not touch: that
is how a batch passes through them (their batching rule adds one).

An index computed from batched values under ``vmap`` (``x[np.argmax(x)]``, the order of
``np.sort``) differs per batch element, so it cannot be a static parameter: there the
index is an argument of ``take_along`` (``np.take_along_axis``) and of its transpose
``put_along`` (a scatter-add along an axis), whose batching rules line the index up with
the batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .compile import register_inline
from .errors import BatchedValueError, DualrevError, ForeignArrayError
from .inplace import is_scalar_index, note_view
from .levels import is_batched, materialize, on_plain_values
from .pattern_rules import DENSE_LIMIT, DenseBlockError, along_axis, by_positions, scattered
from .primitive import (
    FUNCTION_HANDLERS,
    Primitive,
    Tracer,
    as_array,
    asarray_keep,
    bind,
    dtype_of,
    foreign_array,
    ndim_of,
    shape_of,
    zeros_as,
)

_BASIC = (int, np.integer, slice, type(None), type(Ellipsis))


def _refuse_foreign_index(i: Any) -> None:
    raise ForeignArrayError(
        i, "an index array made from values of another array library (np.argsort, "
        "np.sort, np.median, np.percentile, a mask x[x > 0]), which dualrev keeps as a "
        "plain NumPy array,",
        "Index with NumPy arrays (positions known in advance), or write a mask as "
        "np.where(mask, x, 0)")


def canonical_index(idx: Any) -> tuple[Any, ...]:
    """``idx`` as a tuple whose array parts are plain integer or boolean ndarrays."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        if (type(i) is not np.ndarray and not isinstance(i, (Tracer, *_BASIC))
                and not hasattr(type(i), "__dask_graph__") and foreign_array(i) is not None):
            _refuse_foreign_index(i)  # (a CuPy index; a Dask one is refused below)
        if isinstance(i, Tracer) and i._staged:
            i = i.freeze()  # a dualrev.replay recording's index: guarded, baked in
        if isinstance(i, Tracer):
            raise DualrevError(
                "dualrev: a traced (differentiable) value was used as an index. Indices "
                "must be plain integers or boolean masks; a comparison such as x > 0 "
                "already gives a plain mask."
            )
        if hasattr(type(i), "__dask_graph__"):
            raise DualrevError(
                "dualrev: a Dask array used as an index of a traced value would be computed "
                "here, in full, while the function is traced. Select with "
                "np.where(mask, v, 0.0) (a mask), or compute a small index first "
                "(np.asarray(idx))."
            )
        if isinstance(i, (list, np.ndarray)) or (
            not isinstance(i, _BASIC) and hasattr(i, "__array__")
        ):
            if hasattr(type(i), "__dask_graph__"):
                raise DualrevError(
                    "dualrev: a Dask array used as an index of a traced value would be "
                    "computed here, in full, while the function is traced. Select with "
                    "np.where(mask, v, 0.0) (a mask), or compute a small index first "
                    "(np.asarray(idx))."
                )
            a = np.asarray(i)
            if a.dtype.kind not in "iub":
                if a.size == 0:
                    a = a.astype(np.intp)
                else:
                    raise IndexError("arrays used as indices must be of integer or boolean type")
            i = a
        out.append(i)
    return tuple(out)


def is_basic(idx: tuple[Any, ...]) -> bool:
    return all(isinstance(i, _BASIC) for i in idx)


def _positions(shape: tuple[int, ...], idx: tuple[Any, ...]) -> np.ndarray:
    """The flat positions that ``idx`` selects from an array of ``shape``."""
    return np.arange(int(np.prod(shape)), dtype=np.intp).reshape(shape)[idx]


def _gather_impl(x: Any, idx: tuple[Any, ...], nb: int) -> Any:
    tx = type(x)
    if tx is np.ndarray:
        if nb == 0:
            return x[idx]
    elif tx is float:  # grad's seed, pulled back through a write into a 0-d copy
        return np.float64(x)[idx]
    elif nb == 0 and (is_basic(idx) or not hasattr(tx, "__dask_graph__")):
        return x[idx]
    if is_basic(idx):
        return x[(slice(None),) * nb + idx]
    xs = np.shape(x)
    pos = _positions(xs[nb:], idx)
    flat = np.reshape(x, xs[:nb] + (math.prod(xs[nb:]),))
    if tx is not np.ndarray and hasattr(tx, "__dask_graph__"):
        # Dask indexes one axis by one flat list of positions ("nd fancy indexing" is not
        # supported: the VJP of np.diag's scatter gathers (arange, arange))
        return np.reshape(flat[..., pos.ravel()], xs[:nb] + pos.shape)
    return flat[..., pos]


def _scatter_impl(v: Any, idx: tuple[Any, ...], nb: int, shape: tuple[int, ...]) -> Any:
    if hasattr(type(v), "__array_function__") and not isinstance(v, (np.ndarray, np.generic)):
        return _scatter_duck(v, idx, nb, shape)
    v = np.asarray(v)
    batch = v.shape[:nb]
    # float32/complex64 stay so (as NumPy's own results do); integers become float64
    dt = v.dtype if v.dtype.kind in "fc" else np.result_type(v, np.float64)
    z = np.zeros(batch + tuple(shape), dtype=dt)
    if is_basic(idx):
        z[(slice(None),) * nb + idx] = v
        return z
    pos = _positions(tuple(shape), idx)
    zf = z.reshape(batch + (math.prod(shape),))  # not -1: the batch may be empty
    np.add.at(zf, (slice(None),) * nb + (pos,), v)
    return zf.reshape(z.shape)


# NumPy's own, bound at import: while a transform runs np.zeros_like is dualrev's buffer
# maker (dualrev/buffers.py); np.zeros(like=) would hand that maker to the other
# library's __array_function__, which does not know it
_np_zeros_like = np.zeros_like


def _scatter_duck(v: Any, idx: tuple[Any, ...], nb: int, shape: tuple[int, ...]) -> Any:
    """The scatter of another library's array (a Dask or CuPy cotangent: a gather's VJP)
    made by that library, so it stays lazy or on its device: a write into its own zeros
    (np.add.at has no NEP 18 counterpart). An advanced index writes the flat positions
    once each (Dask writes through one index array), repeated positions summed first.
    No product with a 0/1 selection matrix: a nan or inf in one element would spread to
    every other through 0 * nan."""
    dt = v.dtype if v.dtype.kind in "fc" else np.dtype(np.float64)
    v = v.astype(dt) if v.dtype != dt else v
    batch = tuple(v.shape[:nb])
    lead = (slice(None),) * nb
    if is_basic(idx) and not any(i is None for i in idx):
        z = _np_zeros_like(v, shape=batch + tuple(shape))
        z[lead + idx] = v
        return z
    pos = _positions(tuple(shape), idx).ravel()
    flat = np.reshape(v, batch + (pos.size,))
    uniq, first, counts = np.unique(pos, return_index=True, return_counts=True)
    if pos.size and counts.max() > 1:
        parts = []
        for u in uniq:
            ks = np.flatnonzero(pos == u)
            part = flat[lead + (int(ks[0]),)]
            for k in ks[1:]:
                part = part + flat[lead + (int(k),)]
            parts.append(part)
        vals = np.stack(parts, axis=-1)
    else:
        vals = flat[lead + (first,)]
    z = _np_zeros_like(v, shape=batch + (math.prod(shape),))
    z[lead + (uniq,)] = vals
    return np.reshape(z, batch + tuple(shape))


gather_p = Primitive("getitem", _gather_impl)
scatter_p = Primitive("scatter_add", _scatter_impl)
# Dependency patterns (structural sparsity detection, dualrev/pattern_rules.py): a gather
# copies elements, which the primitive itself applied to positions says (its index is a
# parameter: a plain one, or one a detection read at the given point, with a note); a
# scatter-add sums every value sent to one element.
gather_p.defpattern(by_positions(gather_p, data=(0,)))
scatter_p.defpattern(scattered(lambda out_shape, v, idx, nb, shape: _gather_impl(
    np.arange(math.prod(out_shape), dtype=np.int64).reshape(out_shape), idx, nb)))

# Replayed programs (dualrev/compile.py) index inline and scatter without the impl's frame
def _gather_source(out: str, args: list[str], params: dict[str, Any], seen: list[Any],
                   name: Any) -> str | None:
    nb, idx = params["nb"], params["idx"]
    if seen[0].type is float or (nb and not is_basic(idx)):
        return None
    return f"{out} = {args[0]}[{name((slice(None),) * nb + idx)}]"


def _scatter_source(out: str, args: list[str], params: dict[str, Any], seen: list[Any],
                    name: Any) -> str | None:
    nb, idx = params["nb"], params["idx"]
    if seen[0].type is not np.ndarray or seen[0].dtype.kind not in "fc" or not is_basic(idx):
        return None
    shape = seen[0].shape[:nb] + tuple(params["shape"])
    return (f"{out} = zeros({name(shape)}, {name(seen[0].dtype)}); "
            f"{out}[{name((slice(None),) * nb + idx)}] = {args[0]}")


def _scatter_into(target: str, args: list[str], params: dict[str, Any], seen: list[Any],
                  name: Any) -> str | None:
    # add(a, scatter(v)) as a[idx] += v: the backward pass's own accumulation (vjp_add)
    nb, idx = params["nb"], params["idx"]
    s = seen[0]
    if not is_basic(idx) or not (s.type in (float, np.float64) or (
            s.type is np.ndarray and s.dtype.kind == "f")):
        return None
    return f"{target}[{name((slice(None),) * nb + idx)}] += {args[0]}"


register_inline(gather_p, _gather_source)
register_inline(scatter_p, _scatter_source, fresh=True, accumulate=_scatter_into)

gather_p.defjvp(lambda g, ans, x, idx, nb: bind(gather_p, (g,), {"idx": idx, "nb": nb}))
gather_p.defvjp(lambda g, ans, x, idx, nb: bind(
    scatter_p, (g,), {"idx": idx, "nb": nb, "shape": shape_of(x)[nb:]}), saves="x.shape")
scatter_p.defjvp(lambda g, ans, v, idx, nb, shape: bind(
    scatter_p, (g,), {"idx": idx, "nb": nb, "shape": shape}))
scatter_p.defvjp(lambda g, ans, v, idx, nb, shape: bind(gather_p, (g,), {"idx": idx, "nb": nb}),
               saves="")
gather_p.defbatch(lambda args, batched, idx, nb: bind(gather_p, args, {"idx": idx, "nb": nb + 1}))
scatter_p.defbatch(lambda args, batched, idx, nb, shape: bind(
    scatter_p, args, {"idx": idx, "nb": nb + 1, "shape": shape}))


_F64 = np.dtype(np.float64)


def _gather_vjp_add(acc: Any, g: Any, ans: Any, x: Any, idx: tuple[Any, ...], nb: int) -> Any:
    # Scatter the cotangent straight into the tape's buffer for x: a loop reading x[i]
    # element by element then costs one buffer, not one x-sized array per element.
    # Only plain float64 cotangents take this path (traced, batched, complex: the rule).
    tg = type(g)
    if nb or not (tg is float or tg is np.float64 or (tg is np.ndarray and g.dtype == _F64)):
        return NotImplemented
    if acc is None:
        acc = np.zeros(shape_of(x))
    elif acc.dtype != _F64:
        return NotImplemented
    if (len(idx) == 1 and type(idx[0]) is int) or is_basic(idx):
        acc[idx] += g
    else:
        np.add.at(acc, idx, g)
    return acc


gather_p.vjp_add = _gather_vjp_add


# ------------------------------------------------------------------ writes
def _update_impl(v: Any, x: Any, idx: tuple[Any, ...], nb: int, inplace: bool = False,
                 tangent_inplace: bool = False) -> Any:
    x = asarray_keep(x)
    if type(x) is np.ndarray and type(v) is not np.ndarray and foreign_array(v) is not None:
        _refuse_foreign_write(x, v)
    dt = (np.result_type(x, v) if type(x) is np.ndarray else  # (Dask, CuPy: by dtypes)
          np.result_type(x.dtype, v if type(v) in (float, int, complex) else dtype_of(v)))
    # inplace: the caller proved that nothing else holds x (see at.functional_set)
    out = x if inplace and dt == x.dtype else x.astype(dt, copy=True)
    out[(slice(None),) * nb + idx] = v
    return out


def _refuse_foreign_write(x: np.ndarray, v: Any) -> None:
    raise ForeignArrayError(
        v, f"writing it into a NumPy array of shape {x.shape} (a buffer made with np.zeros)",
        "Make the buffer in the value's library: np.zeros_like(w) of a differentiated w "
        "(or of data of that library) gives one whose writes are recorded")


# x with v written at idx (a basic index, or one array of distinct flat positions into
# a vector), as ``x[idx] = v`` leaves x: v has the shape of x[idx]. Its rules read only
# the index and the cotangent, so the tape keeps nothing per write that is as big as x
# (a scatter and a select kept a buffer-sized mask per write: memory quadratic in the
# steps of a loop that fills a buffer row by row).
update_p = Primitive("set", _update_impl)
update_p.defpattern(by_positions(update_p, data=(0, 1)))  # copies v's elements into x's


def _update_jvp(tangents: Any, ans: Any, v: Any, x: Any, idx: tuple[Any, ...],
                nb: int, inplace: bool = False, tangent_inplace: bool = False) -> Any:
    tv, tx = tangents
    if tv is None and tx is None:
        return None
    if tx is None:
        tx = zeros_as(shape_of(x), dtype_of(ans) if dtype_of(ans).kind in "fc" else float, ans)
        tangent_inplace = True
    # tangent_inplace: the caller proved that nothing else holds x's tangent
    return bind(update_p, (0.0 if tv is None else tv, tx),
                {"idx": idx, "nb": nb, "inplace": tangent_inplace})


def _update_vjp_v(g: Any, ans: Any, v: Any, x: Any, idx: tuple[Any, ...], nb: int,
                  inplace: bool = False, tangent_inplace: bool = False) -> Any:
    # a copy, not a view of g: the x rule may then clear g[idx] in place (vjp_add)
    c = bind(gather_p, (g,), {"idx": idx, "nb": nb})
    if type(c) is not np.ndarray and not isinstance(c, Tracer) and foreign_array(c) is not None:
        return c.copy()  # (Dask has no np.copy: it would compute; its method is lazy)
    return np.copy(c)


def _update_vjp_x(g: Any, ans: Any, v: Any, x: Any, idx: tuple[Any, ...], nb: int,
                  inplace: bool = False, tangent_inplace: bool = False) -> Any:
    return bind(update_p, (0.0, g), {"idx": idx, "nb": nb})


def _update_vjp_add(acc: Any, g: Any, ans: Any, v: Any, x: Any, idx: tuple[Any, ...],
                    nb: int, inplace: bool = False, tangent_inplace: bool = False,
                    g_owned: bool = False) -> Any:
    # x's cotangent is g with g[idx] cleared. Where g is the pass's own buffer (nobody
    # else holds it) it is cleared in place and handed on: a loop of writes into one
    # buffer then costs a write's size per step in the backward pass, not the buffer's.
    if nb or type(g) is not np.ndarray or g.dtype != _F64:
        return NotImplemented
    if acc is None:
        if g_owned and g.flags.writeable:
            g[idx] = 0.0
            return g
        acc = g.copy()
        acc[idx] = 0.0
        return acc
    if acc.dtype != _F64 or acc.shape != g.shape:
        return NotImplemented
    keep = acc[idx].copy()
    acc += g
    acc[idx] = keep
    return acc


update_p.defjvp_joint(_update_jvp)
update_p.defvjp(_update_vjp_v, _update_vjp_x, saves="")
update_p.vjp_add = _update_vjp_add
update_p.vjp_add_arg = 1
update_p.vjp_add_owned = True


def _update_batch(args: list[Any], batched: tuple[bool, ...], idx: tuple[Any, ...],
                  nb: int, inplace: bool = False, tangent_inplace: bool = False) -> Any:
    v, x = args
    if not batched[1]:  # every element writes into its own copy of x
        x = materialize([x, v], (False, True))[0]
        inplace = False
    # an unbatched v broadcasts against the batch of x[idx] as it stands
    return bind(update_p, (v, x), {"idx": idx, "nb": nb + 1, "inplace": inplace})


update_p.defbatch(_update_batch)


# ------------------------------------------------------------------ batched indices
def along_axis_index(indices: Any, axis: int) -> tuple[Any, ...]:
    """The fancy index that picks ``indices`` along ``axis`` (take_along_axis's rule)."""
    indices = asarray_keep(indices)  # (computed on a device, CuPy's: kept there)
    nd = indices.ndim
    idx: list[Any] = []
    for d in range(nd):
        if d == axis:
            idx.append(indices)
        else:
            shape = [1] * nd
            shape[d] = indices.shape[d]
            idx.append(np.arange(indices.shape[d]).reshape(shape))
    return tuple(idx)


def _take_along_impl(x: Any, idx: Any, axis: int, nb: int = 0) -> Any:
    if nb == 0:
        return np.take_along_axis(x, idx, axis)
    # an index shared by the nb leading (batch) axes of x: gathered as gather_p gathers a
    # plain index under a batch, so that the result has the layout that NumPy's
    # x[..., positions] gives there (a staged index must replay a plain one's layout)
    xs = np.shape(x)
    pos = _positions(xs[nb:], along_axis_index(idx, axis - nb))
    return np.reshape(x, xs[:nb] + (math.prod(xs[nb:]),))[..., pos]


def _put_along_impl(v: Any, idx: Any, axis: int, shape: tuple[int, ...]) -> Any:
    v = np.asarray(v)
    dt = v.dtype if v.dtype.kind in "fc" else np.result_type(v, np.float64)
    z = np.zeros(shape, dtype=dt)
    np.add.at(z, along_axis_index(idx, axis), v)
    return z


def _along_batch(prim: Primitive) -> Any:
    def rule(args: list[Any], batched: tuple[bool, ...], axis: int, **params: Any) -> Any:
        nb = params.pop("nb", 0)
        if prim is take_along and not batched[1]:
            # the index is the same for every batch element: it stays unbatched (nb),
            # and the gather takes the layout gather_p gives a plain index there
            return bind(prim, args, {"axis": axis + 1, "nb": nb + 1})
        args = materialize(args, batched)
        if nb:  # the index now differs per element: spread it over the older batch axes
            x, idx = args
            ishape = shape_of(idx)
            idx = np.broadcast_to(np.reshape(idx, ishape[:1] + (1,) * nb + ishape[1:]),
                                  shape_of(x)[:1 + nb] + ishape[1:])
            args = [x, idx]
        if "shape" in params:
            params["shape"] = shape_of(args[0])[:1] + params["shape"]
        return bind(prim, args, {"axis": axis + 1, **params})
    return rule


# x of idx's shape but along axis; v of idx's shape (the callers broadcast them so)
take_along = Primitive("take_along_axis", _take_along_impl)
put_along = Primitive("put_along_axis_add", _put_along_impl)
# Their patterns: with a constant index, the gather's copies and the scatter's sums; with
# an index computed from the input (np.sort's order), which another input may change,
# each output element depends on the whole line along the axis (along_axis)
take_along.defpattern(along_axis(by_positions(take_along, data=(0,))))
put_along.defpattern(along_axis(scattered(
    lambda out_shape, v, idx, axis, shape: np.take_along_axis(
        np.arange(math.prod(out_shape), dtype=np.int64).reshape(out_shape), idx, axis))))
def _take_along_params(axis: int, nb: int) -> dict[str, Any]:
    return {"axis": axis, "nb": nb} if nb else {"axis": axis}


def _take_along_vjp(g: Any, ans: Any, x: Any, idx: Any, axis: int, nb: int = 0) -> Any:
    if nb:  # put_along takes the index of g's shape
        idx = np.broadcast_to(idx, shape_of(g))
    return bind(put_along, (g, idx), {"axis": axis, "shape": shape_of(x)})


take_along.defjvp(lambda g, ans, x, idx, axis, nb=0: bind(
    take_along, (g, idx), _take_along_params(axis, nb)), None)
take_along.defvjp(_take_along_vjp, None, saves=("x.shape idx", ""))
put_along.defjvp(lambda g, ans, v, idx, axis, shape: bind(
    put_along, (g, idx), {"axis": axis, "shape": shape}), None)
put_along.defvjp(lambda g, ans, v, idx, axis, shape: bind(take_along, (g, idx), {"axis": axis}),
                 None, saves=("idx", ""))
take_along.defbatch(_along_batch(take_along))
put_along.defbatch(_along_batch(put_along))


def _batched_parts(idx: tuple[Any, ...]) -> list[int]:
    """Positions of the index arrays in ``idx`` that are batched (under vmap)."""
    out = []
    for k, i in enumerate(idx):
        if isinstance(i, Tracer) and is_batched(i):
            if dtype_of(i).kind not in "iu":
                raise BatchedValueError(
                    "a batched boolean mask used as an index (the size of x[mask] would "
                    "differ per element; write np.where(mask, x, 0))"
                    if dtype_of(i).kind == "b" else "a batched non-integer index")
            out.append(k)
    return out


def _reshape(x: Any, shape: tuple[int, ...]) -> Any:
    """``np.reshape`` without recording a view (shape.py's handler, from the registry)."""
    h = FUNCTION_HANDLERS[np.reshape]
    return getattr(h, "__wrapped__", h)(x, shape)


def batched_positions(xs: tuple[int, ...], idx: tuple[Any, ...], parts: list[int]) -> Any:
    """The flat positions in an array of shape ``xs`` that ``idx`` selects, whose index
    arrays at ``parts`` are batched: computed per element, batched like them."""

    def positions(*arrays: Any) -> np.ndarray:
        full = list(idx)
        for k, a in zip(parts, arrays, strict=True):
            full[k] = np.asarray(a)
        return _positions(xs, canonical_index(tuple(full)))

    return on_plain_values(positions, [idx[k] for k in parts], name="an index")


def _gather_batched(x: Any, idx: tuple[Any, ...], parts: list[int]) -> Any:
    """``x[idx]`` where the index arrays at ``parts`` are batched: the flat positions
    each element selects (computed per element), gathered from the flattened ``x``."""
    xs = shape_of(x)
    pos = batched_positions(xs, idx, parts)
    rs = shape_of(pos)
    # the internal reshapes are not views of x (only the result may be, below)
    flat = bind(take_along, (_reshape(x, (math.prod(xs),)),
                             _reshape(pos, (math.prod(rs),))), {"axis": 0})
    out = _reshape(flat, rs)
    if rs and isinstance(x, Tracer) and all(shape_of(idx[k]) == () for k in parts) and all(
            isinstance(i, _BASIC) for k, i in enumerate(idx) if k not in parts):
        # an integer per element and a basic rest: NumPy's x[i] is a view of x (a write
        # into it is a write into x at that element's i)
        note_view(x, out, idx)
    return out


def _dependent_parts(idx: tuple[Any, ...]) -> list[int]:
    """Positions of the integer index arrays in ``idx`` computed from the input of a
    structural sparsity detection (their values may differ for another input)."""
    return [k for k, i in enumerate(idx) if isinstance(i, Tracer)
            and hasattr(type(i), "derived") and dtype_of(i).kind in "iu"]


def dependent_index(idx: Any) -> tuple[Any, Any]:
    """``(source, plain)``: the first integer index array of ``idx`` computed from the
    input of a structural sparsity detection (None if there is none) and ``idx`` with
    every such part replaced by its value at the given point (not read as a decision:
    the callers make the result depend on every position instead)."""
    if not isinstance(idx, (Tracer, list, tuple)) or (
            type(idx) is tuple and not any(isinstance(i, (Tracer, list)) for i in idx)):
        return None, idx  # (the common case, first: no traced part)
    tup = stack_index_lists(idx if isinstance(idx, tuple) else (idx,))
    parts = _dependent_parts(tup)
    if not parts:
        return None, idx
    plain = tuple(np.asarray(i.primal) if k in parts else i for k, i in enumerate(tup))
    return tup[parts[0]], plain


def _gather_dependent(x: Any, idx: tuple[Any, ...], parts: list[int]) -> Any:
    """``x[idx]`` in a structural sparsity detection, where the integer index arrays at
    ``parts`` were computed from the input (``x[np.argmax(x)]``, ``np.take(x, order)``):
    for another input they may select any element, so instead of reading them as
    constants (a pattern that would hold at this point only), the flat positions they
    select at this point are gathered by ``take_along`` with a dependent index, whose
    pattern makes each selected element depend on every element those parts could
    select: the whole line along the axes they index, where every part of ``idx``
    indexes one axis (integers, slices, integer arrays: the other parts' coordinates do
    not depend on the values), else the whole of ``x``."""
    xs = shape_of(x)
    full = list(idx)
    for k in parts:
        full[k] = np.asarray(idx[k].primal)
    key = canonical_index(tuple(full))
    pos = _positions(xs, key)
    source = idx[parts[0]]
    simple = len(key) <= len(xs) and all(
        isinstance(i, (int, np.integer, slice)) or (
            isinstance(i, np.ndarray) and i.dtype.kind in "iu") for i in key)
    if simple:
        # x as rows (its other axes) by columns (the axes the dependent parts index): a
        # constant gather of each selected element's row, then a dependent one of its
        # column, along which it may be any element
        axes = list(parts)
        kept = [a for a in range(len(xs)) if a not in axes]
        coords = np.unravel_index(pos.ravel(), xs)
        row = (np.ravel_multi_index([coords[a] for a in kept], [xs[a] for a in kept])
               if kept else np.zeros(pos.size, dtype=np.intp))
        col = np.ravel_multi_index([coords[a] for a in axes], [xs[a] for a in axes])
        line = math.prod(xs[a] for a in axes)
        if pos.size * line > DENSE_LIMIT:
            # refused before the selected rows (pos.size x line values) are built
            raise DenseBlockError(pos.size, line, "a selection at positions computed from "
                                  "the input (np.sort's order, x[np.argmax(x)], "
                                  "u[i + offset])")
        table = _reshape(np.transpose(x, kept + axes) if kept else x,
                         (math.prod(xs[a] for a in kept), line))
        rows_of = bind(gather_p, (table,), {"idx": (row,), "nb": 0})
        flat = bind(take_along, (rows_of, source.derived(col[:, None])), {"axis": 1})
    else:
        flat = bind(take_along, (_reshape(x, (math.prod(xs),)), source.derived(pos.ravel())),
                    {"axis": 0})
    out = _reshape(flat, pos.shape)
    if pos.shape and isinstance(x, Tracer) and all(shape_of(idx[k]) == () for k in parts) and all(
            isinstance(i, _BASIC) for k, i in enumerate(idx) if k not in parts):
        note_view(x, out, idx)  # as NumPy's x[i] with an integer i: a view of x
    return out


def stack_index_lists(idx: Any) -> Any:
    """``idx`` with each list holding a traced value (``[np.argmax(x), 0]`` under
    ``vmap``) stacked into one array, as NumPy makes an index array of a list."""
    def one(i: Any) -> Any:
        if type(i) is list and any(isinstance(e, Tracer) for e in i):
            return np.stack(i)
        return i
    return tuple(one(i) for i in idx) if type(idx) is tuple else one(idx)


def getitem(x: Any, idx: Any) -> Any:
    """``x[idx]`` for a traced ``x``: basic slices, integer arrays, boolean masks.
    (Handlers also take plain array-likes through it: a list becomes an array.)"""
    x = as_array(x)
    if type(idx) is int or type(idx) is slice:
        key = (idx,)
        out = bind(gather_p, (x,), {"idx": key, "nb": 0})
        # A basic index gives a view in NumPy (a scalar, a copy, for an integer into a
        # vector): record it, for writes through it (dualrev/inplace.py)
        if type(out) is not float and isinstance(x, Tracer) and (
                type(idx) is slice or shape_of(out)):
            note_view(x, out, key)
        return out
    if type(idx) is list or (type(idx) is tuple and any(type(i) is list for i in idx)):
        idx = stack_index_lists(idx)
    if isinstance(idx, Tracer) or (isinstance(idx, tuple)
                                   and any(isinstance(i, Tracer) for i in idx)):
        tup = idx if isinstance(idx, tuple) else (idx,)
        parts = _batched_parts(tup)
        if parts:
            return _gather_batched(x, tup, parts)
        parts = _dependent_parts(tup)
        if parts:
            return _gather_dependent(x, tup, parts)
    key = canonical_index(idx)
    out = bind(gather_p, (x,), {"idx": key, "nb": 0})
    if isinstance(x, Tracer) and is_basic(key) and not is_scalar_index(key, ndim_of(x)):
        note_view(x, out, key)
    return out

