"""Promoting a chat turn to a scenario case: the edited answer is saved and loads back."""

from __future__ import annotations

from textual.widgets import Input, Static, TextArea

from engine import ChatMessage, ChatRequest, GenerationParams
from scenarios.examples import load_examples
from scenarios.scenario import load_scenario
from scenarios.store import Store
from tests.tui.pilot_helpers import HostApp, wait_for as _wait_for
from tui.messages import CaseSaved
from tui.screens.promote import PromoteCaseScreen
from scenarios.user_cases import default_cases_path


class Host(HostApp):
    """The shared host app showing the promote dialog for one chat turn."""

    def __init__(self, prompt: str, answer: str, **kwargs) -> None:
        super().__init__(lambda: PromoteCaseScreen(prompt, answer, model=self.model_name), **kwargs)

    @property
    def results(self) -> list:
        """What the dialog was dismissed with."""
        return self.dismissed

    @property
    def saved(self) -> list[CaseSaved]:
        return self.of_type(CaseSaved)


async def _answer(engine, model: str, prompt: str) -> str:
    [result] = await engine.generate([ChatRequest(model, (ChatMessage("user", prompt),),
                                                  GenerationParams(max_new_tokens=8))])
    return result.text


async def test_save_appends_the_edited_answer(engine, tiny_causal, tmp_path):
    prompt = "What is the capital of France?"
    answer = await _answer(engine, tiny_causal, prompt)
    target = tmp_path / "cases" / "mine.yaml"
    app = Host(prompt, answer, engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, PromoteCaseScreen)
        area = screen.query_one("#promote-answer", TextArea)
        assert area.text == answer and app.focused is area
        # Finding 11: saved cases ignored LMSCOPE_DB's location; they go beside the results store.
        assert screen.query_one("#promote-path", Input).value == str(tmp_path / "cases" / "my_cases.yaml")
        assert default_cases_path(tmp_path / "r.sqlite") == tmp_path / "cases" / "my_cases.yaml"
        area.load_text("Paris")
        screen.query_one("#promote-path", Input).value = str(target)
        await pilot.click("#promote-save")
        await _wait_for(pilot, lambda: app.results and app.saved)
    assert [(r.case_id, r.scenario_path, r.rerun) for r in app.results] == [("case-1", str(target), False)]
    assert (app.saved[0].scenario_path, app.saved[0].example_id) == (str(target), "case-1")
    [example] = load_examples(load_scenario(target))
    assert (example.input, example.references) == (prompt, ("Paris",))


async def test_save_and_rerun_names_the_file_just_saved(engine, tiny_causal, tmp_path):
    target = tmp_path / "mine.yaml"
    app = Host("2+2?", "4", engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#promote-path", Input).value = str(target)
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: app.results)
    assert [(r.case_id, r.scenario_path, r.model, r.rerun) for r in app.results] == [
        ("case-1", str(target), tiny_causal, True)]
    assert [e.id for e in load_examples(load_scenario(target))] == ["case-1"]


async def test_a_bad_target_is_reported_and_nothing_is_lost(engine, tiny_causal, tmp_path):
    bad = tmp_path / "data.csv.yaml"
    (tmp_path / "d.csv").write_text("id,input,references\n1,a,b\n", encoding="utf-8")
    bad.write_text("name: c\ntask: chat\ndata:\n  path: d.csv\nfields:\n  id: id\n  input: input\n"
                   "  references: references\nmetrics: [chrf]\n", encoding="utf-8")
    app = Host("prompt", "answer", engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        screen.query_one("#promote-answer", TextArea).load_text("my edited gold answer")
        screen.query_one("#promote-path", Input).value = str(bad)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen and not app.results
        assert "JSONL" in str(screen.query_one("#promote-error", Static).render())
        assert screen.query_one("#promote-answer", TextArea).text == "my edited gold answer"
        await pilot.press("escape")
        await _wait_for(pilot, lambda: app.results)
    assert app.results == [None] and not app.saved


def test_promote_snapshot(snap, tmp_path):
    from tests.tui.scripted_engine import ScriptedEngine

    app = Host("What is the capital of France?", "The capital of France is **Paris**.", engine=ScriptedEngine(),
               store=Store(tmp_path / "r.sqlite"), model="default")

    async def fixed_path(pilot) -> None:
        app.screen.query_one("#promote-path", Input).value = "/home/user/cases/my_cases.yaml"
        app.screen.query_one("#promote-answer", TextArea).blur()
        await pilot.pause()

    assert snap(app, terminal_size=(80, 24), run_before=fixed_path)


async def test_f6_save_and_rerun_runs_the_saved_file_on_the_chat_model_with_its_context(
        engine, tiny_causal, tiny_masked, tmp_path, monkeypatch):
    # Finding 4: the first F6 rerun did not rerun, the second reran the previous file, every
    # model ever loaded ran (a BERT too), and the case lost the system prompt and earlier turns.
    from tests.tui.test_chat import send, set_sampling
    from tui.app import LmscopeApp
    from tui.screens.chat import ChatScreen
    from scenarios.prompting import build_request

    monkeypatch.setattr("tui.app.LmscopeApp._rerun_cases", _record_rerun)
    await engine.load(tiny_masked)  # loaded for fill-mask earlier: must not be rerun
    app = LmscopeApp(tiny_causal, engine=engine, store=Store(tmp_path / "r.sqlite"))
    app.reruns = []
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        set_sampling(screen, max_new_tokens="6")
        screen.conversation.set_system_prompt("You are terse.")
        await send(pilot, "First question")
        await send(pilot, "Second question")
        request, info = screen.conversation.last_request, screen.model_info
        for n, name in enumerate(("one.yaml", "two.yaml"), start=1):
            await pilot.press("f6")
            await _wait_for(pilot, lambda: isinstance(app.screen, PromoteCaseScreen))
            assert "system prompt: You are terse." in str(app.screen.query(".promote-label").first().render())
            app.screen.query_one("#promote-path", Input).value = str(tmp_path / name)
            await pilot.press("ctrl+r")
            await _wait_for(pilot, lambda: len(app.reruns) == n)
            await _wait_for(pilot, lambda: app.screen is screen)
    assert app.reruns == [(str(tmp_path / "one.yaml"), tiny_causal), (str(tmp_path / "two.yaml"), tiny_causal)]
    scenario = load_scenario(tmp_path / "one.yaml")
    [example] = load_examples(scenario)
    rebuilt = build_request(scenario, info, example, [])
    assert rebuilt.messages == request.messages  # the system prompt and the earlier turn came along


async def _record_rerun(self, scenario_path: str, model: str) -> None:
    self.reruns.append((scenario_path, model))


def test_saved_cases_follow_lmscope_db(tmp_path, monkeypatch):
    # Finding 11: saved cases ignored LMSCOPE_DB's location.
    monkeypatch.setenv("LMSCOPE_DB", str(tmp_path / "elsewhere" / "results.sqlite"))
    assert default_cases_path() == tmp_path / "elsewhere" / "cases" / "my_cases.yaml"
