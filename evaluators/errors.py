"""Errors raised by evaluators, and the root of every error lmscope raises on purpose.

Every error carries a one-line ``message`` (what went wrong) and a ``hint`` (what to do
about it), so a user interface can show both without parsing text. :class:`LmscopeError`
lives here, not in the engine, because evaluators may not import the engine while the
engine may import evaluators; ``engine.LmscopeError`` is this same class.
"""

from __future__ import annotations


class LmscopeError(Exception):
    """Root of every error lmscope raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class EvaluatorError(LmscopeError):
    """Base class of every error raised by :mod:`evaluators`."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint)


class UnknownMetricError(EvaluatorError, KeyError):
    """Raised by :func:`evaluators.build` for a name that is not registered."""

    def __init__(self, name: str, suggestions: list[str], known: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        if suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        else:
            hint = "known metrics: " + ", ".join(known)
        super().__init__(f"unknown metric {name!r}", hint)

    def __str__(self) -> str:  # KeyError's own __str__ would repr() the message
        return LmscopeError.__str__(self)


class MetricUnavailableError(EvaluatorError):
    """A metric that cannot compute here: an optional dependency (a tokenizer, an
    embedding model) is not installed or was not given."""


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
    """References written in a script the metric's settings cannot score, or settings that
    cannot score the declared language at all.

    Raised instead of silently returning a near-zero score (for example ROUGE with an
    ASCII-only tokenizer on Chinese references, or BLEU's 13a tokenizer on unsegmented
    Chinese references). A *hypothesis* in such a script is never an error: it is scored
    and counted in a warning.
    """


class InconsistentInputError(EvaluatorError, ValueError):
    """Inputs that cannot be aggregated together (e.g. perplexities from different methods)."""


class EmptyCorpusError(EvaluatorError):
    """A corpus score was asked for before any example was added."""


class IncomparableSystemsError(EvaluatorError, ValueError):
    """Two systems cannot be compared: different metrics, settings, or examples."""
