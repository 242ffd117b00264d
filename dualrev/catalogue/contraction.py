"""Contractions: matmul and einsum primitives; dot, inner, outer, vdot and tensordot
built on them.

``matmul_p`` takes operands of at least two dimensions (the handler lifts vectors and
drops the added axis again), so its rules need no case analysis.
"""

from __future__ import annotations

import math
import string
from typing import Any

import numpy as np

from .. import config, pattern_rules
from ..compile import register_inline
from ..errors import InPlaceError
from ..inplace import note_view
from ..primitive import (
    Primitive,
    Tracer,
    bind,
    eye_as,
    is_complex,
    ndim_of,
    ones_as,
    register_function,
    register_ufunc,
    shape_of,
    unbroadcast,
)
from .shape import _ravel, _reshape, cast_joined


# ------------------------------------------------------------------ matmul
def _matmul_impl(a: Any, b: Any) -> Any:
    return np.matmul(a, b)


def matrix_transpose(x: Any) -> Any:
    """Swap the last two axes (a stack of matrices transposed)."""
    if type(x) is np.ndarray:  # the method: no dispatch through NumPy's wrapper
        return x.swapaxes(-1, -2)
    return np.swapaxes(x, -1, -2)


_mT = matrix_transpose


# whether batch rules fold matrix products and multiply plain operands past bind (the
# shortcuts switch)
_FOLD = [True]


@config.on_shortcuts
def _choose_fold(on: bool) -> None:
    _FOLD[0] = on


def _own_array(x: Any) -> Any:
    if hasattr(type(x), "__array_function__") and not isinstance(x, (np.ndarray, np.generic)):
        return x
    return np.asarray(x)


def _fold_matmul(a: Any, b: Any) -> Any:
    """``a @ b`` where one side is a single matrix and the other a stack (as a batch
    of tangents or cotangents is): folded into one matrix product, where NumPy would run
    one product (or one matrix-vector product) per stacked matrix."""
    if isinstance(a, Tracer) or isinstance(b, Tracer) or not _FOLD[0]:
        return bind(matmul_p, (a, b), {})  # traced (nested) operands: folding costs more
    # plain values: ndarray methods, no wrappers; another library's array (Dask, CuPy)
    # folds by its own methods, staying lazy or on its device
    a, b = _own_array(a), _own_array(b)
    sa, sb = a.shape, b.shape
    # (explicit row counts, not -1: a stack may be empty)
    if len(sb) == 2 and len(sa) > 2:
        r = np.matmul(a.reshape((math.prod(sa[:-1]), sa[-1])), b)
        return r.reshape(sa[:-1] + sb[-1:])
    if len(sa) == 2 and len(sb) > 2:
        if sb[-1] == 1:  # a stack of vectors: one (stack, k) @ (k, n) product
            r = np.matmul(b.reshape((math.prod(sb[:-2]), sb[-2])), a.T)
            return r.reshape(sb[:-2] + (sa[0], 1))
        bt = b.swapaxes(-1, -2).reshape((math.prod(sb[:-2]) * sb[-1], sb[-2]))
        r = np.matmul(bt, a.T)
        return r.reshape(sb[:-2] + (sb[-1], sa[0])).swapaxes(-1, -2)
    return np.matmul(a, b)


# Vector operands are handled by the rules themselves (not by reshaping around a matrix
# product), so W @ x records one operation. Shapes: a (..., n, k) or (k,), b (..., k, m)
# or (k,). A tangent has its argument's shape, so the JVPs are products of the same
# kind as the primitive's.
def _matmul_vjp_a(g: Any, ans: Any, a: Any, b: Any) -> Any:
    if ndim_of(a) == 1:
        if ndim_of(b) == 1:
            return g * b
        if ndim_of(b) == 2:  # a row times a matrix: g (m,) @ b^T
            return bind(matmul_p, (g, _mT(b)), {})
        c = np.matmul(g[..., None, :], _mT(b))[..., 0, :]
    elif ndim_of(b) == 1:
        c = g[..., :, None] * b
    else:
        c = np.matmul(g, _mT(b))
    return unbroadcast(c, shape_of(a))


