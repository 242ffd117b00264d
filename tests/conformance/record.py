"""Regenerate known_failures.py and expected_refusals.py from a recording run.

    python -m tests.conformance.record --run      # both steps below, in one command
    python -m tests.conformance.record --run --no-jax   # without the JAX comparison
    python -m tests.conformance.record --run --only replay   # one mode, the other pins kept

    DUALREV_CONFORMANCE_RECORD=/tmp/rec.jsonl python -m pytest tests/conformance -m "jax or not jax"
    python -m tests.conformance.record /tmp/rec.jsonl [more.jsonl ...]

Each failing case is filed under a defect class (the rules below, first match wins), so
that the coordinator can quote "the harness fails on ..." per class. Each refusal (a
``DualrevError`` where the check allows one) is pinned with its error class, a stable
fragment of its message and its triage class (``refusal_class``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy

# (class, predicate on (mode, name, label, dtype, shape, message)); first match wins
KEYWORDS = {
    "np.linalg.pinv": ("rcond", "rtol", "hermitian"), "np.linalg.lstsq": ("rcond",),
    "sla.solve_triangular": ("trans=2",), "np.cov": ("rowvar",), "np.var": ("mean=",),
    "np.std": ("mean=",), "np.angle": ("deg",), "sp.logsumexp": ("signed",),
    "st.multivariate_normal.logpdf": ("defaults",), "np.clip": ("a_max",),
    "np.nan_to_num": ("copy",), "np.linalg.svd": ("hermitian",), "np.linalg.eigh": ("UPLO",),
}


def classify(mode: str, name: str, label: str, dtype: str, shape: str, msg: str) -> str:
    if mode == "sparsity":
        if "sparsity MISS" in msg:
            return MISS
        if "vs dr.jacobian" in msg or "vs dr.hessian" in msg:
            return "sparsity: dr.sparse's result differs from the dense transform's"
        if shape.startswith("empty"):
            return "sparsity: size-0 input (dr.sparse.jacobian/hessian fail)"
        return "sparsity: an exception (not a DualrevError) in the detection or dr.sparse"
    if mode == "replay":
        if "replay raises" in msg:
            return "replay: refuses or fails where the dynamic transform works"
        if "replay warns" in msg:
            return "replay: a warning of the dynamic transform missing (non-finite derivative)"
        return "replay: a WRONG value, silently (differs from the dynamic transform)"
    if shape == "list":
        return "python-list arguments"
    if name == "np.linalg.det" and shape == "singular" and dtype == "float64":
        return "det of a singular matrix"
    if shape.startswith("empty") or "array of size 0" in msg:
        return "size-0 (empty) shapes"
    if "AxisError" in msg and shape == "0d":
        return "axis= on 0-d arrays (NumPy accepts axis 0/-1)"
    if name == "np.einsum":
        return "einsum size-1/ellipsis broadcasting"
    if name == "np.linalg.solve" and shape.startswith("stacked"):
        return "solve with stacked a and shared/broadcast b"
    if name == "st.multivariate_normal.logpdf" and shape == "0d":
        return "0-d arguments (multivariate_normal.logpdf)"
    if "dtype=" in label and dtype != "float32":
        return "dtype= keyword ignored"
    if dtype == "float32" or "float32" in label:
        return "float32 not kept (results/derivatives upcast or dtype differs)"
    if any(k in label for k in KEYWORDS.get(name, ())) and dtype == "float64":
        return "keyword accepted and ignored"
    if "_zeta" in msg or "ufunc" in msg and dtype == "complex128":
        return "complex input to a real-only rule (TypeError instead of a clear error)"
    if "DID NOT RAISE" in msg:
        return "discrete argument differentiated silently (expected a refusal)"
    if dtype == "complex128":
        if mode == "fwdrev" and "jacfwd vs jacrev" in msg:
            return "complex: jacfwd disagrees with jacrev (complex input, real output)"
        if "is real for a complex value" in msg:
            return "complex: reverse mode drops the imaginary part"
        if mode == "second":
            return "complex: second-order derivative wrong"
        return "complex: wrong value/derivative (missing conjugate, complex where real)"
    if mode == "jax":
        return "disagrees with JAX (real inputs)"
    if mode == "second":
        return "second-order derivative wrong"
    return "other: wrong value or derivative"


#: the class of a sparsity check whose pattern misses a non-zero of the dense Jacobian:
#: never pinned (write_failures leaves it out, so the check keeps failing)
MISS = "sparsity: MISS (the pattern lacks a non-zero: a rule too sparse)"


def split_id(key: str) -> tuple[str, str, str, str, str]:
    mode, cid = key.split("::", 1)
    m = re.match(r"^(.*?)(?:\[(.*)\])?-(float64|float32|complex128)(?:-(.*))?$", cid)
    assert m, key
    name, label, dtype, shape = m.groups()
    return mode, name, label or "", dtype, shape or ""


def _minor(mod) -> str:
    return ".".join(mod.__version__.split(".")[:2])


def fragment(msg: str) -> str:
    """A stable fragment of a refusal's message: its start, whitespace folded, cut
    before anything that names a place (an address, a file, a line number), at most 100
    characters."""
    msg = " ".join(msg.split())
    cut = re.search(r"0x[0-9a-f]+|<function|<lambda>|\S+\.py\b|line \d+| at <", msg)
    if cut:
        msg = msg[:cut.start()]
    return msg[:100].rstrip()


#: modes whose refusal alone (the other modes of the case pass) points at a gap
GAP_MODES = {"replay": "replay only: the dynamic transforms pass, dr.replay refuses",
             "vmap": "vmap only: a missing or refusing batching rule",
             "second": "second order only: a derivative rule that is not itself differentiable",
             "fwdrev": "jacfwd/jacrev only",
             "sparsity": "sparsity only: the detection or dr.sparse refuses where the dense "
                         "transforms work"}


#: (fragment of the message, triage class): refusals whose reason is known, first match
KNOWN_REASONS = [
    ("whose result's size depends on the values",
     "inherent: under vmap, a result whose size depends on the values (JAX refuses too)"),
    ("needs t_eval=",
     "vmap: solve_ivp's output times differ per element (needs t_eval=)"),
    ("are not unique", "inherent: the derivative does not exist (a non-unique factor)"),
    ("copy=False", "inherent: an in-place write into a traced argument"),
    ("solve_ivp(events=...) under vmap",
     "vmap: solve_ivp's events differ per element (each member has its own event times)"),
    ("complex aweights", "by design: cov's weights are real (complex ones refused)"),
]


def refusal_class(mode: str, cls: str, msg: str, refused_modes: set[str],
                  all_modes: set[str]) -> str:
    """The triage class of a refusal: a known reason (``KNOWN_REASONS``), else from the
    modes of the same case that refuse too (a refusal in vmap/second/fwdrev alone, the
    other modes passing, points at a missing batching rule or a rule that is not
    itself differentiable)."""
    for fragment_, reason in KNOWN_REASONS:
        if fragment_ in msg:
            return reason
    if cls == "BatchedValueError":
        return "vmap: a value needed once for the batch differs per element"
    derivative = all_modes - {"vmap"}
    if derivative and derivative <= refused_modes:
        return "unsupported variant: every mode refuses (documented, refused at the call)"
    others = refused_modes - {mode}
    if not others and mode in GAP_MODES:
        return GAP_MODES[mode]
    return f"some modes only ({'+'.join(sorted(refused_modes))})"


def _header(what: str) -> list[str]:
    return ["# ruff: noqa: E501  (generated: one line per case, the message kept whole)", what]


def replay_class(outcome: str) -> str:
    """The triage class of a replay outcome (a replay check that agreed with the dynamic
    transform without replaying at its second point)."""
    if "changed in place" in outcome:
        return ("re-records: stale, an array the recording met changed in place (a buffer "
                "the transform itself writes, not the user's: a replay defect)")
    if "equal guard" in outcome:
        return ("re-records: an equal guard fails at another sample (a rule, NumPy or "
                "SciPy reads the value as a plain number)")
    if "re-records" in outcome:
        return "re-records: a guard fails at another sample (the recording depends on values)"
    if "warned while recording" in outcome:
        return ("runs dynamically: the recording warned (a non-finite derivative, a NumPy "
                "deprecation) and is not kept")
    if "recording failed" in outcome:
        return ("runs dynamically: the recording fails where the dynamic transform works "
                "(dr.replay falls back, with a ReplayWarning)")
    return "runs dynamically: dr.replay falls back to the dynamic transform"


def sparsity_class(outcome: str) -> str:
    """The triage class of a sparsity outcome (a pattern that holds but is not the exact,
    structural one): its first reason, in the order dense fallback, taken at the point,
    superset; the Jacobian's before the Hessian's."""
    for what in ("jacobian", "hessian"):
        parts = [p for p in outcome.split("; ") if p.startswith(what)]
        if any("no pattern rule" in p for p in parts):
            return (f"{what}: dense fallback (a primitive states no pattern rule; its block "
                    "is dense)")
        if any("taken at the point" in p for p in parts):
            return (f"{what}: taken at the point (a decision on values: an index, a branch, "
                    "a rule's choice)")
        if any("superset" in p for p in parts):
            return (f"{what}: superset (a rule coarser than the derivative: entries zero at "
                    "generic points)")
    return "other"


def write_refusals(rows: list[dict], modes_by_case: dict[str, set[str]],
                   replay_rows: list[dict] = (), sparsity_rows: list[dict] = ()) -> None:
    refused: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        mode, cid = r["key"].split("::", 1)
        refused[cid].add(mode)
    by_class: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for r in rows:
        mode, cid = r["key"].split("::", 1)
        defect = r.get("defect") or refusal_class(mode, r["refusal"], r["message"],
                                                  refused[cid], modes_by_case.get(cid, {mode}))
        by_class[f"{r['refusal']} | {defect}"].append((r["key"], r["refusal"],
                                                       fragment(r["message"])))
    out = _header('"""Refusals the harness pins: "mode::case id" -> (the DualrevError '
                  'subclass, a fragment of')
    out += ["its message, the triage class). Generated by ``python -m tests.conformance.record "
            "--run``",
            "(see README.md); do not edit by hand.", "",
            "A refusal (a DualrevError where the check allows one) passes only where it is "
            "pinned",
            "here, with the same class and, under RECORDED_WITH, a message containing the",
            "fragment; a pinned refusal that passes fails there (re-record). Under other",
            'NumPy/SciPy versions only the class is checked and a pinned check may pass."""', "",
            f"RECORDED_WITH = {{'numpy': {_minor(np)!r}, 'scipy': {_minor(scipy)!r}}}", "",
            "EXPECTED_REFUSALS: dict[str, tuple[str, str, str]] = {"]
    for cls in sorted(by_class, key=lambda c: (-len(by_class[c]), c)):
        err, defect = cls.split(" | ", 1)
        out.append(f"    # ---- {err}: {defect} ({len(by_class[cls])})")
        for key, name, frag in sorted(by_class[cls]):
            out.append(f"    {json.dumps(key)}: ({json.dumps(name)}, {json.dumps(frag)},")
            out.append(f"        {json.dumps(defect)}),")
    out.append("}")
    by_outcome: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in replay_rows:
        by_outcome[replay_class(r["replay_outcome"])].append((r["key"], r["replay_outcome"]))
    out += ["", "#: replay checks that agree with the dynamic transform but do not replay at the",
            "#: second point: \"replay::case id\" -> (the outcome, its triage class)",
            "REPLAY_OUTCOMES: dict[str, tuple[str, str]] = {"]
    for cls in sorted(by_outcome, key=lambda c: (-len(by_outcome[c]), c)):
        out.append(f"    # ---- {cls} ({len(by_outcome[cls])})")
        for key, outcome in sorted(by_outcome[cls]):
            out.append(f"    {json.dumps(key)}: ({json.dumps(outcome)},")
            out.append(f"        {json.dumps(cls)}),")
    out.append("}")
    by_sparsity: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in sparsity_rows:
        by_sparsity[sparsity_class(r["sparsity_outcome"])].append((r["key"],
                                                                   r["sparsity_outcome"]))
    out += ["", "#: sparsity checks whose pattern holds but is not exact: \"sparsity::case id\" ->",
            "#: (the outcome, its triage class)",
            "SPARSITY_OUTCOMES: dict[str, tuple[str, str]] = {"]
    for cls in sorted(by_sparsity, key=lambda c: (-len(by_sparsity[c]), c)):
        out.append(f"    # ---- {cls} ({len(by_sparsity[cls])})")
        for key, outcome in sorted(by_sparsity[cls]):
            out.append(f"    {json.dumps(key)}: ({json.dumps(outcome)},")
            out.append(f"        {json.dumps(cls)}),")
    out.append("}")
    Path(__file__).with_name("expected_refusals.py").write_text("\n".join(out) + "\n")
    print("refusals, by error class | triage class:")
    for cls in sorted(by_class, key=lambda c: (-len(by_class[c]), c)):
        print(f"{len(by_class[cls]):5d}  {cls}")
    print(f"{len(rows):5d}  refusals in total")
    for cls in sorted(by_outcome, key=lambda c: (-len(by_outcome[c]), c)):
        print(f"{len(by_outcome[cls]):5d}  replay: {cls}")
    for cls in sorted(by_sparsity, key=lambda c: (-len(by_sparsity[c]), c)):
        print(f"{len(by_sparsity[cls]):5d}  sparsity: {cls}")


