"""Promoting a chat turn to a scenario case: the edited answer is saved and loads back."""

from __future__ import annotations

from textual.widgets import Input, Static, TextArea

from engine import ChatMessage, ChatRequest, GenerationParams
from scenarios.examples import load_examples
from scenarios.scenario import load_scenario
from scenarios.store import Store
from tests.tui.pilot_helpers import wait_for as _wait_for
from tui.base import LmscopeAppBase
from tui.messages import CaseSaved
from tui.screens.promote import PromoteCaseScreen
from scenarios.user_cases import default_cases_path


class Host(LmscopeAppBase):
    def __init__(self, prompt: str, answer: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.turn = (prompt, answer)
        self.results: list[str | None] = []
        self.saved: list[CaseSaved] = []

    def on_mount(self) -> None:
        self.push_screen(PromoteCaseScreen(*self.turn, model=self.model_name), self.results.append)

    def on_case_saved(self, message: CaseSaved) -> None:
        self.saved.append(message)



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
        assert screen.query_one("#promote-path", Input).value == str(default_cases_path())
        area.load_text("Paris")
        screen.query_one("#promote-path", Input).value = str(target)
        await pilot.click("#promote-save")
        await _wait_for(pilot, lambda: app.results and app.saved)
    assert app.results == ["case-1"]
    assert (app.saved[0].scenario_path, app.saved[0].example_id) == (str(target), "case-1")
    [example] = load_examples(load_scenario(target))
    assert (example.input, example.references) == (prompt, ("Paris",))


async def test_save_and_rerun_returns_the_rerun_marker(engine, tiny_causal, tmp_path):
    target = tmp_path / "mine.yaml"
    app = Host("2+2?", "4", engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#promote-path", Input).value = str(target)
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: app.results)
    assert app.results == ["rerun:case-1"]
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


def test_promote_snapshot(snap_compare, tmp_path):
    from tests.tui.scripted_engine import ScriptedEngine

    app = Host("What is the capital of France?", "The capital of France is **Paris**.", engine=ScriptedEngine(),
               store=Store(tmp_path / "r.sqlite"), model="default")

    async def fixed_path(pilot) -> None:
        app.screen.query_one("#promote-path", Input).value = "/home/user/cases/my_cases.yaml"
        app.screen.query_one("#promote-answer", TextArea).blur()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=fixed_path)