def _matmul_vjp_b(g: Any, ans: Any, a: Any, b: Any) -> Any:
    if ndim_of(b) == 1:
        if ndim_of(a) == 1:
            return g * a
        if ndim_of(a) == 2:  # a matrix times a column: a^T g, as the row g (n,) @ a
            return bind(matmul_p, (g, a), {})
        c = np.matmul(_mT(a), g[..., None])[..., 0]
    elif ndim_of(a) == 1:
        c = a[:, None] * g[..., None, :]
    else:
        c = np.matmul(_mT(a), g)
    return unbroadcast(c, shape_of(b))


def _plain_matmul(a: Any, b: Any) -> Any:
    """``a @ b`` of two operands already in a batch rule's layout: NumPy's own product
    for two plain arrays (the shortcut past ``bind``), else the primitive."""
    if type(a) is np.ndarray and type(b) is np.ndarray and _FOLD[0]:
        return np.matmul(a, b)
    return bind(matmul_p, (a, b), {})


def _matmul_batch(args: list[Any], batched: tuple[bool, ...]) -> Any:
    # Vectors become a row (a) or a column (b) and are squeezed again afterwards, so a
    # stack of vectors never reads as a matrix; each batched operand's batch axis then
    # goes in front of the broadcast stack axes.
    a, b = args
    ba, bb = batched
    fa, fb = shape_of(a), shape_of(b)
    sa, sb = fa[ba:], fb[bb:]
    if len(sa) == 1 and len(sb) == 2 and not bb:  # rows times one matrix: a stack of rows
        return _plain_matmul(a, b)
    if len(sa) == 2 and len(sb) == 1 and not ba:  # one matrix times columns: b_i @ a^T
        return _plain_matmul(b, _mT(a))
    va, vb = len(sa) == 1, len(sb) == 1
    if va:
        sa = (1,) + sa
    if vb:
        sb = sb + (1,)
    r = max(len(sa), len(sb)) - 2
    want_a = (fa[:1] + (1,) * (r - len(sa) + 2) if ba else ()) + sa
    want_b = (fb[:1] + (1,) * (r - len(sb) + 2) if bb else ()) + sb
    if fa != want_a:
        a = np.reshape(a, want_a)
    if fb != want_b:
        b = np.reshape(b, want_b)
    out = _fold_matmul(a, b)
    if va and vb:
        return out[..., 0, 0]
    if vb:
        return out[..., 0]
    return out[..., 0, :] if va else out


matmul_p = Primitive("matmul", _matmul_impl)
register_inline(matmul_p, lambda out, args, params, seen, name: (
    f"{out} = {name(np.matmul)}({args[0]}, {args[1]})" if not params else None))
matmul_p.defjvp(lambda g, ans, a, b: bind(matmul_p, (g, b), {}),
                lambda g, ans, a, b: bind(matmul_p, (a, g), {}))
matmul_p.defvjp(_matmul_vjp_a, _matmul_vjp_b, saves=("a.shape b", "a b.shape"))
matmul_p.defbatch(_matmul_batch)
# a constant operand's zeros are structural; stacks broadcast as the einsum they are
matmul_p.defpattern(pattern_rules.matmul_stacks)


def _matmul(a: Any, b: Any, out: Any = None, **kwargs: Any) -> Any:
    if out is not None:
        raise InPlaceError("numpy.matmul(..., out=...)")
    if not shape_of(a) or not shape_of(b):
        raise ValueError("matmul: Input operand does not have enough dimensions")
    return bind(matmul_p, (a, b), {})


register_ufunc(np.matmul, _matmul)


