"""The conformance harness: every registered entry x keyword variant x dtype x shape
class x mode, generated from specs.py (see README.md)."""

from __future__ import annotations

import inspect

import pytest

from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.primitive import FUNCTION_HANDLERS, UFUNC_HANDLERS

from .checks import CHECKS, Refusal, ReplayOutcome, SparsityOutcome, modes_of
from .conftest import RECORD, RECORD_COMMAND, strict_here, write_record
from .expected_refusals import EXPECTED_REFUSALS, REPLAY_OUTCOMES, SPARSITY_OUTCOMES
from .expected_refusals import RECORDED_WITH as REFUSALS_RECORDED_WITH
from .known_failures import KNOWN_FAILURES
from .specs import CASES, DROPPED, KEYWORD_EXEMPT, SCIPY_NAMES

STRICT = strict_here()
#: refusals are pinned with their message only where the table was recorded; elsewhere
#: (the CI matrix's oldest/newest NumPy/SciPy) with their error class alone, and a pinned
#: refusal may pass there
REFUSALS_STRICT = strict_here(REFUSALS_RECORDED_WITH)


def key_of(mode: str, case) -> str:
    """The test id and table key of a check: ``mode::case id``."""
    return f"{mode}::{case.id}".replace(" ", "_")


def _params() -> list:
    out = []
    for case in CASES:
        for mode in modes_of(case):
            key = key_of(mode, case)
            marks = []
            if key in KNOWN_FAILURES and not RECORD:
                marks.append(pytest.mark.xfail(strict=STRICT, reason=KNOWN_FAILURES[key]))
            out.append(pytest.param(mode, case, key, id=key, marks=marks))
    return out


PARAMS = _params()


def judge_refusal(key: str, error: Exception) -> None:
    """A refusal passes only where it is pinned: same error class (everywhere) and, where
    the table was recorded, a message containing the pinned fragment."""
    cls, msg = type(error).__name__, " ".join(str(error).split())
    pinned = EXPECTED_REFUSALS.get(key)
    how = (f"If the refusal is right (dualrev cannot do this construct, and says so), "
           f"re-record the pinned outcomes with `{RECORD_COMMAND}` and review the diff of "
           "tests/conformance/expected_refusals.py; if it is a gap (a missing batching "
           "rule, a rule that is not itself differentiable...), fix it.")
    if pinned is None:
        if not REFUSALS_STRICT:
            pytest.xfail(f"refusal not pinned under this NumPy/SciPy (the table was recorded "
                         f"with {REFUSALS_RECORDED_WITH}): {cls}: {msg[:200]}")
        pytest.fail(f"{key}: dualrev refuses, and this refusal is not pinned in "
                    f"expected_refusals.py: {cls}: {msg[:300]}\n{how}", pytrace=False)
    want_cls, fragment, _defect = pinned
    if cls != want_cls:
        pytest.fail(f"{key}: pinned as a {want_cls} refusal, but dualrev raises {cls}: "
                    f"{msg[:300]}\n{how}", pytrace=False)
    if REFUSALS_STRICT and fragment not in msg:
        pytest.fail(f"{key}: pinned as a {want_cls} refusal saying {fragment!r}, but the "
                    f"message is now: {msg[:300]}\n{how}", pytrace=False)


def judge_replay_outcome(key: str, outcome: str) -> None:
    """A replay check that agreed with the dynamic transform but did not replay at its
    second point (it recorded again, or ran dynamically) passes only where
    ``REPLAY_OUTCOMES`` pins that outcome (under the recorded NumPy/SciPy)."""
    pinned = REPLAY_OUTCOMES.get(key)
    if pinned is None or pinned[0] != outcome:
        if not REFUSALS_STRICT:
            pytest.xfail(f"replay outcome not pinned under this NumPy/SciPy: {outcome}")
        pytest.fail(f"{key}: the replay agrees but {outcome}, and expected_refusals.py pins "
                    f"{pinned[0] if pinned else 'a replay'}. If that is right (a guard that "
                    f"must fail for another sample, a documented fallback), re-record with "
                    f"`{RECORD_COMMAND}`; if not, it is a replay bug.", pytrace=False)


def judge_sparsity_outcome(key: str, outcome: str) -> None:
    """A sparsity check whose pattern holds but is not exact (a superset, a dense
    fallback, taken at the point) passes only where ``SPARSITY_OUTCOMES`` pins that
    outcome (under the recorded NumPy/SciPy): a rule added or changed shows up."""
    pinned = SPARSITY_OUTCOMES.get(key)
    if pinned is None or pinned[0] != outcome:
        if not REFUSALS_STRICT:
            pytest.xfail(f"sparsity outcome not pinned under this NumPy/SciPy: {outcome}")
        pytest.fail(f"{key}: the pattern holds but: {outcome}; expected_refusals.py pins "
                    f"{pinned[0] if pinned else 'an exact, structural pattern'}. If the new "
                    f"outcome is right (a rule added or changed), re-record with "
                    f"`{RECORD_COMMAND} --only sparsity`.", pytrace=False)


