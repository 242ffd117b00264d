"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp`` decorators.

Each decorated function becomes a primitive of its own. A ``custom_jvp`` rule serves
both modes: reverse mode transposes it (the rule is linear in the tangents, so its VJP
is the reverse-mode derivative of the rule with respect to them). A ``custom_vjp``
function is differentiated through its own body in forward mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import DualrevError
from .primitive import Primitive, bind, is_complex, shape_of
from .reverse import linear_transpose


def _zeros_like(x: Any) -> Any:
    # complex zeros for a complex x: a real input to a transposed rule would have the
    # imaginary part of its cotangent dropped
    return np.zeros(shape_of(x), complex if is_complex(x) else float)


class custom_jvp:
    """Give ``fun`` a hand-written forward-mode rule, used by every transform.

    Decorate ``fun``, then set its rule with ``.defjvp`` (itself usable as a decorator). The
    rule receives tuples of primals and tangents (zeros for arguments that are not
    differentiated) and returns ``(output, output_tangent)``; it must be linear in the
    tangents and written with NumPy calls (so reverse mode and higher derivatives can
    differentiate it in turn). Reverse mode transposes the rule (being linear in the
    tangents, its VJP is the reverse-mode derivative of the rule with respect to them), so
    one rule serves ``jvp``, ``grad``, ``jacrev``, ``hessian`` and ``vmap`` alike. ``fun``
    takes and returns arrays; calling it before ``.defjvp`` raises ``DualrevError``.

    Args:
        fun: the function, of positional array arguments, returning an array.
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

    def __init__(self, fun: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.rule: Callable[..., Any] | None = None
        self.prim = Primitive(f"custom_jvp({getattr(fun, '__name__', 'f')})",
                              lambda *args: fun(*args))

    def defjvp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Set the forward-mode rule ``rule(primals, tangents) -> (out, out_tangent)``."""
        self.rule = rule
        self.prim.defjvp_joint(self._jvp)
        self.prim.defvjp_indexed(self._vjp)
        return rule

    def __call__(self, *args: Any) -> Any:
        if self.rule is None:
            raise DualrevError(f"dualrev: {self.prim.name} has no rule yet; call .defjvp")
        return bind(self.prim, args, {})

    def _tangent_out(self, primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> Any:
        return self.rule(primals, tangents)[1]  # type: ignore[misc]

    def _jvp(self, tangents: list[Any], ans: Any, *primals: Any) -> Any:
        full = tuple(_zeros_like(x) if t is None else t
                     for t, x in zip(tangents, primals, strict=True))
        return self._tangent_out(primals, full)

    def _vjp(self, i: int, g: Any, ans: Any, *primals: Any) -> Any:
        def tangent_out(t: Any) -> Any:
            full = tuple(t if j == i else _zeros_like(x) for j, x in enumerate(primals))
            return self._tangent_out(primals, full)

        # The rule is linear in t: its reverse-mode derivative at t = 0 is the transpose.
        return linear_transpose(tangent_out, primals[i], g)


class _CustomVJPPrimitive(Primitive):
    """The primitive of a ``custom_vjp`` function: its body (for forward mode) and its
    ``fwd`` (output and residuals, for the tape)."""

    __slots__ = ("body", "fwd")

    def __init__(self, name: str, impl: Callable[..., Any]) -> None:
        super().__init__(name, impl)
        self.body = None
        self.fwd = None


class custom_vjp:
    """Give ``fun`` a hand-written reverse-mode rule: ``fwd`` computes the output and
    residuals, ``bwd`` maps residuals and the output cotangent to one cotangent per
    argument.

    Decorate ``fun``, then call ``fun.defvjp(fwd, bwd)``: ``fwd(*args)`` returns
    ``(output, residuals)`` and ``bwd(residuals, g)`` a tuple with one cotangent per
    argument (``None`` for a zero one), each of its argument's shape. Residuals are kept on
    the tape. ``fwd`` should get the output by calling the decorated function: under an
    outer transform (grad of grad) it is then recorded by that transform instead of meeting
    traced values in opaque code; ``bwd`` written in NumPy calls is differentiable in turn.
    Forward mode (``jvp``, ``jacfwd``) differentiates through ``fun``'s body, so it needs
    ``fun`` to be differentiable NumPy code; a function that calls code dualrev cannot see
    into should get a ``custom_jvp`` for forward mode. Calling ``fun`` before ``.defvjp``
    raises ``DualrevError``.

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
        fun: the function, of positional array arguments, returning an array.
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
    """

    def __init__(self, fun: Callable[..., Any]) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None
        self.prim = _CustomVJPPrimitive(f"custom_vjp({getattr(fun, '__name__', 'f')})",
                                        lambda *args, residuals=None: fun(*args))
        self.prim.body = fun  # forward mode traces through the body

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        """Set ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, g) -> cotangents``."""
        self.fwd, self.bwd = fwd, bwd
        self.prim.fwd = fwd
        self.prim.defvjp_indexed(self._vjp)

    def __call__(self, *args: Any) -> Any:
        if self.bwd is None:
            raise DualrevError(f"dualrev: {self.prim.name} has no rule yet; call .defvjp")
        return bind(self.prim, args, {})

    def _vjp(self, i: int, g: Any, ans: Any, *primals: Any, residuals: Any = None) -> Any:
        if residuals is None:  # recorded under an outer trace: recompute them
            residuals = self.fwd(*primals)[1]  # type: ignore[misc]
        nargs = len(primals)
        cts = self.bwd(residuals, g)  # type: ignore[misc]
        if not isinstance(cts, tuple) or len(cts) != nargs:
            raise DualrevError(f"dualrev: the bwd rule of {self.prim.name} must return a "
                               f"tuple of {nargs} cotangent(s), one per argument")
        return _zeros_like(primals[i]) if cts[i] is None else cts[i]



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
