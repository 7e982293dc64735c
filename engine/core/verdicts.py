"""A run's verdict as people read it: the words for each warning code, and the short text the
Runs list and the status badge show. The verdict itself is computed by engine/ml/verdict.py and
stored as JSON on the run (runs.verdict); NULL means "no verdict" (a run from before verdicts
existed, or one that did not complete), which is never shown as a plain success.
"""

from __future__ import annotations

from typing import Any

# code → the few words a badge or a table cell has room for, most serious first: when a run
# has several warnings the badge names the first of these.
WARNING_LABELS: dict[str, str] = {
    "diverged": "training diverged",
    "leakage": "possible leakage",
    "target_looks_like_id": "target looks like an ID",
    "no_better_than_trivial": "no better than guessing",
    "too_few_rows_per_class": "too few rows per class",
    "classes_never_predicted": "classes never predicted",
    "overfitting": "overfitting",
}
NO_VERDICT = "no verdict"


def warnings_of(verdict: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The verdict's warnings, most serious first ([] for no verdict or none)."""
    if not isinstance(verdict, dict):
        return []
    found = [w for w in verdict.get("warnings") or [] if isinstance(w, dict)]
    order = list(WARNING_LABELS)
    return sorted(found, key=lambda w: order.index(w["code"]) if w.get("code") in order else 99)


def warning_label(code: str) -> str:
    return WARNING_LABELS.get(code, code.replace("_", " "))


def status_text(status: str, verdict: dict[str, Any] | None) -> str:
    """A completed run's status with what is wrong with it ("completed · training diverged"),
    or "completed · no verdict"; other statuses as they are."""
    if status != "completed":
        return status
    if not isinstance(verdict, dict):
        return f"completed · {NO_VERDICT}"
    found = warnings_of(verdict)
    if not found:
        return "completed"
    return f"completed · {warning_label(found[0]['code'])}"


def status_options() -> list[str]:
    """Every text `status_text` gives for a completed run (the Runs table colours each)."""
    return [
        "completed",
        f"completed · {NO_VERDICT}",
        *(f"completed · {label}" for label in WARNING_LABELS.values()),
    ]


def short_verdict(status: str, verdict: dict[str, Any] | None) -> str:
    """The verdict in a table cell: the one-line summary, or what is wrong, or "no verdict"."""
    if status != "completed":
        return ""
    if not isinstance(verdict, dict):
        return NO_VERDICT
    found = warnings_of(verdict)
    if found:
        return "⚠ " + ", ".join(warning_label(w["code"]) for w in found)
    return str(verdict.get("short") or verdict.get("summary") or "")
