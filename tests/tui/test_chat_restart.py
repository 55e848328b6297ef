"""The chat screen when its model process is killed from outside (``kill -9``), as the app runs
models (``isolate=True``): the partial answer stays with the error, and Ctrl+R answers again."""

from __future__ import annotations

import os
import signal

from textual.widgets import Input

from engine import ChatMessage, Engine, EngineConfig
from engine.process import ModelProcessError, ProcessBackend
from tests.tui.pilot_helpers import HostApp, wait_for
from tui.widgets.chat_input import ChatInput
from tui.screens.chat import ChatScreen
from tui.widgets.chat_turn import ChatTurn


async def model_process(app: HostApp) -> ProcessBackend:
    backend = await app.engine.backend(app.model_name)
    assert isinstance(backend, ProcessBackend)
    return backend


async def regenerate(pilot, screen: ChatScreen) -> None:
    before = screen.last_result
    screen.query_one("#sampling-max_new_tokens", Input).value = "8"
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: not screen.generating and screen.last_result not in (None, before))


async def test_regenerate_works_after_the_model_process_is_killed(host_app, tiny_causal_long):
    app = host_app(ChatScreen, engine=Engine(EngineConfig(threads=1, isolate=True)), model=tiny_causal_long)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await wait_for(pilot, lambda: screen.model_info is not None)
        screen.query_one("#sampling-max_new_tokens", Input).value = "2000"
        screen.query_one("#chat-input", ChatInput).value = "Hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.query(ChatTurn) and screen.query_one(ChatTurn).answer.source)

        first = await model_process(app)
        os.kill(first.process.pid, signal.SIGKILL)  # during the answer
        await wait_for(pilot, lambda: not screen.generating)
        turn = screen.query_one(ChatTurn)
        partial = turn.answer.source
        assert partial and screen.last_result is None
        assert [type(e) for e in app.errors] == [ModelProcessError]
        footer = str(turn.footer.render())
        assert "error" in footer and "killed" in footer and "ctrl+r" in footer
        assert screen.messages == [ChatMessage("user", "Hello"), ChatMessage("assistant", partial)]
        stored = app.store.chat_messages(screen.chat_id)[-1]
        assert (stored["content"], stored["usage"]["finish_reason"]) == (partial, "error")

        await regenerate(pilot, screen)
        second = await model_process(app)
        assert second.process.pid != first.process.pid
        assert turn.answer.source == screen.last_result.text and screen.last_result.finish_reason == "length"
        assert "tok/s" in str(turn.footer.render())

        os.kill(second.process.pid, signal.SIGKILL)  # after the answer
        await wait_for(pilot, lambda: second.exited)
        await regenerate(pilot, screen)
        assert (await model_process(app)).process.pid != second.process.pid
        assert turn.answer.source == screen.last_result.text and len(app.errors) == 1
        assert [m.role for m in screen.messages] == ["user", "assistant"]
