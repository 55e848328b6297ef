"""Bootstrap confidence intervals and paired significance tests between two systems.

Both resample *examples* with replacement and recompute the corpus score from the
resampled rows of sufficient statistics, so corpus-level metrics (BLEU's pooled n-gram
counts, pooled perplexity) are resampled correctly, not approximated by a mean of
sentence scores. Paired tests for BLEU/chrF/TER are sacrebleu's own paired bootstrap;
the others use the same procedure (Koehn 2004, as in Moses and sacrebleu) on our rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Metric
from .errors import CountMismatchError, EmptyCorpusError, IncomparableSystemsError

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 12345


def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Example indices of each resample, shape (n_resamples, n).

    The draw is sacrebleu's (``default_rng(seed).choice(n, (B, n))``), so with the same
    seed both pick the same resamples.
    """
    return np.random.default_rng(seed).choice(n, size=(n_resamples, n), replace=True)


def _resampled_scores(metric: Metric, idxs: np.ndarray) -> np.ndarray:
    rows = np.asarray(metric.rows(), dtype=np.float64)
    n = rows.shape[0]
    scores = np.empty(len(idxs))
    for b, idx in enumerate(idxs):
        # Column sums of a resample = (how often each row was drawn) @ rows.
        sums = np.bincount(idx, minlength=n).astype(np.float64) @ rows
        scores[b] = metric._score_from_sums(sums.tolist(), n)
    return scores


def _percentile_interval(scores: np.ndarray) -> tuple[float, float]:
    # sacrebleu's 95% bounds: the n//40-th value from each end of the sorted scores.
    scores = np.sort(scores)
    lower = len(scores) // 40
    return float(scores[lower]), float(scores[len(scores) - lower - 1])


def bootstrap_interval(metric: Metric, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """95% bootstrap confidence interval (low, high) of ``metric``'s corpus score.

    Raises:
        EmptyCorpusError: if the metric has no examples.
    """
    if len(metric) == 0:
        raise EmptyCorpusError(f"{metric.name}: no examples to resample")
    return _percentile_interval(_resampled_scores(metric, _resample_indices(len(metric), n_resamples, seed)))


@dataclass(frozen=True)
class PairedResult:
    """Outcome of a paired test of ``system`` against ``baseline`` on the same examples.

    ``p_value`` is the probability of a difference at least this large by chance;
    ``system_ci`` the system's 95% bootstrap interval; ``method`` names the procedure.
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


def paired_bootstrap_rows(
    baseline: Metric, system: Metric, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> PairedResult:
    """Paired bootstrap over the metrics' stored rows (for any metric)."""
    _check_comparable(baseline, system)
    idxs = _resample_indices(len(baseline), n_resamples, seed)
    base_scores, sys_scores = _resampled_scores(baseline, idxs), _resampled_scores(system, idxs)
    base, sys_ = baseline.corpus().score, system.corpus().score
    return PairedResult(
        metric=baseline.name, baseline_score=base, system_score=sys_,
        p_value=_p_value(np.abs(sys_scores - base_scores), abs(base - sys_)),
        system_ci=_percentile_interval(sys_scores), n_resamples=n_resamples, seed=seed,
        method="paired bootstrap (Koehn 2004) over per-example statistics",
        signature=f"{baseline.signature}|test:paired-bs|bs:{n_resamples}|rs:{seed}",
        higher_is_better=baseline.higher_is_better,
    )


def _paired_sacrebleu(baseline: Metric, system: Metric, n_resamples: int, seed: int) -> PairedResult:
    from sacrebleu.significance import Result, _paired_bs_test

    from .sacrebleu_metrics import SacrebleuMetric

    assert isinstance(baseline, SacrebleuMetric) and isinstance(system, SacrebleuMetric)
    _check_comparable(baseline, system)
    backend = baseline.backend
    width = max(len(r) for r in baseline._references)
    # sacrebleu wants reference *streams*; None pads examples with fewer references.
    streams = [[refs[i] if i < len(refs) else None for refs in baseline._references] for i in range(width)]
    base = baseline.corpus().score
    info = {baseline.name: ([list(r) for r in baseline.rows()], Result(base))}
    _, results = _paired_bs_test(
        info, "system", list(system._hypotheses), streams, {baseline.name: backend},
        n_samples=n_resamples, seed=seed,
    )
    result = results[baseline.name]
    sig = baseline._sacrebleu_signature()
    sig.update("bs", n_resamples)
    sig.update("seed", seed)
    return PairedResult(
        metric=baseline.name, baseline_score=base, system_score=float(result.score),
        p_value=float(result.p_value), system_ci=(result.mean - result.ci, result.mean + result.ci),
        n_resamples=n_resamples, seed=seed, method="sacrebleu paired bootstrap resampling",
        signature=sig.format() + baseline._suffix(), higher_is_better=baseline.higher_is_better,
    )


def paired_test(
    baseline: Metric, system: Metric, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> PairedResult:
    """Is ``system`` different from ``baseline``? Both metric objects must hold the same
    examples (same references, same order) scored with the same settings.

    BLEU/chrF/TER use sacrebleu's paired bootstrap; other metrics the same procedure over
    their per-example statistics.

    Raises:
        IncomparableSystemsError: different metrics, settings or references.
        CountMismatchError: different numbers of examples.
    """
    from .sacrebleu_metrics import SacrebleuMetric

    if isinstance(baseline, SacrebleuMetric):
        return _paired_sacrebleu(baseline, system, n_resamples, seed)
    return paired_bootstrap_rows(baseline, system, n_resamples, seed)
