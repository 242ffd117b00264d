"""Random programs of views, copies and in-place writes over a pool of arrays, run
alike on plain NumPy arrays and on traced ones (tests/test_aliasing_differential.py).

A program is a list of steps ``(op, i, j, p)`` of small integers; the interpreter
reads them modulo the pool's size, so every list is a valid program. Each op maps the
pool entry ``i`` (and ``j`` where it takes a second operand) to a new entry (a view, a
copy, an arithmetic result) or writes into entry ``i``. ``p`` picks the op's variant
(the index, the axis, the piece of a split) from the shapes alone, so the plain run
and the traced run execute the same NumPy calls.
"""

from __future__ import annotations

import copy
import pickle
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dualrev.errors import (
    BatchedValueError,
    DualrevError,
    InPlaceError,
    StaleViewError,
    TracerConversionError,
)
from dualrev.inplace import Stale
from dualrev.primitive import Tracer


# ------------------------------------------------------------------ index menus
def _axis_choice(n: int, r: random.Random, allow_int: bool) -> Any:
    menu: list[Any] = [slice(None), slice(None, None, -1), slice(None, None, 2)]
    if n > 1:
        menu += [slice(1, None), slice(None, -1), slice(-1, 0, -1), slice(1, None, 2)]
    if allow_int and n > 0:
        menu += [r.randrange(n), -1]
    return r.choice(menu)


def basic_key(shape: tuple[int, ...], p: int) -> tuple[Any, ...]:
    """A basic index of an array of ``shape`` that gives an array (not a scalar): slices
    (negative steps included), integers, ``None`` and ``Ellipsis``."""
    r = random.Random(p)
    nd = len(shape)
    key: list[Any] = []
    for ax, n in enumerate(shape):
        key.append(_axis_choice(n, r, allow_int=(ax < nd - 1 or nd == 0) and n > 0))
    if nd and all(isinstance(k, int) for k in key):
        key[-1] = slice(None)
    if r.random() < 0.3:
        key.insert(r.randrange(len(key) + 1), None)
    if nd and r.random() < 0.3:  # the leading slices written as an Ellipsis
        cut = r.randrange(nd)
        if all(k == slice(None) for k in key[:cut]) and None not in key[:cut]:
            key = [Ellipsis, *key[cut:]]
    return tuple(key)


def fancy_key(shape: tuple[int, ...], p: int) -> Any:
    """An integer-array index on the first axis (repeats included)."""
    n = shape[0]
    r = random.Random(p)
    return [r.randrange(n) for _ in range(r.randrange(1, 4))]


def mask_of(shape: tuple[int, ...], p: int) -> np.ndarray:
    """A fixed boolean mask of ``shape`` with at least one True."""
    m = np.random.default_rng(p).random(shape) < 0.5
    m.flat[p % max(m.size, 1)] = True
    return m


def target_shape(shape: tuple[int, ...], key: Any) -> tuple[int, ...]:
    return np.zeros(shape)[key].shape


