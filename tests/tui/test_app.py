"""The chat screen driven through Textual's pilot, on the real engine and a tiny model."""

from __future__ import annotations

from textual.widgets import Input, Markdown, Static

from engine import Engine, EngineConfig
from tui.app import LmscopeApp


async def _wait_for(pilot, condition, steps: int = 400) -> None:
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not reached")


async def test_typed_message_streams_an_answer(tiny_causal):
    app = LmscopeApp(model=tiny_causal, engine=Engine(EngineConfig(threads=1)))
    async with app.run_test() as pilot:
        prompt = app.query_one("#prompt", Input)
        await _wait_for(pilot, lambda: not prompt.disabled)
        assert "causal" in str(app.query_one("#status", Static).render())
        prompt.value = "What is the capital of France?"
        await pilot.press("enter")
        await _wait_for(pilot, lambda: len(app.history) == 2)
        answer = app.query_one(".assistant", Markdown)
        assert app.history[1].role == "assistant" and app.history[1].content
        assert "tok/s" in str(app.query_one("#status", Static).render())
        assert answer.source.strip() == app.history[1].content.strip()


async def test_missing_model_shows_the_error_and_keeps_running(tmp_path):
    app = LmscopeApp(model=str(tmp_path / "nope.gguf"), engine=Engine(EngineConfig(threads=1)))
    async with app.run_test() as pilot:
        status = app.query_one("#status", Static)
        await _wait_for(pilot, lambda: "error" in str(status.render()))
        assert "not found" in str(status.render()) and app.is_running


async def test_escape_stops_the_answer_and_keeps_what_was_produced(tiny_causal_long):
    app = LmscopeApp(model=tiny_causal_long, engine=Engine(EngineConfig(threads=1)))
    async with app.run_test() as pilot:
        prompt = app.query_one("#prompt", Input)
        await _wait_for(pilot, lambda: not prompt.disabled)
        app.max_new_tokens = 2000
        prompt.value = "Tell me a long story."
        await prompt.action_submit()
        await _wait_for(pilot, lambda: app._request_id is not None and bool(app.query_one(".assistant", Markdown).source))
        await pilot.press("escape")
        await _wait_for(pilot, lambda: app._request_id is None)
        assert "cancelled" in str(app.query_one("#status", Static).render())
        assert len(app.history) == 2 and app.history[1].content
        assert app.query_one(".assistant", Markdown).source.strip() == app.history[1].content.strip()
