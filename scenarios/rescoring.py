"""Corpus scores and paired tests recomputed from what the store holds (deterministic)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import evaluators
from engine import PerplexityResult
from scenarios.choice_runs import is_choice_json, outcome_from_json
from scenarios.errors import StoreError
from scenarios.scenario import Scenario, parse_scenario
from scenarios.scoring import Outcome, corpus_results, fill_metrics, paired_tests, scenario_language
from scenarios.store import Store, StoredExample, StoredRun


def stored_scenario(run: StoredRun) -> Scenario:
    """The scenario exactly as the run read it (data paths resolve against its original folder)."""
    return parse_scenario(run.scenario_text, Path(run.scenario_path) if run.scenario_path else None)


def outcome(row: StoredExample) -> Outcome:
    """A stored example as something to score."""
    if is_choice_json(row.likelihood):
        return Outcome(row.index, row.output, row.references, outcome_from_json(row.likelihood))
    likelihood = PerplexityResult(**row.likelihood) if row.likelihood else None
    return Outcome(row.index, row.output, row.references, likelihood)


def run_language(store: Store, run: StoredRun, scenario: Scenario) -> str | None:
    """The language the run's metrics were told (recorded; re-detected for runs stored before it was)."""
    if run.language is not None or scenario.target_lang is not None:
        return run.language or scenario.target_lang
    return scenario_language(scenario, (row.references for row in store.examples(run.id)))


def corpus_scores(store: Store, run: StoredRun, *, ci: bool = True) -> dict[str, dict[str, evaluators.MetricResult]]:
    """model -> metric -> corpus result over the run's successful examples (data order)."""
    scenario = stored_scenario(run)
    language = run_language(store, run, scenario)
    out = {}
    for model in run.model_names:
        rows = store.examples(run.id, model, include_failed=False)
        if rows:
            out[model] = corpus_results(fill_metrics(scenario, language, map(outcome, rows)), 1000 if ci else 0)
    return out


def paired(store: Store, run_a: StoredRun, model_a: str, run_b: StoredRun, model_b: str) -> list[evaluators.PairedResult]:
    """Paired tests of (run_b, model_b) against (run_a, model_a) on the examples both finished."""
    scenario = stored_scenario(run_a)
    if run_a.scenario_hash != run_b.scenario_hash:
        scenario_b = stored_scenario(run_b)
        if [m.name for m in scenario.metrics] != [m.name for m in scenario_b.metrics]:
            raise StoreError(f"runs {run_a.id} and {run_b.id} use different scenarios and metrics; "
                             "they cannot be compared example by example")
    rows_a, rows_b = common_examples(store, run_a, model_a, run_b, model_b)
    if len(rows_a) < 2:
        raise StoreError(f"the runs share {len(rows_a)} finished example(s); a paired test needs at least 2")
    language = run_language(store, run_a, scenario)
    return list(paired_tests(scenario, language, [outcome(r) for r in rows_a], [outcome(r) for r in rows_b]).values())


def common_examples(store: Store, run_a: StoredRun, model_a: str, run_b: StoredRun, model_b: str
                    ) -> tuple[list[StoredExample], list[StoredExample]]:
    """The finished examples both sides have, matched by example id, in run A's data order."""
    rows_a = {r.example_id: r for r in store.examples(run_a.id, model_a, include_failed=False)}
    rows_b = {r.example_id: r for r in store.examples(run_b.id, model_b, include_failed=False)}
    common = [i for i in rows_a if i in rows_b]
    # Run B's rows take run A's index, so both sides are filled in the same order.
    return [rows_a[i] for i in common], [_reindexed(rows_b[i], rows_a[i].index) for i in common]


def _reindexed(row: StoredExample, index: int) -> StoredExample:
    return replace(row, index=index)


def model_pairs(models: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(models, 2))
