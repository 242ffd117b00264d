"""Counts of the conformance harness, for notes and release logs:

    python -m tests.conformance.report
"""

from __future__ import annotations

from collections import Counter

from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.primitive import FUNCTION_HANDLERS, UFUNC_HANDLERS

from .checks import VMAP_BATCH, modes_of
from .coverage import main as coverage_main
from .expected_refusals import EXPECTED_REFUSALS
from .jax_outcomes import JAX_OUTCOMES
from .known_failures import KNOWN_FAILURES
from .specs import CASES


def main() -> None:
    entries = {c.entry for c in CASES}
    registered = set(UFUNC_HANDLERS) | set(FUNCTION_HANDLERS) | set(ORIGINALS)
    checks = [(m, c) for c in CASES for m in modes_of(c)]
    print(f"registered entries : {len(registered)} ({len(UFUNC_HANDLERS)} ufuncs, "
          f"{len(FUNCTION_HANDLERS)} NumPy functions, {len(ORIGINALS)} SciPy dispatchers); "
          f"with specs: {len(entries & registered)}")
    print(f"cases              : {len(CASES)} (entry x keyword variant x dtype x shape class)")
    print(f"keyword variants   : {len({(c.name, c.label) for c in CASES})} (entry x keywords)")
    print(f"checks             : {len(checks)} (case x mode)")
    vmapped = [c for m, c in checks if m == "vmap"]
    print(f"vmap checks        : {len(vmapped)} (float64/complex128 cases, "
          f"{len({c.entry for c in vmapped})} entries: a batch of {VMAP_BATCH} against a loop; "
          f"value for all, vmap(jvp) and vmap(vjp) for the {sum(c.kind == 'diff' for c in vmapped)}"
          " diff cases)")
    for title, counter in (("dtypes", Counter(c.dtype for c in CASES)),
                           ("shape classes", Counter(c.shape or "-" for c in CASES)),
                           ("kinds", Counter(c.kind for c in CASES)),
                           ("modes", Counter(m for m, _ in checks))):
        top = ", ".join(f"{k} {v}" for k, v in counter.most_common(12))
        print(f"{title:19s}: {top}")
    coverage_main()
    classes = Counter(v.split(" | ", 1)[0] for v in KNOWN_FAILURES.values())
    jax = sum(k.startswith("jax::") for k in KNOWN_FAILURES)
    print(f"known failures     : {len(KNOWN_FAILURES)} ({jax} of them JAX-agreement), "
          f"in {len({k.split('::', 1)[1].split('[')[0].split('-')[0] for k in KNOWN_FAILURES})}"
          " entries")
    names: dict[str, set[str]] = {}
    for k, v in KNOWN_FAILURES.items():
        names.setdefault(v.split(" | ", 1)[0], set()).add(
            k.split("::", 1)[1].split("[")[0].rsplit("-", 2)[0].split("-float")[0]
            .split("-complex")[0])
    for cls, n in classes.most_common():
        ents = sorted(names[cls])
        shown = ", ".join(ents[:6]) + (", ..." if len(ents) > 6 else "")
        print(f"  {n:5d}  {cls}  [{len(ents)} entries: {shown}]")
    pinned = Counter(f"{v[0]}: {v[2]}" for v in EXPECTED_REFUSALS.values())
    print(f"pinned refusals    : {len(EXPECTED_REFUSALS)} of {len(checks)} checks "
          f"({len(checks) - len(EXPECTED_REFUSALS) - len(KNOWN_FAILURES)} pass)")
    for cls, n in pinned.most_common():
        print(f"  {n:5d}  {cls}")
    print(f"JAX outcomes       : {len(JAX_OUTCOMES)} comparisons pinned as not agreeing")
    for cls, n in Counter(JAX_OUTCOMES.values()).most_common():
        print(f"  {n:5d}  {cls}")


if __name__ == "__main__":
    main()
