"""How much of NumPy's public function surface dualrev routes:

    python -m tests.conformance.coverage        # or as a script, for another checkout

The candidates are the public names of ``numpy``, ``numpy.linalg`` and ``numpy.fft``
that dispatch on array arguments (ufuncs and ``__array_function__`` functions), less
``OUT_OF_SCOPE`` (no numeric array result to differentiate or to compute on traced
values: files, text, dates, bit patterns, memory queries). A function counts as routed
when dualrev registers a handler for it (a derivative, a plain-value result, or a clear
refusal). Aliases count once.
"""

from __future__ import annotations

import numpy as np

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


def main() -> None:
    routed, missing = coverage()
    total = len(routed) + len(missing)
    print(f"coverage           : {len(routed)} / {total} public NumPy functions routed "
          f"({100 * len(routed) / total:.0f}%; numpy, numpy.linalg, numpy.fft; "
          f"{len(OUT_OF_SCOPE)} out of scope)")
    print(f"not routed         : {', '.join(missing)}")


if __name__ == "__main__":
    main()