def pinnable(rows: list[dict]) -> tuple[list[tuple[dict, str]], list[dict]]:
    """The failures that may be pinned as known failures, each with its defect class,
    and the sparsity MISSES, which never are (a pattern that lacks a non-zero is the
    worst bug of a rule: its check keeps failing until the rule is fixed)."""
    kept, misses = [], []
    for r in rows:
        mode, name, label, dtype, shape = split_id(r["key"])
        cls = r.get("defect") or classify(mode, name, label, dtype, shape, r["message"])
        if cls == MISS:
            misses.append(r)
        else:
            kept.append((r, cls))
    return kept, misses


def write_failures(rows: list[dict]) -> None:
    by_class: dict[str, list[tuple[str, str]]] = defaultdict(list)
    kept, misses = pinnable(rows)
    for r, cls in kept:
        short = re.sub(r"\s+", " ", r["message"]).strip()[:90]
        by_class[cls].append((r["key"], short))
    out = _header('"""Cases the harness fails on today: "mode::case id" -> defect class and the')
    out += ["failure. Generated by ``python -m tests.conformance.record`` (see README.md).",
            "",
            "Each becomes ``xfail(strict=True)``: when a fix lands the case XPASSes, the suite",
            'fails, and its line is to be deleted here."""', "",
            "#: where these were recorded; elsewhere the xfails are not strict (NumPy/SciPy",
            "#: versions differ in what they return, so a case may pass there)",
            f"RECORDED_WITH = {{'numpy': {_minor(np)!r}, 'scipy': {_minor(scipy)!r}}}", "",
            "KNOWN_FAILURES: dict[str, str] = {"]
    for cls in sorted(by_class, key=lambda c: -len(by_class[c])):
        out.append(f"    # ---- {cls} ({len(by_class[cls])})")
        for key, short in sorted(by_class[cls]):
            out.append(f"    {json.dumps(key)}:")
            out.append(f"        {json.dumps(cls + ' | ' + short)},")
    out.append("}")
    target = Path(__file__).with_name("known_failures.py")
    target.write_text("\n".join(out) + "\n")
    print("known failures, by defect class:")
    for cls in sorted(by_class, key=lambda c: -len(by_class[c])):
        print(f"{len(by_class[cls]):5d}  {cls}")
    print(f"{len(rows) - len(misses):5d}  failures in total")
    if misses:
        print(f"{len(misses)} sparsity MISSES (a pattern lacks a non-zero of the dense "
              "Jacobian), not pinned: they keep failing until the rule is fixed")
        for r in misses:
            print(f"  {r['key']}: {' '.join(r['message'].split())[:300]}")


