"""Accuracy, macro-F1 and Matthews correlation from option log-likelihoods.

Each example is a :class:`ChoiceOutcome`: the log-likelihood of every answer option (from the
engine), the gold option, and optionally the log-likelihoods of a content-free prompt for
calibration. Predictions follow lm-evaluation-harness 0.4's ``multiple_choice`` scoring exactly:

- ``acc``: ``argmax(lls) == gold``;
- ``acc_norm``: ``argmax(lls / len(choice))`` with ``len`` the choice text's length in characters,
  as lm-eval computes ``completion_len`` (its choice strings, without the target delimiter);
- ``acc_bytes``: ``argmax(lls / len(choice.encode("utf-8")))``, lm-eval's byte-length variant;
- ties go to the first option (``numpy.argmax``).

For classification, ``macro_f1`` (the mean of per-label F1 over the labels that occur as gold or
prediction, as scikit-learn's ``f1_score(average="macro")`` with zero division 0) and ``mcc``
(Matthews correlation, GLUE's CoLA metric; scikit-learn's multi-class formula) are computed from
the pooled confusion matrix, so bootstrap intervals and paired tests resample examples correctly.
Scores are reported ×100. With ``calibrate: true`` the content-free log-likelihoods are
subtracted from each option's before the argmax (Zhao et al. 2021, "Calibrate before use").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

from .base import Metric, MetricResult, MetricWarning, Number, Row
from .errors import InconsistentInputError, InvalidOptionError
from .options import flag
from .registry import register

NORMALIZATIONS = ("none", "chars", "bytes")


@dataclass(frozen=True)
class ChoiceOutcome:
    """One example scored by option log-likelihood.

    ``options`` are the option texts as the data gives them (their lengths normalise
    ``acc_norm``); ``labels`` name the options for a classification task (the label set, in
    order); ``content_free`` holds a content-free prompt's log-likelihoods of the same options.
    """

    options: tuple[str, ...]
    logprobs: tuple[float, ...]
    gold: int
    num_tokens: tuple[int, ...] = ()
    is_greedy: tuple[bool, ...] = ()
    content_free: tuple[float, ...] | None = None
    method: str = ""
    labels: tuple[str, ...] = ()

    def adjusted(self, normalize: str = "none", calibrate: bool = False) -> list[float]:
        """The values the prediction takes the argmax of."""
        values = list(self.logprobs)
        if calibrate:
            if self.content_free is None:
                raise InvalidOptionError("calibration needs the content-free log-likelihoods",
                                         "the runner computes them when a metric has calibrate: true")
            values = [v - c for v, c in zip(values, self.content_free)]
        if normalize == "chars":
            values = [v / len(o) for v, o in zip(values, self.options)]
        elif normalize == "bytes":
            values = [v / len(o.encode("utf-8")) for v, o in zip(values, self.options)]
        return values

    def predicted(self, normalize: str = "none", calibrate: bool = False) -> int:
        """The chosen option: the first maximum, as ``numpy.argmax``."""
        return argmax(self.adjusted(normalize, calibrate))


def argmax(values: Sequence[float]) -> int:
    """Index of the first maximum (``numpy.argmax``'s tie rule; NaN never wins)."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best] or (math.isnan(values[best]) and not math.isnan(v)):
            best = i
    return best


def _check(name: str, outcome: Any) -> ChoiceOutcome:
    if not isinstance(outcome, ChoiceOutcome):
        raise InvalidOptionError(f"{name} scores option log-likelihoods, got {type(outcome).__name__}",
                                 "pass a ChoiceOutcome (the runner builds it from the engine's scores)")
    n = len(outcome.options)
    if n == 0 or len(outcome.logprobs) != n:
        raise InvalidOptionError(f"{name}: {len(outcome.logprobs)} log-likelihoods for {n} options")
    if not 0 <= outcome.gold < n:
        raise InvalidOptionError(f"{name}: gold option {outcome.gold} is not one of the {n} options")
    if any(not o for o in outcome.options):
        raise InvalidOptionError(f"{name}: an option is empty")
    if any(math.isnan(v) or v > 1e-6 for v in outcome.logprobs):
        raise InvalidOptionError(f"{name}: log-likelihoods must be <= 0, got {outcome.logprobs}")
    return outcome


class _ChoiceMetric(Metric):
    """Shared input handling: checks the outcome, keeps the scoring method, exposes predictions."""

    def __init__(self, *, calibrate: bool = False, n_bootstrap: int = 1000, seed: int = 12345) -> None:
        self.calibrate = calibrate
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    normalize = "none"

    def reset(self) -> None:
        super().reset()
        self._method: str | None = None

    def _validate(self, hypothesis: Any, references: Any) -> tuple[tuple[str, ...], list[MetricWarning]]:
        outcome = _check(self.name, hypothesis)
        if self._method is not None and outcome.method != self._method:
            raise InconsistentInputError(f"cannot pool options scored by different methods: {self._method!r} "
                                         f"and {outcome.method!r}", "score every example with the same model kind")
        warnings = []
        if len(set(outcome.adjusted(self.normalize, self.calibrate))) < len(outcome.options):
            warnings.append(MetricWarning("tie", "tied options (the first one is chosen)"))
        # The gold option stands in for references, so paired tests check both sides share them.
        return (str(outcome.gold),), warnings

    def _accumulate(self, hypothesis: Any, references: tuple[str, ...], row: Row, warnings: list[MetricWarning]) -> None:
        super()._accumulate(hypothesis, references, row, warnings)
        self._method = hypothesis.method

    def _signature_tail(self) -> str:
        calib = "content-free(N/A)" if self.calibrate else "none"
        return f"tie:first|calib:{calib}|scale:100"

    def corpus(self, *, ci: bool = False) -> MetricResult:
        """As :meth:`Metric.corpus`, with the scoring method (model kind) added to the result's
        signature. :attr:`signature` itself leaves it out: the method belongs to a model, and a
        paired test compares the predictions of models of different kinds."""
        result = super().corpus(ci=ci)
        return replace(result, signature=f"{result.signature}|method:{self._method or 'unknown'}")


class ChoiceAccuracy(_ChoiceMetric):
    """``acc`` / ``acc_norm`` / ``acc_bytes``: the share of examples whose chosen option is gold."""

    def __init__(self, normalize: str = "none", *, calibrate: bool = False, n_bootstrap: int = 1000,
                 seed: int = 12345) -> None:
        if normalize not in NORMALIZATIONS:
            raise InvalidOptionError(f"unknown normalisation {normalize!r}", "use " + ", ".join(NORMALIZATIONS))
        self.normalize = normalize
        self.name = {"none": "acc", "chars": "acc_norm", "bytes": "acc_bytes"}[normalize]
        super().__init__(calibrate=calibrate, n_bootstrap=n_bootstrap, seed=seed)

    def _row(self, hypothesis: Any, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        chosen = hypothesis.predicted(self.normalize, self.calibrate)
        return (int(chosen == hypothesis.gold),), {"chosen": chosen, "gold": hypothesis.gold}

    def _score_from_sums(self, sums: Sequence[Number], n: int) -> float:
        return 100 * sums[0] / n if n else math.nan

    def _signature(self) -> str:
        norm = {"none": "none", "chars": "len(chars)", "bytes": "len(utf-8 bytes)"}[self.normalize]
        return f"{self.name}|pred:argmax(ll{'' if norm == 'none' else '/' + norm})|{self._signature_tail()}"


def confusion_from_sums(sums: Sequence[Number], k: int) -> list[list[int]]:
    """The k×k confusion matrix (rows gold, columns predicted) from pooled one-hot rows."""
    return [[int(sums[g * k + p]) for p in range(k)] for g in range(k)]


def macro_f1(matrix: list[list[int]]) -> float:
    """scikit-learn's macro F1 (labels seen as gold or prediction; zero division 0), ×100."""
    k = len(matrix)
    f1s = []
    for c in range(k):
        tp = matrix[c][c]
        gold = sum(matrix[c])
        pred = sum(matrix[g][c] for g in range(k))
        if gold == 0 and pred == 0:
            continue
        precision = tp / pred if pred else 0.0
        recall = tp / gold if gold else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return 100 * sum(f1s) / len(f1s) if f1s else math.nan


def matthews(matrix: list[list[int]]) -> float:
    """scikit-learn's (multi-class) Matthews correlation coefficient, ×100; 0 when undefined."""
    k = len(matrix)
    t_sum = [sum(matrix[g]) for g in range(k)]
    p_sum = [sum(matrix[g][p] for g in range(k)) for p in range(k)]
    correct = sum(matrix[c][c] for c in range(k))
    n = sum(t_sum)
    cov_tp = correct * n - sum(t * p for t, p in zip(t_sum, p_sum))
    cov_pp = n * n - sum(p * p for p in p_sum)
    cov_tt = n * n - sum(t * t for t in t_sum)
    if cov_pp * cov_tt == 0:
        return 0.0
    return 100 * cov_tp / math.sqrt(cov_tt * cov_pp)


class ConfusionMetric(_ChoiceMetric):
    """``macro_f1`` / ``mcc`` over a fixed label set, from the pooled confusion matrix. Every
    example must have the same options (the label set)."""

    def __init__(self, kind: str = "macro_f1", *, calibrate: bool = False, n_bootstrap: int = 1000,
                 seed: int = 12345) -> None:
        if kind not in ("macro_f1", "mcc"):
            raise InvalidOptionError(f"unknown confusion metric {kind!r}")
        self.name = kind
        super().__init__(calibrate=calibrate, n_bootstrap=n_bootstrap, seed=seed)

    def reset(self) -> None:
        super().reset()
        self._k: int | None = None
        self._labels: tuple[str, ...] = ()

    def _row(self, hypothesis: Any, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        k = len(hypothesis.options)
        if self._k is not None and k != self._k:
            raise InconsistentInputError(f"{self.name} needs the same label set for every example: "
                                         f"{self._k} labels, then {k}", "use task: classification")
        chosen = hypothesis.predicted(self.normalize, self.calibrate)
        row = [0] * (k * k)
        row[hypothesis.gold * k + chosen] = 1
        return tuple(row), {"chosen": chosen, "gold": hypothesis.gold}

    def _accumulate(self, hypothesis: Any, references: tuple[str, ...], row: Row, warnings: list[MetricWarning]) -> None:
        super()._accumulate(hypothesis, references, row, warnings)
        self._k = len(hypothesis.options)
        self._labels = hypothesis.labels or hypothesis.options

    def _example_score(self, row: Row) -> float:
        k = math.isqrt(len(row))
        return 100.0 if any(row[c * k + c] for c in range(k)) else 0.0  # this example's prediction is right

    def _score_from_sums(self, sums: Sequence[Number], n: int) -> float:
        matrix = confusion_from_sums(sums, math.isqrt(len(sums)))
        return macro_f1(matrix) if self.name == "macro_f1" else matthews(matrix)

    def _details_from_sums(self, sums: Sequence[Number], n: int) -> dict[str, Any]:
        return {"labels": list(self._labels), "confusion": confusion_from_sums(sums, math.isqrt(len(sums)))}

    def _signature(self) -> str:
        what = "macro-f1(labels:gold-or-predicted,zero-division:0)" if self.name == "macro_f1" else "mcc(multiclass)"
        return f"{what}|pred:argmax(ll)|{self._signature_tail()}"


_OPTIONS = {"calibrate": flag()}
register("acc", ChoiceAccuracy, "Accuracy of the highest log-likelihood option (lm-eval acc)",
         input="choices", options=_OPTIONS, aliases=("accuracy",))
register("acc_norm", ChoiceAccuracy, "Accuracy with log-likelihoods divided by option length (lm-eval acc_norm)",
         input="choices", options=_OPTIONS, normalize="chars")
register("acc_bytes", ChoiceAccuracy, "Accuracy with log-likelihoods divided by option UTF-8 bytes (lm-eval)",
         input="choices", options=_OPTIONS, normalize="bytes")
register("macro_f1", ConfusionMetric, "Macro-averaged F1 over the label set (classification)",
         input="choices", options=_OPTIONS, aliases=("f1_macro",), kind="macro_f1")
register("mcc", ConfusionMetric, "Matthews correlation coefficient (GLUE CoLA; classification)",
         input="choices", options=_OPTIONS, aliases=("matthews_corrcoef", "matthews"), kind="mcc")
