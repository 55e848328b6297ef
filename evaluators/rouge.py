"""ROUGE-1/2/L/Lsum, computed by Google's rouge-score package.

The per-example score is rouge-score's (max F-measure over references, as its
``score_multi`` does); the corpus score is the mean over examples of precision, recall
and F-measure, reported ×100. rouge-score's default tokenizer deletes non-ASCII
characters, so by default a :class:`~evaluators.language.UnicodeTokenizer` is passed
instead: identical tokens on ASCII text, and CJK characters kept as tokens.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from rouge_score import rouge_scorer, tokenizers

from .base import Metric, MetricWarning, Number, Row
from .errors import InvalidOptionError, UnsupportedScriptError
from .language import UnicodeTokenizer, split_sentences
from .registry import register

_VARIANTS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}
_TOKENIZERS = ("unicode", "rouge-score")
_ROUGE_VERSION = version("rouge-score")


class Rouge(Metric):
    """One ROUGE variant.

    Args:
        variant: ``rouge1``, ``rouge2``, ``rougeL`` or ``rougeLsum``.
        use_stemmer: Porter stemming of tokens longer than 3 characters (as ROUGE-1.5.5 -m).
        tokenizer: ``"unicode"`` (default; keeps every script) or ``"rouge-score"`` (its
            ASCII-only default tokenizer; refuses text it would delete entirely).
        split_sentences: for ROUGE-Lsum, ``"newline"`` (rouge-score's convention: one
            sentence per line) or ``"auto"`` (newlines when present, otherwise split after
            sentence punctuation, with a warning).
    """

    def __init__(
        self,
        variant: str = "rougeL",
        *,
        use_stemmer: bool = False,
        tokenizer: str = "unicode",
        split_sentences: str = "auto",
        n_bootstrap: int = 1000,
        seed: int = 12345,
    ) -> None:
        if variant not in _VARIANTS:
            raise InvalidOptionError(f"unknown ROUGE variant {variant!r}", "use " + ", ".join(_VARIANTS))
        if tokenizer not in _TOKENIZERS:
            raise InvalidOptionError(f"unknown ROUGE tokenizer {tokenizer!r}", "use " + " or ".join(_TOKENIZERS))
        if split_sentences not in ("auto", "newline"):
            raise InvalidOptionError(f"unknown split_sentences {split_sentences!r}", "use 'auto' or 'newline'")
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

    def _prepare_lsum(self, text: str, warnings: list[MetricWarning]) -> str:
        if "\n" in text or not text.strip():
            return text
        sentences = split_sentences(text) if self.split_mode == "auto" else [text]
        how = (f"split into {len(sentences)} sentence(s) on punctuation" if self.split_mode == "auto"
               else "treated as one sentence")
        warnings.append(MetricWarning("lsum_no_newlines", f"ROUGE-Lsum on text without sentence breaks: {how}"))
        return "\n".join(sentences)

    def _check_script(self, text: str) -> None:
        if self.tokenizer_name == "rouge-score" and text.strip() and not self._tokenizer.tokenize(text):
            if any(ch.isalnum() for ch in text):
                raise UnsupportedScriptError(
                    "rouge-score's default tokenizer deletes every character of this text "
                    "(it keeps only a-z and 0-9), so ROUGE would be 0",
                    "use tokenizer='unicode' (the default), which keeps every script",
                )

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        self._check_script(hypothesis)
        for ref in references:
            self._check_script(ref)
        self._lsum_warnings: list[MetricWarning] = []
        if self.variant == "rougeLsum":
            hypothesis = self._prepare_lsum(hypothesis, self._lsum_warnings)
            references = tuple(self._prepare_lsum(r, self._lsum_warnings) for r in references)
        if len(references) == 1:
            s = self._scorer.score(references[0], hypothesis)[self.variant]
        else:
            s = self._scorer.score_multi(list(references), hypothesis)[self.variant]
        row = (float(s.precision), float(s.recall), float(s.fmeasure))
        return row, {"precision": 100 * row[0], "recall": 100 * row[1], "fmeasure": 100 * row[2]}

    def _row_warnings(self, hypothesis: Any, references: tuple[str, ...], row: Row) -> list[MetricWarning]:
        # One warning per example is enough even if hypothesis and references all lack breaks.
        return self._lsum_warnings[:1]

    def _score_from_sums(self, sums: list[Number], n: int) -> float:
        return 100 * sums[2] / n

    def _details_from_sums(self, sums: list[Number], n: int) -> dict[str, Any]:
        return {"precision": 100 * sums[0] / n, "recall": 100 * sums[1] / n, "fmeasure": 100 * sums[2] / n}

    def _signature(self) -> str:
        parts = [f"rouge:{self.variant}", f"tok:{self.tokenizer_name}", f"stem:{'yes' if self.use_stemmer else 'no'}"]
        if self.variant == "rougeLsum":
            parts.append("split:" + ("newline" if self.split_mode == "newline" else "newline-else-punct"))
        parts += ["refs:max-f", "agg:mean", "scale:100", f"version:rouge-score-{_ROUGE_VERSION}"]
        return "|".join(parts)


for _variant, _label in _VARIANTS.items():
    register(_variant, Rouge, f"{_label} (rouge-score), mean F-measure ×100", variant=_variant)
