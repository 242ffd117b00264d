"""The conversion errors name the construct on the user's line and its rewrite
(dualrev.diagnose), and formatting a traced value prints its value."""

from __future__ import annotations

import math
from math import atan2 as early_atan2
from math import erf as early_erf
from math import exp as early_exp
from math import sin as early_sin

import numpy as np
import pytest
from numpy import array as early_array
from numpy import asarray as early_asarray
from numpy import empty as numpy_empty  # bound before any transform: NumPy's own
from numpy import zeros as numpy_zeros

import dualrev as dr
from dualrev import diagnose

# (the early_* names are bound before any transform starts, so they are NumPy's and
# math's own functions: dualrev replaces np.array, math.exp & co. only while a
# transform runs)

x3 = np.array([0.5, 1.5, 2.0])
A = np.arange(9.0).reshape(3, 3)


def _message(transform, f, x=x3) -> str:
    with pytest.raises(dr.TracerConversionError) as info:
        transform(f)(x)
    return str(info.value)


TRANSFORMS = [dr.grad, dr.jacfwd, dr.jacrev, dr.vmap]


def _scalar(f):
    # vmap maps over the rows of a (2, 3) batch; the others differentiate a sum
    return lambda x: np.sum(f(x))


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: t.__name__)
def test_seed_two_layer_network_names_x_dot_w1(transform):
    x = np.ones((4, 3))

    def loss(w1):
        h = 1 / (1 + np.exp(-x.dot(w1)))  # the seed's line, as written
        return np.sum(h)

    w = np.ones((3, 2)) if transform is not dr.vmap else np.ones((2, 3, 2))
    msg = _message(transform, loss, w)
    assert "`x.dot(w1)` calls the method .dot of the plain NumPy array `x`" in msg
    assert "Write `x @ w1`" in msg
    line = loss.__code__.co_firstlineno + 1
    assert f"on line {line} of test_diagnose.py" in msg
    assert "drop its derivative" in msg


def test_the_rewrite_it_names_works():
    x = np.ones((4, 3))
    loss = lambda w1: np.sum(1 / (1 + np.exp(-(x @ w1))))
    w = np.linspace(0.1, 0.6, 6).reshape(3, 2)
    g = dr.grad(loss)(w)
    s = 1 / (1 + np.exp(-(x @ w)))
    np.testing.assert_allclose(g, x.T @ (s * (1 - s)), rtol=1e-12)


@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd, dr.vmap], ids=lambda t: t.__name__)
def test_math_function_bound_before_the_transform_is_named(transform):
    def f(x):
        return early_exp(x[0]) * x[1]

    x = x3 if transform is not dr.vmap else np.stack([x3, x3])
    msg = _message(transform, f, x)
    assert "`early_exp(x[0])` calls math.exp itself: `early_exp` was bound before" in msg
    assert "`from math import exp` or an alias" in msg
    assert "Write `math.exp(x[0])` (looked up when it runs) or `np.exp(x[0])`" in msg


def test_math_function_looked_up_while_tracing_works():
    g = dr.grad(lambda x: math.exp(x[0]) * x[1])(x3)
    np.testing.assert_allclose(g, [math.exp(0.5) * 1.5, math.exp(0.5), 0.0])


def test_math_names_mapped_to_numpy_and_scipy():
    def f(x):
        return early_atan2(x[0], x[1])

    assert "`np.arctan2(x[0], x[1])`" in _message(dr.grad, f)

    def g(x):
        return early_erf(x[0])

    assert "`scipy.special.erf(x[0])`" in _message(dr.grad, g)

    def h(x):  # a math function dualrev does not replace
        return math.fsum([x[0], x[1]])

    assert "Write `np.sum([x[0], x[1]])`" in _message(dr.grad, h)


def test_float_names_the_call():
    def f(x):
        return float(x[0]) * x[1]

    msg = _message(dr.grad, f)
    assert "`float(x[0])` makes a plain Python number of a traced value" in msg
    assert "dualrev.stop_gradient" in msg


def test_item_and_tolist_name_the_call():
    def f(x):
        return x[0].item() * x[1]

    assert "`x[0].item()`" in _message(dr.grad, f)

    def g(x):
        return sum(x.tolist())

    assert "Use `list(x)`, whose elements stay traced" in _message(dr.grad, g)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: t.__name__)
