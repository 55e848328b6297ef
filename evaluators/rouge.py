"""ROUGE-1/2/L/Lsum, computed by Google's rouge-score package.

The per-example score is rouge-score's (max F-measure over references, as its
``score_multi`` does); the corpus score is the mean over examples of precision, recall
and F-measure, reported ×100. rouge-score's default tokenizer deletes non-ASCII
characters, so by default a :class:`~evaluators.unicode_tokenizer.UnicodeTokenizer` is
passed instead: identical tokens on ASCII text, and CJK characters kept as tokens.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from rouge_score import rouge_scorer, tokenizers

from .base import Metric, MetricWarning, Number, Row
from .errors import InvalidOptionError, UnsupportedScriptError
from .options import choice, flag
from .registry import register
from .sentences import split_sentences
from .unicode_tokenizer import UnicodeTokenizer

_VARIANTS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}
_TOKENIZERS = ("unicode", "rouge-score")
_SPLIT_MODES = ("newline", "punctuation")
_ROUGE_VERSION = version("rouge-score")


class Rouge(Metric):
    """One ROUGE variant.

    Args:
        variant: ``rouge1``, ``rouge2``, ``rougeL`` or ``rougeLsum``.
        use_stemmer: Porter stemming of tokens longer than 3 characters (as ROUGE-1.5.5 -m).
        tokenizer: ``"unicode"`` (default; keeps every script) or ``"rouge-score"`` (its
            ASCII-only default tokenizer; refuses references it would delete entirely).
        split_sentences: ROUGE-Lsum's sentences. ``"newline"`` (default): one sentence per
            line, rouge-score's convention; text without newlines is one sentence, so the
            score equals rouge-score's. ``"punctuation"``: each line is also split after
            sentence punctuation (abbreviation-aware, see :mod:`evaluators.sentences`).
    """

    def __init__(
        self,
        variant: str = "rougeL",
        *,
        use_stemmer: bool = False,
        tokenizer: str = "unicode",
        split_sentences: str = "newline",
        n_bootstrap: int = 1000,
        seed: int = 12345,
    ) -> None:
        if variant not in _VARIANTS:
            raise InvalidOptionError(f"unknown ROUGE variant {variant!r}", "use " + ", ".join(_VARIANTS))
        if tokenizer not in _TOKENIZERS:
            raise InvalidOptionError(f"unknown ROUGE tokenizer {tokenizer!r}", "use " + " or ".join(_TOKENIZERS))
        if split_sentences not in _SPLIT_MODES:
            raise InvalidOptionError(f"unknown split_sentences {split_sentences!r}", "use " + " or ".join(_SPLIT_MODES))
        self.variant = variant
        self.name = _VARIANTS[variant]
        self.use_stemmer = use_stemmer
        self.tokenizer_name = tokenizer
        self.split_mode = split_sentences
        self._tokenizer = (
            UnicodeTokenizer(use_stemmer) if tokenizer == "unicode" else tokenizers.DefaultTokenizer(use_stemmer)
        )
        self._scorer = rouge_scorer.RougeScorer([variant], tokenizer=self._tokenizer)
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def _deleted_entirely(self, text: str) -> bool:
        return (self.tokenizer_name == "rouge-score" and any(ch.isalnum() for ch in text)
                and not self._tokenizer.tokenize(text))

    def _input_warnings(self, hypothesis: Any, references: tuple[str, ...]) -> list[MetricWarning]:
        if any(self._deleted_entirely(r) for r in references):
            raise UnsupportedScriptError(
                "rouge-score's default tokenizer deletes every character of this reference "
                "(it keeps only a-z and 0-9), so ROUGE would be 0",
                "use tokenizer='unicode' (the default), which keeps every script",
            )
        warnings = []
        if self._deleted_entirely(hypothesis):
            warnings.append(MetricWarning(
                "hypothesis_script",
                "rouge-score's default tokenizer deletes every character of the hypothesis (scored as empty)",
            ))
        if self.variant == "rougeLsum" and self.split_mode == "newline":
            if any("\n" not in t and len(split_sentences(t)) > 1 for t in (hypothesis, *references)):
                warnings.append(MetricWarning(
                    "lsum_no_newlines",
                    "ROUGE-Lsum on several sentences without newlines: scored as one sentence, as rouge-score "
                    "does (split_sentences='punctuation' splits them)",
                ))
        return warnings

    def _sentences(self, text: str) -> str:
        if self.variant != "rougeLsum" or self.split_mode == "newline":
            return text
        return "\n".join(s for line in text.split("\n") for s in split_sentences(line))

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        hypothesis = self._sentences(hypothesis)
        references = tuple(self._sentences(r) for r in references)
        if len(references) == 1:
            s = self._scorer.score(references[0], hypothesis)[self.variant]
        else:
            s = self._scorer.score_multi(list(references), hypothesis)[self.variant]
        row = (float(s.precision), float(s.recall), float(s.fmeasure))
        return row, {"precision": 100 * row[0], "recall": 100 * row[1], "fmeasure": 100 * row[2]}

    def _score_from_sums(self, sums: list[Number], n: int) -> float:
        return 100 * sums[2] / n

    def _details_from_sums(self, sums: list[Number], n: int) -> dict[str, Any]:
        return {"precision": 100 * sums[0] / n, "recall": 100 * sums[1] / n, "fmeasure": 100 * sums[2] / n}

    def _signature(self) -> str:
        parts = [f"rouge:{self.variant}", f"tok:{self.tokenizer_name}", f"stem:{'yes' if self.use_stemmer else 'no'}"]
        if self.variant == "rougeLsum":
            parts.append("split:" + ("newline" if self.split_mode == "newline" else "newline+punctuation"))
        parts += ["refs:max-f", "agg:mean", "scale:100", f"version:rouge-score-{_ROUGE_VERSION}"]
        return "|".join(parts)


_OPTIONS = {"use_stemmer": flag(), "tokenizer": choice(*_TOKENIZERS)}
for _variant, _label in _VARIANTS.items():
    register(_variant, Rouge, f"{_label} (rouge-score), mean F-measure ×100",
             options={**_OPTIONS, "split_sentences": choice(*_SPLIT_MODES)} if _variant == "rougeLsum" else _OPTIONS,
             variant=_variant)
