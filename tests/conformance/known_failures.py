"""Cases the harness fails on today: "mode::case id" -> defect class and short reason.

Each becomes ``xfail(strict=True)``: when a fix lands the case XPASSes, the suite fails,
and the line is to be deleted. Regenerate with ``python -m tests.conformance.record``.
"""

KNOWN_FAILURES: dict[str, str] = {}
