"""scipy.optimize's test functions: rosen, rosen_der, rosen_hess, rosen_hess_prod.

SciPy >= 1.15 routes them through its array-API layer, which converts a traced argument
with ``np.asarray`` (no NumPy override protocol sees it): dualrev replaces them by
dispatchers (see scipy_functions.dispatch) whose traced branch is the same formula
written with differentiable NumPy, so that every transform, nested, differentiates it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize as so

from ..errors import NoDerivativeRule
from ..primitive import as_array, dtype_of, ndim_of
from .elementwise import astype
from .scipy_functions import dispatch


def _floating(x: Any) -> Any:
    """SciPy's ``xp_promote(x, force_floating=True)``: integers become float64."""
    x = as_array(x)
    return x if dtype_of(x).kind in "fc" else astype(x, np.float64)


def rosen(x: Any) -> Any:
    """scipy.optimize.rosen: the sum along axis 0 (SciPy's, for x of any rank)."""
    x = _floating(x)
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2, axis=0)


def rosen_der(x: Any) -> Any:
    """scipy.optimize.rosen_der: its gradient (axis 0 as in rosen)."""
    x = _floating(x)
    # Slices of length one (x[:1], not x[0]) keep a rank-n x rank n, as SciPy's writes
    # into a zeros_like buffer do; concatenate replaces those writes.
    first = -400 * x[:1] * (x[1:2] - x[:1] ** 2) - 2 * (1 - x[:1])
    xm, xm_m1, xm_p1 = x[1:-1], x[:-2], x[2:]
    middle = 200 * (xm - xm_m1 ** 2) - 400 * (xm_p1 - xm ** 2) * xm - 2 * (1 - xm)
    last = 200 * (x[-1:] - x[-2:-1] ** 2)
    return np.concatenate([first, middle, last], axis=0)


def rosen_hess(x: Any) -> Any:
    """scipy.optimize.rosen_hess: the (n, n) Hessian of rosen at a 1-D x."""
    x = _floating(x)
    if ndim_of(x) == 0:
        x = np.reshape(x, (1,))
    if ndim_of(x) != 1:
        raise NoDerivativeRule("scipy.optimize.rosen_hess", "Only a 1-D x is supported "
                               "(SciPy's Hessian is of a 1-D x too).")
    off = -400 * x[:-1]
    diagonal = np.concatenate([1200 * x[:1] ** 2 - 400 * x[1:2] + 2,
                               202 + 1200 * x[1:-1] ** 2 - 400 * x[2:],
                               200 + 0 * x[-1:]])
    return np.diag(off, 1) + np.diag(off, -1) + np.diag(diagonal)


def rosen_hess_prod(x: Any, p: Any) -> Any:
    """scipy.optimize.rosen_hess_prod: rosen_hess(x) @ p without forming the Hessian;
    differentiable in x and in p."""
    x = _floating(x)
    if ndim_of(x) == 0:
        x = np.reshape(x, (1,))
    p = as_array(p)
    if dtype_of(p) != dtype_of(x):  # SciPy reads p in x's dtype
        p = astype(p, dtype_of(x))
    first = (1200 * x[:1] ** 2 - 400 * x[1:2] + 2) * p[:1] - 400 * x[:1] * p[1:2]
    middle = (-400 * x[:-2] * p[:-2] + (202 + 1200 * x[1:-1] ** 2 - 400 * x[2:]) * p[1:-1]
              - 400 * x[1:-1] * p[2:])
    last = -400 * x[-2:-1] * p[-2:-1] + 200 * p[-1:]
    return np.concatenate([first, middle, last])


dispatch(so, "rosen", rosen)
dispatch(so, "rosen_der", rosen_der)
dispatch(so, "rosen_hess", rosen_hess)
dispatch(so, "rosen_hess_prod", rosen_hess_prod)
