"""The compare screen through Textual's pilot: real engine on tiny models (a snapshot uses the script)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

import evaluators
from engine import ChatMessage, GenerationParams, LmscopeError, TokenDelta
from scenarios.rescoring import corpus_scores, paired
from scenarios.runner import ScenarioRun
from scenarios.scenario import load_scenario
from scenarios.store import Store
from tests.tui.scripted_engine import ScriptedEngine
from tests.tui.pilot_helpers import HostApp, wait_for
from tui.screens.compare import CompareScreen
from tui.screens.help import HelpScreen
from tui.widgets.chat_input import ChatInput
from tui.widgets.compare_pane import ComparePane

REFERENCE = "The capital of France is Paris."


def host(screen: CompareScreen, engine, store: Store, model: str = "default") -> HostApp:
    return HostApp(screen, model=model, engine=engine, store=store)


def stats(pane: ComparePane) -> str:
    return str(pane.query_one(".pane-stats", Static).render())


def shown(pane: ComparePane) -> str:
    """The latest answer as the transcript shows it."""
    return pane.turns[-1].answer.source


async def send(pilot, screen: CompareScreen, prompt: str) -> None:
    """Type ``prompt``, press Enter and wait until every pane has answered it."""
    box = screen.query_one("#prompt", ChatInput)
    box.value = prompt
    box.focus()
    await wait_for(pilot, lambda: box.has_focus)
    await pilot.press("enter")
    await wait_for(pilot, lambda: not box.value)  # sent (the box empties for the next message)
    await wait_for(pilot, lambda: all(p.result is not None and not p.streaming for p in screen.panes))


async def test_one_prompt_streams_to_both_models_with_stats_and_exact_live_scores(engine, tiny_causal, tiny_causal_b,
                                                                                  tmp_path):
    screen = CompareScreen(f"{tiny_causal}, {tiny_causal_b}", params=GenerationParams(max_new_tokens=24))
    app = host(screen, engine, Store(tmp_path / "r.sqlite"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(screen.panes) == 2)
        a, b = screen.panes
        assert (a.spec, b.spec) == (tiny_causal, tiny_causal_b)
        await wait_for(pilot, lambda: a.region.width > 0 and b.region.width > 0)
        assert a.region.y == b.region.y and a.region.x < b.region.x  # wide: side by side
        screen.query_one("#reference", Input).value = REFERENCE
        screen.query_one("#prompt", ChatInput).value = "What is the capital of France?"
        await wait_for(pilot, lambda: screen.query_one("#prompt", ChatInput).has_focus)
        await pilot.press("enter")
        await wait_for(pilot, lambda: all(p.result is not None and not p.streaming for p in (a, b)))
        for pane in (a, b):
            assert pane.text and pane.text == pane.result.text
            assert pane.tokens == len(pane.result.token_ids)  # every token of the answer arrived as a delta
            assert shown(pane).strip() == pane.text.strip()
            line = stats(pane)
            assert f"{len(pane.result.token_ids)} tok" in line and "TTFT" in line and "tok/s" in line
            assert f"{pane.result.usage.device}/{pane.result.usage.dtype}" in line
            for name, display in (("chrf", "chrF"), ("rougeL", "ROUGE-L")):
                expected = evaluators.get(name).score_example(pane.text, [REFERENCE]).score
                assert pane.scores[display] == pytest.approx(expected, abs=1e-12)
                assert f"{display} {expected:.1f}" in line
        assert a.text != b.text  # two different models

        # Narrow terminal: the panes stack.
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: a.region.x == b.region.x and b.region.y > a.region.y)
        assert a.region.height >= 4 and b.region.bottom <= 24


async def test_escape_stops_every_pane_and_keeps_the_text(engine, tiny_causal_long, tmp_path):
    # The same model under two spec strings: two backends, two concurrent streams.
    specs = f"{tiny_causal_long}, {tiny_causal_long}/"
    screen = CompareScreen(specs, params=GenerationParams(max_new_tokens=2000))
    app = host(screen, engine, Store(tmp_path / "r.sqlite"))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(screen.panes) == 2)
        screen.query_one("#reference", Input).value = REFERENCE
        screen.query_one("#prompt", ChatInput).value = "Tell me a long story."
        await wait_for(pilot, lambda: screen.query_one("#prompt", ChatInput).has_focus)
        await pilot.press("enter")
        # Scores arrive while the answers are still streaming (live scoring).
        await wait_for(pilot, lambda: all(p.streaming and p.scores and shown(p) for p in screen.panes))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not any(p.streaming for p in screen.panes))
        for pane in screen.panes:
            assert pane.result is not None and pane.result.finish_reason == "cancelled"
            assert 0 < pane.result.usage.new_tokens < 2000
            assert "cancelled" in stats(pane)
            assert pane.text and shown(pane).strip() == pane.text.strip()
            # The stopped answer stays in the conversation the next message is sent with.
            assert pane.messages == [ChatMessage("user", "Tell me a long story."), ChatMessage("assistant", pane.text)]
            assert pane.scores["chrF"] == evaluators.get("chrf").score_example(pane.text, [REFERENCE]).score


async def test_each_model_continues_its_own_conversation_and_ctrl_n_starts_over(engine, tiny_causal,
                                                                              tiny_causal_b, tmp_path):
    screen = CompareScreen(f"{tiny_causal}, {tiny_causal_b}", params=GenerationParams(max_new_tokens=12))
    app = host(screen, engine, Store(tmp_path / "r.sqlite"))
    first, second = "What is the capital of France?", "And the capital of Germany?"
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(screen.panes) == 2)
        a, b = screen.panes
        await send(pilot, screen, first)
        answers = {pane.spec: pane.text for pane in (a, b)}
        assert answers[a.spec] != answers[b.spec]
        await send(pilot, screen, second)
        for pane in (a, b):
            # Each model was asked with the first exchange: the user's message and its OWN answer.
            own = [ChatMessage("user", first), ChatMessage("assistant", answers[pane.spec]), ChatMessage("user", second)]
            assert list(pane.last_request.messages) == own
            assert pane.messages == own + [ChatMessage("assistant", pane.result.text)]
            assert first in pane.result.prompt_text and second in pane.result.prompt_text  # what the engine sent
            # The earlier turn stays in the transcript, with its summary line; the latest streams below it.
            earlier, latest = pane.turns
            assert (earlier.user_text, latest.user_text) == (first, second)
            assert earlier.answer.source.strip() == answers[pane.spec].strip()
            assert shown(pane).strip() == pane.text.strip()
            assert earlier.footer.display and "tok/s" in str(earlier.footer.render())
            assert not latest.footer.display  # the latest answer's stats are the pane's footer
            assert f"{len(pane.result.token_ids)} tok · TTFT" in stats(pane)
            pane.body.scroll_home(animate=False)
        await pilot.pause()
        for pane in (a, b):  # scrolled back up, the first turn is on screen
            user_line = pane.turns[0].query_one(".chat-user", Static)
            assert pane.body.region.contains_region(user_line.region)
            assert first in str(user_line.render())

        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: not any(p.messages or p.turns for p in (a, b)))
        assert all(p.result is None and p.last_request is None and not p.text for p in (a, b))
        assert "streaming" not in stats(a) and "TTFT" not in stats(a)
        await send(pilot, screen, second)
        for pane in (a, b):  # a fresh conversation: only the new message was sent
            assert list(pane.last_request.messages) == [ChatMessage("user", second)]
            assert len(pane.turns) == 1 and first not in pane.result.prompt_text

        await app.push_screen(HelpScreen())  # the key is listed in the help, as in the footer
        rows = [row for group in app.screen.groups if group.title == "CompareScreen" for row in group.rows]
        assert ("^n", "New") in rows or ("ctrl+n", "New") in rows


class FailsOnceEngine(ScriptedEngine):
    """Each model's first answer breaks off with an error after a few words."""

    async def stream(self, request):
        if any(r.model == request.model for r in self.requests):
            async for event in super().stream(request):
                yield event
            return
        self.requests.append(request)
        yield TokenDelta(request.request_id, "Half an", (100, 101))
        raise LmscopeError("the model stopped responding", hint="try again")


