"""Metric registry: look metrics up by name, list them, suggest close names."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Metric
from .errors import MetricUnavailableError, UnknownMetricError


@dataclass(frozen=True)
class MetricEntry:
    """One registered metric: how to build it and whether it can be built here."""

    name: str
    factory: Callable[..., Metric]
    description: str
    defaults: tuple[tuple[str, Any], ...] = ()
    # Returns None when available, else the reason it is not (shown to the user).
    unavailable_reason: Callable[[], str | None] = lambda: None


_ENTRIES: dict[str, MetricEntry] = {}
_ALIASES: dict[str, str] = {}


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


def register(
    name: str,
    factory: Callable[..., Metric],
    description: str,
    *,
    aliases: tuple[str, ...] = (),
    unavailable_reason: Callable[[], str | None] | None = None,
    **defaults: Any,
) -> None:
    """Register ``factory(**defaults, **options)`` under ``name`` (and ``aliases``)."""
    entry = MetricEntry(
        name, factory, description, tuple(defaults.items()), unavailable_reason or (lambda: None)
    )
    _ENTRIES[name] = entry
    for alias in (name, *aliases):
        _ALIASES[_key(alias)] = name


def get(name: str, **options: Any) -> Metric:
    """Build the metric registered as ``name`` (case, ``-`` and ``_`` are ignored).

    Raises:
        UnknownMetricError: no such metric; the error suggests close names.
        MetricUnavailableError: the metric needs something that is not installed.
    """
    canonical = _ALIASES.get(_key(name))
    if canonical is None:
        close = difflib.get_close_matches(_key(name), list(_ALIASES), n=3, cutoff=0.6)
        suggestions = list(dict.fromkeys(_ALIASES[c] for c in close))
        raise UnknownMetricError(name, suggestions, sorted(_ENTRIES))
    entry = _ENTRIES[canonical]
    reason = entry.unavailable_reason()
    if reason:
        raise MetricUnavailableError(f"metric {canonical!r} is not available", reason)
    return entry.factory(**{**dict(entry.defaults), **options})


def available() -> list[str]:
    """Names of the metrics that can be built in this environment, sorted."""
    return sorted(n for n, e in _ENTRIES.items() if not e.unavailable_reason())


def entries() -> list[MetricEntry]:
    """Every registered metric, available or not (for a settings screen)."""
    return [_ENTRIES[n] for n in sorted(_ENTRIES)]
