"""Scoring a scenario's outcomes: the one place that turns outputs into corpus results.

The runner (live and final), resume, ``show``, ``compare``, the exports and the app all fill
metrics through :func:`fill_metrics`, with the examples in data order, so the same run gives
the same score and the same bootstrap interval wherever it is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import evaluators
from engine import PerplexityResult
from scenarios.scenario import MetricSpec, Scenario


@dataclass(frozen=True)
class Outcome:
    """What one model produced for one example: enough to score it again."""

    index: int  # the example's position in the data: scoring order
    output: str
    references: tuple[str, ...]
    likelihood: PerplexityResult | evaluators.ChoiceOutcome | None = None


def scenario_language(scenario: Scenario, references: Iterable[Sequence[str]]) -> str | None:
    """The language every metric of a run is told: the declared target language, else the one
    the references are written in (decided once, over all of them, never per output)."""
    return evaluators.resolve_language(scenario.target_lang, (r for refs in references for r in refs))


def score_one(spec: MetricSpec, metric: evaluators.Metric, outcome: Outcome) -> evaluators.ExampleScore:
    """Add one outcome to ``metric`` and return its own score."""
    if spec.input != "text":  # perplexity results, option log-likelihoods: the engine's scores
        return metric.add(outcome.likelihood)
    return metric.add(outcome.output, outcome.references)


def fill_metrics(scenario: Scenario, language: str | None, outcomes: Iterable[Outcome]) -> dict[str, evaluators.Metric]:
    """Fresh metrics (spec name -> metric) holding ``outcomes`` in data order."""
    ordered = sorted(outcomes, key=lambda o: o.index)
    metrics = {}
    for spec in scenario.metrics:
        metric = spec.build(language)
        for outcome in ordered:
            score_one(spec, metric, outcome)
        metrics[spec.name] = metric
    return metrics


def corpus_results(metrics: dict[str, evaluators.Metric], n_bootstrap: int = 1000) -> dict[str, evaluators.MetricResult]:
    """Corpus results with bootstrap intervals (none for a single example or ``n_bootstrap == 0``)."""
    results = {}
    for name, metric in metrics.items():
        with_ci = n_bootstrap > 0 and len(metric) > 1
        if with_ci:
            metric.n_bootstrap = n_bootstrap
        results[name] = metric.corpus(ci=with_ci)
    return results


def paired_tests(scenario: Scenario, language: str | None, baseline: Sequence[Outcome], system: Sequence[Outcome]
                 ) -> dict[str, evaluators.PairedResult]:
    """Paired bootstrap of ``system`` against ``baseline`` per metric, on the examples both finished."""
    common = {o.index for o in baseline} & {o.index for o in system}
    filled_a = fill_metrics(scenario, language, (o for o in baseline if o.index in common))
    filled_b = fill_metrics(scenario, language, (o for o in system if o.index in common))
    return {name: evaluators.paired_test(filled_a[name], filled_b[name]) for name in filled_a}
