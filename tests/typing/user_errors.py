"""Mistakes the type checkers must report: each line below carries a ``# type: ignore``
that is needed only while the checker finds the error there.

tests/test_typing.py checks this file with ``mypy --strict`` (``warn_unused_ignores``:
an ignore whose error is no longer reported fails the check) and with pyright
(``reportUnnecessaryTypeIgnoreComment``). Never run: only checked.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
from numpy.typing import NDArray

import dualrev as dr

Array = NDArray[np.float64]


def loss(params: Array, t: Array, y: Array) -> np.float64:
    r: Array = params[1] * np.exp(-params[0] * t) - y
    s: np.float64 = np.sum(r**2)
    return s


def loss_aux(params: Array, t: Array) -> tuple[np.float64, str]:
    return loss(params, t, t), "note"


p, t = np.ones(2), np.linspace(0.0, 1.0, 5)

# the transformed functions keep loss's parameters
dr.grad(loss)(p, t)  # type: ignore[call-arg]
dr.grad(loss)(p, t, t, t)  # type: ignore[call-arg]
dr.grad(loss)(p, t, w=t)  # type: ignore[call-arg]
dr.value_and_grad(loss)(p, t)  # type: ignore[call-arg]
dr.jacobian(loss)(p)  # type: ignore[call-arg]
dr.jacfwd(loss)(p, "t", t)  # type: ignore[arg-type]
dr.hessian(loss)(p, t)  # type: ignore[call-arg]
dr.vmap(loss)(p, t)  # type: ignore[call-arg]
dr.checkpoint(loss)(p)  # type: ignore[call-arg]
dr.replay(dr.grad(loss))(p, t)  # type: ignore[call-arg]
dr.graph(loss)(p, t)  # type: ignore[call-arg]

# the results keep their types
name: str = dr.value_and_grad(loss)(p, t, t)[0]  # type: ignore[assignment]
note: int = dr.grad(loss_aux, has_aux=True)(p, t)[1]  # type: ignore[assignment]
value_aux: bytes = dr.value_and_grad(loss_aux, has_aux=True)(p, t)[0][1]  # type: ignore[assignment]
_ = dr.graph(loss)(p, t, t).nonexistent  # type: ignore[attr-defined]
result: int = dr.optimize.minimize(loss, p, args=(t, t))  # type: ignore[assignment]
_ = scipy.optimize.OptimizeResult().x  # (a field of scipy's result: no error)

# the names dualrev has and has not, lazy ones included
_ = dr.optimize.no_such_function  # type: ignore[attr-defined]
_ = dr.testing.no_such_helper  # type: ignore[attr-defined]
_ = dr.no_such_transform  # type: ignore[attr-defined]
dr.graph(np.sin, mode=3)  # type: ignore[call-overload]
