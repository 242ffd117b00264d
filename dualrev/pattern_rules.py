"""Dependency patterns: which input elements each element of a value depends on, and
the rules by which each family of primitives maps its arguments' patterns to its
output's (structural sparsity detection, dualrev/sparsity.py).

A pattern is a boolean ``scipy.sparse.csr_matrix`` with one row per element of the
value (C order) and one column per element of the detection's input: row ``i`` holds
the inputs element ``i`` may depend on, for *every* input, not only at the point
where the function runs. Rules therefore never read an argument's values that depend
on the input (a value that is zero here may be non-zero elsewhere); they may read
constants' values (a constant matrix's zeros are zeros everywhere).

A rule is ``rule(deps, ans, *primals, **params)`` (``Primitive.defpattern``):
``deps[i]`` is argument ``i``'s pattern, or None where the argument is a constant
(a pattern with no entries is a value computed from the input through operations
without derivative: its zeros are not structural). It returns the output's pattern or
None. The families below state their pattern once:

- ``elementwise``: element ``i`` of the output depends on element ``i`` of each
  argument after broadcasting (the default for elementwise primitives);
- ``by_positions(prim)``: data movement (reshape, transpose, indexing, concatenate,
  pad, ...): the primitive itself applied to arrays of positions says where each
  output element comes from;
- ``reduction()``: an output element depends on every element it reduces (sum, prod,
  max, min: which element is the extremum depends on the values);
- ``whole_axis()``: each output element depends on every element of its line along
  an axis (an FFT along an axis);
- ``prefix()``: element ``k`` of a line depends on elements ``0..k`` (cumsum, cumprod);
- ``along_axis(exact)``: a gather or scatter along an axis, exact with a constant index
  and on whole lines with one computed from the input (np.sort's order, which another
  input changes);
- ``select``: ``np.where``, exact with a constant condition, both branches otherwise;
  ``product``: elementwise, a constant factor's zeros structural;
- ``dense``: every output element depends on every input element the arguments
  depend on, the fallback for a primitive without a rule (correct, but dense).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from .errors import DualrevError
from .primitive import normalize_axis, shape_of

Deps = sp.csr_matrix

#: the most entries a dense block (``dense``) may have: a bigger one raises
#: ``DenseBlockError`` instead of exhausting memory
DENSE_LIMIT = 50_000_000


class DenseBlockError(DualrevError):
    """A primitive without a pattern rule met values too big for its dense fallback, or
    a rule whose pattern is dense by nature (a sort's whole lines, a cumulative sum's
    prefixes) would hold more than ``DENSE_LIMIT`` entries."""

    def __init__(self, m: int, k: int, rule: str | None = None) -> None:
        if rule is None:
            super().__init__(
                f"dualrev: sparsity detection: an operation without a pattern rule "
                f"would make {m} outputs each depend on {k} inputs (a dense block "
                f"of {m * k} entries); give its primitive a rule "
                "(Primitive.defpattern) or pass the pattern yourself")
        else:
            super().__init__(
                f"dualrev: sparsity detection: the pattern of {rule} would hold "
                f"{m * k} entries ({m} outputs; more than pattern_rules.DENSE_LIMIT = "
                f"{DENSE_LIMIT}): its outputs depend on whole lines of its input. Apply it "
                "to smaller blocks; where an index computed from the values picks one of a "
                "few neighbours (u[i + np.sign(v)]), select between them with "
                "np.where(v > 0, u[2:], u[:-2]) (each element then depends on both); or "
                "pass the pattern yourself (sparsity=)")
PatternRule = Callable[..., "Deps | None"]


def size_of(x: Any) -> int:
    """The number of elements of the (plain) value ``x``."""
    return int(np.prod(shape_of(x), dtype=np.int64))


def empty(size: int, n: int) -> Deps:
    """The pattern of ``size`` elements that depend on none of ``n`` inputs."""
    return sp.csr_matrix((size, n), dtype=bool)


def identity(n: int) -> Deps:
    """The pattern of the ``n`` inputs themselves."""
    return sp.identity(n, dtype=bool, format="csr")


def union(a: Deps | None, b: Deps | None) -> Deps | None:
    """Element by element, the inputs either pattern holds (same number of rows)."""
    if a is None or not a.nnz:
        return b if b is not None else a
    if b is None or not b.nnz:
        return a
    return (a + b).tocsr()


def columns(deps: Sequence[Deps | None]) -> int:
    """The number of inputs of the patterns in ``deps`` (at least one is not None)."""
    for d in deps:
        if d is not None:
            return d.shape[1]
    raise ValueError("no argument has a pattern")


def rows(d: Deps, index: np.ndarray) -> Deps:
    """The pattern whose row ``k`` is row ``index[k]`` of ``d``; a negative index gives
    an empty row (an element that depends on no input)."""
    index = np.asarray(index, dtype=np.int64).ravel()
    if index.size == d.shape[0] and (index.size == 0 or (
            index[0] == 0 and np.array_equal(index, np.arange(index.size)))):
        return d
    missing = index < 0
    if missing.any():
        # row 0 of the stacked matrix is empty: the missing elements read it
        d = sp.vstack([empty(1, d.shape[1]), d], format="csr")
        index = index + 1
        index[missing] = 0
    return d[index]


def broadcast(d: Deps, shape: tuple[int, ...], to: tuple[int, ...]) -> Deps:
    """The pattern of a value of ``shape`` broadcast to the shape ``to``."""
    if tuple(shape) == tuple(to):
        return d
    size = int(np.prod(shape, dtype=np.int64))
    pos = np.broadcast_to(np.arange(size, dtype=np.int64).reshape(shape), to)
    return rows(d, pos)


def linear(L: sp.spmatrix, d: Deps) -> Deps:
    """The pattern of ``L @ v`` for a value ``v`` of pattern ``d`` and a boolean
    (structural) matrix ``L``: element ``i`` depends on what the elements ``j`` with
    ``L[i, j]`` depend on."""
    return sp.csr_matrix(L.astype(bool) @ d, dtype=bool)


def elementwise(deps: Sequence[Deps | None], ans: Any, *primals: Any,
                **params: Any) -> Deps | None:
    """Elementwise primitives: output element ``i`` depends on element ``i`` of each
    argument after broadcasting."""
    to = shape_of(ans)
    out = None
    for d, x in zip(deps, primals, strict=False):
        if d is None or not d.nnz:
            continue
        out = union(out, broadcast(d, shape_of(x), to))
    return out


def dense(deps: Sequence[Deps | None], ans: Any, *primals: Any,
          **params: Any) -> Deps | None:
    """Every output element depends on every input some argument depends on: the
    fallback for a primitive that states no pattern (never too sparse; dense)."""
    support = None
    for d in deps:
        if d is not None and d.nnz:
            s = np.asarray(d.sum(axis=0)).ravel() > 0
            support = s if support is None else support | s
    if support is None:
        return None
    cols = np.flatnonzero(support)
    m = size_of(ans)
    if m * cols.size > DENSE_LIMIT:
        raise DenseBlockError(m, cols.size)
    n = support.size
    indptr = np.arange(m + 1, dtype=np.int64) * cols.size
    indices = np.tile(cols, m)
    return sp.csr_matrix((np.ones(indices.size, dtype=bool), indices, indptr), shape=(m, n))


def by_positions(prim: Any, data: Sequence[int] | None = None) -> PatternRule:
    """The rule of a data-movement primitive ``prim`` (each output element a copy of one
    argument element, or a fill value): ``prim``'s implementation applied to arrays of
    positions (1 + the element's index among all data arguments' elements, 0 for a
    constant's) gives, for each output element, the one it copies. ``data`` are the
    positions of the arguments that carry data (default: all); the others (indices,
    masks) are passed as they are. A fill value (``np.pad``'s zeros) reads position 0,
    no dependency."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        which = range(len(primals)) if data is None else data
        args = list(primals)
        blocks = []
        offset = 1
        for i in which:
            if i >= len(primals):
                continue
            d = deps[i]
            shape = shape_of(primals[i])
            if d is None or not d.nnz:
                args[i] = np.zeros(shape, dtype=np.int64)
                continue
            size = d.shape[0]
            args[i] = np.arange(offset, offset + size, dtype=np.int64).reshape(shape)
            blocks.append(d)
            offset += size
        if not blocks:
            return None
        pos = np.asarray(prim.impl(*args, **params))
        stacked = sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
        return rows(stacked, pos.astype(np.int64).ravel() - 1)

    rule.__name__ = f"by_positions({prim.name})"
    return rule


def scattered(targets: Callable[..., np.ndarray], arg: int = 0) -> PatternRule:
    """The rule of a scatter-add of argument ``arg`` (the values): ``targets(out_shape,
    *primals, **params)`` gives, for each value element, the flat index of the output
    element it is added to (the matching gather applied to the output's positions);
    an output element depends on every value element sent to it."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        d = deps[arg]
        if d is None or not d.nnz:
            return None
        tgt = np.asarray(targets(shape_of(ans), *primals, **params), dtype=np.int64)
        d = broadcast(d, shape_of(primals[arg]), tgt.shape)
        L = sp.csr_matrix((np.ones(tgt.size, dtype=bool), (tgt.ravel(), np.arange(tgt.size))),
                          shape=(size_of(ans), tgt.size))
        return linear(L, d)

    rule.__name__ = "scattered"
    return rule


def _groups(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """For each element of a value of ``shape`` (C order), the index of its group when
    the ``axes`` are reduced, and the number of groups."""
    kept = tuple(1 if a in axes else s for a, s in enumerate(shape))
    n_groups = int(np.prod(kept, dtype=np.int64))
    ids = np.broadcast_to(np.arange(n_groups, dtype=np.int64).reshape(kept), shape)
    return ids.ravel(), n_groups


def _group_matrix(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[sp.csr_matrix,
                                                                          np.ndarray]:
    ids, n_groups = _groups(shape, axes)
    size = ids.size
    L = sp.csr_matrix((np.ones(size, dtype=bool), (ids, np.arange(size))),
                      shape=(n_groups, size))
    return L, ids


def reduction(axis: str = "axis", arg: int = 0) -> PatternRule:
    """The rule of a reduction of argument ``arg`` over the axes in parameter ``axis``
    (None: all; ``keepdims`` changes only the shape): an output element depends on
    every element it reduces."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        d = deps[arg]
        if d is None or not d.nnz:
            return None
        shape = shape_of(primals[arg])
        axes = normalize_axis(params.get(axis), len(shape))
        L, _ = _group_matrix(shape, axes)
        out = linear(L, d)
        if out.shape[0] != size_of(ans):  # a reduction whose output is broadcast back
            out = rows(out, np.zeros(size_of(ans), dtype=np.int64))
        return out

    rule.__name__ = f"reduction({axis!r})"
    return rule


def whole_axis(axis: str = "axis", arg: int = 0) -> PatternRule:
    """The rule of an operation along the axes in parameter ``axis`` (None: the whole
    flattened value) that keeps the argument's shape (sort, cumsum, an FFT along an
    axis): each output element depends on every element of its line."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        d = deps[arg]
        if d is None or not d.nnz:
            return None
        shape = shape_of(primals[arg])
        axes = normalize_axis(params.get(axis), len(shape))
        if tuple(shape_of(ans)) != tuple(shape):
            return dense(deps, ans, *primals, **params)
        return lines(d, shape, axes, shape, "an operation along an axis")

    rule.__name__ = f"whole_axis({axis!r})"
    return rule


def _may_be_nonzero(x: Any, d: Deps | None) -> sp.csr_matrix:
    """The entries of the 2-D ``x`` that may be non-zero for some input: a constant's
    non-zeros, every entry of a value computed from the input."""
    if d is None:
        return sp.csr_matrix(np.asarray(x) != 0)
    return sp.csr_matrix(np.ones(shape_of(x), dtype=bool))


def matmul(deps: Sequence[Deps | None], ans: Any, a: Any, b: Any) -> Deps | None:
    """``a @ b``: ``out[i, j]`` depends on ``a[i, k]`` where ``b[k, j]`` may be non-zero
    and on ``b[k, j]`` where ``a[i, k]`` may be; a constant operand's zeros are
    structural. Stacks of matrices (more than two axes) fall back to ``dense``."""
    da, db = deps
    sa, sb = shape_of(a), shape_of(b)
    if len(sa) > 2 or len(sb) > 2:
        return dense(deps, ans, a, b)
    a2 = np.reshape(a, (1,) + sa) if len(sa) == 1 else a
    b2 = np.reshape(b, sb + (1,)) if len(sb) == 1 else b
    m, p = shape_of(a2)[0], shape_of(b2)[1]
    out = None
    if da is not None and da.nnz:
        L = sp.kron(sp.identity(m, dtype=bool, format="csr"), _may_be_nonzero(b2, db).T)
        out = union(out, linear(L, da))
    if db is not None and db.nnz:
        L = sp.kron(_may_be_nonzero(a2, da), sp.identity(p, dtype=bool, format="csr"))
        out = union(out, linear(L, db))
    return out


# ------------------------------------------------------------------ lines, prefixes, choices
def _check_entries(entries: int, m: int, what: str) -> None:
    """Refuse a pattern of more than ``DENSE_LIMIT`` entries before building it."""
    if entries > DENSE_LIMIT:
        raise DenseBlockError(m, max(1, entries // max(m, 1)), what)


def lines(d: Deps, shape: tuple[int, ...], axes: tuple[int, ...], to: tuple[int, ...],
          what: str) -> Deps:
    """The pattern of a value of shape ``to`` whose each element depends on the whole line
    (the elements along ``axes``) of a value of ``shape`` and pattern ``d`` at the same
    coordinates off ``axes``: the other axes of ``to`` equal ``shape``'s or broadcast from
    1. ``what`` names the operation in the refusal of a pattern too big to build."""
    L, _ = _group_matrix(shape, axes)
    per_line = linear(L, d)
    kept = tuple(1 if a in axes else s for a, s in enumerate(shape))
    try:
        ids = np.broadcast_to(np.arange(per_line.shape[0], dtype=np.int64).reshape(kept),
                              to).ravel()
    except ValueError:  # shapes that do not line up: every output on every line
        ids = np.zeros(int(np.prod(to, dtype=np.int64)), dtype=np.int64)
        per_line = linear(sp.csr_matrix(np.ones((1, per_line.shape[0]), dtype=bool)),
                          per_line)
    _check_entries(int(np.diff(per_line.indptr)[ids].sum()), ids.size, what)
    return rows(per_line, ids)


def along_axis(exact: PatternRule, axis: str = "axis", arg: int = 0,
               index: int = 1) -> PatternRule:
    """The rule of a gather or scatter along one axis whose argument ``index`` holds the
    positions (``take_along``, ``put_along``): with a constant index, ``exact``; with an
    index computed from the input (the order ``np.sort``, ``np.partition`` or
    ``np.argmax`` found), which may be any order for another input, each output element
    depends on every element of argument ``arg``'s line along the axis."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        if index >= len(deps) or deps[index] is None:
            return exact(deps, ans, *primals, **params)
        d = deps[arg]
        if d is None or not d.nnz:
            return None
        shape = shape_of(primals[arg])
        axes = normalize_axis(params.get(axis), len(shape))
        return lines(d, shape, axes, shape_of(ans),
                     "a selection at positions computed from the input (np.sort's order, "
                     "x[np.argmax(x)], u[i + offset])")

    rule.__name__ = f"along_axis({getattr(exact, '__name__', 'rule')})"
    return rule


def prefix(axis: str = "axis", arg: int = 0) -> PatternRule:
    """The rule of a cumulative operation along the single axis in parameter ``axis``
    that keeps the argument's shape (cumsum, cumprod): element ``k`` of a line depends on
    elements ``0..k`` of it, exactly. Built from each input's first appearance on each
    line, so the work is that of the result's entries."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        d = deps[arg]
        if d is None or not d.nnz:
            return None
        shape = tuple(shape_of(primals[arg]))
        axes = normalize_axis(params.get(axis), len(shape))
        if len(axes) != 1 or tuple(shape_of(ans)) != shape:
            return whole_axis(axis, arg)(deps, ans, *primals, **params)
        ax = axes[0]
        size, n = d.shape
        m = shape[ax]
        # pos[g, k]: the flat index of step k of line g
        pos = np.moveaxis(np.arange(size, dtype=np.int64).reshape(shape), ax, -1).reshape(-1, m)
        n_lines = pos.shape[0]
        line_of = np.empty(size, dtype=np.int64)
        step_of = np.empty(size, dtype=np.int64)
        line_of[pos.ravel()] = np.repeat(np.arange(n_lines, dtype=np.int64), m)
        step_of[pos.ravel()] = np.tile(np.arange(m, dtype=np.int64), n_lines)
        coo = d.tocoo()
        g, k, c = line_of[coo.row], step_of[coo.row], coo.col.astype(np.int64)
        # the first step at which each input enters each line: every later step holds it
        # (one sort of (line, input, step) codes: n_lines * n * m <= size * n fits int64)
        code = np.sort((g * n + c) * m + k)
        key = code // m
        code = code[np.concatenate(([True], key[1:] != key[:-1]))]
        key, k = np.divmod(code, m)
        g, c = np.divmod(key, n)
        counts = m - k
        total = int(counts.sum())
        _check_entries(total, size, "a cumulative operation")
        which = np.repeat(np.arange(code.size, dtype=np.int64), counts)
        steps = k[which] + (np.arange(total, dtype=np.int64)
                            - np.repeat(np.cumsum(counts) - counts, counts))
        out = sp.csr_matrix((np.ones(total, dtype=bool), (pos[g[which], steps], c[which])),
                            shape=(size, n))
        out.sum_duplicates()
        return out

    rule.__name__ = f"prefix({axis!r})"
    return rule


def select(deps: Sequence[Deps | None], ans: Any, cond: Any, *branches: Any,
           **params: Any) -> Deps | None:
    """``np.where(cond, x, y)``: with a constant condition, each element depends on the
    branch it takes; with a condition computed from the input (``x > 0``), which may
    choose either branch for another input, on both (``elementwise``)."""
    if deps[0] is not None:
        return elementwise(deps, ans, cond, *branches, **params)
    to = shape_of(ans)
    take = np.broadcast_to(np.asarray(cond, dtype=bool), to).ravel()
    every = np.arange(take.size, dtype=np.int64)
    out = None
    for d, v, here in zip(deps[1:], branches, (take, ~take), strict=False):
        if d is None or not d.nnz:
            continue
        b = broadcast(d, shape_of(v), to)
        out = union(out, rows(b, np.where(here, every, -1)))
    return out


def product(deps: Sequence[Deps | None], ans: Any, *primals: Any,
            **params: Any) -> Deps | None:
    """An elementwise product: as ``elementwise``, except where a constant factor is
    exactly zero (``t * (stop - start)`` with ``t[0] = 0``, a 0/1 mask): there the
    product is zero for every input, and so is its derivative."""
    to = shape_of(ans)
    zero = None
    for d, x in zip(deps, primals, strict=False):
        if d is None:
            z = np.asarray(x) == 0
            zero = z if zero is None else zero | z
    if zero is None or not zero.any():
        return elementwise(deps, ans, *primals, **params)
    keep = np.broadcast_to(zero, to).ravel()
    index = np.where(keep, -1, np.arange(keep.size, dtype=np.int64))
    out = None
    for d, x in zip(deps, primals, strict=False):
        if d is None or not d.nnz:
            continue
        out = union(out, rows(broadcast(d, shape_of(x), to), index))
    return out


# ====================================================================== contractions,
# linear algebra, FFT and the structured operators of SciPy
def guard(m: int, k: int) -> None:
    """Refuse (``DenseBlockError``) a pattern of ``m`` rows of ``k`` entries each past
    ``DENSE_LIMIT``, before building it."""
    if m * k > DENSE_LIMIT:
        raise DenseBlockError(m, k)


def may_be_nonzero(x: Any, d: Deps | None) -> np.ndarray:
    """Where the value ``x`` (of pattern ``d``; None for a constant) may be non-zero for
    some input, as a boolean array of its shape: a constant's non-zeros (structural), every
    element of a value computed from the input (its zeros here may not be zeros there)."""
    if d is None:
        return np.asarray(x) != 0
    return np.ones(shape_of(x), dtype=bool)


def _keys(parts: Sequence[np.ndarray], dims: tuple[int, ...]) -> list[np.ndarray]:
    """One int64 key per row of each of ``parts`` (tuples of coordinates of sizes
    ``dims``), equal where the rows are: their flat index, or (where that would
    overflow) their rank among the distinct rows of all parts."""
    if float(np.prod(np.asarray(dims, dtype=float))) < 2.0 ** 62:
        return [np.ravel_multi_index(tuple(p.T), dims).astype(np.int64) if p.shape[0]
                else np.zeros(0, dtype=np.int64) for p in parts]
    _, inverse = np.unique(np.vstack(parts), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    cuts = np.cumsum([p.shape[0] for p in parts])[:-1]
    return np.split(inverse.astype(np.int64), cuts)


def _join(labels: str, coords: np.ndarray, other: str, ocoords: np.ndarray,
          sizes: dict[str, int]) -> tuple[str, np.ndarray]:
    """The natural join of two relations over einsum labels (one row per tuple, one
    column per label): the rows of both that agree on their shared labels."""
    shared = [c for c in labels if c in other]
    extra = [k for k, c in enumerate(other) if c not in labels]
    if not shared:
        guard(coords.shape[0], ocoords.shape[0])
        left = np.repeat(coords, ocoords.shape[0], axis=0)
        right = np.tile(ocoords[:, extra], (coords.shape[0], 1))
        return labels + "".join(other[k] for k in extra), np.hstack([left, right])
    dims = tuple(sizes[c] for c in shared)
    key, okey = _keys([coords[:, [labels.index(c) for c in shared]],
                       ocoords[:, [other.index(c) for c in shared]]], dims)
    order = np.argsort(okey, kind="stable")
    okey = okey[order]
    lo = np.searchsorted(okey, key, "left")
    counts = np.searchsorted(okey, key, "right") - lo
    total = int(counts.sum())
    guard(total, 1)
    starts = np.cumsum(counts) - counts
    picks = order[np.arange(total) - np.repeat(starts, counts) + np.repeat(lo, counts)]
    left = np.repeat(coords, counts, axis=0)
    right = ocoords[picks][:, extra]
    return labels + "".join(other[k] for k in extra), np.hstack([left, right])


def _project(labels: str, coords: np.ndarray, keep: str,
             sizes: dict[str, int]) -> tuple[str, np.ndarray]:
    """The relation restricted to the labels in ``keep``, without repeated rows."""
    kept = "".join(c for c in labels if c in keep)
    if kept == labels:
        return labels, coords
    if not kept:
        return "", np.zeros((min(1, coords.shape[0]), 0), dtype=np.int64)
    sub = coords[:, [labels.index(c) for c in kept]]
    (key,) = _keys([sub], tuple(sizes[c] for c in kept))
    _, first = np.unique(key, return_index=True)
    return kept, sub[first]


def _term_relation(term: str, x: Any, d: Deps | None,
                   sizes: dict[str, int]) -> tuple[str, np.ndarray]:
    """The entries of an einsum operand that may be non-zero, as a relation over its
    distinct labels (a repeated label keeps its diagonal)."""
    nz = may_be_nonzero(x, d)
    if not term:  # a 0-d operand: one tuple (if it may be non-zero)
        return "", np.zeros((int(bool(nz)), 0), dtype=np.int64)
    full = tuple(sizes[c] for c in term)
    if nz.shape != full:  # a size-1 axis broadcast along its label
        nz = np.broadcast_to(nz, full)
    idx = np.nonzero(nz)
    labels = ""
    cols = []
    keep = np.ones(idx[0].size, dtype=bool)
    for k, c in enumerate(term):
        if c in labels:
            keep &= idx[k] == cols[labels.index(c)]
            continue
        labels += c
        cols.append(idx[k])
    return labels, np.stack(cols, axis=1)[keep].astype(np.int64)


def _flat_index(term: str, shape: tuple[int, ...], labels: str,
                coords: np.ndarray) -> np.ndarray:
    """The flat (C order) index in an operand of ``shape`` with subscripts ``term`` of
    each tuple of the relation (size-1 axes read index 0)."""
    flat = np.zeros(coords.shape[0], dtype=np.int64)
    stride = 1
    for c, n in zip(term[::-1], shape[::-1], strict=True):
        if n != 1:
            flat += coords[:, labels.index(c)] * stride
        stride *= n
    return flat


def einsum(deps: Sequence[Deps | None], ans: Any, *ops: Any,
           spec: tuple[tuple[str, ...], str]) -> Deps | None:
    """An einsum of explicit subscripts ``spec = (terms, out)`` (no ellipsis): an output
    element depends on an element of a traced operand where some assignment of the summed
    labels makes the other operands' entries all possibly non-zero (a constant operand's
    zeros are structural, a traced one's are not). Computed as a sparse join of the other
    operands' non-zeros, so a constant sparse-in-content matrix costs its non-zeros."""
    terms, out = spec
    sizes: dict[str, int] = {}
    for t, x in zip(terms, ops, strict=True):
        for c, n in zip(t, shape_of(x), strict=True):
            if n != 1 or c not in sizes:
                sizes[c] = n
    out_shape = tuple(sizes[c] for c in out)
    m = size_of(ans)
    result = None
    for i, (ti, d) in enumerate(zip(terms, deps, strict=True)):
        if d is None or not d.nnz:
            continue
        others = [j for j in range(len(ops)) if j != i]
        labels, coords = "", np.zeros((1, 0), dtype=np.int64)
        for n_done, j in enumerate(others):
            rl, rc = _term_relation(terms[j], ops[j], deps[j], sizes)
            labels, coords = _join(labels, coords, rl, rc, sizes)
            need = out + ti + "".join(terms[k] for k in others[n_done + 1:])
            labels, coords = _project(labels, coords, need, sizes)
            if not coords.shape[0]:
                break
        if not coords.shape[0]:
            continue  # a constant factor is all zeros: no dependency
        for c in dict.fromkeys(out + ti):  # labels no other operand constrains: all values
            if c not in labels:
                rng = np.arange(sizes[c], dtype=np.int64)[:, None]
                labels, coords = _join(labels, coords, c, rng, sizes)
        if out:
            row = np.ravel_multi_index(tuple(coords[:, labels.index(c)] for c in out),
                                       out_shape)
        else:
            row = np.zeros(coords.shape[0], dtype=np.int64)
        col = _flat_index(ti, shape_of(ops[i]), labels, coords)
        L = sp.csr_matrix((np.ones(row.size, dtype=bool), (row, col)),
                          shape=(m, size_of(ops[i])))
        result = union(result, linear(L, d))
    return result


def matmul_stacks(deps: Sequence[Deps | None], ans: Any, a: Any, b: Any) -> Deps | None:
    """``a @ b`` for every operand shape NumPy's matmul takes: matrices and vectors as
    ``matmul``, stacks of them (their stack axes broadcast) as the einsum they are."""
    sa, sb = shape_of(a), shape_of(b)
    if len(sa) <= 2 and len(sb) <= 2:
        da, db = deps
        # (the Kronecker form builds its blocks whole: refuse a truly dense one first)
        rows_a = int(np.prod(sa[:-1], dtype=np.int64))
        cols_b = sb[-1] if len(sb) == 2 else 1
        if da is not None and da.nnz:
            guard(rows_a, int(np.count_nonzero(may_be_nonzero(b, db))))
        if db is not None and db.nnz:
            guard(int(np.count_nonzero(may_be_nonzero(a, da))), cols_b)
        return matmul(deps, ans, a, b)
    stack = "".join(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    r = max(len(sa), len(sb)) - 2
    ta = (stack[r - (len(sa) - 2):r] + "ik") if len(sa) > 1 else "k"
    tb = (stack[r - (len(sb) - 2):r] + "kj") if len(sb) > 1 else "k"
    out = stack[:r] + ("i" if len(sa) > 1 else "") + ("j" if len(sb) > 1 else "")
    return einsum(deps, ans, a, b, spec=((ta, tb), out))


def along(axis: str = "axes", arg: int = 0) -> PatternRule:
    """The rule of a transform of argument ``arg`` along the axes in parameter ``axis``
    (an FFT, a spline prefilter) whose output may differ in length along those axes
    (rfft, irfft): each output element depends on every element of the input's line (or
    hyper-plane) through it, the one with the same indices on the other axes."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        d = deps[arg]
        if d is None or not d.nnz:
            return None
        shape, out_shape = shape_of(primals[arg]), shape_of(ans)
        axes = normalize_axis(params.get(axis), len(shape))
        L, _ = _group_matrix(shape, axes)
        ids, _ = _groups(out_shape, axes)
        per_line = int(np.prod([shape[a] for a in axes], dtype=np.int64))
        guard(ids.size, per_line)
        return rows(linear(L, d), ids)

    rule.__name__ = f"along({axis!r})"
    return rule


def stacked(core: int | Sequence[int], mask: Callable[..., np.ndarray | None] | None = None
            ) -> PatternRule:
    """The rule of an operation on stacks of matrices (numpy.linalg's ``...ij``
    convention: the arguments' leading axes broadcast) whose every output element depends
    on its stack's whole matrices: inv, det, eig, svd, expm, ... are dense by nature
    (their every entry varies with every entry of a generic matrix). ``core`` gives each
    argument's number of trailing core axes (one int: the same for all); the output's
    core axes are those past the broadcast stack axes. ``mask(i, core_shape, **params)``
    may give the entries of argument ``i``'s core the operation reads (eigh reads one
    triangle), or None for all."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        cores = [core] * len(primals) if isinstance(core, int) else list(core)
        shapes = [shape_of(x) for x in primals]
        stack = np.broadcast_shapes(*[s[:len(s) - k] for s, k in zip(shapes, cores,
                                                                      strict=False)])
        n_stack = int(np.prod(stack, dtype=np.int64))
        out = None
        for i, (d, s) in enumerate(zip(deps, shapes, strict=False)):
            if d is None or not d.nnz:
                continue
            k = cores[i]
            own = s[:len(s) - k]
            c_shape = s[len(s) - k:]
            read = np.arange(int(np.prod(c_shape, dtype=np.int64)), dtype=np.int64)
            if mask is not None:
                sel = mask(i, c_shape, **params)
                if sel is not None:
                    read = read[np.asarray(sel, dtype=bool).ravel()]
            c = int(np.prod(c_shape, dtype=np.int64))
            pos = np.broadcast_to(np.arange(int(np.prod(own, dtype=np.int64)),
                                            dtype=np.int64).reshape(own), stack).ravel()
            indices = (pos[:, None] * c + read).ravel()
            L = sp.csr_matrix((np.ones(indices.size, dtype=bool), indices,
                               np.arange(n_stack + 1, dtype=np.int64) * read.size),
                              shape=(n_stack, size_of(primals[i])))
            out = union(out, linear(L, d))
        if out is None:
            return None
        m = size_of(ans)
        per = m // max(n_stack, 1)
        guard(m, out.nnz // max(n_stack, 1))
        return rows(out, np.repeat(np.arange(n_stack, dtype=np.int64), per))

    rule.__name__ = "stacked"
    return rule


def core_map(core_in: int, core_pattern: Callable[..., sp.csr_matrix],
             arg: int = 0) -> PatternRule:
    """The rule of a one-argument operation on stacks of matrices whose output core
    depends on its input core by a fixed structure: ``core_pattern(core_shape,
    out_core_size, **params)`` gives the boolean (output core elements x input core
    elements) matrix (Cholesky's factor is lower triangular, QR's columns depend on the
    leading columns); the stacks map one to one."""

    def rule(deps: Sequence[Deps | None], ans: Any, *primals: Any,
             **params: Any) -> Deps | None:
        d = deps[arg]
        if d is None or not d.nnz:
            return None
        s = shape_of(primals[arg])
        c_shape = s[len(s) - core_in:]
        n_stack = int(np.prod(s[:len(s) - core_in], dtype=np.int64))
        out_core = size_of(ans) // max(n_stack, 1)
        C = core_pattern(c_shape, out_core, **params)
        L = sp.kron(sp.identity(n_stack, dtype=bool, format="csr"), C, format="csr")
        return linear(L, d)

    rule.__name__ = "core_map"
    return rule


def inverse_structure(A: sp.spmatrix) -> sp.csr_matrix:
    """The non-zeros of ``A^-1`` for a generic matrix with the non-zero structure of the
    square ``A`` (so ``x = A^-1 b`` makes ``x[j]`` depend on ``b[i]`` where entry
    ``(j, i)`` is set). With a zero-free diagonal after matching rows to columns,
    ``A^-1[j, i]`` is non-zero exactly where the directed graph of ``A`` has a path from
    ``j``'s row to ``i`` (Gilbert 1994): computed on the strongly connected components,
    whose members share their reach (a triangular matrix's inverse is triangular, an
    irreducible one's dense: a tridiagonal matrix's inverse is dense). A structurally
    singular ``A`` gets the coarser bipartite components (a superset)."""
    A = sp.csr_matrix(A, dtype=bool)
    A.eliminate_zeros()
    n = A.shape[0]
    match = csgraph.maximum_bipartite_matching(A, perm_type="column")
    if n == 0 or (match < 0).any():
        return _component_inverse(A)
    B = A[:, match].tocsr()  # B[i, i] = A[i, match[i]] is non-zero
    c, label = csgraph.connected_components(B, directed=True, connection="strong")
    r, k = B.nonzero()
    cross = label[r] != label[k]
    C = sp.csr_matrix((np.ones(int(cross.sum()), dtype=bool), (label[r][cross],
                                                                label[k][cross])),
                      shape=(c, c))
    C.sum_duplicates()
    order = np.argsort(label, kind="stable")
    size = np.bincount(label, minlength=c)
    first = np.cumsum(size) - size
    if not C.nnz:  # block diagonal: each component reaches itself alone
        cols_of_comp = order
        offset = first
    else:
        reach = _reach(C, size)
        parts = [np.concatenate([order[first[t]:first[t] + size[t]] for t in r])
                 for r in reach]
        offset = np.concatenate([[0], np.cumsum([p_.size for p_ in parts])[:-1]])
        cols_of_comp = np.concatenate(parts)
        size = np.array([p_.size for p_ in parts], dtype=np.int64)
    per = size[label]
    guard(int(per.sum()), 1)
    indptr = np.concatenate([[0], np.cumsum(per)]).astype(np.int64)
    indices = cols_of_comp[np.repeat(offset[label] - indptr[:-1], per)
                           + np.arange(int(indptr[-1]))]
    Binv = sp.csr_matrix((np.ones(indices.size, dtype=bool), indices, indptr), shape=(n, n))
    # A = B P with P moving column k to match[k]: A^-1 = P^T B^-1, row match[k] = row k
    return Binv[np.argsort(match)]


def _reach(C: sp.csr_matrix, size: np.ndarray) -> list[np.ndarray]:
    """For each node of the DAG ``C`` (components of ``size`` members), the nodes it
    reaches, itself included: successors first (Kahn's order on the reversed DAG)."""
    c = C.shape[0]
    preds = C.T.tocsr()
    left = np.diff(C.indptr)
    ready = list(np.flatnonzero(left == 0))
    reach: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * c
    total = 0
    while ready:
        s_ = ready.pop()
        succ = C.indices[C.indptr[s_]:C.indptr[s_ + 1]]
        own = np.array([s_], dtype=np.int64)
        reach[s_] = np.unique(np.concatenate([own] + [reach[t] for t in succ])) if succ.size \
            else own
        total += int(size[reach[s_]].sum()) * int(size[s_])
        guard(total, 1)
        for p_ in preds.indices[preds.indptr[s_]:preds.indptr[s_ + 1]]:
            left[p_] -= 1
            if left[p_] == 0:
                ready.append(p_)
    return reach


def _component_inverse(A: sp.csr_matrix) -> sp.csr_matrix:
    """A superset of ``A^-1``'s structure: column ``j`` and row ``i`` pair where they lie
    in one connected component of ``A``'s bipartite row-column graph (``A`` permuted to
    block-diagonal form is inverted block by block)."""
    n = A.shape[0]
    graph = sp.bmat([[None, A], [A.T, None]], format="csr")
    _, label = csgraph.connected_components(graph, directed=False)
    row_c, col_c = label[:n], label[n:]
    order_r = np.argsort(row_c, kind="stable")
    counts = np.bincount(row_c, minlength=label.max() + 1 if label.size else 1)
    starts = np.cumsum(counts) - counts
    per = counts[col_c]
    guard(int(per.sum()), 1)
    indptr = np.concatenate([[0], np.cumsum(per)]).astype(np.int64)
    indices = order_r[np.repeat(starts[col_c], per)
                      + np.arange(int(per.sum())) - np.repeat(indptr[:-1], per)]
    return sp.csr_matrix((np.ones(indices.size, dtype=bool), indices, indptr), shape=(n, n))


def columns_apply(S: sp.spmatrix, d: Deps, shape: tuple[int, ...]) -> Deps:
    """The pattern of ``S @ v`` for a constant structural matrix ``S`` and a value ``v``
    of ``shape`` (a vector, or a matrix whose columns ``S`` maps one by one) and
    pattern ``d``."""
    if len(shape) == 1:
        return linear(S, d)
    k = int(np.prod(shape[1:], dtype=np.int64))
    return linear(sp.kron(S, sp.identity(k, dtype=bool, format="csr"), format="csr"), d)


def solve(deps_a: Deps | None, a_support: Deps | None, deps_b: Deps | None, b: Any,
          out_shape: tuple[int, ...], S: sp.spmatrix | None) -> Deps | None:
    """The pattern of ``x = A^-1 b`` for one matrix ``A`` (n x n) and a right-hand side
    ``b`` (n,) or (n, k): ``S`` is the structural inverse of a constant ``A`` (None when
    ``A`` is traced: dense); ``a_support`` the pattern (one row) of what a traced ``A``
    depends on, or None. Columns of ``b`` stay independent; a traced ``A`` reaches the
    columns of ``b`` that may be non-zero."""
    n = out_shape[0]
    m = int(np.prod(out_shape, dtype=np.int64))
    k = m // max(n, 1)
    out = None
    if deps_b is not None and deps_b.nnz:
        if S is None:
            S = sp.csr_matrix(np.ones((n, n), dtype=bool))
        out = columns_apply(S, deps_b, tuple(out_shape))
    if a_support is not None and a_support.nnz:
        col_nz = (np.ones(k, dtype=bool) if deps_b is not None else
                  np.asarray(b).reshape(n, k).any(axis=0))
        guard(m, a_support.nnz)
        rows_ = np.flatnonzero(np.tile(col_nz, n))
        idx = np.full(m, -1, dtype=np.int64)
        idx[rows_] = 0
        out = union(out, rows(a_support, idx))
    return out


def support(d: Deps | None) -> Deps | None:
    """One row: every input some element of a value of pattern ``d`` depends on."""
    if d is None or not d.nnz:
        return None
    cols = np.unique(d.indices)
    return sp.csr_matrix((np.ones(cols.size, dtype=bool), cols, [0, cols.size]),
                         shape=(1, d.shape[1]))