def write_jax_outcomes(rows: list[dict], compared: bool) -> None:
    if not compared:
        print("no comparison with JAX in this recording (is JAX installed?): jax_outcomes.py "
              "left as it is (pip install jax==0.10.2 and re-record to regenerate it)")
        return
    import jax

    by_outcome: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_outcome[r["jax_outcome"]].append(r["key"])
    jax_minor = ".".join(jax.__version__.split(".")[:2])
    out = _header('"""Comparisons with JAX that do not come to agreement: "jax::case id" ->')
    out += ["outcome (test_jax_agreement.OUTCOMES). Generated by ``python -m "
            "tests.conformance.record --run``",
            "with JAX installed; do not edit by hand. Strict (an outcome that changes fails)",
            'under RECORDED_WITH only."""', "",
            f"RECORDED_WITH = {{'numpy': {_minor(np)!r}, 'scipy': {_minor(scipy)!r}, "
            f"'jax': {jax_minor!r}}}", "",
            "JAX_OUTCOMES: dict[str, str] = {"]
    for outcome in sorted(by_outcome, key=lambda o: (-len(by_outcome[o]), o)):
        out.append(f"    # ---- {outcome} ({len(by_outcome[outcome])})")
        out += [f"    {json.dumps(k)}: {json.dumps(outcome)}," for k in sorted(by_outcome[outcome])]
    out.append("}")
    Path(__file__).with_name("jax_outcomes.py").write_text("\n".join(out) + "\n")
    print("JAX comparisons that do not agree, by outcome:")
    for outcome in sorted(by_outcome, key=lambda o: (-len(by_outcome[o]), o)):
        print(f"{len(by_outcome[outcome]):5d}  {outcome}")


