"""BLEU, chrF, chrF++ and TER, computed by sacrebleu.

Each example's row is exactly what sacrebleu's own corpus scoring stores per segment
(``Metric._extract_corpus_statistics``), and the corpus score is sacrebleu's
``_compute_score_from_stats`` on the running column sums, summed in the same order as
sacrebleu's ``sum_of_lists`` — so adding examples one by one gives the number sacrebleu's
``corpus_score`` gives on the whole list, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import sacrebleu
from sacrebleu.metrics.base import Metric as _SacreMetric

from .base import Metric, MetricWarning, Number, Row
from .errors import InvalidOptionError, UnsupportedScriptError
from .language import detect_family, is_unsegmented, language_family, sacrebleu_tokenizer
from .registry import register

# Below this many tokens, sentence-level BLEU is dominated by smoothing.
SHORT_SEGMENT_TOKENS = 10


class SacrebleuMetric(Metric):
    """Common plumbing for sacrebleu-backed metrics.

    Args:
        language: target language code (``zh``, ``ja``, ``de``...). When given it picks
            the tokenizer (``zh`` → ``tokenize='zh'``); when None the language is detected
            from the first example and recorded in the signature as ``lang:…(detected)``.
        n_bootstrap, seed: bootstrap settings for confidence intervals.
        **options: passed to the sacrebleu metric's constructor.
    """

    exact_sums = False  # mirror sacrebleu's in-order summation instead
    _depends_on_language: ClassVar[bool] = True

    def __init__(
        self, *, language: str | None = None, n_bootstrap: int = 1000, seed: int = 12345, **options: Any
    ) -> None:
        self.language = language
        self.options = options
        self._backend: _SacreMetric | None = None
        self._detected_family: str | None = None
        self._auto = language is None and self._depends_on_language and not self._explicit_tokenization()
        if not self._auto:
            self._backend = self._build(language_family(language))
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    # -- subclass hooks ------------------------------------------------------------
    def _build(self, family: str | None) -> _SacreMetric:
        raise NotImplementedError

    def _explicit_tokenization(self) -> bool:
        return False

    def _check_script(self, texts: Sequence[str]) -> None:
        """Raise UnsupportedScriptError if the chosen settings cannot handle ``texts``."""

    # -- Metric hooks --------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self._nrefs: set[int] = set()
        if self._auto:
            self._backend = None

    @property
    def backend(self) -> _SacreMetric:
        """The sacrebleu metric object (built on the first example when auto-detecting)."""
        if self._backend is None:
            raise InvalidOptionError(
                f"{self.name}: the tokenizer is chosen from the first example", "add an example first"
            )
        return self._backend

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        if self._backend is None:
            self._detected_family = detect_family(" ".join(references) + " " + hypothesis)
            self._backend = self._build(self._detected_family)
        self._check_script((hypothesis, *references))
        stats = self._backend._extract_corpus_statistics([hypothesis], [[r] for r in references])[0]
        return tuple(stats), {}

    def _accumulate(self, hypothesis: Any, references: tuple[str, ...], row: Row, warnings: list[MetricWarning]) -> None:
        super()._accumulate(hypothesis, references, row, warnings)
        self._nrefs.add(len(references))

    def _score_obj(self, sums: Sequence[Number]) -> Any:
        return self.backend._compute_score_from_stats(list(sums))

    def _score_from_sums(self, sums: Sequence[Number], n: int) -> float:
        return float(self._score_obj(sums).score)

    def _sacrebleu_signature(self) -> Any:
        backend = self.backend
        if len(self._nrefs) == 1:
            backend.num_refs = next(iter(self._nrefs))
        else:
            backend.num_refs = -1 if self._nrefs else "?"
        return backend.get_signature()

    def _suffix(self) -> str:
        if self._auto:
            return f"|lang:{self._detected_family or 'space-delimited'}(detected)"
        return ""

    def _signature(self) -> str:
        if self._backend is None:
            return f"tok:auto(pending first example)|version:{sacrebleu.__version__}"
        return self._sacrebleu_signature().format() + self._suffix()

    def _signature_with_bootstrap(self, signature: str) -> str:
        sig = self._sacrebleu_signature()
        sig.update("bs", self.n_bootstrap)
        sig.update("seed", self.seed)
        return sig.format() + self._suffix()


class BLEU(SacrebleuMetric):
    """BLEU (sacrebleu). Options are sacrebleu's: ``tokenize``, ``lowercase``,
    ``smooth_method``, ``smooth_value``, ``max_ngram_order``, ``effective_order``.

    The corpus score is sacrebleu's corpus BLEU; the per-example score is sentence BLEU
    with ``effective_order=True`` (sacrebleu's recommendation for single sentences).
    Word tokenizers (``13a``, ``intl``) refuse unsegmented Chinese/Japanese/Thai text.
    """

    name = "BLEU"

    def _explicit_tokenization(self) -> bool:
        return self.options.get("tokenize") is not None

    def _build(self, family: str | None) -> _SacreMetric:
        options = dict(self.options)
        if options.get("tokenize") is None:
            options["tokenize"] = sacrebleu_tokenizer(family, "BLEU")
        if options["tokenize"] not in sacrebleu.BLEU.TOKENIZERS:
            raise InvalidOptionError(
                f"unknown BLEU tokenizer {options['tokenize']!r}",
                "choose one of " + ", ".join(sacrebleu.BLEU.TOKENIZERS),
            )
        if options["tokenize"] in ("ja-mecab", "ko-mecab"):
            sacrebleu_tokenizer(options["tokenize"][:2], "BLEU")  # raises if not installed
        backend = sacrebleu.BLEU(**options)
        self._sentence = sacrebleu.BLEU(**{**options, "effective_order": True})
        return backend

    def _check_script(self, texts: Sequence[str]) -> None:
        tokenizer = self.backend.tokenizer_signature
        if tokenizer in ("13a", "intl") and any(is_unsegmented(t) for t in texts):
            raise UnsupportedScriptError(
                f"BLEU with tokenize={tokenizer!r} cannot score text written without spaces "
                "(Chinese, Japanese, Thai): each sentence becomes one 'word' and BLEU is ~0",
                "declare language='zh' / 'ja', or pass tokenize='zh', 'ja-mecab' or 'char'",
            )

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
    """chrF / chrF++ (sacrebleu). Options: ``char_order``, ``word_order`` (2 = chrF++),
    ``beta``, ``lowercase``, ``whitespace``, ``eps_smoothing``. Character-based, so it
    needs no tokenizer and works on every script."""

    name = "chrF"
    _depends_on_language = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.options.get("word_order", 0) > 0:
            self.name = "chrF" + "+" * int(self.options["word_order"])

    def _build(self, family: str | None) -> _SacreMetric:
        return sacrebleu.CHRF(**self.options)

    def _details_from_sums(self, sums: Sequence[Number], n: int) -> dict[str, Any]:
        return {"char_order": self.backend.char_order, "word_order": self.backend.word_order,
                "beta": self.backend.beta}


class TER(SacrebleuMetric):
    """Translation edit rate (sacrebleu), lower is better. Options: ``normalized``,
    ``no_punct``, ``asian_support``, ``case_sensitive``. For Chinese/Japanese (declared or
    detected) ``normalized`` and ``asian_support`` default to True, which splits CJK text
    into characters as Tercom does."""

    name = "TER"
    higher_is_better = False

    def _explicit_tokenization(self) -> bool:
        return "asian_support" in self.options or "normalized" in self.options

    def _build(self, family: str | None) -> _SacreMetric:
        options = dict(self.options)
        if family in ("zh", "ja"):
            options.setdefault("normalized", True)
            options.setdefault("asian_support", True)
        return sacrebleu.TER(**options)

    def _check_script(self, texts: Sequence[str]) -> None:
        backend = self.backend
        cjk_ok = backend.asian_support and backend.normalized
        for text in texts:
            if is_unsegmented(text) and not (cjk_ok and detect_family(text) in ("zh", "ja")):
                raise UnsupportedScriptError(
                    "TER cannot score text written without spaces with these settings "
                    f"(normalized={backend.normalized}, asian_support={backend.asian_support})",
                    "for Chinese/Japanese declare language='zh'/'ja' or pass normalized=True, "
                    "asian_support=True; Thai/Lao/Khmer/Myanmar are not supported by TER",
                )

    def _details_from_sums(self, sums: Sequence[Number], n: int) -> dict[str, Any]:
        s = self._score_obj(sums)
        return {"num_edits": s.num_edits, "ref_length": s.ref_length}


register("bleu", BLEU, "BLEU (sacrebleu); corpus BLEU, sentence BLEU per example")
register("chrf", CHRF, "chrF (sacrebleu), character n-gram F-score")
register("chrf++", CHRF, "chrF++ (sacrebleu), chrF plus word bigrams", aliases=("chrfpp",), word_order=2)
register("ter", TER, "Translation edit rate (sacrebleu), lower is better")
