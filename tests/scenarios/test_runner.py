"""The runner through the real engine on tiny models: events, store, scores, cancel and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import evaluators
from engine import PerplexityResult
from scenarios.catalog import find_scenario
from scenarios.events import (
    ExampleDelta,
    ExampleFinished,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    ScoresUpdated,
)
from scenarios.rescoring import corpus_scores
from scenarios.runner import ScenarioRun
from scenarios.scenario import load_scenario
from scenarios.store import Store


async def collect(run: ScenarioRun) -> list:
    return [event async for event in run]


def write_translation_scenario(folder: Path, n: int = 10, max_new_tokens: int = 12) -> Path:
    rows = [{"id": f"s{i}", "en": f"The house number {i} is small.", "de": [f"Das Haus Nummer {i} ist klein."]}
            for i in range(n)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "translate.yaml"
    path.write_text(f"name: tiny-translate\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
                    f"data: {{path: data.jsonl}}\nfields: {{id: id, input: en, references: de}}\n"
                    f"generation: {{max_new_tokens: {max_new_tokens}}}\nmetrics: [bleu, chrf, rougeL]\n",
                    encoding="utf-8")
    return path


async def test_run_streams_events_and_stored_scores_equal_the_evaluators(engine, tiny_causal, tmp_path):
    scenario = load_scenario(write_translation_scenario(tmp_path))
    store = Store(tmp_path / "results.sqlite")
    events = await collect(ScenarioRun(scenario, [tiny_causal], engine, store, batch_size=4))
    started = events[0]
    assert isinstance(started, RunStarted) and started.total == 10
    assert set(started.signatures[tiny_causal]) == {"bleu", "chrf", "rougeL"}
    finished = [e for e in events if isinstance(e, ExampleFinished)]
    assert sorted(e.example.id for e in finished) == sorted(f"s{i}" for i in range(10))
    assert any(isinstance(e, ExampleDelta) and e.text for e in events)
    updates = [e for e in events if isinstance(e, ScoresUpdated)]
    assert [u.done for u in updates] == list(range(1, 11))  # every example moves the scores, not every batch
    final = events[-1]
    assert isinstance(final, RunFinished) and final.failed == {tiny_causal: 0}

    # The live panel's numbers equal the evaluators' numbers on the same outputs.
    outputs = {e.example.id: e.output for e in finished}
    refs = [[f"Das Haus Nummer {i} ist klein."] for i in range(10)]
    hyps = [outputs[f"s{i}"] for i in range(10)]
    for name in ("bleu", "chrf", "rougeL"):
        direct = evaluators.get(name, language="de") if name != "rougeL" else evaluators.get(name)
        expected = direct.score_corpus(hyps, refs).score
        assert final.results[tiny_causal][name].score == pytest.approx(expected)
        assert updates[-1].model == tiny_causal and updates[-1].results[name].score == pytest.approx(expected)
    # ... and so does the store, rescored later.
    stored = corpus_scores(store, store.run(final.run_id))
    assert stored[tiny_causal]["bleu"].score == pytest.approx(final.results[tiny_causal]["bleu"].score)
    rows = store.examples(final.run_id)
    assert len(rows) == 10 and all(r.prompt.startswith("<|user|>Translate the following English text into German") for r in rows)
    assert store.run(final.run_id).status == "finished"


async def test_two_models_side_by_side_get_paired_tests(engine, tiny_causal, tiny_causal_b, tmp_path):
    scenario = load_scenario(write_translation_scenario(tmp_path, n=6))
    store = Store(tmp_path / "results.sqlite")
    events = await collect(ScenarioRun(scenario, [tiny_causal, tiny_causal_b], engine, store, n_bootstrap=200))
    final = events[-1]
    assert isinstance(final, RunFinished) and set(final.results) == {tiny_causal, tiny_causal_b}
    assert {(c.metric, c.baseline, c.system) for c in final.comparisons} == {
        (m, tiny_causal, tiny_causal_b) for m in ("bleu", "chrf", "rougeL")}
    # tiny_causal_b has no chat template, so it got the completion prompt
    prompts = {r.model: r.prompt for r in Store(tmp_path / "results.sqlite").examples(final.run_id)}
    assert prompts[tiny_causal_b].startswith("English: The house number") and prompts[tiny_causal_b].endswith("German:")


async def test_perplexity_scenario_scores_with_engine_likelihoods(engine, tiny_causal, tmp_path):
    builtin = find_scenario("perplexity")
    store = Store(tmp_path / "results.sqlite")
    events = await collect(ScenarioRun(builtin, [tiny_causal], engine, store, limit=5))
    final = events[-1]
    assert isinstance(final, RunFinished)
    rows = store.examples(final.run_id)
    results = [PerplexityResult(**r.likelihood) for r in rows]
    nll, tokens = sum(r.nll for r in results), sum(r.num_tokens for r in results)
    import math

    assert final.results[tiny_causal]["perplexity"].score == pytest.approx(math.exp(nll / tokens))
    assert all(r.output == "" for r in rows)  # nothing generated for a likelihood-only scenario


async def test_cancel_leaves_a_run_that_resumes_with_every_example_once(engine, tiny_causal_long, tmp_path):
    scenario = load_scenario(write_translation_scenario(tmp_path, n=8, max_new_tokens=400))
    store = Store(tmp_path / "results.sqlite")
    run = ScenarioRun(scenario, [tiny_causal_long], engine, store, batch_size=2, n_bootstrap=0)
    events = []
    async for event in run:
        events.append(event)
        if isinstance(event, ExampleFinished):
            run.cancel()  # after the first batch
    assert isinstance(events[-1], RunCancelled)
    run_id = events[0].run_id
    assert store.run(run_id).status == "cancelled"
    done_before = {r.example_id for r in store.examples(run_id)}
    assert len(done_before) == 2

    resumed = await collect(ScenarioRun(None, [], engine, store, resume=run_id, n_bootstrap=0))
    assert resumed[0].already_done == {tiny_causal_long: 2}
    assert {e.example.id for e in resumed if isinstance(e, ExampleFinished)} == {f"s{i}" for i in range(8)} - done_before
    assert isinstance(resumed[-1], RunFinished)
    rows = store.examples(run_id)
    assert sorted(r.example_id for r in rows) == sorted(f"s{i}" for i in range(8))  # each exactly once
    assert store.run(run_id).status == "finished"


async def test_a_failing_model_is_reported_not_raised(engine, tmp_path):
    scenario = load_scenario(write_translation_scenario(tmp_path, n=2))
    events = await collect(ScenarioRun(scenario, [str(tmp_path / "missing.gguf")], engine, Store(tmp_path / "r.sqlite")))
    assert len(events) == 1 and isinstance(events[0], RunFailed) and "not found" in events[0].message
