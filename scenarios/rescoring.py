"""Corpus scores and paired tests recomputed from what the store holds (deterministic)."""

from __future__ import annotations

import itertools

import evaluators
from engine import PerplexityResult
from scenarios.errors import StoreError
from scenarios.scenario import Scenario, parse_scenario
from scenarios.store import Store, StoredExample, StoredRun


def stored_scenario(run: StoredRun) -> Scenario:
    from pathlib import Path

    return parse_scenario(run.scenario_text, Path(run.scenario_path) if run.scenario_path else None)


def _fill(scenario: Scenario, rows: list[StoredExample]) -> dict[str, evaluators.Metric]:
    metrics = {}
    for spec in scenario.metrics:
        metric = scenario.make_metric(spec)
        for row in rows:
            if spec.is_likelihood:
                metric.add(PerplexityResult(**row.likelihood))
            else:
                metric.add(row.output, row.references)
        metrics[spec.name] = metric
    return metrics


def corpus_scores(store: Store, run: StoredRun, *, ci: bool = True) -> dict[str, dict[str, evaluators.MetricResult]]:
    """model -> metric -> corpus result over the run's successful examples."""
    scenario = stored_scenario(run)
    out = {}
    for model in run.model_names:
        rows = store.examples(run.id, model, include_failed=False)
        if rows:
            out[model] = {name: m.corpus(ci=ci and len(m) > 1) for name, m in _fill(scenario, rows).items()}
    return out


def paired(store: Store, run_a: StoredRun, model_a: str, run_b: StoredRun, model_b: str) -> list[evaluators.PairedResult]:
    """Paired tests of (run_b, model_b) against (run_a, model_a) on the examples both finished."""
    if run_a.scenario_hash != run_b.scenario_hash:
        scenario_a, scenario_b = stored_scenario(run_a), stored_scenario(run_b)
        if [m.name for m in scenario_a.metrics] != [m.name for m in scenario_b.metrics]:
            raise StoreError(f"runs {run_a.id} and {run_b.id} use different scenarios and metrics; "
                             "they cannot be compared example by example")
    scenario = stored_scenario(run_a)
    rows_a = {r.example_id: r for r in store.examples(run_a.id, model_a, include_failed=False)}
    rows_b = {r.example_id: r for r in store.examples(run_b.id, model_b, include_failed=False)}
    common = [i for i in rows_a if i in rows_b]
    if len(common) < 2:
        raise StoreError(f"the runs share {len(common)} finished example(s); a paired test needs at least 2")
    metrics_a = _fill(scenario, [rows_a[i] for i in common])
    metrics_b = _fill(scenario, [rows_b[i] for i in common])
    return [evaluators.paired_test(metrics_a[name], metrics_b[name]) for name in metrics_a]


def model_pairs(models: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(models, 2))
