"""Numbers and durations for people: the pages, the CLI and the HTML report show them alike."""

from __future__ import annotations

import math

from engine.core.metric_info import is_fraction


def format_duration(seconds: float | None) -> str:
    """12s, 3m 05s, 2h 07m; — when unknown."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_value(value: float | None) -> str:
    """A metric for a card: short enough for six cards in a row, precise where it matters."""
    if value is None:
        return "—"
    if not math.isfinite(value):  # NaN (R² on a single test row), or a diverged loss
        return "n/a"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 1 or size == 0:
        return f"{value:.4g}"
    if size < 1e-4:
        return f"{value:.2e}"
    return f"{value:.4f}".rstrip("0")


def format_metric(key: str, value: float | None) -> str:
    """A metric as a reader takes it in: a share as a percentage ("86.4 %"), else format_value."""
    if value is not None and math.isfinite(value) and is_fraction(key):
        return f"{value * 100:.1f} %"
    return format_value(value)


def format_setting(value: object) -> str:
    """A run setting for a table: floats to 3 significant digits (a sampled learning rate is
    0.00123, not 0.0012345678901234), everything else as it is."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.3g}"
    return str(value)


def format_probability(p: float | None) -> str:
    """A model's probability for people: "99.7 %", "3.4 %", "< 0.1 %", "> 99.9 %".

    One decimal is as much as a softmax output means; beyond it the ends say "less than" or
    "more than" rather than "100 %" (no model is that sure) or "3.34e-15".
    """
    if p is None or not math.isfinite(p):
        return "—"
    if p < 0.001:
        return "< 0.1 %"
    if p > 0.999:
        return "> 99.9 %"
    return f"{p * 100:.1f} %"
