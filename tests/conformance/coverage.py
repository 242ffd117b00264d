"""How much of NumPy's public function surface, and of scipy.special's ufuncs, dualrev
routes:

    python -m tests.conformance.coverage        # or as a script, for another checkout

The candidates are the public names of ``numpy``, ``numpy.linalg`` and ``numpy.fft``
that dispatch on array arguments (ufuncs and ``__array_function__`` functions), less
``OUT_OF_SCOPE`` (no numeric array result to differentiate or to compute on traced
values: files, text, dates, bit patterns, memory queries). A function counts as routed
when dualrev registers a handler for it (a derivative, a plain-value result, or a clear
refusal). Aliases count once.

scipy.special's candidates are its public ufuncs (``isinstance(f, np.ufunc)`` in
``dir(scipy.special)``; its Python functions such as ``polygamma`` or ``logsumexp`` are
dualrev's SciPy dispatchers, counted by the harness), each object once (``psi`` and
``digamma``, ``jv`` and ``jn`` are one ufunc), less ``SCIPY_OUT_OF_SCOPE``.
"""

from __future__ import annotations

import numpy as np
import scipy.special as sc

import dualrev  # noqa: F401  (fills the registries)
from dualrev.primitive import FUNCTION_HANDLERS, UFUNC_HANDLERS

#: public functions outside dualrev's scope, by why
OUT_OF_SCOPE: dict[str, str] = {
    **dict.fromkeys(("save", "savetxt", "savez", "savez_compressed"), "file output"),
    **dict.fromkeys(("array2string", "array_repr", "array_str", "datetime_as_string"),
                    "text output"),
    **dict.fromkeys(("busday_count", "busday_offset", "is_busday", "isnat"),
                    "datetime values"),
    **dict.fromkeys(("may_share_memory", "shares_memory"), "memory layout queries"),
    **dict.fromkeys(("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_invert",
                     "bitwise_left_shift", "bitwise_right_shift", "bitwise_count",
                     "invert", "left_shift", "right_shift", "gcd", "lcm", "packbits",
                     "unpackbits", "ravel_multi_index", "unravel_index"),
                    "integer and bit-pattern arithmetic"),
    "einsum_path": "a contraction plan, no array values",
}


#: scipy.special ufuncs outside dualrev's scope, by why. Empty: every scipy.special ufunc
#: maps floating-point arguments to floating-point values, so each is in scope, and an
#: integer-valued one (``round``, ``gammasgn``) is routed with a zero derivative; the
#: integer arguments of some (orders, degrees, counts) are refused when traced, not
#: excluded here. A group that truly has nothing to differentiate would go here.
SCIPY_OUT_OF_SCOPE: dict[str, str] = {}


def candidates() -> dict[str, object]:
    """Public dispatching NumPy functions and ufuncs in scope, by qualified name (each
    object once, under its first name in numpy, numpy.linalg, numpy.fft order)."""
    out: dict[str, object] = {}
    seen: set[int] = set()
    for mod, prefix in ((np, "np."), (np.linalg, "np.linalg."), (np.fft, "np.fft.")):
        for name in sorted(dir(mod)):
            f = getattr(mod, name)
            if name.startswith("_") or id(f) in seen:
                continue
            if not (isinstance(f, np.ufunc) or hasattr(f, "_implementation")):
                continue
            seen.add(id(f))
            if mod is np and name in OUT_OF_SCOPE:
                continue
            out[prefix + name] = f
    return out


def coverage() -> tuple[list[str], list[str]]:
    """(routed, not routed) names among ``candidates()``."""
    routed, missing = [], []
    for name, f in candidates().items():
        (routed if f in FUNCTION_HANDLERS or f in UFUNC_HANDLERS else missing).append(name)
    return routed, missing


def scipy_candidates() -> dict[str, np.ufunc]:
    """scipy.special's public ufuncs in scope, by name (each object once, under the first
    of its names in sorted order: ``digamma`` for ``psi``, ``jn`` for ``jv``)."""
    out: dict[str, np.ufunc] = {}
    seen: set[int] = set()
    for name in sorted(dir(sc)):
        f = getattr(sc, name)
        if name.startswith("_") or not isinstance(f, np.ufunc) or id(f) in seen:
            continue
        seen.add(id(f))
        if name not in SCIPY_OUT_OF_SCOPE:
            out["sp." + name] = f
    return out


def scipy_coverage() -> tuple[list[str], list[str]]:
    """(routed, not routed) names among ``scipy_candidates()``."""
    routed, missing = [], []
    for name, f in scipy_candidates().items():
        (routed if f in UFUNC_HANDLERS else missing).append(name)
    return routed, missing


def main() -> None:
    routed, missing = coverage()
    total = len(routed) + len(missing)
    print(f"coverage           : {len(routed)} / {total} public NumPy functions routed "
          f"({100 * len(routed) / total:.0f}%; numpy, numpy.linalg, numpy.fft; "
          f"{len(OUT_OF_SCOPE)} out of scope)")
    print(f"not routed         : {', '.join(missing)}")
    routed, missing = scipy_coverage()
    total = len(routed) + len(missing)
    print(f"scipy coverage     : {len(routed)} / {total} scipy.special ufuncs routed "
          f"({100 * len(routed) / total:.0f}%; aliases once; "
          f"{len(SCIPY_OUT_OF_SCOPE)} out of scope)")
    print(f"scipy not routed   : {', '.join(missing)}")


if __name__ == "__main__":
    main()
