"""docs/catalogue.md lists only functions that dualrev has registered."""

import re
from pathlib import Path

import numpy as np
import scipy.interpolate  # noqa: F401
import scipy.linalg  # noqa: F401
import scipy.optimize  # noqa: F401
import scipy.special  # noqa: F401
import scipy.stats

from dualrev import namespace
from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.primitive import FUNCTION_HANDLERS, UFUNC_HANDLERS

SUPPORTED = (Path(__file__).parent.parent / "docs" / "catalogue.md").read_text().split(
    "## Not supported")[0]


def _lookup(name, namespace):
    try:
        return eval(name, namespace)
    except AttributeError:
        return None  # newer than the NumPy that runs (np.cumulative_sum: NumPy >= 2.1)


def _unregistered(pattern, namespace, registered):
    names = set(re.findall(pattern, SUPPORTED))
    found = {name: _lookup(name, namespace) for name in sorted(names)}
    missing = [name for name, obj in found.items() if obj is not None and not registered(obj)]
    return names, missing


def _numpy_registered(obj):
    # (or one of the names replaced while a transform runs: np.r_, np.asarray_chkfinite)
    return (obj in UFUNC_HANDLERS or obj in FUNCTION_HANDLERS
            or any(getattr(m, n, None) is obj for m, n in namespace._REPLACEMENTS))


def test_every_listed_numpy_function_is_registered():
    # ufunc methods (np.add.reduce) are routed in tracer.py: check their ufunc
    names, missing = _unregistered(r"`(np\.[\w.]+?)(?:\.reduce|\.accumulate)?`", {"np": np},
                                   _numpy_registered)
    assert len(names) > 150
    assert not missing, missing


def test_every_listed_scipy_function_is_registered():
    def registered(obj):  # ufuncs, dispatched functions, patched distributions, or classes
        # whose constructor or evaluation is patched (scipy.interpolate)
        patched = any(getattr(obj, m, None) in ORIGINALS for m in ("__new__", "__call__"))
        return (obj in UFUNC_HANDLERS or obj in ORIGINALS or hasattr(obj, "logpdf")
                or hasattr(obj, "logpmf") or (isinstance(obj, type) and patched))

    names, missing = _unregistered(r"`(scipy\.\w+\.\w+)`", {"scipy": scipy}, registered)
    assert len(names) > 45
    assert not missing, missing
