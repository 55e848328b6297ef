"""Metric registry: one factory (:func:`build`) that looks a metric up by name, checks its
options and language, and builds it; listings; did-you-mean on unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import Metric
from .errors import MetricUnavailableError, UnknownMetricError
from .language import validate_language
from .options import COMMON_OPTIONS, Option, check_options

INPUTS = ("text", "likelihood", "choices")


@dataclass(frozen=True)
class MetricEntry:
    """One registered metric and the facts a caller needs before building it.

    ``input`` is ``"text"`` (scores a hypothesis against references), ``"likelihood"``
    (scores the engine's log-likelihood result for a text, no references) or ``"choices"``
    (scores a :class:`~evaluators.choice.ChoiceOutcome`: option log-likelihoods and the gold one).
    ``takes_language`` says whether the run's language changes how it scores (the
    tokenizer, the QA normalisation); ``options`` are the keyword options :func:`build`
    accepts for it besides ``language`` and ``embedder``.
    """

    name: str
    factory: Callable[..., Metric]
    description: str
    input: str = "text"
    takes_language: bool = False
    takes_embedder: bool = False
    options: Mapping[str, Option] = field(default_factory=dict)
    defaults: tuple[tuple[str, Any], ...] = ()
    aliases: tuple[str, ...] = ()
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
    input: str = "text",  # noqa: A002 - the field's name in scenario terms
    takes_language: bool = False,
    takes_embedder: bool = False,
    options: Mapping[str, Option] | None = None,
    aliases: tuple[str, ...] = (),
    unavailable_reason: Callable[[], str | None] | None = None,
    **defaults: Any,
) -> None:
    """Register ``factory(**defaults, **options)`` under ``name`` (and ``aliases``)."""
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, got {input!r}")
    entry = MetricEntry(
        name, factory, description, input, takes_language, takes_embedder,
        {**COMMON_OPTIONS, **(options or {})}, tuple(defaults.items()), aliases,
        unavailable_reason or (lambda: None),
    )
    _ENTRIES[name] = entry
    for alias in (name, *aliases):
        _ALIASES[_key(alias)] = name


def entry(name: str) -> MetricEntry:
    """The registered metric called ``name`` (case, ``-``, ``_`` and spaces are ignored).

    Raises:
        UnknownMetricError: no such metric; the error suggests close names.
    """
    canonical = _ALIASES.get(_key(name)) if isinstance(name, str) else None
    if canonical is None:
        close = difflib.get_close_matches(_key(str(name)), list(_ALIASES), n=3, cutoff=0.6)
        suggestions = list(dict.fromkeys(_ALIASES[c] for c in close))
        raise UnknownMetricError(str(name), suggestions, sorted(_ENTRIES))
    return _ENTRIES[canonical]


def build(name: str, *, language: str | None = None, embedder: Callable[..., Any] | None = None,
          **options: Any) -> Metric:
    """Build the metric registered as ``name``: the one way to make a metric from a name.

    Args:
        name: a registered name or alias (``bleu``, ``ROUGE-L``, ``em``...).
        language: the run's language (see :func:`evaluators.resolve_language`); validated
            for every metric, passed only to metrics whose entry ``takes_language``.
        embedder: text -> vectors, passed only to metrics that take one
            (semantic similarity); others ignore it.
        **options: the metric's own options (``entry(name).options``), type-checked here.

    Raises:
        UnknownMetricError: no such metric; the error suggests close names.
        InvalidOptionError: an option the metric does not take, a value of the wrong type
            or range, or an unknown language code.
        MetricUnavailableError: the metric needs something that is not installed.
        UnsupportedScriptError: the settings cannot score the declared language at all.
    """
    found = entry(name)
    check_options(found.name, found.options, options)
    kwargs: dict[str, Any] = {**dict(found.defaults), **options}
    if language is not None:
        language = validate_language(language)
        if found.takes_language:
            kwargs["language"] = language
    if embedder is not None and found.takes_embedder:
        kwargs["embedder"] = embedder
    reason = found.unavailable_reason()
    if reason:
        raise MetricUnavailableError(f"metric {found.name!r} is not available", reason)
    return found.factory(**kwargs)


def get(name: str, **options: Any) -> Metric:
    """Same as :func:`build` (kept for existing callers)."""
    return build(name, **options)


def available() -> list[str]:
    """Names of the metrics that can be built in this environment, sorted."""
    return sorted(n for n, e in _ENTRIES.items() if not e.unavailable_reason())


def entries() -> list[MetricEntry]:
    """Every registered metric, available or not (for a settings screen)."""
    return [_ENTRIES[n] for n in sorted(_ENTRIES)]
