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


def test_the_switch_is_read_where_choices_are_made_not_per_call():
    # config.SHORTCUTS is read by a primitive's declarations, and by dualrev.compile when
    # it generates a program's source (once per program, like a declaration); every
    # other shortcut is a chooser registered with config.on_shortcuts
    import ast
    from pathlib import Path

    package = Path(dr.__file__).resolve().parent
    readers = set()
    for path in sorted(package.rglob("*.py")):
        if path.name == "config.py":
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef):
                for n in ast.walk(fn):
                    if isinstance(n, ast.Attribute) and n.attr == "SHORTCUTS":
                        readers.add(f"{path.relative_to(package)}:{fn.name}")
    assert readers <= {"primitive.py:__init__", "primitive.py:partials",
                       "primitive.py:vjp_add", "primitive.py:scalar_impl",
                       "compile.py:_generate"}, readers


def test_the_modules_choices_follow_the_switch():
    import importlib

    from dualrev import tracer, transforms
    from dualrev.catalogue import contraction

    at = importlib.import_module("dualrev.at")  # (dualrev.at is also a function's name)

    def choices():
        return (frozenset(tracer._DIRECT), at._WRITE_INTO[0], contraction._FOLD[0],
                transforms._CACHED_EYE[0])

    with config.shortcuts(True):
        on = choices()
        assert on[0] and on[2] and on[3] == 2048
        with config.shortcuts(False):
            assert choices() == (frozenset(), False, False, -1)
            # and the derivatives stay the same (the plain paths)
            x = np.array([0.3, -0.2, 0.9])
            off = dr.jacrev(lambda v: np.tanh(np.arange(6.0).reshape(2, 3) @ v) * 2.0)(x)
        assert choices() == on
        fast = dr.jacrev(lambda v: np.tanh(np.arange(6.0).reshape(2, 3) @ v) * 2.0)(x)
    np.testing.assert_allclose(fast, off, rtol=1e-14)
