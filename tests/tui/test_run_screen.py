"""The scenario run screen through Textual's pilot, on the real engine and tiny models.

The snapshot test alone uses the scripted engine (deterministic output and timing).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static

import evaluators
from evaluators import PairedResult
from scenarios.events import ExampleFinished
from tests.tui.scripted_engine import ScriptedEngine
from tests.tui.pilot_helpers import wait_for
from tui.screens.example_detail import ExampleDetailScreen
from tui.screens.run import RunScreen, parse_models
from tui.widgets.score_panel import ScoresPanel, format_score, format_verdict, printable

METRICS = ("chrf", "rougeL")


def write_scenario(folder: Path, n: int = 6, max_new_tokens: int = 8) -> Path:
    rows = [{"id": f"s{i}", "en": f"The house number {i} is small.", "de": [f"Das Haus Nummer {i} ist klein."]}
            for i in range(n)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "translate.yaml"
    path.write_text("name: tiny-translate\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
                    "data: {path: data.jsonl}\nfields: {id: id, input: en, references: de}\n"
                    f"generation: {{max_new_tokens: {max_new_tokens}}}\nmetrics: [{', '.join(METRICS)}]\n",
                    encoding="utf-8")
    return path


def run_app(host_app, model: str, screen: RunScreen | None = None, engine=None):
    """The host app around one run screen (``n_bootstrap=100`` unless given)."""
    return host_app(screen or RunScreen(n_bootstrap=100), model=model, engine=engine)


async def start(pilot, screen: RunScreen, path: str, models: str | None = None, limit: str = "",
                by_enter: bool = False) -> None:
    """Fill in the form and click Run (or press Enter in the path field: error toasts may cover Run)."""
    screen.query_one("#path", Input).value = path
    if models is not None:
        screen.query_one("#models", Input).value = models
    screen.query_one("#limit", Input).value = limit
    if by_enter:
        screen.query_one("#path", Input).focus()
        await pilot.press("enter")
    else:
        await pilot.click("#start")


async def test_scores_panel_shows_the_evaluators_numbers_for_the_same_outputs(host_app, tiny_causal, tmp_path):
    app = run_app(host_app, tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        assert screen.query_one("#models", Input).value == tiny_causal  # the app's model by default
        await start(pilot, screen, str(write_scenario(tmp_path)))
        await wait_for(pilot, lambda: screen.last_finished is not None)
        table = screen.query_one("#examples", DataTable)
        assert table.row_count == 6
        rows = app.store.examples(screen.run_id)
        assert sorted(r.example_id for r in rows) == [f"s{i}" for i in range(6)]
        assert {r.example_id: r.output for r in rows} == {rec.example_id: rec.output for rec in screen.records.values()}
        # no delta was dropped: what streamed for each example is its output
        assert any(r.output for r in rows)
        assert all(screen.stream_text(tiny_causal, r.example_id) == r.output for r in rows)

        panel = screen.query_one(ScoresPanel)
        assert panel.model == tiny_causal and panel.progress == (6, 6)
        shown = "\n".join(str(s.render()) for s in panel.query(Static))
        rows.sort(key=lambda r: r.index)
        for name in METRICS:
            direct = evaluators.get(name, language="de", n_bootstrap=100) if name == "chrf" \
                else evaluators.get(name, n_bootstrap=100)
            expected = direct.score_corpus([r.output for r in rows], [list(r.references) for r in rows], ci=True)
            assert panel.results[name].score == pytest.approx(expected.score)
            assert panel.results[name].ci == pytest.approx(expected.ci)
            assert f"{name} ↑ {format_score(expected.score)}" in shown
            assert panel.history(name)[-1] == pytest.approx(expected.score)
            # and every row's per-example score is the evaluator's score of that output
            for r in rows:
                assert r.scores[name] == pytest.approx(direct.score_example(r.output, list(r.references)).score)
        assert "finished 6/6" in str(screen.query_one("#rate", Static).render())

        await pilot.press("ctrl+g")  # signatures on demand
        await pilot.pause()
        row = next(r for r in panel.query(".metric") if getattr(r, "metric", None) == "chrf")
        signature = row.query_one(".metric-signature", Static)
        assert signature.display and str(signature.render()) == panel.results["chrf"].signature


async def test_selecting_a_row_opens_the_example_in_detail(host_app, tiny_causal, tmp_path):
    app = run_app(host_app, tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        await start(pilot, screen, str(write_scenario(tmp_path, n=2)))
        await wait_for(pilot, lambda: screen.last_finished is not None)
        table = screen.query_one("#examples", DataTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExampleDetailScreen))
        record = app.screen.record
        stored = {r.example_id: r for r in app.store.examples(screen.run_id)}[record.example_id]
        text = {w.id: str(w.render()) for w in app.screen.query(Static) if w.id}
        assert text["detail-prompt"] == stored.prompt and "Das Haus" not in stored.prompt
        assert text["detail-output"] == (stored.output or "(empty)")
        assert stored.references[0] in text["detail-references"]
        assert all(f"{m}: {format_score(stored.scores[m])}" in text["detail-scores"] for m in METRICS)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_cancel_mid_run_then_resume_records_every_example_once(host_app, tiny_causal_long, tmp_path):
    app = run_app(host_app, tiny_causal_long, RunScreen(batch_size=2, n_bootstrap=0))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        await start(pilot, screen, str(write_scenario(tmp_path, n=4, max_new_tokens=200)))
        stream = screen.query_one("#stream", Static)

        def streaming_text_is_shown() -> bool:
            # the painted line (buffered, so it may lag a few tokens) is a piece of an example's stream
            shown = str(stream.render()).split("▸ ", 1)[-1]
            texts = [printable(screen.stream_text(tiny_causal_long, f"s{i}")).replace("\n", "⏎ ") for i in range(4)]
            return len(shown) > 20 and any(shown in t for t in texts)

        # the current example's output streams into the lines under the table
        await wait_for(pilot, streaming_text_is_shown)
        table = screen.query_one("#examples", DataTable)
        await wait_for(pilot, lambda: table.row_count >= 2)
        run_id = screen.run_id
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.scenario_run is None)
        assert screen.last_cancelled == run_id and screen.last_finished is None
        assert app.store.run(run_id).status == "cancelled"
        done_before = {r.example_id for r in app.store.examples(run_id)}
        assert len(done_before) == 2 and table.row_count == 2  # the first batch; the second was cut short


    # a fresh screen (as after restarting the app) resumes the newest cancelled run in the store
    app = run_app(host_app, tiny_causal_long, RunScreen(batch_size=2, n_bootstrap=0))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.last_finished is not None)
        assert screen.run_id == run_id and app.store.run(run_id).status == "finished"
        ids = [r.example_id for r in app.store.examples(run_id)]
        assert sorted(ids) == [f"s{i}" for i in range(4)]  # each exactly once
        table = screen.query_one("#examples", DataTable)
        assert table.row_count == 4  # two restored from the store, two generated now
        assert {rec.example_id for rec in screen.records.values()} == set(ids)
        assert screen.query_one(ScoresPanel).progress == (4, 4)


async def test_broken_scenario_and_missing_model_show_errors_and_the_app_keeps_running(host_app, tiny_causal,
                                                                                   tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    app = run_app(host_app, tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        await start(pilot, screen, str(broken), by_enter=True)
        await wait_for(pilot, lambda: len(app.errors) == 1)
        assert "malformed YAML" in str(app.errors[0]) and app.is_running and app.screen is screen
        await start(pilot, screen, str(tmp_path / "nowhere.yaml"), by_enter=True)
        await wait_for(pilot, lambda: len(app.errors) == 2)
        assert "not found" in str(app.errors[1])
        # a model that does not exist: the runner reports RunFailed, shown the same way
        await start(pilot, screen, str(write_scenario(tmp_path, n=2)), models=str(tmp_path / "missing.gguf"),
                    by_enter=True)
        await wait_for(pilot, lambda: len(app.errors) == 3 and screen.scenario_run is None)
        assert "not found" in str(app.errors[2])
        # the screen is still usable: the same scenario now runs
        await start(pilot, screen, str(write_scenario(tmp_path, n=2)), models=tiny_causal, by_enter=True)
        await wait_for(pilot, lambda: screen.last_finished is not None)
        assert screen.query_one("#examples", DataTable).row_count == 2


async def test_two_models_get_a_panel_each_and_paired_verdicts(host_app, tiny_causal, tiny_causal_b, tmp_path):
    app = run_app(host_app, tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        await start(pilot, screen, str(write_scenario(tmp_path, n=4)), models=f"{tiny_causal}, {tiny_causal_b}")
        await wait_for(pilot, lambda: screen.last_finished is not None)
        assert [p.model for p in screen.query(ScoresPanel)] == [tiny_causal, tiny_causal_b]
        assert screen.query_one("#examples", DataTable).row_count == 8
        verdicts = str(screen.query_one("#verdicts", Static).render())
        for metric in METRICS:
            assert f"on {metric}, p = " in verdicts or f"{metric}: no " in verdicts
        for model in (tiny_causal, tiny_causal_b):
            panel = next(p for p in screen.query(ScoresPanel) if p.model == model)
            assert panel.results["chrf"].score == pytest.approx(screen.last_finished.results[model]["chrf"].score)


def test_parse_models_splits_on_commas_and_drops_repeats():
    assert parse_models(" a, b ,,a, c/d ") == ["a", "b", "c/d"]


def test_verdicts_name_the_better_model_only_when_significant():
    def paired(baseline: float, system: float, p: float, higher_is_better: bool = True) -> PairedResult:
        return PairedResult("chrF2", baseline, system, p, (0.0, 1.0), 1000, 12345, "paired-bs", "sig",
                            higher_is_better)

    assert format_verdict(paired(40, 45, 0.012), "/m/A", "/m/B", metric="chrf") == "B > A on chrf, p = 0.012"
    assert format_verdict(paired(40, 35, 0.001), "/m/A", "/m/B") == "A > B on chrF2, p = 0.001"
    assert format_verdict(paired(9, 7, 0.01, higher_is_better=False), "/m/A", "/m/B", metric="ter") == \
        "B > A on ter, p = 0.010"
    assert format_verdict(paired(40, 41, 0.3), "A", "B", metric="chrf") == \
        "chrf: no significant difference (p = 0.300)"
    assert format_verdict(paired(40, 40, 0.001), "A", "B", metric="chrf") == "chrf: no difference (identical scores)"


def test_snapshot_after_a_scripted_run(snap, host_app):
    async def run_scenario(pilot) -> None:
        screen = pilot.app.host_screen
        screen.query_one("#builtin", Select).value = "qa"
        screen.query_one("#limit", Input).value = "6"
        await pilot.click("#start")
        await wait_for(pilot, lambda: screen.last_finished is not None)
        screen.query_one("#examples", DataTable).focus()
        await pilot.pause()

    # batches of 2: three points on each sparkline; the answer matches qa-001's reference only
    app = run_app(host_app, "scripted", RunScreen(batch_size=2, n_bootstrap=100, clock=lambda: 0.0),
                  engine=ScriptedEngine(["the", " Mediterranean", " Sea"]))
    assert snap(app, terminal_size=(80, 24), run_before=run_scenario)


def write_uneven_scenario(folder: Path, n: int = 6) -> Path:
    """Inputs growing longer down the file (the runner starts with the longest), two references each."""
    rows = [{"id": f"u{i}", "en": "The house is small" + " and old" * (i * 3) + ".",
             "de": [f"Das Haus {i} ist klein.", f"Das Haus {i} ist alt."]} for i in range(n)]
    (folder / "uneven.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "uneven.yaml"
    path.write_text("name: tiny-uneven\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
                    "data: {path: uneven.jsonl}\nfields: {id: id, input: en, references: de}\n"
                    "generation: {max_new_tokens: 4}\nmetrics: [chrf]\n", encoding="utf-8")
    return path


async def test_the_scenario_runs_from_the_source_chosen_last(host_app, tiny_causal, tmp_path):
    """Finding 8: a typed path silently overrode the built-in picked in the dropdown."""
    app = run_app(host_app, tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        path, builtin = screen.query_one("#path", Input), screen.query_one("#builtin", Select)
        path.value = str(write_scenario(tmp_path, n=2))
        await pilot.pause()
        builtin.value = "qa"  # picked after typing: the dropdown wins, and the path is cleared
        await pilot.pause()
        assert path.value == "" and screen.chosen_scenario() == "qa"
        path.value = str(write_scenario(tmp_path, n=2))  # typed after picking: the path wins
        await pilot.pause()
        assert builtin.is_blank() and screen.chosen_scenario() == path.value
        builtin.value = "qa"
        await pilot.pause()
        screen.query_one("#limit", Input).value = "1"
        await pilot.click("#start")
        await wait_for(pilot, lambda: screen.last_finished is not None)
        assert app.store.run(screen.run_id).scenario_name == "qa"


async def test_rows_in_data_order_scores_per_example_and_labelled(host_app, tiny_causal, tmp_path):
    """Finding 8: completion-order rows, panels moving once per batch, a one-point sparkline as a
    solid bar, an animated idle bar, unlabelled sentence vs corpus scores, one reference shown."""
    app = run_app(host_app, tiny_causal, RunScreen(batch_size=4, n_bootstrap=0))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.host_screen
        assert not screen.query_one("#progress").display  # idle: no bar, so nothing pulses
        await start(pilot, screen, str(write_uneven_scenario(tmp_path)))
        await wait_for(pilot, lambda: screen.last_finished is not None)
        await pilot.pause(0.1)
        table = screen.query_one("#examples", DataTable)
        ids = [str(table.get_cell_at((r, 1))).split()[0] for r in range(table.row_count)]
        assert ids == [f"u{i}" for i in range(6)]  # data order, though the longest ran first
        panel = screen.query_one(ScoresPanel)
        assert len(panel.history("chrf")) == 6  # one point per example, not one per batch of 4
        labels = [str(c.label) for c in table.columns.values()]
        assert "chrf sent." in labels and "corpus" in str(panel.query(Static).first().render())
        assert "+1" in str(table.get_cell_at((0, labels.index("reference"))))
        table.focus()
        table.move_cursor(row=2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExampleDetailScreen))
        references = str(app.screen.query_one("#detail-references", Static).render())
        assert "Das Haus 2 ist klein." in references and "Das Haus 2 ist alt." in references
        assert app.screen.record.example_id == "u2"

    app = run_app(host_app, tiny_causal, RunScreen(batch_size=4, n_bootstrap=0))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.host_screen
        await start(pilot, screen, str(write_uneven_scenario(tmp_path, n=1)))
        await wait_for(pilot, lambda: screen.last_finished is not None)
        row = screen.query_one(ScoresPanel).query(".metric").first()
        assert len(screen.query_one(ScoresPanel).history("chrf")) == 1 and not row.sparkline.display


async def test_runs_browser_lists_runs_and_resumes_a_failed_one(tiny_causal, store, tmp_path):
    """Finding 9: failed or interrupted runs could not be resumed from the TUI, nor runs listed."""
    from engine import Engine, EngineConfig
    from scenarios.runner import ScenarioRun
    from scenarios.scenario import load_scenario
    from tui.app import LmscopeApp
    from tui.screens.runs import RunsScreen

    scenario = load_scenario(write_scenario(tmp_path, n=4))
    async with Engine(EngineConfig(threads=1)) as engine:
        finished = [e async for e in ScenarioRun(scenario, [tiny_causal], engine, store, batch_size=2,
                                                  n_bootstrap=0)][-1].run_id
        partial = ScenarioRun(scenario, [tiny_causal], engine, store, batch_size=2, n_bootstrap=0)
        async for event in partial:
            if isinstance(event, ExampleFinished):
                partial.cancel()
    store.set_status(partial.run_id, "failed")  # as a run that crashed part-way is recorded
    done_before = len(store.examples(partial.run_id))
    assert 0 < done_before < 4

    app = LmscopeApp(model=tiny_causal, engine=Engine(EngineConfig(threads=1)), store=store)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.runs)
        browser = app.screen
        table = browser.query_one("#runs", DataTable)
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows[finished][1:4] == ["finished", "tiny-translate", "4/4"] and "chrf" in rows[finished][4]
        assert rows[partial.run_id][1] == "failed" and rows[partial.run_id][3] == f"{done_before}/4"
        table.move_cursor(row=table.get_row_index(partial.run_id))
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        run_screen = app.screen
        await wait_for(pilot, lambda: run_screen.last_finished is not None)
        assert store.run(partial.run_id).status == "finished"
        assert sorted(r.example_id for r in store.examples(partial.run_id)) == [f"s{i}" for i in range(4)]

        # the two runs compared, as `lmscope compare` does
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and
                       "finished" == str(table.get_row_at(table.get_row_index(partial.run_id))[1]))
        table.move_cursor(row=table.get_row_index(finished))
        await pilot.press("space")
        table.move_cursor(row=table.get_row_index(partial.run_id))
        await pilot.press("c")
        detail = browser.query_one("#runs-detail", Static)
        await wait_for(pilot, lambda: "compared on 4 examples" in str(detail.render()))
        assert f"A = run {finished}" in str(detail.render())
        # opened into the run view: its rows come back from the store
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.run_id == partial.run_id
                       and app.screen.query_one("#examples", DataTable).row_count == 4)
        # rerun: the same scenario, models and limit as a new run
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        table.move_cursor(row=table.get_row_index(finished))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.last_finished is not None
                       and app.screen.run_id not in (finished, partial.run_id))
        rerun = store.run(app.screen.run_id)
        assert (rerun.scenario_name, rerun.model_names, rerun.status) == ("tiny-translate", [tiny_causal], "finished")
        # export, as `lmscope export`
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and table.row_count == 3)
        table.move_cursor(row=table.get_row_index(finished))
        await pilot.press("e")
        out = tmp_path / "report.html"
        browser.query_one("#export-path", Input).value = str(out)
        await pilot.press("enter")
        await wait_for(pilot, out.exists)
        from scenarios.report import export
        assert out.read_text(encoding="utf-8") == export(store, store.run(finished), "html")