def test_np_array_bound_before_the_transform_is_named(transform):
    def f(x):
        v = early_array([x[0], x[1] ** 2])
        return np.sum(v)

    x = x3 if transform is not dr.vmap else np.stack([x3, x3])
    msg = _message(transform, f, x)
    assert "`early_array([x[0], x[1] ** 2])` calls NumPy's own np.array" in msg
    assert "`from numpy import array` or an alias" in msg
    assert "Write `np.array([x[0], x[1] ** 2])`, looked up when it runs" in msg


def test_np_asarray_bound_before_the_transform_is_named():
    def f(x):
        x = early_asarray(x, dtype=float)
        return np.sum(x ** 2)

    msg = _message(dr.grad, f)
    assert "`early_asarray(x, dtype=float)` calls NumPy's own np.asarray" in msg


def test_numpy_function_on_a_list_of_traced_values():
    # (np.max & co. of a list of traced values work: test_autograd_cases.py; np.dot of
    # one still converts the list in C)
    def f(x):
        return np.dot([x[0], x[1]], [1.0, 2.0])

    msg = _message(dr.grad, f)
    assert "Stack them first: `np.stack([x[0], x[1]])` in place of `[x[0], x[1]]`" in msg


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: t.__name__)
def test_write_into_numpy_buffer_names_the_buffer(transform):
    # np.zeros(3) made in f takes traced writes (tests/test_buffers.py); a buffer made
    # through a name bound before the transform (`from numpy import zeros`) does not
    def scalar_store(x):
        out = numpy_zeros(3)
        out[0] = x[1]  # NumPy wraps this failure in a ValueError: dualrev's is raised
        return np.sum(out)

    def slice_store(x):
        out = numpy_zeros(3)
        out[0:2] = x[1:]
        return np.sum(out)

    x = x3 if transform is not dr.vmap else np.stack([x3, x3])
    with pytest.raises(dr.PlainBufferError):
        transform(scalar_store)(x)
    msg = _message(transform, scalar_store, x)
    assert ("`out[0] = x[1]` writes a traced value into the plain NumPy array `out`" in msg)
    assert "`from numpy import zeros`" in msg
    assert "Make it in the function: out = np.zeros(n)" in msg
    assert "`out[0:2] = x[1:]` writes a traced value" in _message(transform, slice_store, x)


def test_fill_of_a_numpy_buffer_names_the_buffer():
    """buf.fill(t) of a plain array gave the generic float() message (found by the
    aliasing generator, tests/test_aliasing_differential.py)."""
    def f(x):
        buf = numpy_empty(3)
        buf.fill(np.mean(x))
        return np.sum(buf)

    with pytest.raises(dr.PlainBufferError) as info:
        dr.grad(f)(x3)
    msg = str(info.value)
    assert "`buf.fill(np.mean(x))` fills the plain NumPy array `buf`" in msg
    assert "Make it in the function: buf = np.zeros(n)" in msg
    assert "(`buf.fill(np.mean(x))` into such a buffer is recorded)" in msg


def test_percent_formatting_names_f_strings():
    def f(x):
        label = "%.3f" % x[0]  # noqa: UP031 - the construct under test
        return x[0] * len(label)

    assert "%-formatting converts a traced value with float()" in _message(dr.grad, f)


def test_a_method_of_an_attribute_array():
    class Model:
        def __init__(self):
            self.A = A

        def __call__(self, x):
            return np.sum(self.A.dot(x))

    msg = _message(dr.grad, Model())
    assert "Write `self.A @ x`" in msg


def test_a_statement_over_several_lines():
    def f(x):
        total = (x[0]
                 + early_sin(
                     x[1]))
        return total

    assert "`np.sin(x[1])`" in _message(dr.grad, f)


def test_without_frames_the_usual_causes_are_listed(monkeypatch):
    monkeypatch.setattr(diagnose, "_getframe", None)

    def f(x):
        return early_exp(x[0])

    msg = _message(dr.grad, f)
    assert "Common causes" in msg and "float() was called on a traced value" in msg