async def test_a_failed_answer_keeps_its_partial_text_in_the_conversation(tmp_path):
    engine = FailsOnceEngine()
    screen = CompareScreen("alpha, beta")
    app = host(screen, engine, Store(tmp_path / "r.sqlite"), model="alpha")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(screen.panes) == 2)
        box = screen.query_one("#prompt", ChatInput)
        box.value = "Hi"
        box.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: all(p.error is not None and not p.streaming for p in screen.panes))
        for pane in screen.panes:
            assert pane.messages == [ChatMessage("user", "Hi"), ChatMessage("assistant", "Half an")]
            assert shown(pane) == "Half an" and "error" in stats(pane) and "streaming" not in stats(pane)
        await send(pilot, screen, "Again?")
        for pane in screen.panes:
            assert [m.content for m in pane.last_request.messages] == ["Hi", "Half an", "Again?"]
            footer = pane.turns[0].footer
            assert footer.has_class("-error") and "the model stopped responding" in str(footer.render())


async def test_a_model_that_fails_to_load_is_reported_and_the_rest_load(engine, tiny_causal, tmp_path):
    screen = CompareScreen(f"{tiny_causal}, {tmp_path / 'missing.gguf'}")
    app = host(screen, engine, Store(tmp_path / "r.sqlite"))
    async with app.run_test(size=(100, 30)) as pilot:
        status = screen.query_one("#chat-status", Static)
        await wait_for(pilot, lambda: "loaded" in str(status.render()))
        assert len(screen.panes) == 1 and "1 of 2 models loaded" in str(status.render())
        assert any("not found" in n.message for n in app._notifications)
        assert app.is_running


