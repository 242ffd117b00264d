"""Bridges: a function of NumPy arrays, differentiated by dualrev, as a differentiable
operation of PyTorch (``to_torch``) and of JAX (``to_jax``).

The peer library owns the outer program (a training loop, a network, ``jax.jit``); the
bridged function runs on the host in NumPy, and the peer's autodiff asks dualrev for the
derivatives: PyTorch through ``torch.autograd.Function`` (backward, forward mode, vmap),
JAX through ``jax.custom_vjp`` (or ``jax.custom_jvp``) over ``jax.pure_callback``.
Neither library is imported by ``import dualrev``: each is imported when a bridge is
built. See docs/bridges.md for what each peer transform does through a bridge.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import BatchedValueError, DualrevError
from .transforms import jvp, vjp, vmap
from .tree import TreeDef, tree_flatten, tree_unflatten

# ------------------------------------------------------------------------------ PyTorch


class _Op:
    """A function of flat NumPy arrays returning a tuple of arrays: what one bridged call
    (or one of its derivatives) computes. ``out_def`` is the user's output structure, set
    when the user's function first runs (under any transform)."""

    __slots__ = ("fn", "out_def", "_derived")

    def __init__(self, fn: Callable[..., tuple[Any, ...]]) -> None:
        self.fn = fn
        self.out_def: TreeDef | None = None
        self._derived: dict[Any, _Op] = {}

    def vjp_op(self, n: int) -> _Op:
        """``(*xs, *cts) -> cotangents of xs`` (``n`` inputs ``xs``): the backward pass as
        a bridged function of its own (so that it can be differentiated again)."""
        op = self._derived.get(("vjp", n))
        if op is None:
            fn = self.fn

            def pull(*a: Any) -> tuple[Any, ...]:
                # a[n:]: the cotangents of the floating outputs only
                outs, pullback, _ = vjp(_float_part(fn, []), *a[:n], has_aux=True)
                return tuple(pullback(_cotangents(a[n:], [_dtype(o) for o in outs])))

            op = self._derived[("vjp", n)] = _Op(pull)
        return op

    def jvp_op(self) -> _Op:
        """``(*xs, *ts) -> tangents of the outputs``: forward mode as a bridged function."""
        op = self._derived.get("jvp")
        if op is None:
            fn = self.fn

            def push(*a: Any) -> tuple[Any, ...]:
                n = len(a) // 2
                ts = tuple(t if _dtype(t) == _dtype(x) else t.astype(_dtype(x))
                           for x, t in zip(a[:n], a[n:], strict=True))
                # the tangents of the floating outputs only
                return tuple(jvp(_float_part(fn, []), a[:n], ts, has_aux=True)[1])

            op = self._derived["jvp"] = _Op(push)
        return op

    def vmap_op(self, in_axes: tuple[int | None, ...], size: int) -> _Op:
        """The function mapped over ``size`` elements by ``dualrev.vmap``, outputs batched
        along axis 0."""
        key = ("vmap", in_axes, size)
        op = self._derived.get(key)
        if op is None:
            op = self._derived[key] = _Op(_mapped(self.fn, in_axes, size))
        return op