@pytest.mark.parametrize(("mode", "case", "key"), PARAMS)
def test_conformance(mode, case, key):
    try:
        CHECKS[mode](case)
    except SparsityOutcome as o:
        if RECORD:
            write_record({"key": key, "sparsity_outcome": o.outcome})
            return
        judge_sparsity_outcome(key, o.outcome)
        return
    except ReplayOutcome as o:
        if RECORD:
            write_record({"key": key, "replay_outcome": o.outcome})
            return
        judge_replay_outcome(key, o.outcome)
        return
    except Refusal as r:
        if RECORD:
            write_record({"key": key, "refusal": type(r.error).__name__,
                          "message": str(r.error)})
            return
        judge_refusal(key, r.error)
        return
    if key in REPLAY_OUTCOMES and REFUSALS_STRICT and not RECORD:
        pytest.fail(f"{key} replays now, but expected_refusals.py pins its outcome as "
                    f"{REPLAY_OUTCOMES[key][0]!r}. Re-record with `{RECORD_COMMAND}`.",
                    pytrace=False)
    if key in SPARSITY_OUTCOMES and REFUSALS_STRICT and not RECORD:
        pytest.fail(f"{key}: the pattern is exact and structural now, but expected_refusals.py "
                    f"pins {SPARSITY_OUTCOMES[key][0]!r}. Good news: re-record with "
                    f"`{RECORD_COMMAND} --only sparsity`.", pytrace=False)
    if key in EXPECTED_REFUSALS and REFUSALS_STRICT and not RECORD:
        pytest.fail(f"{key} passes now, but expected_refusals.py pins it as a refusal "
                    f"({EXPECTED_REFUSALS[key][0]}). Good news: re-record the pinned outcomes "
                    f"with `{RECORD_COMMAND}` (it deletes the line).", pytrace=False)


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


def test_case_ids_are_stable():
    # an id is a case's key in expected_refusals.py and jax_outcomes.py: a memory address
    # (a lambda's repr) would make the pins miss from one run to the next
    unstable = [p for p in PARAMS if " at 0x" in str(getattr(p, "id", p))]
    assert not unstable, unstable[:5]
    ids = [str(getattr(p, "id", p)) for p in PARAMS]
    assert len(ids) == len(set(ids)), "two conformance checks share an id"


def test_known_failures_name_existing_cases():
    ids = {p.id for p in PARAMS} | {f"jax::{c.id}".replace(" ", "_") for c in CASES}
    stale = sorted(set(KNOWN_FAILURES) - ids)
    assert not stale, f"known_failures.py names cases that do not exist: {stale[:10]}"


def test_expected_refusals_name_existing_checks():
    """A pinned refusal of a check that is no longer generated is stale (a case this
    NumPy/SciPy rejects, and so drops, is not)."""
    ids = {p.id for p in PARAMS} | {f"jax::{c.id}".replace(" ", "_") for c in CASES}
    dropped = {c.id.replace(" ", "_") for c in DROPPED}
    if not REFUSALS_STRICT:  # elsewhere a case may have other outputs, so other modes
        ids = {k for k in {*EXPECTED_REFUSALS, *REPLAY_OUTCOMES, *SPARSITY_OUTCOMES}
               if k.split("::", 1)[1] in {c.id.replace(" ", "_") for c in CASES}}
    pinned = set(EXPECTED_REFUSALS) | set(REPLAY_OUTCOMES) | set(SPARSITY_OUTCOMES)
    stale = sorted(k for k in pinned - ids if k.split("::", 1)[1] not in dropped)
    assert not stale, (f"expected_refusals.py pins checks that do not exist: {stale[:10]}; "
                       f"re-record with `{RECORD_COMMAND}`")


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


def test_a_refusal_passes_only_as_pinned(monkeypatch):
    """The rules of judge_refusal: pinned class and fragment pass; another class, another
    message (where the table was recorded) or an unpinned refusal fail, naming the record
    command; elsewhere an unpinned refusal is an xfail and only the class is checked."""
    from dualrev.errors import InPlaceError, NoDerivativeRule

    from . import test_conformance as tc
    from .record import fragment

    err = NoDerivativeRule("numpy.foo", "Its bar= is not supported.")
    pin = ("NoDerivativeRule", fragment(str(err)), "a triage class")
    monkeypatch.setitem(tc.EXPECTED_REFUSALS, "jvp::np.foo-float64-mat", pin)
    monkeypatch.setattr(tc, "REFUSALS_STRICT", True)
    tc.judge_refusal("jvp::np.foo-float64-mat", err)
    fails = pytest.fail.Exception
    with pytest.raises(fails, match="raises InPlaceError"):
        tc.judge_refusal("jvp::np.foo-float64-mat", InPlaceError("np.foo(out=)"))
    with pytest.raises(fails, match="the message is now"):
        tc.judge_refusal("jvp::np.foo-float64-mat", NoDerivativeRule("numpy.baz"))
    with pytest.raises(fails, match="record --run"):
        tc.judge_refusal("vmap::np.foo-float64-mat", err)
    monkeypatch.setattr(tc, "REFUSALS_STRICT", False)
    tc.judge_refusal("jvp::np.foo-float64-mat", NoDerivativeRule("numpy.foo", "Other words."))
    with pytest.raises(pytest.xfail.Exception, match="not pinned under this NumPy/SciPy"):
        tc.judge_refusal("vmap::np.foo-float64-mat", err)
    # a fragment stops before what names a place (an address, a file, a line)
    assert fragment("dualrev: x at <function f at 0x7f00> in  a.py line 3") == "dualrev: x"
    assert fragment("dualrev: y in a.py, line 3") == "dualrev: y in"