def fits(value_shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(value_shape, target) == target
    except ValueError:
        return False


def value_for(pool: list[Any], j: int, target: tuple[int, ...], real: bool,
              keep_complex: bool = False) -> Any:
    """A right-hand side for a write of ``target``'s shape from entry ``j``: the entry
    itself where it broadcasts, else its mean (a traced scalar in the traced run). Into
    a real array its real part, unless ``keep_complex`` (NumPy then warns and drops the
    imaginary part)."""
    v = pool[j]
    if np.size(v) == 0:  # its mean would be NaN
        v = 0.25
    elif not fits(np.shape(v), target):
        v = np.mean(v) * 0.5 + 0.25
    if real and np.iscomplexobj(v) and not keep_complex:
        v = np.real(v)
    return v


# ------------------------------------------------------------------ the ops
@dataclass
class Op:
    """One kind of step: ``run(pool, i, j, p)`` returns a new entry or None (a write);
    ``applies(shape, dtype)`` whether it is defined for entry ``i``; ``refusals`` the
    DualrevErrors a traced run may answer it with (besides StaleViewError on a stale
    operand)."""

    name: str
    kind: str  # "view", "copy", "write", "math"
    run: Callable[[list[Any], int, int, int], Any]
    applies: Callable[[tuple[int, ...], np.dtype], bool] = lambda s, d: True
    refusals: tuple[type[DualrevError], ...] = ()


def _nd(k: int) -> Callable[[tuple[int, ...], np.dtype], bool]:
    return lambda s, d: len(s) >= k and all(n > 0 for n in s)


def _nonempty(s: tuple[int, ...], d: np.dtype) -> bool:
    return len(s) >= 1 and all(n > 0 for n in s)


def _piece(parts: Any, p: int) -> Any:
    return parts[p % len(parts)]


def _splittable(s: tuple[int, ...], d: np.dtype) -> bool:
    return len(s) >= 1 and s[0] >= 2 and s[0] % 2 == 0


def _reshape_to(s: tuple[int, ...], p: int) -> tuple[int, ...]:
    size = int(np.prod(s))
    options = [(-1,), (size, 1), (1, size), tuple(reversed(s)) or (1,)]
    for k in (2, 3):
        if size % k == 0 and size > k:
            options.append((k, -1))
    return options[p % len(options)]


VIEWS = [
    Op("getitem_basic", "view", lambda P, i, j, p: P[i][basic_key(np.shape(P[i]), p)],
       _nonempty),
    Op("reshape", "view", lambda P, i, j, p: np.reshape(P[i], _reshape_to(np.shape(P[i]), p)),
       refusals=(InPlaceError,)),
    Op("x.reshape", "view", lambda P, i, j, p: P[i].reshape(*_reshape_to(np.shape(P[i]), p)),
       refusals=(InPlaceError,)),
    Op("ravel", "view", lambda P, i, j, p: np.ravel(P[i]), refusals=(InPlaceError,)),
    Op("transpose", "view", lambda P, i, j, p: np.transpose(P[i]), refusals=(InPlaceError,)),
    Op("x.T", "view", lambda P, i, j, p: P[i].T, refusals=(InPlaceError,)),
    Op("swapaxes", "view", lambda P, i, j, p: np.swapaxes(P[i], 0, -1), _nd(1),
       refusals=(InPlaceError,)),
    Op("moveaxis", "view", lambda P, i, j, p: np.moveaxis(P[i], 0, -1), _nd(1),
       refusals=(InPlaceError,)),
    Op("squeeze", "view", lambda P, i, j, p: np.squeeze(P[i]), refusals=(InPlaceError,)),
    Op("expand_dims", "view", lambda P, i, j, p: np.expand_dims(P[i], p % (np.ndim(P[i]) + 1)),
       refusals=(InPlaceError,)),
    Op("flip", "view", lambda P, i, j, p: np.flip(P[i], p % np.ndim(P[i])), _nd(1),
       refusals=(InPlaceError,)),
    Op("fliplr", "view", lambda P, i, j, p: np.fliplr(P[i]), _nd(2), refusals=(InPlaceError,)),
    Op("flipud", "view", lambda P, i, j, p: np.flipud(P[i]), _nd(1), refusals=(InPlaceError,)),
    Op("diagonal", "view", lambda P, i, j, p: np.diagonal(P[i]), _nd(2),
       refusals=(InPlaceError,)),
    Op("broadcast_to", "view",
       lambda P, i, j, p: np.broadcast_to(P[i], (2,) + np.shape(P[i])),
       refusals=(InPlaceError,)),
    Op("x.real", "view", lambda P, i, j, p: P[i].real, refusals=(InPlaceError,)),
    Op("x.imag", "view", lambda P, i, j, p: P[i].imag, refusals=(InPlaceError,)),
    Op("split", "view", lambda P, i, j, p: _piece(np.split(P[i], 2), p), _splittable,
       refusals=(InPlaceError,)),
    Op("array_split", "view", lambda P, i, j, p: _piece(np.array_split(P[i], 2), p), _nonempty,
       refusals=(InPlaceError,)),
    Op("hsplit", "view", lambda P, i, j, p: _piece(np.hsplit(P[i], 2), p),
       lambda s, d: len(s) >= 1 and s[min(1, len(s) - 1)] % 2 == 0 and 0 not in s,
       refusals=(InPlaceError,)),
    Op("vsplit", "view", lambda P, i, j, p: _piece(np.vsplit(P[i], 2), p),
       lambda s, d: len(s) >= 2 and s[0] % 2 == 0 and 0 not in s, refusals=(InPlaceError,)),
    Op("atleast_2d", "view", lambda P, i, j, p: np.atleast_2d(P[i]), refusals=(InPlaceError,)),
    Op("atleast_3d", "view", lambda P, i, j, p: np.atleast_3d(P[i]), refusals=(InPlaceError,)),
    Op("x.view", "view", lambda P, i, j, p: P[i].view(), refusals=(InPlaceError,)),
    Op("matrix_transpose", "view", lambda P, i, j, p: np.matrix_transpose(P[i]), _nd(2),
       refusals=(InPlaceError,)),
    Op("unstack", "view", lambda P, i, j, p: _piece(np.unstack(P[i]), p), _nd(2),
       refusals=(InPlaceError,)),
    Op("rot90", "view", lambda P, i, j, p: np.rot90(P[i]), _nd(2), refusals=(InPlaceError,)),
    Op("permute_dims", "view", lambda P, i, j, p: np.permute_dims(P[i]),
       refusals=(InPlaceError,)),
    Op("x.mT", "view", lambda P, i, j, p: P[i].mT, _nd(2), refusals=(InPlaceError,)),
    Op("np.diag", "view", lambda P, i, j, p: np.diag(P[i]), lambda s, d: len(s) == 2,
       refusals=(InPlaceError,)),
    Op("x.diagonal", "view", lambda P, i, j, p: P[i].diagonal(), _nd(2),
       refusals=(InPlaceError,)),
    Op("x.squeeze", "view", lambda P, i, j, p: P[i].squeeze(), refusals=(InPlaceError,)),
    Op("x.swapaxes", "view", lambda P, i, j, p: P[i].swapaxes(0, -1), _nd(1),
       refusals=(InPlaceError,)),
    Op("x.ravel", "view", lambda P, i, j, p: P[i].ravel(), refusals=(InPlaceError,)),
    Op("np.real", "view", lambda P, i, j, p: np.real(P[i]), refusals=(InPlaceError,)),
    Op("np.imag", "view", lambda P, i, j, p: np.imag(P[i]), refusals=(InPlaceError,)),
    Op("einsum_diag", "view", lambda P, i, j, p: np.einsum("ii->i", P[i]),
       lambda s, d: len(s) == 2 and s[0] == s[1], refusals=(InPlaceError,)),
    Op("sliding_window", "view",
       lambda P, i, j, p: np.lib.stride_tricks.sliding_window_view(P[i], 2, axis=-1),
       lambda s, d: len(s) >= 1 and s[-1] >= 2, refusals=(InPlaceError,)),
    Op("x[()]", "view", lambda P, i, j, p: P[i][()]),
    Op("atleast_1d", "view", lambda P, i, j, p: np.atleast_1d(P[i]), refusals=(InPlaceError,)),
    Op("dsplit", "view", lambda P, i, j, p: _piece(np.dsplit(P[i], 2), p),
       lambda s, d: len(s) == 3 and s[2] % 2 == 0 and 0 not in s, refusals=(InPlaceError,)),
    Op("alias", "view", lambda P, i, j, p: P[i]),  # t = x: another name, the same object
    # np.asarray & co. of traced values (replaced while a transform runs: docs/design.md)
    Op("asarray", "view", lambda P, i, j, p: np.asarray(P[i])),
    Op("asarray_F", "view", lambda P, i, j, p: np.asarray(P[i], order="F")),
    Op("asfortranarray", "view", lambda P, i, j, p: np.asfortranarray(P[i])),
]

COPIES = [
    Op("x.copy", "copy", lambda P, i, j, p: P[i].copy()),
    Op("np.copy", "copy", lambda P, i, j, p: np.copy(P[i])),
    Op("flatten", "copy", lambda P, i, j, p: P[i].flatten()),
    Op("astype", "copy", lambda P, i, j, p: P[i].astype(P[i].dtype)),
    Op("astype_nocopy", "view", lambda P, i, j, p: P[i].astype(P[i].dtype, copy=False)),
    Op("conj", "copy", lambda P, i, j, p: P[i].conj()),
    Op("np.conj", "copy", lambda P, i, j, p: np.conj(P[i])),
    Op("copy.copy", "copy", lambda P, i, j, p: copy.copy(P[i])),
    Op("copy.deepcopy", "copy", lambda P, i, j, p: copy.deepcopy(P[i])),
    Op("np.array", "copy", lambda P, i, j, p: np.array(P[i])),
    Op("np.array_list", "copy", lambda P, i, j, p: np.array([P[i], P[i]])),
    # a traced value exists only while its transform runs: pickling it is refused
    Op("pickle", "copy", lambda P, i, j, p: pickle.loads(pickle.dumps(P[i])),
       refusals=(TracerConversionError,)),
    Op("astype_f32", "copy", lambda P, i, j, p: P[i].astype(np.float32)),
    Op("astype_complex", "copy", lambda P, i, j, p: P[i].astype(np.complex128)),
    Op("ascontiguousarray", "view", lambda P, i, j, p: np.ascontiguousarray(P[i])),
    Op("getitem_fancy2", "copy",
       lambda P, i, j, p: P[i][..., fancy_key(np.shape(P[i])[-1:], p)], _nonempty),
    # one element / a full reduction: a NumPy scalar (immutable), a 0-d value traced
    Op("getitem_scalar", "copy",
       lambda P, i, j, p: P[i][tuple(p % n for n in np.shape(P[i]))], _nonempty),
    Op("sum_all", "math", lambda P, i, j, p: np.sum(P[i]) * 0.5),
    Op("zeros_like0d", "copy",
       lambda P, i, j, p: np.zeros_like(P[i], shape=()) + 0.0 if p % 2 else
       _zeros0(P[i])),
    Op("getitem_fancy", "copy", lambda P, i, j, p: P[i][fancy_key(np.shape(P[i]), p)],
       _nonempty),
    Op("getitem_mask", "copy", lambda P, i, j, p: P[i][mask_of(np.shape(P[i]), p)], _nonempty),
    # buffers made by NumPy's constructors in the user's code: traced constants while a
    # transform runs (dualrev/buffers.py), so traced writes into them are recorded
    Op("np.zeros", "copy", lambda P, i, j, p: np.zeros(np.shape(P[i]))),
    Op("np.full", "copy", lambda P, i, j, p: np.full(np.shape(P[i]), 0.25 * (p % 4))),
    # (its operand is the newest entry or the one before, not entry i: a stale view
    # there refuses the use, as every use of one)
    Op("np.ones_like", "copy", lambda P, i, j, p: np.ones_like(P[-1 - p % 2]),
       refusals=(StaleViewError,)),
    Op("np.zeros_complex", "copy",
       lambda P, i, j, p: np.zeros(np.shape(P[i]), dtype=np.complex128)),
]


def _zeros0(x: Any) -> Any:
    """A 0-d array (mutable, unlike a scalar) holding the first element of ``x``."""
    a = np.zeros_like(x, shape=())
    a[...] = x[(0,) * np.ndim(x)] if np.size(x) else 0.0
    return a


def _cplx(P: list[Any], i: int, j: int, p: int) -> Any:
    return P[i] * (1.0 + 0.5j) + 0.25j


MATH = [
    Op("sin_plus", "math", lambda P, i, j, p: np.sin(P[i]) + 0.5 * P[i]),
    Op("times_other", "math",
       lambda P, i, j, p: P[i] * value_for(P, j, np.shape(P[i]), False)),
    Op("gauss", "math", lambda P, i, j, p: np.exp(-P[i] * P[i])),
    Op("complexify", "math", _cplx, lambda s, d: d.kind != "c"),
]


def _w(f: Callable[[list[Any], int, int, int], None]) -> Callable[..., Any]:
    def run(P: list[Any], i: int, j: int, p: int) -> None:
        f(P, i, j, p)
    return run


def _set_basic(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    key = basic_key(np.shape(x), p)
    if p % 7 == 1:  # the entry as it is: NumPy raises where it does not broadcast
        x[key] = np.real(P[j]) if np.iscomplexobj(P[j]) and not np.iscomplexobj(x) else P[j]
        return
    x[key] = value_for(P, j, target_shape(np.shape(x), key), not np.iscomplexobj(x),
                       keep_complex=p % 3 == 0)


def _set_fancy(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    key = fancy_key(np.shape(x), p)
    x[key] = value_for(P, j, target_shape(np.shape(x), key), not np.iscomplexobj(x))


def _set_mask(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    key = mask_of(np.shape(x), p)
    x[key] = value_for(P, j, target_shape(np.shape(x), key), not np.iscomplexobj(x))


def _set_datamask(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    key = np.real(x) > 0.3
    x[key] = 0.5 * p % 3  # a plain scalar: the count of True is data dependent


def _aug_basic(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    key = basic_key(np.shape(x), p)
    v = value_for(P, j, target_shape(np.shape(x), key), not np.iscomplexobj(x))
    if p % 3 == 0:
        x[key] += v
    elif p % 3 == 1:
        x[key] *= v
    else:
        x[key] -= v


def _aug_whole(P: list[Any], i: int, j: int, p: int) -> None:
    """``x op= v`` on the pool's slot, as Python runs it (``P[i] = P[i].__iop__(v)``): an
    array is written in place, a NumPy scalar (immutable) is replaced in that slot only."""
    v = value_for(P, j, np.shape(P[i]), not np.iscomplexobj(P[i]))
    if p % 7 == 1:  # the entry as it is: NumPy raises where it does not broadcast
        v = np.real(P[j]) if np.iscomplexobj(P[j]) and not np.iscomplexobj(P[i]) else P[j]
    op = p % 4
    if op == 0:
        P[i] += v
    elif op == 1:
        P[i] *= v
    elif op == 2:
        P[i] -= v
    else:
        P[i] /= 2.0 + v * v


def _aug_keep(P: list[Any], i: int, j: int, p: int) -> Any:
    """``t = x; x op= v``, the old name kept (``history.append(loss); loss += reg``):
    ``t`` sees the write if ``x`` is an array, not if it is a NumPy scalar."""
    t = P[i]
    _aug_whole(P, i, j, p)
    return t


def _aug_fancy(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    key = fancy_key(np.shape(x), p)
    x[key] += value_for(P, j, target_shape(np.shape(x), key), not np.iscomplexobj(x))


def _fill(P: list[Any], i: int, j: int, p: int) -> None:
    v = np.mean(P[j]) if np.size(P[j]) else 0.5
    P[i].fill(np.real(v) if not np.iscomplexobj(P[i]) else v)


def _ufunc_out(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    v = value_for(P, j, np.shape(x), not np.iscomplexobj(x))
    (np.add if p % 2 else np.multiply)(x, v, out=x)


def _add_at(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    key = fancy_key(np.shape(x), p)
    v = value_for(P, j, target_shape(np.shape(x), key), not np.iscomplexobj(x))
    np.add.at(x, key, v)


def _sort(P: list[Any], i: int, j: int, p: int) -> None:
    P[i].sort()


_SELF_PAIRS = [  # x[dst] = x[src]: the right-hand side a view of the written array
    ((slice(None),), (slice(None, None, -1),)),
    ((slice(1, None),), (slice(None, -1),)),
    ((slice(None, -1),), (slice(1, None),)),
    ((Ellipsis, slice(None, None, 2)), (Ellipsis, slice(1, None, 2))),
]


def _set_self(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    s = np.shape(x)
    for k in range(len(_SELF_PAIRS)):
        dst, src = _SELF_PAIRS[(p + k) % len(_SELF_PAIRS)]
        if target_shape(s, dst) == target_shape(s, src) and 0 not in target_shape(s, dst):
            x[dst] = x[src]
            return
    x[...] = x[...]


def _set_fancy_self(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    n = np.shape(x)[0]
    x[[0, n - 1]] = x[:2] if p % 2 else x[::-1][:2]


def _set_mixed(P: list[Any], i: int, j: int, p: int) -> None:
    """Fancy and basic indices together: x[[..], 1:] = v, x[..., [..]] += v."""
    x = P[i]
    s = np.shape(x)
    if p % 2 and len(s) >= 2:
        key: Any = (fancy_key(s, p), slice(1, None))
    else:
        key = (Ellipsis, [(-1 - p) % s[-1], 0])
    v = value_for(P, j, target_shape(s, key), not np.iscomplexobj(x))
    if p % 3:
        x[key] = v
    else:
        x[key] += v


def _set_mask1(P: list[Any], i: int, j: int, p: int) -> None:
    """A boolean mask over the first axis only."""
    x = P[i]
    key = mask_of(np.shape(x)[:1], p)
    x[key] = value_for(P, j, target_shape(np.shape(x), key), not np.iscomplexobj(x))


def _unary_out(P: list[Any], i: int, j: int, p: int) -> None:
    x = P[i]
    (np.negative if p % 2 else np.sin)(x, out=x)


def _numpy_writer(P: list[Any], i: int, j: int, p: int) -> None:
    """NumPy's functions that write into their first argument."""
    x = P[i]
    s = np.shape(x)
    real = not np.iscomplexobj(x)
    w = p % 5
    if w == 0:
        np.copyto(x, value_for(P, j, s, real))
    elif w == 1:
        np.putmask(x, mask_of(s, p), value_for(P, j, s, real))
    elif w == 2:
        np.put(x, [0, -1], value_for(P, j, (2,), real))
    elif w == 3:
        np.fill_diagonal(x, value_for(P, j, (), real)) if len(s) >= 2 else np.copyto(x, 0.5)
    else:
        np.place(x, mask_of(s, p), value_for(P, j, (), real))


WRITES = [
    Op("set_mixed", "write", _w(_set_mixed), _nonempty, refusals=(InPlaceError,)),
    Op("set_mask1", "write", _w(_set_mask1), _nonempty, refusals=(InPlaceError,)),
    Op("unary_out", "write", _w(_unary_out), refusals=(InPlaceError,)),
    Op("numpy_writer", "write", _w(_numpy_writer), _nonempty, refusals=(InPlaceError,)),
    Op("set_basic", "write", _w(_set_basic), _nonempty, refusals=(InPlaceError,)),
    Op("set_fancy", "write", _w(_set_fancy), _nonempty, refusals=(InPlaceError,)),
    Op("set_mask", "write", _w(_set_mask), _nonempty, refusals=(InPlaceError,)),
    Op("set_datamask", "write", _w(_set_datamask), _nonempty,
       refusals=(InPlaceError, BatchedValueError)),
    Op("aug_basic", "write", _w(_aug_basic), _nonempty, refusals=(InPlaceError,)),
    Op("aug_whole", "write", _w(_aug_whole), refusals=(InPlaceError,)),
    Op("aug_keep", "write", _aug_keep, refusals=(InPlaceError,)),
    Op("aug_fancy", "write", _w(_aug_fancy), _nonempty, refusals=(InPlaceError,)),
    Op("fill", "write", _w(_fill), refusals=(InPlaceError,)),
    Op("ufunc_out", "write", _w(_ufunc_out), refusals=(InPlaceError,)),
    Op("add.at", "write", _w(_add_at), _nonempty, refusals=(InPlaceError,)),
    Op("sort", "write", _w(_sort), lambda s, d: len(s) >= 1 and d.kind != "c",
       refusals=(InPlaceError,)),
    Op("set_self", "write", _w(_set_self), _nonempty, refusals=(InPlaceError,)),
    Op("set_fancy_self", "write", _w(_set_fancy_self),
       lambda s, d: len(s) >= 1 and s[0] >= 2 and 0 not in s, refusals=(InPlaceError,)),
]

OPS = VIEWS + COPIES + MATH + WRITES
OP_INDEX = {op.name: k for k, op in enumerate(OPS)}
MAX_POOL = 8


# ------------------------------------------------------------------ running
@dataclass
class Record:
    """What one run did: the op run at each step (None where no op applied), the steps
    refused with a DualrevError (name of the error), the other exceptions raised, and
    per pool entry at the end, whether it is a stale view (traced runs)."""

    ops: list[Any] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    raised: dict[int, str] = field(default_factory=dict)
    bad_refusals: dict[int, str] = field(default_factory=dict)
    stale: list[bool] = field(default_factory=list)
    returned_self: dict[int, bool] = field(default_factory=dict)


def is_stale(x: Any) -> bool:
    return isinstance(getattr(x, "primal", None), Stale)


def resolve(steps: list[tuple[int, int, int, int]], s: int, pool: list[Any]) -> Any:
    """The op and operands step ``s`` runs on ``pool`` (None if no op applies)."""
    k, i, j, p = steps[s]
    i = len(pool) - 1 - i % len(pool)  # counted from the newest entry: chains are common
    j %= len(pool)
    x = pool[i]
    shape, dtype = tuple(np.shape(x)), np.result_type(x)
    for d in range(len(OPS)):
        op = OPS[(k + d) % len(OPS)]
        if op.kind in ("view", "copy", "math") and len(pool) >= MAX_POOL:
            continue  # the pool is full: writes only
        if op.applies(shape, dtype) and int(np.prod(shape)) <= 64:
            return op, i, j, p
    return None


def interpret(steps: list[tuple[int, int, int, int]], inputs: list[Any],
              skip: frozenset[int] | set[int] = frozenset(),
              traced: bool = False) -> tuple[list[Any], Record]:
    """Run the program on ``inputs`` (plain or traced arrays), skipping the steps in
    ``skip`` (those the traced run refused). The pool starts as the inputs themselves,
    so a write into an input is a write into the caller's array, as in NumPy. A plain
    constant array (no derivative) joins them: traced values written into it must be
    refused (PlainBufferError / InPlaceError), plain ones written."""
    pool = list(inputs) + [np.linspace(-1.0, 1.0, 6).reshape(2, 3)]
    rec = Record()
    with warnings.catch_warnings():
        # complex written into a real array: NumPy and dualrev both warn
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        _run(steps, pool, rec, skip, traced)
    rec.stale = [is_stale(x) for x in pool]
    return pool, rec


def _run(steps: list[tuple[int, int, int, int]], pool: list[Any], rec: Record,
         skip: frozenset[int] | set[int], traced: bool) -> None:
    for s in range(len(steps)):
        if s in skip:
            rec.ops.append("skipped")
            continue
        try:
            r = resolve(steps, s, pool)
        except StaleViewError:  # the operand's shape is a use of a stale view
            rec.ops.append("skipped")
            rec.refused[s] = "StaleViewError"
            continue
        rec.ops.append(None if r is None else r[0].name)
        if r is None:
            continue
        op, i, j, p = r
        stale_operand = traced and (is_stale(pool[i]) or is_stale(pool[j]))
        try:
            try:
                out = op.run(pool, i, j, p)
            except ValueError as e:
                # NumPy re-raises a failed store into a plain array as a bare ValueError;
                # the transforms raise its cause, dualrev's error, instead
                if isinstance(e.__cause__, DualrevError):
                    raise e.__cause__ from None
                raise
        except DualrevError as e:
            rec.ops[-1] = "skipped"

            rec.refused[s] = type(e).__name__
            ok = isinstance(e, op.refusals) or (
                stale_operand and isinstance(e, StaleViewError)) or (
                op.kind == "write" and not isinstance(pool[i], Tracer)
                and isinstance(e, (TracerConversionError, InPlaceError)))
            if not ok:
                rec.bad_refusals[s] = f"{op.name}: {type(e).__name__}: {e}"
            continue
        except Exception as e:  # noqa: BLE001 -- compared with NumPy's own raise
            rec.raised[s] = f"{type(e).__name__}: {e}"
            continue
        if out is not None:
            rec.returned_self[s] = out is pool[i]
            pool.append(out)


def scalar_of(pool: list[Any], stale: list[bool]) -> Any:
    """The program's scalar output: a weighted sum of squares of the live entries."""
    total = 0.0
    for k, x in enumerate(pool):
        if stale[k]:
            continue
        if np.iscomplexobj(x):
            x = np.concatenate([np.ravel(np.real(x)), np.ravel(np.imag(x))])
        total = total + (k + 1) * np.sum(np.sin(x) * x)
    return total


def vector_of(pool: list[Any], stale: list[bool]) -> list[Any]:
    """The program's outputs: the live entries (complex ones as real and imaginary
    parts), each a fresh array."""
    out = []
    for k, x in enumerate(pool):
        if stale[k]:
            continue
        if np.iscomplexobj(x):
            out += [np.real(x) * 1.0, np.imag(x) * 1.0]
        else:
            out.append(x * 1.0)
    return out


__all__ = ["OPS", "OP_INDEX", "Record", "interpret", "scalar_of", "vector_of", "is_stale",
           "TracerConversionError"]