def kept_rows(only: str) -> list[dict]:
    """The pinned outcomes of every mode but ``only``, as recording rows (``--only``
    re-records one mode and keeps the rest of the tables as they are)."""
    from .expected_refusals import EXPECTED_REFUSALS, REPLAY_OUTCOMES, SPARSITY_OUTCOMES
    from .known_failures import KNOWN_FAILURES

    def other(key: str) -> bool:
        return key.split("::", 1)[0] != only

    rows = [{"key": k, "refusal": cls, "message": frag, "defect": defect}
            for k, (cls, frag, defect) in EXPECTED_REFUSALS.items() if other(k)]
    rows += [{"key": k, "replay_outcome": o} for k, (o, _) in REPLAY_OUTCOMES.items()
             if other(k)]
    rows += [{"key": k, "sparsity_outcome": o} for k, (o, _) in SPARSITY_OUTCOMES.items()
             if other(k)]
    rows += [{"key": k, "message": v.split(" | ", 1)[-1], "defect": v.split(" | ", 1)[0]}
             for k, v in KNOWN_FAILURES.items() if other(k)]
    return rows


def main(paths: list[str], only: str | None = None) -> None:
    rows = [json.loads(line) for path in paths for line in Path(path).read_text().splitlines()
            if line]
    if only:
        rows = [r for r in rows if r["key"].split("::", 1)[0] == only] + kept_rows(only)
    from .checks import modes_of
    from .specs import CASES

    modes_by_case = {c.id.replace(" ", "_"): set(modes_of(c)) for c in CASES}
    compared = any("jax_run" in r for r in rows)
    rows = [r for r in rows if "jax_run" not in r]
    write_failures([r for r in rows if "refusal" not in r and "jax_outcome" not in r
                    and "replay_outcome" not in r and "sparsity_outcome" not in r])
    write_refusals([r for r in rows if "refusal" in r], modes_by_case,
                   [r for r in rows if "replay_outcome" in r],
                   [r for r in rows if "sparsity_outcome" in r])
    write_jax_outcomes([r for r in rows if "jax_outcome" in r], compared)


def run(jax: bool = True, only: str | None = None) -> None:
    """Run the harness in recording mode (the JAX agreement too where JAX is installed,
    unless ``jax`` is false: then jax_outcomes.py is kept) and regenerate the tables;
    ``only``: run that mode's checks alone and keep the other modes' pins."""
    fd, path = tempfile.mkstemp(suffix=".jsonl", prefix="conformance-record-")
    os.close(fd)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, DUALREV_CONFORMANCE_RECORD=path)
    cmd = [sys.executable, "-m", "pytest", "tests/conformance", "-q", "-p", "no:cacheprovider",
           "-m", "jax or not jax" if jax and not only else "not jax", "-o", "addopts="]
    if only:
        cmd += ["-k", f"{only}::"]
    print("recording:", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=root, env=env, check=False)
    main([path], only)
    os.unlink(path)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        # --no-jax: the default harness only (minutes, not a quarter of an hour);
        # --only MODE: that mode's checks alone (e.g. --only replay), the other pins kept
        rest = sys.argv[2:]
        only = rest[rest.index("--only") + 1] if "--only" in rest else None
        run(jax="--no-jax" not in rest, only=only)
    else:
        main(sys.argv[1:] or ["/tmp/conformance-record.jsonl"])