def test_no_structural_mode_is_generated():
    """Derivative modes only for cases with a floating output, vmap only for cases with a
    differentiable argument: nothing is skipped at run time."""
    for case in CASES:
        modes = set(modes_of(case))
        if not case.has_floating_output or case.kind != "diff":
            assert not modes & {"jvp", "vjp", "fwdrev", "second"}, case.id
        if not case.templates():
            assert "vmap" not in modes, case.id


def test_record_only_keeps_the_other_modes_pins():
    """``record --run --only MODE`` re-records one mode: every other mode's pins come
    back as recording rows with their class, fragment and triage class unchanged."""
    from .record import kept_rows

    rows = kept_rows("replay")
    assert not any(r["key"].startswith("replay::") for r in rows)
    kept = {r["key"]: (r["refusal"], r["message"], r["defect"]) for r in rows
            if "refusal" in r}
    assert kept == {k: v for k, v in EXPECTED_REFUSALS.items() if not k.startswith("replay::")}
    rows = kept_rows("value")
    assert {r["key"]: r["replay_outcome"] for r in rows if "replay_outcome" in r} == \
        {k: o for k, (o, _) in REPLAY_OUTCOMES.items()}
    assert {r["key"]: r["sparsity_outcome"] for r in rows if "sparsity_outcome" in r} == \
        {k: o for k, (o, _) in SPARSITY_OUTCOMES.items()}
    assert not any(r["key"].startswith("sparsity::") for r in kept_rows("sparsity"))


def test_a_sparsity_outcome_passes_only_as_pinned(monkeypatch):
    """The rules of judge_sparsity_outcome: the pinned outcome passes; another outcome,
    or one where nothing is pinned (an exact pattern expected), fails naming the record
    command; elsewhere an unpinned outcome is an xfail."""
    from . import test_conformance as tc

    key = "sparsity::np.foo-float64-mat"
    monkeypatch.setitem(tc.SPARSITY_OUTCOMES, key, ("jacobian superset", "a triage class"))
    monkeypatch.setattr(tc, "REFUSALS_STRICT", True)
    tc.judge_sparsity_outcome(key, "jacobian superset")
    fails = pytest.fail.Exception
    with pytest.raises(fails, match="--only sparsity"):
        tc.judge_sparsity_outcome(key, "jacobian taken at the point")
    with pytest.raises(fails, match="an exact, structural pattern"):
        tc.judge_sparsity_outcome("sparsity::np.bar-float64-mat", "jacobian superset")
    monkeypatch.setattr(tc, "REFUSALS_STRICT", False)
    with pytest.raises(pytest.xfail.Exception, match="not pinned under this NumPy/SciPy"):
        tc.judge_sparsity_outcome("sparsity::np.bar-float64-mat", "jacobian superset")


def test_a_sparsity_miss_fails_and_is_never_pinned(monkeypatch):
    """A detection that drops an entry of the dense Jacobian's non-zeros fails the check
    with a MISS, and the recorder keeps it out of known_failures.py."""
    from . import checks
    from .record import MISS, pinnable, sparsity_class

    real = checks.dependencies

    def dropping(f, args, argnums=0):
        found = real(f, args, argnums)
        P = found.pattern.tolil()
        P[0, P.rows[0][-1]] = False
        found.pattern = P.tocsr()
        return found

    case = next(c for c in CASES if c.id == "np.sin-float64-vec")
    checks.check_sparsity(case)  # exact and structural: passes without an outcome
    monkeypatch.setattr(checks, "dependencies", dropping)
    with pytest.raises(AssertionError, match="sparsity MISS") as e:
        checks.check_sparsity(case)
    row = {"key": key_of("sparsity", case), "message": f"AssertionError: {e.value}"}
    other = {"key": key_of("sparsity", case), "message": "ValueError: something else"}
    kept, misses = pinnable([row, other])
    assert misses == [row] and [r for r, _ in kept] == [other]
    assert not any(v.startswith(MISS) for v in KNOWN_FAILURES.values())
    assert sparsity_class("jacobian superset; hessian: no pattern rule for inv").startswith(
        "jacobian: superset")
    assert sparsity_class("hessian: no pattern rule for inv").startswith("hessian: dense")