def write_scenario(folder: Path) -> Path:
    rows = [{"id": f"s{i}", "en": f"The house number {i} is small.", "de": [f"Das Haus Nummer {i} ist klein."]}
            for i in range(6)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "translate.yaml"
    path.write_text("name: tiny-translate\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
                    "data: {path: data.jsonl}\nfields: {id: id, input: en, references: de}\n"
                    "generation: {max_new_tokens: 8}\nmetrics: [chrf, bleu]\n", encoding="utf-8")
    return path


def expected_verdict(result, a: str = "A", b: str = "B") -> str:
    if result.delta != 0 and result.p_value < 0.05:
        better, worse = (b, a) if (result.delta > 0) == result.higher_is_better else (a, b)
        return f"{better} > {worse} on {result.metric}, p = {result.p_value:.2g}"
    return f"no significant difference on {result.metric} (p = {result.p_value:.2g})"


async def test_scenario_mode_shows_scores_verdicts_and_the_examples_that_differ(engine, tiny_causal, tiny_causal_b,
                                                                               tmp_path):
    store = Store(tmp_path / "r.sqlite")
    scenario = load_scenario(write_scenario(tmp_path))
    run_id = None
    async for event in ScenarioRun(scenario, [tiny_causal, tiny_causal_b], engine, store, n_bootstrap=100):
        run_id = event.run_id
    run = store.run(run_id)
    assert run.status == "finished"
    # Make model B agree with model A on one example, so the table must leave it out.
    rows_a = {r.example_id: r for r in store.examples(run_id, tiny_causal)}
    same = store.examples(run_id, tiny_causal_b)[2]
    store.record_example(dataclasses.replace(same, output=rows_a[same.example_id].output,
                                             scores=rows_a[same.example_id].scores))
    rows_b = {r.example_id: r for r in store.examples(run_id, tiny_causal_b)}
    differing = {i for i in rows_a if rows_a[i].output != rows_b[i].output}
    assert same.example_id not in differing

    screen = CompareScreen(mode="scenario")  # no run id: the latest run with two models
    app = host(screen, engine, store)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: screen.comparison is not None)
        assert screen.query_one("#run-id", Input).value == run_id

        # Corpus scores side by side, the same numbers as the store's rescoring.
        scores = corpus_scores(store, run)
        table = screen.query_one("#scores", DataTable)
        for metric in ("chrf", "bleu"):
            for model in (tiny_causal, tiny_causal_b):
                assert str(table.get_cell(metric, model)).startswith(f"{scores[model][metric].score:.2f}")

        # The paired verdicts, as "B > A on chrF, p = ..." or "no significant difference on BLEU (p = ...)".
        expected = [expected_verdict(r) for r in paired(store, run, tiny_causal, run, tiny_causal_b)]
        assert [r.metric for r in paired(store, run, tiny_causal, run, tiny_causal_b)] == ["chrF", "BLEU"]
        assert screen.verdict_lines() == expected
        assert str(screen.query_one("#verdicts", Static).render()) == "\n".join(expected)

        # Exactly the examples whose outputs differ, sorted by score difference (B − A on chrF).
        ids = screen.differing_example_ids()
        assert set(ids) == differing and len(ids) == len(differing)
        deltas = [rows_b[i].scores["chrf"] - rows_a[i].scores["chrf"] for i in ids]
        assert deltas == sorted(deltas, reverse=True)
        diffs = screen.query_one("#diffs", DataTable)
        diffs.focus()
        await pilot.press("s")
        ids_up = screen.differing_example_ids()
        assert [rows_b[i].scores["chrf"] - rows_a[i].scores["chrf"] for i in ids_up] == sorted(deltas)
        await pilot.press("m")  # per-example scores of the next metric
        await wait_for(pilot, lambda: "Δ BLEU" in str(screen.query_one("#diff-title", Static).render()))
        assert set(screen.differing_example_ids()) == differing


