"""Paired significance tests between two systems scored on the same examples.

Paired bootstrap resampling (Koehn 2004), the procedure of Moses and ``sacrebleu
--paired-bs``, for every metric alike: both systems are resampled with the same example
indices (:mod:`evaluators.resampling`) and the corpus score is recomputed from the
resampled rows of sufficient statistics. For BLEU/chrF the p-value and the system's
interval equal sacrebleu's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Metric
from .errors import CountMismatchError, EmptyCorpusError, IncomparableSystemsError
from .resampling import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_interval,
    mean_half_width,
    resample_indices,
    resampled_scores,
)

__all__ = ["PairedResult", "bootstrap_interval", "paired_test"]


@dataclass(frozen=True)
class PairedResult:
    """Outcome of a paired test of ``system`` against ``baseline`` on the same examples.

    ``p_value`` is the probability of a difference at least this large by chance;
    ``system_ci`` the system's 95% bootstrap interval (mean ± half-width, as
    :class:`~evaluators.MetricResult`), ``system_ci_mean`` its centre; ``method`` names
    the procedure.
    """

    metric: str
    baseline_score: float
    system_score: float
    p_value: float
    system_ci: tuple[float, float]
    n_resamples: int
    seed: int
    method: str
    signature: str
    higher_is_better: bool = True
    system_ci_mean: float | None = None

    @property
    def delta(self) -> float:
        """System minus baseline."""
        return self.system_score - self.baseline_score

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the difference is significant at level ``alpha``.

        Identical scores are never significant: the Moses/sacrebleu p-value counts
        resampled differences strictly above the observed one, which gives the minimum
        p = 1/(B+1) when a system is compared with itself.
        """
        return self.delta != 0 and self.p_value < alpha

    @property
    def system_better(self) -> bool:
        """Whether the system's score is better than the baseline's (ignoring significance)."""
        return self.delta > 0 if self.higher_is_better else self.delta < 0


def _p_value(sample_diffs: np.ndarray, real_diff: float) -> float:
    # Moses / sacrebleu: centre the resampled |differences| and count how often they
    # exceed the observed one; +1 keeps the test valid with few resamples.
    centred = sample_diffs - sample_diffs.mean()
    return float((np.sum(centred > real_diff) + 1) / (len(centred) + 1))


def _check_comparable(baseline: Metric, system: Metric) -> None:
    if type(baseline) is not type(system) or baseline.name != system.name:
        raise IncomparableSystemsError(
            f"cannot compare {baseline.name} with {system.name}", "use the same metric for both systems"
        )
    if len(baseline) != len(system):
        raise CountMismatchError("baseline examples", len(baseline), "system examples", len(system))
    if len(baseline) == 0:
        raise EmptyCorpusError("no examples to compare")
    if baseline.signature != system.signature:
        raise IncomparableSystemsError(
            "the two systems were scored with different settings",
            f"{baseline.signature} vs {system.signature}",
        )
    if baseline._references != system._references:
        raise IncomparableSystemsError(
            "the two systems were scored against different references", "a paired test needs the same examples"
        )


def paired_test(
    baseline: Metric, system: Metric, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> PairedResult:
    """Is ``system`` different from ``baseline``? Both metric objects must hold the same
    examples (same references, same order) scored with the same settings.

    Raises:
        IncomparableSystemsError: different metrics, settings or references.
        CountMismatchError: different numbers of examples.
        EmptyCorpusError: no examples.
    """
    _check_comparable(baseline, system)
    idxs = resample_indices(len(baseline), n_resamples, seed)
    base_scores, sys_scores = resampled_scores(baseline, idxs), resampled_scores(system, idxs)
    base, sys_ = baseline.corpus().score, system.corpus().score
    mean, half_width = mean_half_width(sys_scores)
    return PairedResult(
        metric=baseline.name, baseline_score=base, system_score=sys_,
        p_value=_p_value(np.abs(sys_scores - base_scores), abs(base - sys_)),
        system_ci=(mean - half_width, mean + half_width), n_resamples=n_resamples, seed=seed,
        method="paired bootstrap resampling (Koehn 2004; as sacrebleu --paired-bs) over per-example statistics",
        signature=f"{baseline._bootstrap_signature(n_resamples, seed)}|test:paired-bs",
        higher_is_better=baseline.higher_is_better, system_ci_mean=mean,
    )
