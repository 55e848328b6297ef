"""Perplexity and bits per byte from the engine's log-likelihood results.

Each example is the engine's scoring of one text: summed negative log-likelihood (nats)
and the counts it is normalised by. Corpus values pool the sums, the standard way:

- token perplexity  = exp(Σ nll / Σ tokens)
- word perplexity   = exp(Σ nll / Σ words), words counted as lm-evaluation-harness does
  (:func:`count_words`)
- bits per byte     = Σ nll / (Σ UTF-8 bytes · ln 2)

The window/stride method (how long texts were cut into model-sized windows) changes the
numbers, so it goes in the signature, and results from different methods are refused.
"""

from __future__ import annotations

import math
import re
from typing import Any, Protocol, runtime_checkable

from .base import Metric, MetricWarning, Number, Row, safe_exp
from .errors import InconsistentInputError, InvalidOptionError
from .registry import register


_WHITESPACE_RE = re.compile(r"\s+")
WORD_COUNT = r"lm-eval(re.split(\s+))"  # goes in the signature


def count_words(text: str) -> int:
    r"""Words of ``text`` for word perplexity, counted exactly as lm-evaluation-harness
    does (``len(re.split(r"\s+", text))``, its wikitext ``process_results``).

    Unlike ``len(text.split())``, leading or trailing whitespace adds an (empty) word and
    an empty text counts as one word.
    """
    return len(_WHITESPACE_RE.split(text))


@runtime_checkable
class LogLikelihoodStats(Protocol):
    """What a perplexity metric needs from one scored text (the engine's result type
    satisfies it)."""

    @property
    def nll(self) -> float:
        """Summed negative log-likelihood of the scored tokens, in nats."""

    @property
    def num_tokens(self) -> int:
        """Number of scored tokens."""

    @property
    def num_words(self) -> int:
        """Number of words of the text (:func:`count_words`)."""

    @property
    def num_bytes(self) -> int:
        """Length of the text in UTF-8 bytes."""

    @property
    def method(self) -> str:
        """How the text was scored (window length, stride, ...)."""


_UNITS = {
    "token": ("PPL", "token perplexity"),
    "word": ("word-PPL", "word perplexity"),
    "byte": ("BPB", "bits per byte"),
}


def _values(nll: Number, tokens: Number, words: Number, nbytes: Number) -> dict[str, float]:
    return {
        "token_perplexity": safe_exp(nll / tokens) if tokens else math.nan,
        "word_perplexity": safe_exp(nll / words) if words else math.nan,
        "bits_per_byte": nll / (nbytes * math.log(2)) if nbytes else math.nan,
        "nll": float(nll),
        "num_tokens": int(tokens),
        "num_words": int(words),
        "num_bytes": int(nbytes),
    }


class Perplexity(Metric):
    """Token perplexity, word perplexity or bits per byte (``unit``), lower is better.

    ``add(result)`` / ``score_example(result)`` take an object with the fields of
    :class:`LogLikelihoodStats` in place of a hypothesis; there are no references. Every
    result carries all three values in ``details``.
    """

    higher_is_better = False

    def __init__(self, unit: str = "token", *, n_bootstrap: int = 1000, seed: int = 12345) -> None:
        if unit not in _UNITS:
            raise InvalidOptionError(f"unknown perplexity unit {unit!r}", "use " + ", ".join(_UNITS))
        self.unit = unit
        self.name = _UNITS[unit][0]
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def reset(self) -> None:
        super().reset()
        self._method: str | None = None

    def _validate(self, hypothesis: Any, references: Any) -> tuple[tuple[str, ...], list[MetricWarning]]:
        if not isinstance(hypothesis, LogLikelihoodStats):
            raise InvalidOptionError(
                f"{self.name} scores log-likelihood results, got {type(hypothesis).__name__}",
                "pass the engine's result (fields nll, num_tokens, num_words, num_bytes, method)",
            )
        if references not in ((), None):
            raise InvalidOptionError(f"{self.name} takes no references")
        nll = hypothesis.nll
        if not math.isfinite(nll) or nll < 0:
            raise InvalidOptionError(f"invalid negative log-likelihood {nll!r}", "it must be a finite number >= 0")
        for field in ("num_tokens", "num_words", "num_bytes"):
            if getattr(hypothesis, field) < 0:
                raise InvalidOptionError(f"{field} must be >= 0, got {getattr(hypothesis, field)}")
        if self._method is not None and hypothesis.method != self._method:
            raise InconsistentInputError(
                f"cannot pool perplexities computed with different methods: "
                f"{self._method!r} and {hypothesis.method!r}",
                "score every text with the same window and stride",
            )
        warnings = []
        if hypothesis.num_tokens == 0:
            warnings.append(MetricWarning("no_tokens", "no scored tokens (text too short?)"))
        return (), warnings

    def _row(self, hypothesis: Any, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        h = hypothesis
        row = (float(h.nll), int(h.num_tokens), int(h.num_words), int(h.num_bytes))
        return row, _values(*row)

    def _accumulate(self, hypothesis: Any, references: tuple[str, ...], row: Row, warnings: list[MetricWarning]) -> None:
        super()._accumulate(hypothesis, references, row, warnings)
        self._method = hypothesis.method

    def _score_from_sums(self, sums: list[Number], n: int) -> float:
        nll, tokens, words, nbytes = sums
        if self.unit == "token":
            return safe_exp(nll / tokens) if tokens else math.nan
        if self.unit == "word":
            return safe_exp(nll / words) if words else math.nan
        return nll / (nbytes * math.log(2)) if nbytes else math.nan

    def _details_from_sums(self, sums: list[Number], n: int) -> dict[str, Any]:
        return _values(*sums)

    def _signature(self) -> str:
        return f"ppl:{self.unit}|nll:nats|agg:pooled|words:{WORD_COUNT}|method:{self._method or 'pending'}"


register("perplexity", Perplexity, "Token perplexity, exp(Σnll/Σtokens)", aliases=("ppl", "token_perplexity"),
         input="likelihood")
register("word_perplexity", Perplexity, "Word perplexity, exp(Σnll/Σwords)", aliases=("word_ppl",),
         input="likelihood", unit="word")
register("bits_per_byte", Perplexity, "Bits per byte, Σnll/(Σbytes·ln2)", aliases=("bpb",),
         input="likelihood", unit="byte")
