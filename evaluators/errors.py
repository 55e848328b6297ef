"""Errors raised by evaluators.

Every error carries a one-line ``message`` (what went wrong) and a ``hint`` (what to do
about it), so a user interface can show both without parsing text.
"""

from __future__ import annotations


class EvaluatorError(Exception):
    """Base class of every error raised by :mod:`evaluators`."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message if not hint else f"{message} ({hint})")
        self.message = message
        self.hint = hint


class UnknownMetricError(EvaluatorError, KeyError):
    """Raised by :func:`evaluators.get` for a name that is not registered."""

    def __init__(self, name: str, suggestions: list[str], known: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        if suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        else:
            hint = "known metrics: " + ", ".join(known)
        super().__init__(f"unknown metric {name!r}", hint)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return f"{self.message} ({self.hint})"


class MetricUnavailableError(EvaluatorError):
    """A registered metric whose optional dependency is not installed."""


class InvalidOptionError(EvaluatorError, ValueError):
    """An option passed to a metric is not one it understands or has a bad value."""


class CountMismatchError(EvaluatorError, ValueError):
    """The numbers of hypotheses and references (or of two systems' outputs) differ."""

    def __init__(self, what_a: str, count_a: int, what_b: str, count_b: int) -> None:
        self.counts = (count_a, count_b)
        super().__init__(
            f"{count_a} {what_a} but {count_b} {what_b}",
            "every example needs exactly one entry on each side; check for dropped or extra lines",
        )


class UnsupportedScriptError(EvaluatorError, ValueError):
    """A metric was asked to score text in a writing system its settings cannot handle.

    Raised instead of silently returning a near-zero score (for example ROUGE with an
    ASCII-only tokenizer on Chinese, or BLEU's 13a tokenizer on unsegmented Chinese).
    """


class InconsistentInputError(EvaluatorError, ValueError):
    """Inputs that cannot be aggregated together (e.g. perplexities from different methods)."""


class EmptyCorpusError(EvaluatorError):
    """A corpus score was asked for before any example was added."""


class IncomparableSystemsError(EvaluatorError, ValueError):
    """Two systems cannot be compared: different metrics, settings, or examples."""
