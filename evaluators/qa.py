"""Exact match and token F1 for extractive / short-answer QA.

English and other space-delimited text follow the official SQuAD v1.1 evaluation script:
lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace; F1 is
the bag-of-tokens overlap. Chinese (and other text written without spaces) follows the
CMRC 2018 script: lower-case, drop punctuation, segment into single characters (words
for embedded Latin runs), F1 from the longest common substring of the segments. Both
take the maximum over gold answers; scores are reported ×100.
"""

from __future__ import annotations

import difflib
import re
import string
import unicodedata
from collections import Counter
from typing import Any

from .base import Metric, Number, Row
from .errors import InvalidOptionError, UnsupportedScriptError
from .language import UNSEGMENTED_CHARS, is_unsegmented, language_family
from .registry import register

_SQUAD_PUNCT = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
# CMRC 2018's own punctuation list, plus ASCII punctuation and every Unicode P* character.
_CMRC_PUNCT = frozenset(
    "-:_*^/\\~`+=，。：？！“”；’《》……·、「」（）－～『』"
) | _SQUAD_PUNCT
_SEGMENT_RE = re.compile(f"[{UNSEGMENTED_CHARS}]|[^\\s{UNSEGMENTED_CHARS}]+")


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 ``normalize_answer``: lower, remove punctuation, articles, extra spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCT)
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


def _is_punct(ch: str) -> bool:
    return ch in _CMRC_PUNCT or unicodedata.category(ch).startswith("P")


def cmrc_normalize(text: str) -> str:
    """CMRC 2018 ``remove_punctuation``: lower, strip, remove punctuation."""
    return "".join(ch for ch in text.lower().strip() if not _is_punct(ch))


def cmrc_segments(text: str) -> list[str]:
    """CMRC 2018 ``mixed_segmentation`` without punctuation: one segment per Han/kana/Thai
    character, whitespace-separated words for other runs (CMRC uses nltk's word
    tokenizer there; punctuation is already removed, so splitting on spaces is close)."""
    return _SEGMENT_RE.findall(cmrc_normalize(text))


def squad_f1(prediction: str, gold: str) -> float:
    """SQuAD v1.1 ``f1_score`` for one gold answer."""
    pred_tokens, gold_tokens = squad_normalize(prediction).split(), squad_normalize(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def cmrc_f1(prediction: str, gold: str) -> float:
    """CMRC 2018 ``calc_f1_score`` for one gold answer (longest common substring)."""
    pred, ref = cmrc_segments(prediction), cmrc_segments(gold)
    if not pred or not ref:
        return 0.0
    match = difflib.SequenceMatcher(None, ref, pred, autojunk=False).find_longest_match(0, len(ref), 0, len(pred))
    if match.size == 0:
        return 0.0
    precision, recall = match.size / len(pred), match.size / len(ref)
    return 2 * precision * recall / (precision + recall)


class _QAMetric(Metric):
    """Shared language handling. ``language``: ``"auto"`` (default; CMRC-style for an
    example whose text is mostly Chinese/Japanese/Thai, SQuAD-style otherwise), ``"en"`` (or
    any space-delimited language: SQuAD-style always) or ``"zh"`` (CMRC-style always)."""

    def __init__(self, *, language: str = "auto", n_bootstrap: int = 1000, seed: int = 12345) -> None:
        if not isinstance(language, str) or not language:
            raise InvalidOptionError(f"invalid language {language!r}", "use 'auto', 'en', 'zh', ...")
        self.language = language
        self._fixed = None if language == "auto" else ("cmrc" if language_family(language) else "squad")
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def _style(self, hypothesis: str, references: tuple[str, ...]) -> str:
        unsegmented = any(is_unsegmented(t) for t in (*references, hypothesis))
        if self._fixed is None:
            return "cmrc" if unsegmented else "squad"
        if self._fixed == "squad" and unsegmented:
            raise UnsupportedScriptError(
                f"{self.name} with language={self.language!r} uses whitespace tokens, which cannot "
                "score text written without spaces (Chinese, Japanese, Thai)",
                "use language='auto' or language='zh' (CMRC-style character segmentation)",
            )
        return self._fixed

    def _score_from_sums(self, sums: list[Number], n: int) -> float:
        return 100 * sums[0] / n

    def _signature(self) -> str:
        if self._fixed == "squad":
            norm = "norm:squad(lower,punct,articles,ws)|tok:whitespace"
        elif self._fixed == "cmrc":
            norm = "norm:cmrc(lower,punct)|tok:char"
        else:
            norm = "norm:auto(squad,cmrc-if-unsegmented)|tok:whitespace-or-char"
        return f"{norm}|lang:{self.language}|refs:max|scale:100{self._extra_signature()}"

    def _extra_signature(self) -> str:
        return ""


class ExactMatch(_QAMetric):
    """Exact match after normalisation, max over gold answers (0 or 100 per example)."""

    name = "EM"

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        if self._style(hypothesis, references) == "squad":
            pred, golds = squad_normalize(hypothesis), {squad_normalize(r) for r in references}
        else:
            pred, golds = cmrc_normalize(hypothesis), {cmrc_normalize(r) for r in references}
        return (int(pred in golds),), {}


class TokenF1(_QAMetric):
    """Token F1, max over gold answers (SQuAD bag-of-tokens or CMRC character LCS)."""

    name = "F1"

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        f1 = squad_f1 if self._style(hypothesis, references) == "squad" else cmrc_f1
        return (max(f1(hypothesis, r) for r in references),), {}

    def _extra_signature(self) -> str:
        return "|f1:squad-bag-or-cmrc-lcs" if self._fixed is None else (
            "|f1:squad-bag" if self._fixed == "squad" else "|f1:cmrc-lcs")


register("exact_match", ExactMatch, "Exact match (SQuAD / CMRC normalisation)", aliases=("em", "exact"))
register("f1", TokenF1, "Token F1 (SQuAD bag of tokens / CMRC character LCS)", aliases=("token_f1", "qa_f1"))
