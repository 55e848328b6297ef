"""The `Metric` interface, its results, and the incremental-statistics machinery.

A metric turns each example into a row of *sufficient statistics* (n-gram match counts
for BLEU, the per-example F-measure for ROUGE, summed NLL and token counts for
perplexity...). The corpus score is a function of the column sums of those rows, so
adding an example costs one row, and the corpus score after it is one function call on
running sums. Rows are kept so bootstrap resampling and paired tests can reuse them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

from .errors import CountMismatchError, EmptyCorpusError, InvalidOptionError
from .resampling import CI_CONVENTION, bootstrap_estimate

Number = int | float
Row = tuple[Number, ...]


@dataclass(frozen=True)
class MetricWarning:
    """Something a careful user should know about a score.

    ``scope`` is ``"example"`` for warnings that concern only the per-example score
    (e.g. sentence-level BLEU on a short segment) and ``"corpus"`` for warnings that are
    also counted on the corpus result (e.g. empty hypotheses).
    """

    code: str
    message: str
    scope: str = "corpus"


@dataclass(frozen=True)
class ExampleScore:
    """The score of one example, with per-example details and warnings."""

    name: str
    score: float
    details: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[MetricWarning, ...] = ()


@dataclass(frozen=True)
class MetricResult:
    """A corpus-level score and everything needed to reproduce it.

    When a confidence interval was asked for, ``ci_mean`` is the mean of the bootstrap
    resampled scores and ``ci`` is ``(ci_mean - h, ci_mean + h)`` with ``h`` half the width
    of their 95% percentile interval: sacrebleu's convention (``μ = mean ± h``). Both are
    None otherwise. ``signature`` records every setting that changes the number
    (sacrebleu's own string for BLEU/chrF/TER), plus the resample count, seed and the
    interval convention when ``ci`` is set.
    """

    name: str
    score: float
    ci: tuple[float, float] | None
    signature: str
    details: Mapping[str, Any] = field(default_factory=dict)
    n: int = 0
    warnings: tuple[MetricWarning, ...] = ()
    higher_is_better: bool = True
    ci_mean: float | None = None

    @property
    def ci_half_width(self) -> float | None:
        """Half the width of the interval (sacrebleu's ``±`` value), None without one."""
        return None if self.ci is None else (self.ci[1] - self.ci[0]) / 2

    def interval(self, width: int = 2) -> str:
        """The 95% interval as sacrebleu prints it, ``μ = 48.40 ± 3.10``; ``""`` without one."""
        if self.ci is None:
            return ""
        mean = self.ci_mean if self.ci_mean is not None else (self.ci[0] + self.ci[1]) / 2
        return f"μ = {mean:.{width}f} ± {self.ci_half_width:.{width}f}"

    def format(self, width: int = 2) -> str:
        """One line as sacrebleu prints it, e.g.
        ``BLEU = 48.53 (μ = 48.40 ± 3.10) (nrefs:2|bs:1000|seed:12345|...)``."""
        text = f"{self.name} = {self.score:.{width}f}"
        if self.ci is not None:
            text += f" ({self.interval(width)})"
        return f"{text} ({self.signature})"


def normalize_references(references: str | Sequence[str] | None) -> tuple[str, ...]:
    """Accept one reference string or a sequence of them; always return a tuple."""
    if references is None:
        return ()
    if isinstance(references, str):
        return (references,)
    refs = tuple(references)
    for ref in refs:
        if ref is not None and not isinstance(ref, str):
            raise InvalidOptionError(
                f"references must be strings, got {type(ref).__name__}",
                "pass one string or a list of strings per example",
            )
    return refs


class Metric(ABC):
    """Base class of every metric.

    Public methods validate their input, then call small hooks that subclasses provide:

    - :meth:`_row` — sufficient statistics of one example (a tuple of numbers);
    - :meth:`_score_from_sums` — the corpus score from column sums of rows;
    - :meth:`_example_score` — the per-example score (defaults to the corpus formula on
      one row; sentence-level BLEU overrides it);
    - :meth:`_signature` — the settings string.

    Subclasses set ``name`` and ``higher_is_better``. With ``exact_sums`` (the default)
    float columns are accumulated exactly, so the corpus score does not depend on the
    order examples arrived in and equals ``math.fsum`` of the per-example values.
    """

    name: ClassVar[str] = "metric"
    higher_is_better: ClassVar[bool] = True
    exact_sums: ClassVar[bool] = True

    def __init__(self, *, n_bootstrap: int = 1000, seed: int = 12345) -> None:
        if n_bootstrap < 1:
            raise InvalidOptionError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.reset()

    # ------------------------------------------------------------------ public API
    @property
    def signature(self) -> str:
        """Every setting that changes the number, as ``key:value|key:value``."""
        return self._signature()

    def reset(self) -> None:
        """Forget every added example."""
        self._rows: list[Row] = []
        self._sums: list[Any] | None = None
        self._references: list[tuple[str, ...]] = []
        self._hypotheses: list[Any] = []
        self._warning_counts: Counter[str] = Counter()
        self._warning_messages: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def score_example(self, hypothesis: Any, references: Any = ()) -> ExampleScore:
        """Score one example without adding it to the corpus."""
        _, row, warnings, details = self._prepare(hypothesis, references)
        return self._make_example_score(row, warnings, details)

    def add(self, hypothesis: Any, references: Any = ()) -> ExampleScore:
        """Add one example to the corpus statistics and return its own score."""
        refs, row, warnings, details = self._prepare(hypothesis, references)
        self._accumulate(hypothesis, refs, row, warnings)
        return self._make_example_score(row, warnings, details)

    def add_many(self, hypotheses: Sequence[Any], references: Sequence[Any]) -> None:
        """Add many examples; ``references[i]`` holds the reference(s) of example ``i``.

        Raises:
            CountMismatchError: if the two sequences have different lengths.
        """
        if len(hypotheses) != len(references):
            raise CountMismatchError("hypotheses", len(hypotheses), "references", len(references))
        for hyp, refs in zip(hypotheses, references):
            valid_refs, row, warnings, _ = self._prepare(hyp, refs)
            self._accumulate(hyp, valid_refs, row, warnings)

    def score_corpus(
        self, hypotheses: Sequence[Any], references: Sequence[Any], *, ci: bool = False
    ) -> MetricResult:
        """One-shot corpus score: reset, add every example, return :meth:`corpus`."""
        self.reset()
        self.add_many(hypotheses, references)
        return self.corpus(ci=ci)

    def corpus(self, *, ci: bool = False) -> MetricResult:
        """The corpus score of everything added so far.

        Args:
            ci: also compute a seeded bootstrap 95% confidence interval
                (``n_bootstrap`` resamples, sacrebleu's mean ± half-width convention; see
                :mod:`evaluators.resampling`); the resample count, seed and convention
                go in the signature.

        Raises:
            EmptyCorpusError: if no example was added yet.
        """
        if not self._rows:
            raise EmptyCorpusError(
                f"{self.name}: no examples added yet", "call add() before corpus()"
            )
        sums = self._float_sums()
        n = len(self._rows)
        interval = mean = None
        signature = self.signature
        if ci:
            mean, half_width = bootstrap_estimate(self, self.n_bootstrap, self.seed)
            interval = (mean - half_width, mean + half_width)
            signature = self._bootstrap_signature(self.n_bootstrap, self.seed)
        return MetricResult(
            name=self.name,
            score=self._score_from_sums(sums, n),
            ci=interval,
            signature=signature,
            details=self._details_from_sums(sums, n),
            n=n,
            warnings=self._corpus_warnings(n),
            higher_is_better=self.higher_is_better,
            ci_mean=mean,
        )

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _row(self, hypothesis: Any, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        """Sufficient statistics of one example, plus per-example details."""

    @abstractmethod
    def _score_from_sums(self, sums: Sequence[Number], n: int) -> float:
        """Corpus score from column sums of ``n`` rows."""

    @abstractmethod
    def _signature(self) -> str:
        """Settings string (see :attr:`signature`)."""

    def _example_score(self, row: Row) -> float:
        return self._score_from_sums(row, 1)

    def _details_from_sums(self, sums: Sequence[Number], n: int) -> dict[str, Any]:
        return {}

    def _validate(self, hypothesis: Any, references: Any) -> tuple[tuple[str, ...], list[MetricWarning]]:
        """Check one text example; return its references and warnings."""
        if not isinstance(hypothesis, str):
            raise InvalidOptionError(
                f"{self.name}: hypothesis must be a string, got {type(hypothesis).__name__}"
            )
        refs = normalize_references(references)
        warnings: list[MetricWarning] = []
        if not hypothesis.strip():
            warnings.append(MetricWarning("empty_hypothesis", "empty hypothesis (scored as empty)"))
        present = tuple(r for r in refs if r is not None)
        if not present:
            warnings.append(
                MetricWarning("missing_reference", "no reference given (scored against an empty one)")
            )
            present = ("",)
        elif not any(r.strip() for r in present):
            warnings.append(MetricWarning("empty_reference", "every reference is empty"))
        return present, warnings

    def _input_warnings(self, hypothesis: Any, references: tuple[str, ...]) -> list[MetricWarning]:
        """Check an example against the metric's settings before scoring it.

        Raises UnsupportedScriptError for references the settings cannot score; returns
        warnings (never raises) for a hypothesis they score badly: the content of a
        hypothesis is what is being measured, never an error.
        """
        return []

    def _bootstrap_signature(self, n_resamples: int, seed: int) -> str:
        """The signature of a bootstrap result (interval or paired test)."""
        return f"{self.signature}|bs:{n_resamples}|rs:{seed}|ci:{CI_CONVENTION}"

    def _resampled_score(self, sums: Any, n: int) -> float:
        """Corpus score from the column sums (a float64 numpy vector) of one resample."""
        return self._score_from_sums(sums.tolist(), n)

    # ------------------------------------------------------------------ plumbing
    def _prepare(
        self, hypothesis: Any, references: Any
    ) -> tuple[tuple[str, ...], Row, list[MetricWarning], dict[str, Any]]:
        refs, warnings = self._validate(hypothesis, references)
        warnings.extend(self._input_warnings(hypothesis, refs))
        row, details = self._row(hypothesis, refs)
        warnings.extend(self._row_warnings(hypothesis, refs, row))
        return refs, row, warnings, details

    def _row_warnings(self, hypothesis: Any, references: tuple[str, ...], row: Row) -> list[MetricWarning]:
        return []

    def _make_example_score(self, row: Row, warnings: list[MetricWarning], details: dict[str, Any]) -> ExampleScore:
        return ExampleScore(self.name, self._example_score(row), details, tuple(warnings))

    def _accumulate(
        self, hypothesis: Any, references: tuple[str, ...], row: Row, warnings: list[MetricWarning]
    ) -> None:
        self._rows.append(row)
        self._hypotheses.append(hypothesis)
        self._references.append(references)
        if self._sums is None:
            # sacrebleu's sum_of_lists starts from type(first)(0) and adds in order;
            # starting from int 0 and adding gives the same values.
            self._sums = [0] * len(row)
        sums = self._sums
        if self.exact_sums:
            for i, value in enumerate(row):
                sums[i] += value if isinstance(value, int) else Fraction(value)
        else:
            for i, value in enumerate(row):
                sums[i] += value
        for warning in warnings:
            if warning.scope == "corpus":
                self._warning_counts[warning.code] += 1
                self._warning_messages.setdefault(warning.code, warning.message)

    def _float_sums(self) -> list[Number]:
        assert self._sums is not None
        return [float(s) if isinstance(s, Fraction) else s for s in self._sums]

    def _corpus_warnings(self, n: int) -> tuple[MetricWarning, ...]:
        return tuple(
            MetricWarning(code, f"{count} of {n} examples: {self._warning_messages[code]}")
            for code, count in self._warning_counts.items()
        )

    def rows(self) -> list[Row]:
        """The per-example sufficient statistics added so far (for resampling)."""
        return list(self._rows)


def safe_exp(x: float) -> float:
    """``math.exp`` that returns ``inf`` instead of raising on overflow."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


__all__ = [
    "ExampleScore",
    "Metric",
    "MetricResult",
    "MetricWarning",
    "normalize_references",
]
