"""The shortcuts switch: every shortcut off gives the same numbers as on."""

import numpy as np

import dualrev as dr
from dualrev import config


def _workload(x):
    A = np.arange(6.0).reshape(2, 3) / 7
    return np.sum(np.tanh(A @ x) ** 2) + np.sum(x[1:] * x[:-1]) + 0.5 * x[0] ** 3


def test_shortcuts_off_gives_the_same_derivatives():
    x = np.array([0.3, -0.2, 0.9])
    before = config.SHORTCUTS
    with config.shortcuts(True):
            on = (dr.grad(_workload)(x), dr.jacfwd(dr.grad(_workload))(x),
              dr.hessian(_workload)(x), dr.grad(lambda s: s * s + 2.0 * s)(1.5))
    with config.shortcuts(False):
        assert config.SHORTCUTS is False
        off = (dr.grad(_workload)(x), dr.jacfwd(dr.grad(_workload))(x),
               dr.hessian(_workload)(x), dr.grad(lambda s: s * s + 2.0 * s)(1.5))
    assert config.SHORTCUTS is before
    for a, b in zip(on, off, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_shortcuts_off_skips_the_scalar_implementation():
    from dualrev.primitive import UFUNC_HANDLERS, apply_plain

    add = UFUNC_HANDLERS[np.add]
    with config.shortcuts(True):
        assert type(apply_plain(add, (1.0, 2.0), {})) is float  # the Python scalar path
    with config.shortcuts(False):
        assert type(apply_plain(add, (1.0, 2.0), {})) is np.float64  # NumPy's own