def _float_part(fn: Callable[..., tuple[Any, ...]],
                kinds: list[bool]) -> Callable[..., tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """``fn`` returning ``(floating outputs, other outputs)``, for a transform with
    ``has_aux``: integer and boolean outputs (an argmax, a count) have no derivative and
    are passed through; ``kinds`` is set to which outputs are floating."""

    def split(*a: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        outs = tuple(fn(*a))
        kinds[:] = [_dtype(o).kind in "fc" for o in outs]
        return (tuple(o for o, k in zip(outs, kinds, strict=True) if k),
                tuple(o for o, k in zip(outs, kinds, strict=True) if not k))

    return split


def _merge(floats: Any, others: Any, kinds: list[bool]) -> tuple[Any, ...]:
    f, o = iter(floats), iter(others)
    return tuple(next(f) if k else next(o) for k in kinds)


def _mapped(fn: Callable[..., tuple[Any, ...]], in_axes: tuple[int | None, ...],
            size: int) -> Callable[..., tuple[Any, ...]]:
    """``fn`` mapped over ``size`` elements (the ``in_axes`` of its arguments), outputs
    batched along axis 0: by ``dualrev.vmap``, one vectorised call; where ``fn`` decides
    on a value (``if`` on an element's value, a shape from values: ``BatchedValueError``)
    by one call per element, stacked. Both are differentiable by dualrev."""
    batched = vmap(lambda *a: tuple(fn(*a)), in_axes=in_axes, axis_size=size)

    def run(*args: Any) -> tuple[Any, ...]:
        try:
            return batched(*args)
        except BatchedValueError:
            pass
        per = [tuple(fn(*(a if ax is None else np.moveaxis(a, ax, 0)[i]
                          for a, ax in zip(args, in_axes, strict=True))))
               for i in range(size)]
        return tuple(np.stack(outs) for outs in zip(*per, strict=True))

    return run


def _dtype(x: Any) -> np.dtype:
    d = getattr(x, "dtype", None)
    return np.dtype(d) if d is not None else np.result_type(x)


def _cotangents(cts: tuple[Any, ...], dtypes: list[np.dtype]) -> tuple[Any, ...]:
    """PyTorch's cotangents as dualrev's: in each output's dtype, and conjugated for a
    complex output (PyTorch's gradient of a real loss is the conjugate of JAX's, which
    dualrev follows; the bridge conjugates the input cotangents back)."""
    res = []
    for c, d in zip(cts, dtypes, strict=True):
        if _dtype(c) != d:
            c = (np.real(c) if d.kind != "c" and _dtype(c).kind == "c" else c).astype(d)
        res.append(np.conj(c) if d.kind == "c" else c)
    return tuple(res)


class _Call:
    """One application of a bridged op: the op, whether its forward records a tape (a
    backward pass will follow), the pullback recorded, and a way to compute the op's
    value without recording (the backward op of a call whose forward recorded)."""

    __slots__ = ("op", "record", "pullback", "dtypes", "fast")

    def __init__(self, op: _Op, record: bool, fast: Callable[..., Any] | None = None) -> None:
        self.op = op
        self.record = record
        self.pullback: Callable[..., Any] | None = None
        self.dtypes: list[np.dtype] = []
        self.fast = fast


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise DualrevError("dualrev.to_torch needs PyTorch (pip install 'dualrev[torch]')") from e
    return torch


def _to_numpy(t: Any) -> np.ndarray:
    # A CUDA (or MPS) tensor is copied to the host: the bridged function is NumPy code.
    # bfloat16 has no NumPy dtype: the function sees float32.
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()
    return t.resolve_conj().resolve_neg().numpy()


def _target_dtype(torch: Any, tensors: tuple[Any, ...]) -> Any:
    """The dtype floating outputs are returned in: PyTorch's promotion of the floating
    inputs (float32 in, float32 out, even where the NumPy code computed in float64)."""
    target = None
    for t in tensors:
        if t.is_floating_point() or t.is_complex():
            target = t.dtype if target is None else torch.promote_types(target, t.dtype)
    return target


_COMPLEX_OF = {"torch.float16": "complex64", "torch.bfloat16": "complex64",
               "torch.float32": "complex64", "torch.float64": "complex128"}
_REAL_OF = {"torch.complex64": "float32", "torch.complex128": "float64"}


def _to_tensor(torch: Any, a: Any, like: tuple[Any, ...]) -> Any:
    # a copy: the output must not share memory with the function's inputs or constants
    out = torch.from_numpy(np.array(np.asarray(a), copy=True, order="C"))
    target = _target_dtype(torch, like)
    if target is not None and (out.is_floating_point() or out.is_complex()):
        if out.is_complex() and not target.is_complex:
            target = getattr(torch, _COMPLEX_OF.get(str(target), "complex128"))
        elif target.is_complex and not out.is_complex():
            target = getattr(torch, _REAL_OF[str(target)])
        out = out.to(target)
    return out.to(like[0].device) if like and like[0].device.type != "cpu" else out


def _apply(torch: Any, op: _Op, tensors: tuple[Any, ...],
           fast: Callable[..., Any] | None = None) -> tuple[Any, ...]:
    # With a fast way to the value (the backward op of a call whose forward recorded),
    # nothing is recorded now: a derivative of this call, if one is ever asked for (a
    # double backward), records op.fn then. torch.func's backward passes run with
    # create_graph, so recording here would run f again for nothing.
    record = fast is None and torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return _function(torch).apply(_Call(op, record, fast), *tensors)


@functools.cache
def _function(torch: Any) -> type:
    """The ``torch.autograd.Function`` every bridged call applies (built once)."""

    class DualrevFunction(torch.autograd.Function):
        """A NumPy function differentiated by dualrev (see dualrev.to_torch)."""

        @staticmethod
        def forward(call: _Call, *xs: Any) -> tuple[Any, ...]:
            arrays = [_to_numpy(x) for x in xs]
            if not call.record:
                # a CPU tensor's array shares its memory: a function writing into its
                # argument must not change the caller's tensor (dualrev's vjp copies too)
                arrays = [a.copy() for a in arrays]
            if call.record:
                kinds: list[bool] = []
                floats, call.pullback, others = vjp(_float_part(call.op.fn, kinds), *arrays,
                                                    has_aux=True)
                outs = _merge(floats, others, kinds)
            elif call.fast is not None:
                outs = call.fast(*arrays)
            else:
                outs = call.op.fn(*arrays)
            call.dtypes = [_dtype(o) for o in outs if _dtype(o).kind in "fc"]
            return tuple(_to_tensor(torch, o, xs) for o in outs)

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            ctx.call = inputs[0]
            ctx.save_for_backward(*inputs[1:])
            ctx.save_for_forward(*inputs[1:])
            # integer and boolean outputs have no derivative
            ctx.kinds = [o.is_floating_point() or o.is_complex() for o in output]
            ctx.mark_non_differentiable(*(o for o, k in zip(output, ctx.kinds, strict=True)
                                          if not k))

        @staticmethod
        def backward(ctx: Any, *cts: Any) -> tuple[Any, ...]:
            call: _Call = ctx.call
            xs = ctx.saved_tensors
            cts = tuple(c for c, k in zip(cts, ctx.kinds, strict=True) if k)
            pull = call.op.vjp_op(len(xs))
            fast = None
            if call.pullback is not None:
                # the pullback recorded by the forward: f does not run again
                pullback, n, dtypes = call.pullback, len(xs), call.dtypes

                def fast(*a: Any) -> tuple[Any, ...]:
                    return tuple(pullback(_cotangents(a[n:], dtypes)))

                if not torch.is_grad_enabled():
                    # A first-order backward (no create_graph: nothing differentiates
                    # this pass) of plain tensors: the pullback alone, without a second
                    # Function.apply. torch.func's backward passes run with grad mode
                    # on, and their wrapped tensors have no storage to convert.
                    try:
                        arrays = [_to_numpy(c) for c in cts]
                    except RuntimeError:
                        arrays = None
                    if arrays is not None:
                        grads = [_to_tensor(torch, g, (x,)) for g, x in zip(
                            fast(*xs, *arrays), xs, strict=True)]
                        return (None, *(_conj_back(torch, g, x) for g, x in zip(
                            grads, xs, strict=True)))
            grads = _apply(torch, pull, tuple(xs) + tuple(cts), fast)
            grads = [_conj_back(torch, g, x) for g, x in zip(grads, xs, strict=True)]
            return (None, *grads)

        @staticmethod
        def jvp(ctx: Any, _call_tangent: Any, *ts: Any) -> tuple[Any, ...]:
            call: _Call = ctx.call
            xs = ctx.saved_tensors
            ts = tuple(torch.zeros_like(x) if t is None else t
                       for x, t in zip(xs, ts, strict=True))
            t_out = _apply(torch, call.op.jvp_op(), tuple(xs) + ts)
            return _merge(t_out, [None] * len(ctx.kinds), ctx.kinds)

        @staticmethod
        def vmap(info: Any, in_dims: tuple[Any, ...], call: _Call,
                 *xs: Any) -> tuple[tuple[Any, ...], tuple[int, ...]]:
            op = call.op.vmap_op(tuple(in_dims[1:]), info.batch_size)
            outs = _apply(torch, op, xs)
            return outs, (0,) * len(outs)

    return DualrevFunction


def _conj_back(torch: Any, g: Any, x: Any) -> Any:
    if g.is_complex():
        g = g.conj()
    if g.dtype != x.dtype:
        g = g.real.to(x.dtype) if g.is_complex() and not x.is_complex() else g.to(x.dtype)
    return g


def to_torch(f: Callable[..., Any]) -> Callable[..., Any]:
    """``f``, a function of NumPy arrays, as a differentiable function of PyTorch tensors.

    Each call converts the floating-point tensors among the arguments (at any depth of
    tuples, lists and dicts, keyword arguments too) to NumPy arrays, runs ``f`` and
    returns its outputs (an array or a pytree of them) as tensors. Derivatives come from
    dualrev, through one ``torch.autograd.Function`` (the ``setup_context`` form, so
    ``torch.func`` works):

    - backward (``loss.backward()``, ``torch.autograd.grad``) is dualrev's ``vjp``
      recorded during the forward call: ``f`` runs once per forward and backward pair;
    - double backward (``create_graph=True``, ``gradgradcheck``) differentiates the
      backward pass, itself a bridged function of the inputs and cotangents (``f`` is
      recorded again there);
    - forward mode (``torch.func.jvp``, ``jacfwd``, ``torch.autograd.forward_ad``) is
      dualrev's ``jvp``;
    - ``torch.func.vmap`` runs ``dualrev.vmap(f)``, one vectorised call for the batch;
      so ``torch.func.grad``, ``jacrev``, ``jacfwd``, ``hessian`` and their compositions
      work.

    Everything else is a constant to the bridge: integer and boolean tensors (passed
    as NumPy integer arrays), Python numbers, arrays, strings. Outputs are tensors on the
    device of the first differentiated tensor; floating outputs come back in PyTorch's
    promotion of the floating inputs' dtypes (float32 in, float32 out, whatever
    precision the NumPy code used inside), integer and boolean outputs as they are
    (marked non-differentiable). A CUDA tensor is
    copied to the host and back: the function is NumPy code. Complex tensors follow
    PyTorch's convention (the gradient of a real loss is the conjugate of JAX's). Under
    ``torch.compile`` the bridge is a graph break, run eagerly.

    Args:
        f: a function of NumPy arrays (and constants) that dualrev can differentiate.
    Returns:
        A function with ``f``'s signature taking tensors where ``f`` takes arrays.
    Example:
        >>> import numpy as np, torch
        >>> import dualrev as dr
        >>> f = dr.to_torch(lambda x: np.sum(np.sin(x) ** 2))
        >>> x = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
        >>> f(x).backward()
        >>> bool(torch.allclose(x.grad, torch.sin(2 * x.detach())))
        True
    """
    torch = _torch()

    @functools.wraps(f)
    def bridged(*args: Any, **kwargs: Any) -> Any:
        leaves, treedef = tree_flatten((args, kwargs))
        where = [i for i, v in enumerate(leaves)
                 if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())]
        tensors = tuple(leaves[i] for i in where)
        consts = list(leaves)
        for i, v in enumerate(leaves):
            if isinstance(v, torch.Tensor) and i not in where:
                consts[i] = _constant(v, f)
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            raise DualrevError(f"dualrev.to_torch({_name(f)}): the tensors are on different "
                               f"devices {sorted(map(str, devices))}; move them to one")
        op: _Op

        def flat(*arrays: Any) -> tuple[Any, ...]:
            vals = list(consts)
            for i, a in zip(where, arrays, strict=True):
                vals[i] = a
            a_, kw = tree_unflatten(treedef, vals)
            outs, op.out_def = tree_flatten(f(*a_, **kw))
            return tuple(outs)

        op = _Op(flat)
        if not tensors:
            outs = flat()
            return tree_unflatten(op.out_def, [_to_tensor(torch, o, ()) for o in outs])
        outs = _apply(torch, op, tensors)
        return tree_unflatten(op.out_def, list(outs))

    # torch.compile would trace into the NumPy code (Dynamo traces NumPy calls) and fail
    # on dualrev's own machinery: the bridge is a graph break, run eagerly
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    return disable(bridged) if disable is not None else bridged


def _constant(t: Any, f: Any) -> np.ndarray:
    """An integer or boolean tensor, passed to ``f`` as a NumPy array (not differentiated)."""
    try:
        return _to_numpy(t).copy()
    except RuntimeError as e:  # a torch.func wrapper (vmap's batch) has no storage
        raise DualrevError(
            f"dualrev.to_torch({_name(f)}): an integer tensor of dtype {t.dtype} is mapped or "
            "traced by a torch.func transform; the bridge passes integer tensors to the "
            "NumPy function as constants. Close over it (functools.partial) or pass it "
            "as a float tensor") from e


def _name(f: Any) -> str:
    return getattr(f, "__name__", type(f).__name__)


# ---------------------------------------------------------------------------------- JAX


def _jax() -> Any:
    try:
        import jax
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise DualrevError("dualrev.to_jax needs JAX (pip install 'dualrev[jax]')") from e
    return jax


_VMAP_METHODS = ("expand_dims", "broadcast_all", "sequential")


def _batched(fn: Callable[..., tuple[Any, ...]],
             ndims: tuple[int, ...]) -> Callable[..., tuple[Any, ...]]:
    """``fn`` of arrays of ``ndims`` dimensions, accepting arrays with leading batch axes
    (what ``jax.pure_callback`` passes under ``jax.vmap`` with ``vmap_method``
    "expand_dims" or "broadcast_all": every argument gains the same number of leading
    axes, of the batch's size or 1) and mapping over them with ``dualrev.vmap``: one
    vectorised call for the whole batch."""

    def call(*arrays: Any) -> tuple[Any, ...]:
        # An eager pure_callback may pass JAX arrays, whose NumPy views are read-only:
        # the function may write into its arguments, as into any NumPy array it is given
        arrays = tuple(np.asarray(a) for a in arrays)
        arrays = tuple(a if a.flags.writeable else a.copy() for a in arrays)
        k = arrays[0].ndim - ndims[0] if arrays else 0
        if k <= 0:
            return tuple(fn(*arrays))
        lead = np.broadcast_shapes(*(a.shape[:k] for a in arrays))
        size = math.prod(lead)
        args, axes = [], []
        for a in arrays:
            if all(d == 1 for d in a.shape[:k]):
                args.append(a.reshape(a.shape[k:]))
                axes.append(None)
            else:
                args.append(np.broadcast_to(a, lead + a.shape[k:]).reshape((size,) + a.shape[k:]))
                axes.append(0)
        if size == 0:  # an empty batch: the shapes of one element's outputs, no values
            elem = [a if ax is None else np.ones(a.shape[1:], a.dtype)
                    for a, ax in zip(args, axes, strict=True)]
            with np.errstate(all="ignore"):
                one = tuple(fn(*elem))
            return tuple(np.empty(lead + np.shape(o), _dtype(o)) for o in one)
        if all(ax is None for ax in axes):
            one = tuple(fn(*args))
            return tuple(np.broadcast_to(o, lead + np.shape(o)) for o in one)
        outs = _mapped(fn, tuple(axes), size)(*args)
        return tuple(np.reshape(o, lead + np.shape(o)[1:]) for o in outs)

    return call


def _probe_point(shape: tuple[int, ...], dtype: np.dtype, k: int) -> np.ndarray:
    # a generic point: positive (inside the domain of log and sqrt), unequal entries (a
    # matrix there is nonsingular), the same on every call
    a = np.random.default_rng(k).uniform(0.5, 1.5, shape)
    if dtype.kind == "c":
        a = a + 0.25j
    return a.astype(dtype)


def to_jax(f: Callable[..., Any], *, mode: str = "vjp", vmap_method: str = "expand_dims",
           out_shape: Any = None) -> Callable[..., Any]:
    """``f``, a function of NumPy arrays, as a differentiable function of JAX arrays.

    Each call runs ``f`` on the host through ``jax.pure_callback`` (so it works under
    ``jax.jit``), with the JAX arrays among the arguments (at any depth of JAX pytrees,
    keyword arguments too) as NumPy arrays: the floating ones differentiated, integer and
    boolean ones (labels, indices) not (a ``float0`` cotangent), both traced by ``jit``
    and mapped by ``vmap``; everything else (NumPy arrays, Python numbers, strings) is
    passed as it is, a constant.

    - ``mode="vjp"`` (the default): a ``jax.custom_vjp``; ``jax.grad``,
      ``value_and_grad``, ``vjp`` and ``jacrev`` get dualrev's ``vjp``, computed by a
      second callback from the saved inputs (``f`` runs again there, recorded).
      Forward mode (``jax.jvp``, ``jacfwd``, ``hessian``) is refused by JAX itself
      (a ``TypeError``: custom_vjp functions have no forward mode).
    - ``mode="jvp"``: a ``jax.custom_jvp`` whose rule is dualrev's ``jvp`` in a
      callback; ``jax.jvp`` and ``jacfwd`` work, reverse mode is refused by JAX (it
      cannot transpose a callback).

    The backward callback (the forward rule) is itself bridged, so second derivatives
    work within one direction: ``jax.jacrev(jax.jacrev(f))`` in "vjp" mode,
    ``jax.jacfwd(jax.jacfwd(f))`` in "jvp" mode.

    ``jax.vmap`` passes through ``pure_callback``'s ``vmap_method``: "expand_dims" (the
    default) or "broadcast_all" call ``f`` once for the whole batch, under
    ``dualrev.vmap``; "sequential" calls it once per element (always right, slower).

    The outputs' shapes must be known before ``f`` runs (``jax.jit`` traces first): by
    default ``f`` is called once per new signature (the arguments' shapes and dtypes and
    the constants) at a fixed generic point (entries in [0.5, 1.5]); pass ``out_shape``
    (a pytree of ``jax.ShapeDtypeStruct``, or a function of the differentiated
    arguments' ``ShapeDtypeStruct`` returning one) where ``f`` cannot run there.
    Floating outputs are returned in JAX's promotion of the floating inputs' dtypes
    (float32 in, float32 out), integer and boolean outputs as they are (``float0``
    derivatives). Complex numbers follow JAX's convention, as dualrev does.

    Args:
        f: a function of NumPy arrays (and constants) that dualrev can differentiate.
        mode: "vjp" (reverse mode) or "jvp" (forward mode).
        vmap_method: "expand_dims", "broadcast_all" or "sequential" (see above).
        out_shape: the outputs' shapes and dtypes, or ``None`` to find them by a call.
    Returns:
        A function with ``f``'s signature taking JAX arrays where ``f`` takes arrays.
    Example:
        >>> import numpy as np, jax, jax.numpy as jnp
        >>> import dualrev as dr
        >>> f = dr.to_jax(lambda x: np.sum(np.sin(x) ** 2))
        >>> g = jax.jit(jax.grad(f))(jnp.array([0.5, 1.0]))
        >>> bool(np.allclose(g, np.sin(2 * np.array([0.5, 1.0]))))
        True
    """
    jax = _jax()
    if mode not in ("vjp", "jvp"):
        raise DualrevError(f"dualrev.to_jax: mode must be 'vjp' or 'jvp', got {mode!r}")
    if vmap_method not in _VMAP_METHODS:
        raise DualrevError(f"dualrev.to_jax: vmap_method must be one of {_VMAP_METHODS}, "
                           f"got {vmap_method!r}")
    shapes_seen: dict[Any, tuple[Any, Any]] = {}

    @functools.wraps(f)
    def bridged(*args: Any, **kwargs: Any) -> Any:
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        where = [i for i, v in enumerate(leaves) if isinstance(v, jax.Array)
                 and np.dtype(v.dtype).kind in "fc"]
        # integer and boolean JAX arrays (indices, labels) go through the callback as
        # operands too, not differentiated: under jax.jit they have no value to close over
        kwhere = [i for i, v in enumerate(leaves) if isinstance(v, jax.Array)
                  and i not in where]
        xs = tuple(leaves[i] for i in where)
        ks = tuple(leaves[i] for i in kwhere)
        consts = list(leaves)
        in_dtypes = [np.dtype(x.dtype) for x in xs]
        target = np.result_type(*in_dtypes) if in_dtypes else None

        def user(*arrays: Any) -> tuple[Any, ...]:
            vals = list(consts)
            for i, a in zip(where + kwhere, arrays, strict=True):
                vals[i] = a
            a_, kw = jax.tree_util.tree_unflatten(treedef, vals)
            outs, out_def[0] = tree_flatten(f(*a_, **kw))
            return tuple(outs)

        out_def: list[Any] = [None]
        structs = _out_structs(jax, f, user, xs, ks, consts, treedef, out_shape, target,
                               shapes_seen, out_def)
        out_dtypes = [np.dtype(s.dtype) for s in structs]

        def model(*arrays: Any) -> tuple[Any, ...]:
            return tuple(_as_dtype(o, d) for o, d in zip(user(*arrays), out_dtypes, strict=True))

        if not xs and not ks:
            outs = tuple(jax.numpy.asarray(o) for o in model())
        else:
            outs = _jax_prim(jax, model, structs, mode, vmap_method)(xs, ks)
        return tree_unflatten(out_def[0], list(outs))

    return bridged


def _as_dtype(o: Any, d: np.dtype) -> Any:
    """``o`` in dtype ``d`` (a traced value too: its cast is differentiated)."""
    if _dtype(o) == d:
        return o
    return o.astype(d) if hasattr(o, "astype") else np.asarray(o, d)


def _jax_prim(jax: Any, fn: Callable[..., tuple[Any, ...]], structs: list[Any], mode: str,
              vmap_method: str) -> Callable[[tuple[Any, ...], tuple[Any, ...]], tuple[Any, ...]]:
    """``fn(*xs, *ks)`` (NumPy arrays in, a tuple of arrays of ``structs`` out) as a JAX
    function ``prim(xs, ks)`` of floating arrays ``xs`` (differentiated) and integer
    arrays ``ks`` (not), by ``pure_callback``, with a ``custom_vjp`` (``mode="vjp"``) or
    a ``custom_jvp`` (``mode="jvp"``) whose derivative is again such a function: the
    backward pass (forward rule) is bridged in turn, so reverse over reverse (forward
    over forward) works too."""
    jnp = jax.numpy
    kinds = [np.dtype(s.dtype).kind in "fc" for s in structs]
    float_structs = [s for s, k in zip(structs, kinds, strict=True) if k]

    def callback(xs: tuple[Any, ...], ks: tuple[Any, ...]) -> tuple[Any, ...]:
        # (a Python float differentiated by jax.grad arrives as a weakly typed scalar)
        xs = tuple(jnp.asarray(x) for x in xs)
        ndims = tuple(x.ndim for x in xs + ks)  # per element: under jax.vmap, no batch
        return tuple(jax.pure_callback(_batched(fn, ndims), structs, *xs, *ks,
                                       vmap_method=vmap_method))

    if mode == "vjp":
        prim = jax.custom_vjp(callback)

        def fwd(xs: tuple[Any, ...], ks: tuple[Any, ...]) -> tuple[Any, Any]:
            return prim(xs, ks), (xs, ks)

        def bwd(res: Any, cts: tuple[Any, ...]) -> tuple[Any, Any]:
            xs, ks = res
            xs = tuple(jnp.asarray(x) for x in xs)
            # integer outputs have float0 cotangents: only the floating ones go on
            cts = tuple(c for c, k in zip(cts, kinds, strict=True) if k)
            n, m = len(xs), len(cts)
            dtypes = [np.dtype(x.dtype) for x in xs]

            def pull(*a: Any) -> tuple[Any, ...]:
                k = a[n + m:]
                outs, pullback, _ = vjp(_float_part(lambda *d: fn(*d, *k), []), *a[:n],
                                        has_aux=True)
                cs = tuple(_as_dtype(c, _dtype(o)) for c, o in zip(a[n:n + m], outs,
                                                                   strict=True))
                return tuple(_as_dtype(g, d) for g, d in zip(pullback(cs), dtypes,
                                                             strict=True))

            in_structs = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in xs]
            grads = _jax_prim(jax, pull, in_structs, mode, vmap_method)(xs + tuple(cts), ks)
            # integer operands have float0 cotangents: JAX's "no derivative"
            return (tuple(grads), tuple(np.zeros(np.shape(k), jax.dtypes.float0) for k in ks))

        prim.defvjp(fwd, bwd)
        return prim

    prim = jax.custom_jvp(callback)

    def rule(primals: Any, tangents: Any) -> tuple[Any, Any]:
        (xs, ks), (ts, _) = primals, tangents
        n = len(xs)

        def push(*a: Any) -> tuple[Any, ...]:
            k = a[2 * n:]
            t_in = tuple(_as_dtype(t, _dtype(x)) for x, t in zip(a[:n], a[n:2 * n],
                                                                strict=True))
            t_out = jvp(_float_part(lambda *d: fn(*d, *k), []), a[:n], t_in, has_aux=True)[1]
            return tuple(_as_dtype(t, np.dtype(s.dtype)) for t, s in zip(
                t_out, float_structs, strict=True))

        t_out = _jax_prim(jax, push, float_structs, mode, vmap_method)(tuple(xs) + tuple(ts),
                                                                        ks)
        # integer outputs: JAX's float0 tangents
        zeros = [np.zeros(s.shape, jax.dtypes.float0) for s, k in zip(structs, kinds,
                                                                      strict=True) if not k]
        return prim(xs, ks), _merge(t_out, zeros, kinds)

    prim.defjvp(rule)
    return prim