def test_compare_snapshot_80x24(snap, tmp_path, monkeypatch):
    monkeypatch.setattr("scenarios.conversation.clock", lambda: 0.0)  # waits measured as 0: no timing in the picture
    screen = CompareScreen("alpha, beta")
    app = host(screen, ScriptedEngine(), Store(tmp_path / "r.sqlite"), model="alpha")

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: len(screen.panes) == 2)
        screen.query_one("#reference", Input).value = REFERENCE
        await send(pilot, screen, "What is the capital of Italy?")
        await send(pilot, screen, "What is the capital of France?")
        assert [len(r.messages) for r in app.engine.requests] == [1, 1, 3, 3]  # the second turn carried the first
        await pilot.pause()

    assert snap(app, terminal_size=(80, 24), run_before=run_before)


async def test_one_model_twice_with_its_own_settings_per_pane_stored_and_reopened(engine, tiny_causal, tmp_path):
    # Finding 7: "default, default" was refused (with a wrong hint), every pane was greedy with
    # 256 tokens, and compare conversations were not stored.
    from engine import ChatRequest
    from textual.widgets import OptionList

    from tui.widgets.chat_dialogs import ChatListDialog

    store = Store(tmp_path / "r.sqlite")
    screen = CompareScreen(f"{tiny_causal}, {tiny_causal}", params=GenerationParams(max_new_tokens=6))
    app = host(screen, engine, store)
    async with app.run_test(size=(140, 36)) as pilot:
        await wait_for(pilot, lambda: len(screen.panes) == 2)
        a, b = screen.panes
        assert a.spec == b.spec == tiny_causal
        await pilot.press("f9")
        assert not a.sampling.has_class("-hidden") and not b.sampling.has_class("-hidden")
        a.sampling.apply({"system": "You are a pirate."})
        b.sampling.apply({"temperature": "1.5", "seed": "7", "max_new_tokens": "5"})
        await send(pilot, screen, "Hello there")
        assert isinstance(a.last_request, ChatRequest) and isinstance(b.last_request, ChatRequest)
        assert a.last_request.messages[0] == ChatMessage("system", "You are a pirate.")
        assert "You are a pirate." in a.result.prompt_text and "pirate" not in b.result.prompt_text
        assert a.last_request.params.temperature == 0 and a.last_request.params.max_new_tokens == 6
        assert (b.last_request.params.temperature, b.last_request.params.seed) == (1.5, 7)
        assert b.result.usage.seed == 7 and b.result.usage.new_tokens <= 5
        assert "system: You are a pirate." in str(a.query_one(".pane-title", Static).render())
        assert "T=1.5" in str(b.query_one(".pane-title", Static).render())
        expected = {p.label: (list(p.messages), p.settings()) for p in (a, b)}
        stored = store.comparison_chats(screen.comparison_id)
        assert [(c.pane, c.model) for c in stored] == [("A", tiny_causal), ("B", tiny_causal)]
        assert store.chat_list() == []  # compare conversations stay out of the chat screen's list

        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: not any(p.messages for p in screen.panes))
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatListDialog))
        assert app.screen.query_one(OptionList).option_count == 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.panes) == 2 and all(p.turns for p in screen.panes))
        for pane in screen.panes:
            messages, settings = expected[pane.label]
            assert pane.messages == messages and pane.settings() == settings
            assert pane.turns[0].answer.source == messages[-1].content
        await send(pilot, screen, "And again")  # goes on in the same stored comparison
        assert len(store.chat_history(stored[0].id)) == 4


async def test_fewer_than_two_models_get_a_hint_about_comparing_one_model_twice(engine, tiny_causal, tmp_path):
    screen = CompareScreen(tiny_causal)
    app = host(screen, engine, Store(tmp_path / "r.sqlite"))
    async with app.run_test(size=(100, 30)) as pilot:
        box = screen.query_one("#models", Input)
        box.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("got 1" in n.message for n in app._notifications))
        assert any("twice" in n.message for n in app._notifications)
