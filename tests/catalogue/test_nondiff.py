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


def test_common_type_under_vmap_is_one_type_for_the_batch():
    # np.common_type was registered before it was marked as a type query, so vmap mapped
    # it per element and refused the unbatched (out_axes=None) type (conformance found it)
    x = np.ones((3, 2, 2))
    got = dr.vmap(lambda v: (np.common_type(v), np.sum(v)), out_axes=(None, 0))(x)
    assert got[0] is np.common_type(x[0]) is np.float64
    np.testing.assert_array_equal(got[1], [4.0, 4.0, 4.0])
    cplx = dr.vmap(np.common_type, out_axes=None)(x + 1j)
    assert cplx is np.complex128
