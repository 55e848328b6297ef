"""Bootstrap resampling over examples, with sacrebleu's conventions.

Every confidence interval and paired test in lmscope resamples *examples* with
replacement and recomputes the corpus score from the resampled rows of sufficient
statistics, so corpus-level metrics (BLEU's pooled n-gram counts, pooled perplexity) are
resampled correctly rather than approximated by a mean of sentence scores.

The conventions are sacrebleu's (``sacrebleu.significance``): the resamples are
``numpy.random.default_rng(seed).choice(n, (B, n))``, and an interval is reported as the
bootstrap mean ± half the width of the 95% percentile interval (the ``n//40``-th value
from each end of the sorted resampled scores), as ``sacrebleu --confidence`` prints it.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import numpy as np

from .errors import EmptyCorpusError

if TYPE_CHECKING:
    from .base import Metric

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 12345  # sacrebleu's default SACREBLEU_SEED
CI_CONVENTION = "mean±hw"  # goes in signatures as ci:mean±hw


def resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Example indices of each resample, shape ``(n_resamples, n)``: sacrebleu's draw, so
    with the same seed both pick the same resamples."""
    return np.random.default_rng(seed).choice(n, size=(n_resamples, n), replace=True)


def resampled_scores(metric: Metric, indices: np.ndarray) -> np.ndarray:
    """The corpus score of ``metric`` on each resample (one row of ``indices`` each)."""
    rows = np.asarray(metric.rows(), dtype=np.float64)
    n = rows.shape[0]
    scores = np.empty(len(indices))
    for b, idx in enumerate(indices):
        # Column sums of a resample = (how often each row was drawn) @ rows.
        sums = np.bincount(idx, minlength=n).astype(np.float64) @ rows
        scores[b] = metric._resampled_score(sums, n)
    return scores


def mean_half_width(scores: np.ndarray) -> tuple[float, float]:
    """sacrebleu's ``Score.estimate_ci``: the mean of the resampled scores and half the
    width of their 95% percentile interval."""
    ordered = sorted(float(s) for s in scores)
    lower = len(ordered) // 40
    half_width = 0.5 * (ordered[len(ordered) - lower - 1] - ordered[lower])
    return statistics.mean(ordered), half_width


def bootstrap_estimate(metric: Metric, n_resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """(mean, half-width) of ``metric``'s corpus score over ``n_resamples`` seeded resamples.

    Raises:
        EmptyCorpusError: if the metric has no examples.
    """
    if len(metric) == 0:
        raise EmptyCorpusError(f"{metric.name}: no examples to resample")
    return mean_half_width(resampled_scores(metric, resample_indices(len(metric), n_resamples, seed)))


def bootstrap_interval(metric: Metric, n_resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """The 95% interval (mean - half-width, mean + half-width) of ``metric``'s corpus score.

    Raises:
        EmptyCorpusError: if the metric has no examples.
    """
    mean, half_width = bootstrap_estimate(metric, n_resamples, seed)
    return mean - half_width, mean + half_width