def _out_structs(jax: Any, f: Any, user: Callable[..., Any], xs: tuple[Any, ...],
                 ks: tuple[Any, ...], consts: list[Any], treedef: Any, out_shape: Any,
                 target: Any, seen: dict[Any, Any], out_def: list[Any]) -> list[Any]:
    """The outputs' ``ShapeDtypeStruct`` (and, in ``out_def[0]``, their structure): from
    ``out_shape``, from an earlier call of the same signature, or by calling ``f`` at a
    generic point (integer operands at their values where known, else zeros)."""
    if out_shape is not None:
        spec = out_shape(*(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in xs)) \
            if callable(out_shape) else out_shape
        leaves, out_def[0] = tree_flatten(spec)
        return [jax.ShapeDtypeStruct(tuple(s.shape), np.dtype(s.dtype)) for s in leaves]
    key: Any = (treedef, tuple((x.shape, str(x.dtype)) for x in xs + ks),
                tuple(_const_key(c) for c in consts if not isinstance(c, jax.Array)))
    try:
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in seen:
        structs, out_def[0] = seen[key]
        return structs
    probe = [_probe_point(tuple(x.shape), np.dtype(x.dtype), k) for k, x in enumerate(xs)]
    for k in ks:
        try:
            probe.append(np.asarray(k))
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            # traced by jax.jit: no value yet
            probe.append(np.zeros(k.shape, np.dtype(k.dtype)))
    try:
        with np.errstate(all="ignore"):
            outs = user(*probe)
    except Exception as e:
        raise DualrevError(
            f"dualrev.to_jax({_name(f)}): finding the output shapes, the function failed "
            f"at a generic point (entries in [0.5, 1.5], integer arguments 0 under jit) "
            f"with {type(e).__name__}: {e}. Pass out_shape= (a pytree of "
            "jax.ShapeDtypeStruct)") from e
    structs = []
    for o in outs:
        d = _dtype(o)
        if target is not None and d.kind in "fc":
            real = np.finfo(target).dtype  # float64 for complex128
            d = real if d.kind == "f" else np.result_type(real, np.complex64)
        structs.append(jax.ShapeDtypeStruct(np.shape(o), d))
    if key is not None:
        seen[key] = (structs, out_def[0])
    return structs


def _const_key(c: Any) -> Any:
    if isinstance(c, np.ndarray):
        return ("array", c.shape, str(c.dtype))
    if isinstance(c, (int, float, complex, bool, str, type(None))):
        return (type(c).__name__, c)
    return ("object", id(c))
