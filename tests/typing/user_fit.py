"""A typed user file, as a user of dualrev writes one: fit a decay model.

tests/test_typing.py runs ``mypy --strict`` and pyright on it (marker typing) and runs
it as a program (every run: the values it prints are checked against closed forms).
``assert_type`` states what the checkers must infer; at run time it does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize
from numpy.typing import NDArray

import dualrev as dr
from dualrev.drawing import Graph

if TYPE_CHECKING:
    # (typeshed ships typing_extensions' stubs, so this works on Python 3.10 too)
    from typing_extensions import assert_type
else:

    def assert_type(value: object, typ: object) -> object:
        return value


Array = NDArray[np.float64]


def model(params: Array, t: Array) -> Array:
    """c0 * exp(-k t)."""
    c: Array = params[1] * np.exp(-params[0] * t)  # (an element of an NDArray is Any)
    return c


def loss(params: Array, t: Array, y: Array) -> np.float64:
    return np.sum((model(params, t) - y) ** 2)


def loss_aux(params: Array, t: Array, y: Array) -> tuple[np.float64, dict[str, Array]]:
    r = model(params, t) - y
    return np.sum(r**2), {"residuals": r}


t = np.linspace(0.0, 2.0, 9)
p_true: Array = np.array([0.7, 2.0])
y = model(p_true, t)
p0: Array = np.array([0.5, 1.5])

# grad keeps loss's parameters: called as loss is (the argument differentiated, argnums,
# positionally; the others also by name)
g = dr.grad(loss)
grad_p = g(p0, t, y)
assert_type(grad_p, Any)  # the gradient's type follows argnums and the argument's pytree
assert np.allclose(dr.grad(loss)(p0, t=t, y=y), grad_p)

# value_and_grad: the value has loss's return type
value, grad_vg = dr.value_and_grad(loss)(p0, t, y)
assert_type(value, np.float64)
# with has_aux: ((value, aux), gradient), as JAX's value_and_grad
(value2, aux), _ = dr.value_and_grad(loss_aux, has_aux=True)(p0, t, y)
assert_type(value2, np.float64)
assert_type(aux, dict[str, Array])
gr, aux2 = dr.grad(loss_aux, has_aux=True)(p0, t, y)
assert_type(aux2, dict[str, Array])

# Jacobians and Hessians: Any (their shapes follow the output's and argument's)
J = dr.jacobian(model)(p0, t)
assert_type(J, Any)
H = dr.hessian(loss)(p0, t, y)
Hv = dr.hvp(loss)(p0, t, y, np.array([1.0, 0.0]))

# jvp and vjp: the primal output has model's return type
def curve(p: Array) -> Array:
    return model(p, t)


out, tangent = dr.jvp(curve, (p0,), (np.array([1.0, 0.0]),))
assert_type(out, Array)
out2, pullback = dr.vjp(model, p0, t)
assert_type(out2, Array)
assert_type(pullback, Callable[[Any], tuple[Any, ...]])

# vmap keeps the parameters (each one array, with the batch axis in front)
ps = np.stack([p0, p_true])
curves = dr.vmap(model, in_axes=(0, None))(ps, t)

# graph(f)(...) is a Graph; stop_gradient keeps the type; checkpoint keeps the function
drawing = dr.graph(loss)(p0, t, y)
assert_type(drawing, Graph)
svg: str = drawing.to_svg()
assert_type(dr.stop_gradient(p0), Array)
assert_type(dr.checkpoint(model)(p0, t), Array)

# replay: the same call, recorded once, with its statistics
fast_grad = dr.replay(dr.grad(loss))
fast_grad(p0, t, y)
records: int = fast_grad.stats.records


# custom_jvp: the decorated function keeps its signature
@dr.custom_jvp
def softplus(x: Array) -> Array:
    return np.log1p(np.exp(x))


@softplus.defjvp
def softplus_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (x,), (dx,) = primals, tangents
    return softplus(x), dx / (1.0 + np.exp(-x))


assert_type(softplus(p0), Array)


def total(x: Array) -> np.float64:
    s: np.float64 = np.sum(softplus(x))  # (NumPy's stubs type this sum Any)
    return s


# dualrev.optimize.minimize returns SciPy's OptimizeResult (typed with scipy-stubs)
res = dr.optimize.minimize(loss, p0, args=(t, y), method="BFGS")
assert_type(res, scipy.optimize.OptimizeResult)

if __name__ == "__main__":
    # the numbers, against closed forms (tests/test_typing.py runs this file)
    e = np.exp(-p0[0] * t)
    r = p0[1] * e - y
    closed = np.array([np.sum(2 * r * (-t) * p0[1] * e), np.sum(2 * r * e)])
    assert np.allclose(grad_p, closed, rtol=1e-12), (grad_p, closed)
    assert np.allclose(grad_vg, closed, rtol=1e-12) and np.allclose(gr, closed, rtol=1e-12)
    assert np.isclose(value, loss(p0, t, y), rtol=1e-14) and value == value2
    assert np.allclose(aux["residuals"], r)
    assert np.allclose(J, np.stack([-t * p0[1] * e, e], axis=1))
    assert np.allclose(Hv, H[:, 0]) and H.shape == (2, 2)
    assert np.allclose(tangent, -t * p0[1] * e)
    assert np.allclose(pullback(np.ones_like(t))[0], J.sum(axis=0))
    assert np.allclose(curves[1], y) and curves.shape == (2, t.size)
    assert np.allclose(fast_grad(p0, t, y), closed, rtol=1e-12) and records == 1
    assert np.allclose(dr.grad(total)(p0), 1 / (1 + np.exp(-p0)))
    assert res.success and np.allclose(res.x, p_true, atol=1e-4), res
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    print("user_fit: ok")
