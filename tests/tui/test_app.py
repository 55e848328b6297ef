"""The whole app: modes, help, model picker, and what crosses screens (probe, promote)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from engine import Engine, EngineConfig
from scenarios.store import Store
from tests.tui.scripted_engine import ScriptedEngine
from tests.tui.pilot_helpers import wait_for
from tui.app import LmscopeApp
from tui.screens.chat import ChatScreen
from tui.screens.compare import CompareScreen
from tui.screens.help import HelpScreen
from tui.screens.model_picker import ModelPickerScreen
from tui.screens.probe import ProbeScreen
from tui.screens.promote import PromoteCaseScreen
from tui.screens.run import RunScreen
from tui.widgets.chat_turn import ChatTurn



@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "r.sqlite")


async def test_function_keys_switch_between_the_four_screens(tiny_causal, store):
    app = LmscopeApp(model=tiny_causal, engine=Engine(EngineConfig(threads=1)), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        assert isinstance(app.screen, ChatScreen)
        for key, screen_type in [("f3", RunScreen), ("f4", CompareScreen), ("f5", ProbeScreen), ("f2", ChatScreen)]:
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, screen_type))
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        listed = " ".join(str(group) for group in app.screen.groups)
        assert "Load model" in listed and "Compare" in listed
        await pilot.press("escape")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))


async def test_a_chat_answer_opens_in_the_probe_and_can_become_a_case(tiny_causal, store):
    app = LmscopeApp(model=tiny_causal, engine=Engine(EngineConfig(threads=1)), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        chat = app.screen
        await wait_for(pilot, lambda: chat.model_info is not None)
        chat.query_one("#chat-input", Input).value = "What is the capital of France?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not chat.generating and len(chat.messages) == 2)
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, ProbeScreen))
        assert app.screen.result is not None and app.screen.result.logprobs
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteCaseScreen))


async def test_a_model_that_cannot_load_is_reported_and_the_app_keeps_running(tmp_path, store):
    app = LmscopeApp(model=str(tmp_path / "missing.gguf"), engine=Engine(EngineConfig(threads=1)), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: any("not found" in n.message for n in app._notifications))
        assert app.is_running
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))


def test_app_snapshot(snap_compare, tmp_path):
    app = LmscopeApp(model="default", engine=ScriptedEngine(), store=Store(tmp_path / "r.sqlite"))

    async def settle(pilot) -> None:
        await pilot.pause(0.2)
        app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


async def test_the_app_runs_its_model_in_a_process_of_its_own_and_esc_still_stops_it(tiny_causal_long, store):
    from engine.process import ProcessBackend

    app = LmscopeApp(model=tiny_causal_long, store=store)  # the engine `lmscope` itself builds
    async with app.run_test(size=(100, 30)) as pilot:
        chat = app.screen
        await wait_for(pilot, lambda: chat.model_info is not None)
        assert isinstance(await app.engine.backend(tiny_causal_long), ProcessBackend)
        chat.sampling.apply({"max_new_tokens": 3000})
        chat.query_one("#chat-input", Input).value = "Tell me a long story."
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(chat.query_one(ChatTurn).answer.source) > 20)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not chat.generating, steps=100)
        result = chat.last_result
        assert result.finish_reason == "cancelled" and 0 < result.usage.new_tokens < 3000
        assert chat.query_one(ChatTurn).answer.source == result.text
        assert store.chat_messages(chat.chat_id)[-1]["content"] == result.text
