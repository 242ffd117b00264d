"""Functions run on plain values (dualrev/catalogue/nondiff.py)."""

import warnings

import numpy as np

import dualrev as dr


def _run_recording(f):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = f()
    return out, caught


def test_np_fix_deprecation_reaches_the_caller():
    # NumPy 2.5 deprecates np.fix; on a traced value its warning was raised inside
    # dualrev (an error under the suite's filter) instead of at the user's line.
    x = np.array([-1.3, 0.4, 2.7])
    expected, plain = _run_recording(lambda: np.fix(x))
    g, traced = _run_recording(lambda: dr.grad(lambda a: np.sum(np.fix(a) * a))(x))
    np.testing.assert_array_equal(g, expected)
    assert [(w.category, str(w.message)) for w in traced] == [
        (w.category, str(w.message)) for w in plain]
    assert all(w.filename == __file__ for w in traced)
