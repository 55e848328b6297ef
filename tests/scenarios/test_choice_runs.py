"""Choice-task runs through the real engine on tiny models: stored option log-likelihoods,
scores with intervals equal in every view, exports, and where two models disagree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.choice_scoring import ChoiceRequest
from scenarios.choice_report import disagreement_lines
from scenarios.events import ExampleFinished, RunFinished
from scenarios.report import export
from scenarios.rescoring import common_examples, corpus_scores
from scenarios.runner import ScenarioRun
from scenarios.scenario import load_scenario
from scenarios.store import Store

ROWS = [{"id": f"r{i}", "text": text, "label": label} for i, (text, label) in enumerate([
    ("The quick brown fox jumps over the lazy dog.", "positive"),
    ("What is <script>the capital</script> of [bold]France[/bold]?", "negative"),
    ("Numbers like 1, 2, 3 and 42 appear in text.", "positive"),
    ("Der schnelle braune Fuchs springt.", "negative"),
    ("A language model predicts the next token.", "positive"),
    ("Summarize: scientists measured the effect of sleep.", "negative"),
])]


def write_classification(folder: Path, metrics: str = "[macro_f1, {name: acc, calibrate: true}]") -> Path:
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    path = folder / "classify.yaml"
    path.write_text(
        "name: tiny-classify\ntask: classification\ndata: {path: data.jsonl}\n"
        "fields: {id: id, input: text, label: label}\n"
        "labels: {positive: '<b>fox</b>', negative: '[red]Paris[/red]'}\n"  # hostile verbalisers
        "prompt: {completion: \"Text: {input}\\nAnswer:\", seq2seq: 'sst2 sentence: {input}',"
        " masked: '{input} It was {answer}.'}\n"
        f"metrics: {metrics}\n", encoding="utf-8")
    return path


async def run_all(scenario, models, engine, store) -> list:
    return [event async for event in ScenarioRun(scenario, models, engine, store)]


async def test_classification_run_stores_every_option_and_scores_equal_everywhere(engine, tiny_causal, tiny_seq2seq,
                                                                                 tmp_path):
    scenario = load_scenario(write_classification(tmp_path, "[acc, macro_f1, mcc]"))
    store = Store(tmp_path / "r.sqlite")
    events = await run_all(scenario, [tiny_causal, tiny_seq2seq], engine, store)
    final = events[-1]
    assert isinstance(final, RunFinished) and final.failed == {tiny_causal: 0, tiny_seq2seq: 0}
    finished = [e for e in events if isinstance(e, ExampleFinished)]
    assert len(finished) == 12 and all(e.output in ("positive", "negative") for e in finished)

    # Every option's log-likelihood, the chosen and the gold one, as the engine computes them.
    rows = store.examples(final.run_id, tiny_causal)
    stored = {r.example_id: r.likelihood for r in rows}
    requests = [ChoiceRequest(f"Text: {r['text']}\nAnswer:", (" <b>fox</b>", " [red]Paris[/red]")) for r in ROWS]
    direct = await engine.score_choices(tiny_causal, requests)
    for row, scores in zip(ROWS, direct):
        saved = stored[row["id"]]
        assert saved["gold"] == (0 if row["label"] == "positive" else 1)
        assert saved["labels"] == ["positive", "negative"]
        assert saved["logprobs"] == pytest.approx(list(scores.logprobs), abs=1e-4)
        assert saved["method"].startswith("causal-sum-logprob")
    for r in rows:
        best = max(range(2), key=lambda i: (r.likelihood["logprobs"][i], -i))
        assert r.output == ["positive", "negative"][best]

    # The same numbers (and intervals) in the run's final event, show, and every export.
    recomputed = corpus_scores(store, store.run(final.run_id))
    for model in (tiny_causal, tiny_seq2seq):
        for name in ("acc", "macro_f1", "mcc"):
            live, again = final.results[model][name], recomputed[model][name]
            assert live.ci is not None and (live.score, live.ci, live.signature) == (again.score, again.ci, again.signature)
    report = json.loads(export(store, store.run(final.run_id), "json"))
    assert report["scores"][tiny_causal]["acc"]["score"] == recomputed[tiny_causal]["acc"].score
    assert report["scores"][tiny_seq2seq]["acc"]["signature"].endswith(
        "method:seq2seq-target-logprob(encoder: input with special tokens; decoder: target + EOS)")
    matrix = report["confusion"][tiny_causal]
    assert matrix["labels"] == ["positive", "negative"] and sum(map(sum, matrix["counts"])) == 6
    example = next(e for e in report["examples"] if e["model"] == tiny_causal and e["id"] == "r0")
    assert [o["gold"] for o in example["options"]] == [True, False]
    assert sum(o["chosen"] for o in example["options"]) == 1
    assert report["paired_tests"] and {t["metric"] for t in report["paired_tests"]} == {"acc", "macro_f1", "mcc"}

    html = export(store, store.run(final.run_id), "html")
    assert "<script>" not in html and "&lt;script&gt;the capital" in html and "Confusion matrix" in html
    assert "✓" in html and "★" in html
    md = export(store, store.run(final.run_id), "md")
    assert "Confusion matrix" in md and "<script>" not in md and " ✓" in md and " ★" in md
    csv_text = export(store, store.run(final.run_id), "csv")
    assert "options" in csv_text.splitlines()[0] and "[gold]" in csv_text and "[chosen]" in csv_text

    # compare: where the two models chose differently, example by example.
    run = store.run(final.run_id)
    rows_a, rows_b = common_examples(store, run, tiny_causal, run, tiny_seq2seq)
    lines = disagreement_lines(rows_a, rows_b)
    outputs_a = {r.example_id: r.output for r in rows_a}
    outputs_b = {r.example_id: r.output for r in rows_b}
    differ = sorted(i for i in outputs_a if outputs_a[i] != outputs_b[i])
    assert lines[0].startswith(f"A and B chose different options on {len(differ)} of 6 examples")
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == differ
    # the app's compare mode lists the same examples (a choice example's output is its chosen option)
    from scenarios.comparison import compare_run

    comparison = compare_run(store, final.run_id)
    assert sorted(a.example_id for a, _ in comparison.differing(tiny_causal, tiny_seq2seq)) == differ


async def test_calibrated_metrics_get_the_content_free_log_likelihoods(engine, tiny_causal, tmp_path):
    scenario = load_scenario(write_classification(tmp_path))
    store = Store(tmp_path / "r.sqlite")
    final = (await run_all(scenario, [tiny_causal], engine, store))[-1]
    assert isinstance(final, RunFinished)
    rows = store.examples(final.run_id, tiny_causal)
    [free] = await engine.score_choices(tiny_causal, [ChoiceRequest("Text: N/A\nAnswer:",
                                                                    (" <b>fox</b>", " [red]Paris[/red]"))])
    for r in rows:
        assert r.likelihood["content_free"] == pytest.approx(list(free.logprobs), abs=1e-4)
    right = sum(
        (max(range(2), key=lambda i: (r.likelihood["logprobs"][i] - r.likelihood["content_free"][i], -i))
         == r.likelihood["gold"]) for r in rows)
    assert final.results[tiny_causal]["acc"].score == pytest.approx(100 * right / 6)
    assert "calib:content-free(N/A)" in final.results[tiny_causal]["acc"].signature


async def test_multiple_choice_on_a_masked_model_scores_multi_token_options(engine, tiny_masked, tmp_path):
    rows = [{"q": "the quick brown fox jumps over the", "c": ["lazy dog", "house", "capital of france"], "a": 0},
            {"q": "what is the capital of", "c": ["france", "the quick fox"], "a": "france"}]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = tmp_path / "mc.yaml"
    path.write_text("name: mc\ntask: multiple_choice\ndata: {path: mc.jsonl}\nfields: {input: q, choices: c, label: a}\n"
                    "prompt: {masked: '{input} {answer}.'}\n", encoding="utf-8")
    store = Store(tmp_path / "r.sqlite")
    final = (await run_all(load_scenario(path), [tiny_masked], engine, store))[-1]
    assert isinstance(final, RunFinished) and final.failed == {tiny_masked: 0}
    stored = [r.likelihood for r in store.examples(final.run_id, tiny_masked)]
    assert stored[0]["method"].startswith("masked-pll") and max(stored[0]["num_tokens"]) > 1
    assert set(final.results[tiny_masked]) == {"acc", "acc_norm"}


async def test_a_cancelled_choice_run_resumes_with_its_stored_options(engine, tiny_causal, tmp_path):
    scenario = load_scenario(write_classification(tmp_path, "[acc, mcc]"))
    store = Store(tmp_path / "r.sqlite")
    run = ScenarioRun(scenario, [tiny_causal], engine, store, batch_size=2)
    async for event in run:
        if isinstance(event, ExampleFinished):
            run.cancel()  # after the first chunk of two examples
    first = {r.example_id for r in store.examples(run.run_id)}
    assert 0 < len(first) < 6 and store.run(run.run_id).status == "cancelled"
    events = [e async for e in ScenarioRun(None, [], engine, store, resume=run.run_id, batch_size=2)]
    final = events[-1]
    assert isinstance(final, RunFinished) and store.run(run.run_id).status == "finished"
    redone = {e.example.id for e in events if isinstance(e, ExampleFinished)}
    assert redone.isdisjoint(first) and len(redone | first) == 6
    # the restored examples score exactly as a fresh run of the whole set does
    fresh = (await run_all(scenario, [tiny_causal], engine, Store(tmp_path / "fresh.sqlite")))[-1]
    for name in ("acc", "mcc"):
        assert final.results[tiny_causal][name].score == pytest.approx(fresh.results[tiny_causal][name].score)
