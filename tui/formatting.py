"""How numbers become text in every view of the app: durations, counts, parameter counts,
scores and perplexities. One place, so the same number reads the same everywhere."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """``0.42 s`` under ten seconds, ``12 s`` under a minute, ``3:05`` beyond (``—`` when unknown)."""
    if seconds is None or math.isnan(seconds) or math.isinf(seconds):
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return (f"{hours}:" if hours else "") + (f"{rest // 60:02d}" if hours else f"{rest // 60}") + f":{rest % 60:02d}"


def format_count(count: int) -> str:
    """An integer with thousands separators: ``12,345``."""
    return f"{count:,}"


def format_parameters(count: int | None) -> str:
    """A parameter count such as ``1.7B``, ``135M``, ``0.2M`` or ``860K``: never ``0M``."""
    if not count:
        return "—" if count is None else "0"
    for floor, scale, unit in ((1e9, 1e9, "B"), (1e5, 1e6, "M"), (1e3, 1e3, "K")):
        if count >= floor:
            value = count / scale
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


def format_score(value: float | None) -> str:
    """How every score is shown in the UI (two decimals; ``—`` for none, ``nan`` for NaN)."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "nan"
    return f"{value:.2f}"


def format_perplexity(value: float | None) -> str:
    """A perplexity with about four significant digits: ``12.34``, ``5,483``, ``5.48e+10``."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "∞"
    if value >= 1e6:
        return f"{value:.2e}"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def format_rate(per_second: float | None, unit: str = "ex") -> str:
    """A throughput such as ``2.35 ex/s`` (``—`` before the first measurement)."""
    if not per_second:
        return "—"
    return f"{per_second:.2f} {unit}/s"