# ------------------------------------------------------------------ einsum
def _parse(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[tuple[str, ...], str]:
    """Explicit, ellipsis-free form of einsum subscripts for operands of ``shapes``."""
    subscripts = subscripts.replace(" ", "")
    ins, arrow, out = subscripts.partition("->")
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError("einsum: the number of subscripts does not match the operands")
    used = set(subscripts) - set(".,->")
    free = [c for c in string.ascii_letters if c not in used]
    ell_nd = max((len(s) - (len(t) - 3) for t, s in zip(terms, shapes, strict=True)
                  if "..." in t), default=0)
    ell = "".join(free[:ell_nd])
    expanded = []
    for t, s in zip(terms, shapes, strict=True):
        if "..." in t:
            k = len(s) - (len(t) - 3)
            t = t.replace("...", ell[ell_nd - k:])
        if len(t) != len(s):
            raise ValueError(f"einsum: subscripts {t!r} do not match an operand of shape {s}")
        expanded.append(t)
    if arrow:
        if ell_nd and "..." not in out:  # NumPy refuses to sum the broadcast axes away
            raise ValueError("einsum: output has more dimensions than subscripts given in "
                             "einstein sum, but no '...' ellipsis provided to broadcast "
                             "the extra dimensions.")
        out = out.replace("...", ell)
    else:
        counts = {c: "".join(expanded).count(c) for c in set("".join(expanded))}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return tuple(expanded), out


def _spec_str(terms: Any, out: str) -> str:
    return ",".join(terms) + "->" + out


def _fresh(terms: Any, out: str, n: int) -> str:
    used = set("".join(terms) + out)
    return "".join([c for c in string.ascii_letters if c not in used][:n])


def _einsum_impl(*ops: Any, spec: tuple[tuple[str, ...], str]) -> Any:
    terms, out = spec
    return np.einsum(_spec_str(terms, out), *ops, optimize=len(ops) > 2)


def _einsum_jvp(i: int, g: Any, ans: Any, *ops: Any, spec: Any) -> Any:
    args = list(ops)
    args[i] = g
    return bind(einsum_p, tuple(args), {"spec": spec})


def _einsum_vjp(i: int, g: Any, ans: Any, *ops: Any, spec: Any) -> Any:
    terms, out = spec
    spare = list(_fresh(terms, out, len(terms[i])))
    target = ""
    args = [g]
    new_terms = [out]
    for j, (t, x) in enumerate(zip(terms, ops, strict=True)):
        if j != i:
            args.append(x)
            new_terms.append(t)
    present = set(out).union(*[set(t) for j, t in enumerate(terms) if j != i])
    xs = shape_of(ops[i])
    for c, n in zip(terms[i], xs, strict=True):
        if c in target:
            # A repeated label (a diagonal): a fresh label tied to it by an identity matrix.
            d = spare.pop()
            args.append(eye_as(n, float, ops[i]))  # (in the operand's library)
            new_terms.append(c + d)
            target += d
            continue
        if c not in present:
            # A label summed within this operand alone: its cotangent is constant along it.
            args.append(ones_as((n,), float, ops[i]))
            new_terms.append(c)
            present.add(c)
        target += c
    return bind(einsum_p, tuple(args), {"spec": (tuple(new_terms), target)})


def _einsum_batch(args: list[Any], batched: tuple[bool, ...], spec: Any) -> Any:
    # a fresh label for the batch axis, on the batched operands and in front of the output
    terms, out = spec
    z = _fresh(terms, out, 1)
    new_terms = tuple(z + t if b else t for t, b in zip(terms, batched, strict=True))
    return bind(einsum_p, tuple(args), {"spec": (new_terms, z + out)})


einsum_p = Primitive("einsum", _einsum_impl)
einsum_p.defbatch(_einsum_batch)
einsum_p.defjvp_joint(
    lambda tangents, ans, *ops, spec: _sum_parts(
        [_einsum_jvp(i, t, ans, *ops, spec=spec) for i, t in enumerate(tangents) if t is not None]
    )
)
einsum_p.defvjp_indexed(_einsum_vjp)
# any subscripts: a sparse join of the other operands' possible non-zeros
einsum_p.defpattern(pattern_rules.einsum)


def _sum_parts(parts: list[Any]) -> Any:
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


@register_function(np.einsum)
def _einsum(subscripts: Any, *operands: Any, out: Any = None, optimize: Any = False,
            dtype: Any = None, order: str = "K", casting: str = "safe") -> Any:
    # optimize= picks a contraction order and order= a memory layout: same values
    if out is not None:
        raise InPlaceError("numpy.einsum(..., out=...)")
    if not isinstance(subscripts, str):
        subscripts, operands = _from_sublists((subscripts, *operands))
    spec = _parse(subscripts, [shape_of(o) for o in operands])
    result = bind(einsum_p, _broadcast_units(operands, spec[0]), {"spec": spec})
    if dtype is None and casting == "safe":
        if len(operands) == 1 and set(spec[0][0]) <= set(spec[1]):
            # nothing summed (a permutation, a diagonal): NumPy returns a view
            note_view(operands[0], result, "einsum")
        return result
    return cast_joined(result, list(operands), dtype, casting)


def _sublist(labels: Any) -> str:
    out = []
    for k in labels:
        if k is Ellipsis:
            out.append("...")
            continue
        k = int(k)
        if not 0 <= k < 52:
            raise ValueError("subscript is not within the valid range [0, 52)")
        out.append(chr(ord("A") + k) if k < 26 else chr(ord("a") + k - 26))
    return "".join(out)


def _from_sublists(args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """NumPy's sublist form, ``einsum(op0, sublist0, op1, sublist1, ..., [sublistout])``,
    as string subscripts and operands (labels 0-25 are A-Z and 26-51 a-z, as in NumPy)."""
    operands, terms = list(args[0::2]), [_sublist(t) for t in args[1::2]]
    if len(args) % 2:  # an output sublist follows the last operand's
        out = _sublist(operands.pop())
        return ",".join(terms) + "->" + out, tuple(operands)
    return ",".join(terms), tuple(operands)


def _broadcast_units(operands: tuple[Any, ...], terms: tuple[str, ...]) -> tuple[Any, ...]:
    """Operands with their size-1 axes broadcast to their labels' sizes, as NumPy's einsum
    broadcasts them: the rules then see one size per label, and broadcast_to's VJP sums
    the cotangent back over the repeated axis."""
    size: dict[str, int] = {}
    for t, o in zip(terms, operands, strict=True):
        for c, n in zip(t, shape_of(o), strict=True):
            if n != 1:
                size[c] = n
    out = []
    for t, o in zip(terms, operands, strict=True):
        shape = tuple(size.get(c, 1) for c in t)
        out.append(o if shape_of(o) == shape else np.broadcast_to(o, shape))
    return tuple(out)


# ------------------------------------------------------------------ built from the above
@register_function(np.tensordot)
def _tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    na, nb_ = ndim_of(a), ndim_of(b)
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(na - int(axes), na))
        ax_b = list(range(int(axes)))
    else:
        ax_a, ax_b = ([int(v)] if np.ndim(v) == 0 else [int(u) for u in v] for v in axes)
        ax_a = [v % na for v in ax_a]
        ax_b = [v % nb_ for v in ax_b]
    letters = string.ascii_letters
    ta = list(letters[:na])
    tb = list(letters[na:na + nb_])
    for i, j in zip(ax_a, ax_b, strict=True):
        tb[j] = ta[i]
    out = "".join(c for i, c in enumerate(ta) if i not in ax_a) + "".join(
        c for j, c in enumerate(tb) if j not in ax_b)
    return bind(einsum_p, (a, b), {"spec": (("".join(ta), "".join(tb)), out)})


@register_function(np.dot)
def _dot(a: Any, b: Any, out: Any = None) -> Any:
    if out is not None:
        raise InPlaceError("numpy.dot(..., out=...)")
    na, nb_ = ndim_of(a), ndim_of(b)
    if na == 0 or nb_ == 0:
        return a * b
    if na <= 2 and nb_ <= 2:
        return _matmul(a, b)
    return _tensordot(a, b, axes=([-1], [-2 if nb_ >= 2 else 0]))


@register_function(np.inner)
def _inner(a: Any, b: Any) -> Any:
    if ndim_of(a) == 0 or ndim_of(b) == 0:
        return a * b
    return _tensordot(a, b, axes=([-1], [-1]))


@register_function(np.outer)
def _outer(a: Any, b: Any, out: Any = None) -> Any:
    if out is not None:
        raise InPlaceError("numpy.outer(..., out=...)")
    return _reshape(_ravel(a), (-1, 1)) * _reshape(_ravel(b), (1, -1))


@register_function(np.vdot)
def _vdot(a: Any, b: Any) -> Any:
    a = _ravel(a)
    if is_complex(a):  # vdot conjugates its first argument
        a = np.conjugate(a)
    return np.sum(a * _ravel(b))
