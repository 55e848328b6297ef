"""Runs that always finish: failing models, scoring failures, lost status updates, resumes from
anywhere, over-long inputs — through the real engine on tiny models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scenarios.catalog import find_scenario
from scenarios.events import ExampleFinished, RunFailed, RunFinished
from scenarios.rescoring import corpus_scores
from scenarios.runner import ScenarioRun
from scenarios.scenario import load_scenario
from scenarios.store import Store
from tests.scenarios.test_runner import collect, write_translation_scenario


async def test_a_model_whose_every_example_fails_leaves_the_others_scored(engine, tiny_causal, tiny_causal_b,
                                                                          tmp_path):
    scenario = load_scenario(write_translation_scenario(tmp_path, n=4, max_new_tokens=6))
    store = Store(tmp_path / "r.sqlite")
    missing = str(tmp_path / "missing.gguf")
    events = await collect(ScenarioRun(scenario, [tiny_causal, missing, tiny_causal_b], engine, store,
                                       n_bootstrap=50))
    final = events[-1]
    assert isinstance(final, RunFinished)
    assert set(final.results) == {tiny_causal, tiny_causal_b}
    assert "not found" in final.model_errors[missing]
    assert final.failed == {tiny_causal: 0, tiny_causal_b: 0, missing: 4}
    assert {c.metric for c in final.comparisons} == {"bleu", "chrf", "rougeL"}  # the pair that ran is tested
    run = store.run(final.run_id)
    assert run.status == "failed" and "not found" in run.model_errors[missing]


async def test_oversized_max_new_tokens_fails_one_model_with_the_reason(engine, tiny_causal, tiny_causal_long,
                                                                       tmp_path):
    # 200 new tokens leave no room in tiny_causal's 128-token context; tiny_causal_long has 4,096.
    scenario = load_scenario(write_translation_scenario(tmp_path, n=3, max_new_tokens=200))
    store = Store(tmp_path / "r.sqlite")
    events = await collect(ScenarioRun(scenario, [tiny_causal, tiny_causal_long], engine, store, n_bootstrap=0))
    final = events[-1]
    assert isinstance(final, RunFinished) and final.failed == {tiny_causal: 3, tiny_causal_long: 0}
    assert "max_new_tokens=200" in final.model_errors[tiny_causal]
    assert set(final.results) == {tiny_causal_long}
    assert store.run(final.run_id).status == "failed"


async def test_outputs_are_stored_before_scoring_so_a_scoring_failure_loses_nothing(engine, tiny_causal, tmp_path,
                                                                                    monkeypatch):
    import scenarios.runner as runner

    real = runner.score_one
    calls = {"n": 0}

    def flaky(spec, metric, outcome):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("metric backend crashed")
        return real(spec, metric, outcome)

    monkeypatch.setattr(runner, "score_one", flaky)
    scenario = load_scenario(write_translation_scenario(tmp_path, n=3, max_new_tokens=4))
    store = Store(tmp_path / "r.sqlite")
    events = await collect(ScenarioRun(scenario, [tiny_causal], engine, store, n_bootstrap=0))
    finished = [e for e in events if isinstance(e, ExampleFinished)]
    failed = [e for e in finished if e.error]
    assert len(failed) == 1 and "scoring failed: unexpected error: RuntimeError" in failed[0].error
    row = next(r for r in store.examples(events[-1].run_id) if r.error)
    assert row.output == failed[0].output and row.prompt  # the output was kept
    assert store.run(events[-1].run_id).status == "failed"


def test_a_run_whose_process_died_is_marked_interrupted_and_resumable(tmp_path):
    db = tmp_path / "r.sqlite"
    store = Store(db)
    run_id = store.create_run(scenario_name="t", scenario_path=None, scenario_hash="h", scenario_text="",
                              models=[], generation={}, seed=0, limit=None, total=1, versions={}, signatures={})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store._db.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead.pid, run_id))  # as if killed with -9
    store.close()
    assert Store(db).run(run_id).status == "interrupted"


async def test_resume_works_from_another_folder_and_refuses_changed_data(engine, tiny_causal, tmp_path,
                                                                         monkeypatch):
    work = tmp_path / "project"
    work.mkdir()
    write_translation_scenario(work, n=4, max_new_tokens=4)
    monkeypatch.chdir(work)
    scenario = load_scenario(Path("translate.yaml"))  # a relative path, as typed
    store = Store(tmp_path / "r.sqlite")
    run = ScenarioRun(scenario, [tiny_causal], engine, store, batch_size=2, n_bootstrap=0)
    async for event in run:
        if isinstance(event, ExampleFinished):
            run.cancel()
    run_id = run.run_id
    assert store.run(run_id).status == "cancelled"

    monkeypatch.chdir(tmp_path)  # somewhere else entirely
    events = await collect(ScenarioRun(None, [], engine, store, resume=run_id, n_bootstrap=0))
    assert isinstance(events[-1], RunFinished), events[-1]
    assert len(store.examples(run_id)) == 4

    store.set_status(run_id, "cancelled")
    (work / "data.jsonl").write_text((work / "data.jsonl").read_text().replace("small", "tiny"))
    refused = await collect(ScenarioRun(None, [], engine, store, resume=run_id, n_bootstrap=0))
    assert isinstance(refused[0], RunFailed) and "changed since it began" in refused[0].message
    assert "--force" in refused[0].hint
    forced = await collect(ScenarioRun(None, [], engine, store, resume=run_id, n_bootstrap=0, force=True))
    assert isinstance(forced[-1], RunFinished)


def long_input_scenario(folder: Path, words: int, shots: int = 1, system: str = "You translate carefully.") -> Path:
    rows = [{"id": f"d{i}", "text": " ".join(f"word{i}x{k}" for k in range(words)), "gold": f"Summary {i}."}
            for i in range(3)]
    (folder / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "long.yaml"
    path.write_text(
        "name: long\ntask: summarization\ndata: {path: docs.jsonl}\nfields: {id: id, input: text, references: gold}\n"
        f"system: {system!r}\nprompt: \"Summarise this in one line.\\n\\n{{input}}\\n\\nEND OF DOCUMENT\"\n"
        + (f"few_shot: {{k: {shots}, pool: data}}\n" if shots else "")
        + "generation: {max_new_tokens: 8}\nmetrics: [rougeL]\n",
        encoding="utf-8")
    return path


async def test_over_long_input_is_cut_never_the_instructions(engine, tiny_causal, tmp_path):
    scenario = load_scenario(long_input_scenario(tmp_path, words=60, shots=0))  # far beyond 128 tokens
    store = Store(tmp_path / "r.sqlite")
    events = await collect(ScenarioRun(scenario, [tiny_causal], engine, store, n_bootstrap=0))
    assert isinstance(events[-1], RunFinished) and events[-1].failed == {tiny_causal: 0}
    rows = store.examples(events[-1].run_id)
    for row in rows:
        assert any("input truncated" in w for w in row.warnings), row.warnings
        assert "You translate carefully." in row.prompt and "Summarise this in one line." in row.prompt
        assert "END OF DOCUMENT" in row.prompt
        assert row.input[:40] in row.prompt and row.input not in row.prompt  # the document's start, cut
    finished = [e for e in events if isinstance(e, ExampleFinished)]
    assert all(e.warnings for e in finished)


async def test_fixed_parts_that_cannot_fit_fail_the_example_with_the_reason(engine, tiny_causal, tmp_path):
    scenario = load_scenario(long_input_scenario(tmp_path, words=60, shots=2, system="Be careful. " * 80))
    store = Store(tmp_path / "r.sqlite")
    events = await collect(ScenarioRun(scenario, [tiny_causal], engine, store, n_bootstrap=0))
    final = events[-1]
    assert isinstance(final, RunFinished) and final.failed == {tiny_causal: 3}
    assert "fixed parts" in final.model_errors[tiny_causal]


async def test_one_run_shows_one_interval_everywhere(engine, tiny_causal, tiny_causal_b, tmp_path):
    from scenarios.report import export

    scenario = load_scenario(write_translation_scenario(tmp_path, n=6, max_new_tokens=6))
    store = Store(tmp_path / "r.sqlite")
    events = await collect(ScenarioRun(scenario, [tiny_causal, tiny_causal_b], engine, store, batch_size=4))
    final = events[-1]
    stored = corpus_scores(store, store.run(final.run_id))
    exported = json.loads(export(store, store.run(final.run_id), "json"))
    for model in (tiny_causal, tiny_causal_b):
        for metric, result in final.results[model].items():
            assert result.ci is not None
            assert stored[model][metric].ci == result.ci and stored[model][metric].score == result.score
            assert tuple(exported["scores"][model][metric]["ci"]) == result.ci
    assert len(exported["paired_tests"]) == 3


async def test_translation_zh_en_finishes_even_when_the_model_writes_chinese(engine, tiny_causal, tmp_path):
    scenario = find_scenario("translation_zh_en")
    store = Store(tmp_path / "r.sqlite")
    events = await collect(ScenarioRun(scenario, [tiny_causal], engine, store, limit=4, n_bootstrap=0))
    assert isinstance(events[-1], RunFinished) and events[-1].failed == {tiny_causal: 0}


def test_chinese_output_in_a_zh_en_run_scores_about_zero_with_a_warning():
    from scenarios.scoring import Outcome, fill_metrics

    scenario = find_scenario("translation_zh_en")
    echoed = [Outcome(i, "我们明天早上去公园散步。", ("We will take a walk in the park tomorrow morning.",))
              for i in range(3)]
    for name, metric in fill_metrics(scenario, "en", echoed).items():
        result = metric.corpus()
        assert result.score < 5, (name, result.score)
    bleu = fill_metrics(scenario, "en", echoed)["bleu"].corpus()
    assert bleu.warnings
