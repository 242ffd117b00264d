"""The conformance harness: every registered entry x keyword variant x dtype x shape
class x mode, generated from specs.py (see README.md)."""

from __future__ import annotations

import inspect

import pytest

from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.primitive import FUNCTION_HANDLERS, UFUNC_HANDLERS

from .checks import CHECKS, modes_of
from .conftest import RECORD, strict_here
from .known_failures import KNOWN_FAILURES
from .specs import CASES, DROPPED, KEYWORD_EXEMPT, SCIPY_NAMES

STRICT = strict_here()


def _params() -> list:
    out = []
    for case in CASES:
        for mode in modes_of(case):
            key = f"{mode}::{case.id}".replace(" ", "_")
            marks = []
            if key in KNOWN_FAILURES and not RECORD:
                marks.append(pytest.mark.xfail(strict=STRICT, reason=KNOWN_FAILURES[key]))
            out.append(pytest.param(mode, case, id=key, marks=marks))
    return out


PARAMS = _params()


@pytest.mark.parametrize(("mode", "case"), PARAMS)
def test_conformance(mode, case):
    CHECKS[mode](case)


def _name(entry) -> str:
    if entry in SCIPY_NAMES:
        return SCIPY_NAMES[entry]
    return f"{getattr(entry, '__module__', None) or 'numpy'}.{entry.__name__}"


def registered() -> set:
    return set(UFUNC_HANDLERS) | set(FUNCTION_HANDLERS) | set(ORIGINALS)


def test_every_entry_has_a_spec():
    covered = {c.entry for c in CASES}
    missing = sorted(_name(e) for e in registered() - covered)
    assert not missing, (f"registered without a conformance spec: {missing}; add cases in "
                         "tests/conformance/specs.py (the family table it belongs to)")
    stray = sorted(_name(e) for e in covered - registered())
    assert not stray, f"specs for entries that are not registered: {stray}"
    print(f"conformance: {len(registered())} registered entries, all with specs "
          f"({len(UFUNC_HANDLERS)} ufuncs, {len(FUNCTION_HANDLERS)} functions, "
          f"{len(ORIGINALS)} SciPy dispatchers), {len(CASES)} cases, {len(PARAMS)} checks")


def test_known_failures_name_existing_cases():
    ids = {p.id for p in PARAMS} | {f"jax::{c.id}".replace(" ", "_") for c in CASES}
    stale = sorted(set(KNOWN_FAILURES) - ids)
    assert not stale, f"known_failures.py names cases that do not exist: {stale[:10]}"


def _keywords(entry) -> set[str]:
    handler = FUNCTION_HANDLERS.get(entry) or (entry if entry in ORIGINALS else None)
    if handler is None:
        return set()
    try:
        sig = inspect.signature(handler)
    except (TypeError, ValueError):
        return set()
    params = list(sig.parameters.values())
    return {q.name for q in params[1:] if q.default is not inspect.Parameter.empty
            and q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)}


def test_every_keyword_is_exercised():
    """Each keyword a function handler declares is used by some case (or exempted in
    specs.KEYWORD_EXEMPT with the reason)."""
    used: dict = {}
    # a case dropped because this NumPy/SciPy rejects its keyword still covers it
    for c in [*CASES, *DROPPED]:
        used.setdefault(c.entry, set()).update(c.kwargs)
        used[c.entry].update(c.label.replace("=", ",").split(","))
    missing = []
    for e in registered():
        for k in sorted(_keywords(e) - used.get(e, set()) - set(KEYWORD_EXEMPT)):
            missing.append(f"{_name(e)}({k}=)")
    assert not missing, f"keywords no conformance case exercises: {missing}"


@pytest.mark.skipif(not STRICT, reason="other NumPy/SciPy versions reject some keywords")
def test_only_cross_product_cases_are_dropped():
    """Where the table was written, every hand-written case runs (a spec mistake shows)."""
    wrong = [c.id for c in DROPPED if not c.optional]
    assert not wrong, f"NumPy/SciPy reject these cases: {wrong}"
