"""Exact match and token F1 for extractive / short-answer QA.

The style is decided once, from the language given at construction, never per example:

- Chinese, Japanese and Thai-family languages: the CMRC 2018 evaluation script
  (:mod:`evaluators.cmrc`): its punctuation list, character segmentation, LCS-based F1;
- every other language, and None: the official SQuAD v1.1 script: lower-case, drop ASCII
  punctuation, drop the articles a/an/the, collapse whitespace; F1 is the bag-of-tokens
  overlap.

Both take the maximum over gold answers; scores are reported ×100. SQuAD-style settings
refuse references written without spaces (the metric would be meaningless); a hypothesis
in such a script is scored and counted in a ``hypothesis_script`` warning.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

from .base import Metric, MetricWarning, Number, Row
from .cmrc import cmrc_exact_match, cmrc_f1
from .errors import UnsupportedScriptError
from .language import language_family, validate_language
from .registry import register
from .scripts import is_unsegmented

_SQUAD_PUNCT = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_CMRC_FAMILIES = ("zh", "ja", "th")


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 ``normalize_answer``: lower, remove punctuation, articles, extra spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCT)
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


def squad_f1(prediction: str, gold: str) -> float:
    """SQuAD v1.1 ``f1_score`` for one gold answer."""
    pred_tokens, gold_tokens = squad_normalize(prediction).split(), squad_normalize(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


class _QAMetric(Metric):
    """Shared language handling.

    Args:
        language: the run's language: ``zh``/``ja``/``th``-family codes select the CMRC 2018
            style, anything else (or None) the SQuAD v1.1 style.
    """

    def __init__(self, *, language: str | None = None, n_bootstrap: int = 1000, seed: int = 12345) -> None:
        self.language = validate_language(language) if language is not None else None
        family = language_family(self.language)
        self.family = family if family in _CMRC_FAMILIES else None
        self.style = "cmrc" if self.family else "squad"
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def _input_warnings(self, hypothesis: Any, references: tuple[str, ...]) -> list[MetricWarning]:
        if self.style == "cmrc":
            return []
        if any(is_unsegmented(r) for r in references):
            raise UnsupportedScriptError(
                f"{self.name} with SQuAD-style whitespace tokens (language={self.language!r}) cannot score "
                "references written without spaces (Chinese, Japanese, Thai)",
                "declare the language (language='zh' selects the CMRC 2018 style)",
            )
        if is_unsegmented(hypothesis):
            return [MetricWarning(
                "hypothesis_script",
                "hypothesis written without spaces between words scored with SQuAD-style whitespace tokens",
            )]
        return []

    def _score_from_sums(self, sums: list[Number], n: int) -> float:
        return 100 * sums[0] / n

    def _signature(self) -> str:
        if self.style == "squad":
            norm = "norm:squad(lower,punct,articles,ws)|tok:whitespace"
        else:
            norm = ("norm:cmrc2018(lower,strip,cmrc-punct)|tok:cmrc2018-mixed(nltk-word,no-sent-split)"
                    f"|lang:{self.family}")
        return f"{norm}|refs:max|scale:100{self._extra_signature()}"

    def _extra_signature(self) -> str:
        return ""


class ExactMatch(_QAMetric):
    """Exact match after normalisation, max over gold answers (0 or 100 per example)."""

    name = "EM"

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        if self.style == "squad":
            pred = squad_normalize(hypothesis)
            return (int(any(pred == squad_normalize(r) for r in references)),), {}
        return (int(any(cmrc_exact_match(hypothesis, r) for r in references)),), {}


class TokenF1(_QAMetric):
    """Token F1, max over gold answers (SQuAD bag of tokens or CMRC longest common substring)."""

    name = "F1"

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        if self.style == "squad":
            return (max(squad_f1(hypothesis, r) for r in references),), {}
        return (max(cmrc_f1(hypothesis, r, self.family) for r in references),), {}

    def _extra_signature(self) -> str:
        return "|f1:squad-bag" if self.style == "squad" else "|f1:cmrc-lcs"


register("exact_match", ExactMatch, "Exact match (SQuAD v1.1 / CMRC 2018 normalisation)",
         aliases=("em", "exact"), takes_language=True)
register("f1", TokenF1, "Token F1 (SQuAD v1.1 bag of tokens / CMRC 2018 LCS)",
         aliases=("token_f1", "qa_f1"), takes_language=True)