def test_without_source_the_line_is_named(monkeypatch):
    monkeypatch.setattr(diagnose.linecache, "getlines", lambda *a: [])
    msg = _message(dr.grad, lambda x: early_exp(x[0]))
    assert "Common causes" in msg


def test_unknown_constructs_name_the_line():
    def f(x):
        return np.sum(x) + sorted([1.0, x[0]])[0].item()

    msg = _message(dr.grad, f)
    assert "`np.sum(x) + sorted([1.0, x[0]])[0].item()`" in msg or ".item()" in msg


# ------------------------------------------------------------------ formatting
@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd, dr.jacrev], ids=lambda t: t.__name__)
def test_f_string_formats_the_value(transform):
    seen = []

    def f(x):
        seen.append(f"{x[0]:.3f}|{x[1] * 2:8.2e}|{x}")
        return x[0] * x[1]

    g = transform(f)(x3)
    assert seen[0].startswith("0.500|3.00e+00|")
    assert np.allclose(g, [1.5, 0.5, 0.0])


def test_f_string_of_a_batch_prints_every_element():
    seen = []

    def f(x):
        seen.append(f"{x}")
        return x

    dr.vmap(f)(np.array([1.0, 2.0]))
    assert seen == [str(np.array([1.0, 2.0]))]


def test_format_spec_on_an_array_refused_as_numpy_does():
    def f(x):
        return x[0] * len(f"{x:.3f}")

    with pytest.raises(TypeError):
        np.zeros(3).__format__(".3f")
    with pytest.raises(TypeError):
        dr.grad(f)(x3)


@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd])
def test_an_unrouted_scipy_function_is_named(transform):

    import scipy.spatial.distance

    def f(x):  # (its np.asarray takes traced values now; its C code does not)
        return scipy.spatial.distance.euclidean(x, np.ones(3))

    with pytest.raises(dr.TracerConversionError) as e:
        transform(f)(np.full(3, 0.5))
    msg = str(e.value)
    assert "scipy.spatial.distance.euclidean, called on line" in msg
    assert "dualrev does not route this SciPy function" in msg
    assert "scipy.spatial.distance.euclidean(x, np.ones(3))" in msg


@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd])
def test_a_scipy_function_behind_a_decorator_is_named_by_itself(transform):
    # spherical_jn is SciPy's use_reflection wrapper: the wrapper's qualified name
    # ("use_reflection.<locals>.decorator.<locals>.wrapper") used to name it
    import scipy.special

    with pytest.raises(dr.TracerConversionError) as e:
        transform(lambda x: np.sum(scipy.special.spherical_jn(1, x)))(np.ones(3))
    msg = str(e.value)
    assert "scipy.special.spherical_jn, called on line" in msg
    assert "<locals>" not in msg


def test_a_routed_scipy_function_bound_before_import_dualrev_is_named_as_such():
    """brentq imported with `from scipy.optimize import brentq` before `import dualrev`
    (here: the original the dispatcher wraps) converts a traced value with float() inside
    SciPy: the error says the name was bound before dualrev's dispatcher, not that dualrev
    does not route brentq. (SciPy's C code may then raise its own SystemError, with
    dualrev's error as its context.)"""
    import scipy.optimize as so

    from dualrev.scipy_dispatch import ORIGINALS

    original = ORIGINALS[so.brentq]
    with pytest.raises(Exception) as info:  # noqa: B017 - TracerConversionError or SciPy's
        dr.grad(lambda a: original(lambda x: x ** 3 - a, 0.0, 3.0))(2.0)
    chain, e = [], info.value
    while e is not None:
        chain.append(str(e))
        e = e.__cause__ or e.__context__
    assert any("scipy.optimize.brentq, called on line" in m
               and "reached without dualrev's dispatcher" in m for m in chain), chain
    assert not any("does not route" in m for m in chain), chain
    # through the module, the dispatcher: the implicit function theorem, 1 / (3 x^2)
    np.testing.assert_allclose(dr.grad(lambda a: so.brentq(lambda x: x ** 3 - a, 0.0, 3.0))(2.0),
                               1 / (3 * 2.0 ** (2 / 3)), rtol=1e-8)
