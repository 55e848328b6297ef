"""The chat screen, driven through Textual's pilot on the real engine and tiny models.

The snapshot test alone uses the scripted engine (deterministic text and timings).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, TextArea

from engine import Engine, EngineConfig
from scenarios.store import Store
from tests.tui.scripted_engine import ScriptedEngine
from tests.tui.pilot_helpers import HostApp, wait_for
from tui.widgets.chat_input import ChatInput
from tui.messages import ProbeRequested, PromoteRequested
from tui.screens.chat import FAILED, NO_TOKEN_DATA, STOPPED, ChatScreen
from tui.screens.probe import ProbeScreen
from tui.widgets.chat_dialogs import ChatListDialog, PromptViewDialog, SystemPromptDialog
from tui.widgets.chat_turn import ChatTurn
from tui.widgets.segmented_markdown import SegmentedMarkdown
from tui.widgets.token_view import TokenView


class Host(HostApp):
    """The shared host app showing only the chat screen (it records errors and messages)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(ChatScreen, **kwargs)


class ProbingHost(Host):
    """Opens the probe screen on a requested answer, as the real app does."""

    def on_probe_requested(self, message: ProbeRequested) -> None:
        self.push_screen(ProbeScreen(result=message.result))


def chat(app: Host) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


async def send(pilot, text: str) -> None:
    """Type ``text``, press Enter and wait until the answer has finished."""
    screen = chat(pilot.app)
    await wait_for(pilot, lambda: screen.model_info is not None)
    before = len(screen.messages)
    screen.query_one("#chat-input", ChatInput).value = text
    await pilot.press("enter")
    await wait_for(pilot, lambda: not screen.generating and len(screen.messages) == before + 2)


def notified(app: Host, text: str) -> bool:
    return any(n.message == text for n in app._notifications)


def set_sampling(screen: ChatScreen, **values: str) -> None:
    for field, value in values.items():
        screen.query_one(f"#sampling-{field}", Input).value = value


async def ask_for_a_long_story(pilot, screen: ChatScreen, max_new_tokens: int) -> None:
    """Once the model is loaded, send a prompt whose answer runs on for ``max_new_tokens``."""
    await wait_for(pilot, lambda: screen.model_info is not None)
    set_sampling(screen, max_new_tokens=str(max_new_tokens))
    screen.query_one("#chat-input", ChatInput).value = "Tell me a long story."
    await pilot.press("enter")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "r.sqlite")


async def test_typed_message_streams_into_markdown_and_is_stored(engine, store, tiny_causal_long, monkeypatch):
    appended: list[str] = []
    append = SegmentedMarkdown.append

    def spy(self: SegmentedMarkdown, fragment: str):
        appended.append(fragment)
        return append(self, fragment)

    monkeypatch.setattr(SegmentedMarkdown, "append", spy)  # the stream appends to the widget: see each write
    app = Host(engine=engine, store=store, model=tiny_causal_long)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        set_sampling(screen, max_new_tokens="150")
        screen.query_one("#chat-input", ChatInput).value = "What is the capital of France?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(screen.query(ChatTurn)))
        answer = screen.query_one(ChatTurn).answer
        await wait_for(pilot, lambda: not screen.generating)
        final = screen.messages[-1]
        assert final.role == "assistant" and final.content == screen.last_result.text
        assert answer.source == final.content
        assert len(appended) > 1  # the text arrived in pieces while it was generated
        assert "".join(appended) in final.content
        assert [(m["role"], m["content"]) for m in store.chat_messages(screen.chat_id)] == [
            ("user", "What is the capital of France?"), ("assistant", final.content)]
        usage = store.chat_messages(screen.chat_id)[1]["usage"]
        assert usage["new_tokens"] == 150 and usage["finish_reason"] == "length"


async def test_footer_shows_tokens_speed_device_and_dtype(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await send(pilot, "Hello")
        usage = screen.last_result.usage
        footer = str(screen.query_one(ChatTurn).footer.render())
        # Finding 11: the count is the answer's tokens, as the probe view lists them (the
        # end-of-sequence token the model stopped on is not one of them).
        assert f"{len(screen.last_result.logprobs)} tokens" in footer and "first token" in footer
        assert "tok/s" in footer and f"{usage.device} {usage.dtype}" in footer
        assert tiny_causal in str(screen.query_one("#chat-header").render())


async def test_escape_stops_at_once_and_keeps_the_partial_answer(engine, store, tiny_causal_long):
    app = Host(engine=engine, store=store, model=tiny_causal_long)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await ask_for_a_long_story(pilot, screen, 3000)
        await wait_for(pilot, lambda: bool(screen.query(ChatTurn)) and bool(screen.query_one(ChatTurn).answer.source))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not screen.generating, steps=100)  # at once: well under 2 s
        result = screen.last_result
        assert result.finish_reason == "cancelled" and 0 < result.usage.new_tokens < 3000
        assert screen.messages[-1].content == result.text and result.text
        assert screen.query_one(ChatTurn).answer.source == result.text
        assert "cancelled" in str(screen.query_one(ChatTurn).footer.render())
        stored = store.chat_messages(screen.chat_id)[-1]
        assert stored["content"] == result.text and stored["usage"]["finish_reason"] == "cancelled"


async def test_regenerate_replaces_the_last_answer(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        set_sampling(screen, temperature="1.0", max_new_tokens="12")
        await send(pilot, "Hi")
        first = screen.last_result
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.last_result is not first and not screen.generating)
        second = screen.last_result
        assert [m.role for m in screen.messages] == ["user", "assistant"]
        assert screen.messages[-1].content == second.text
        assert len(screen.query(ChatTurn)) == 1 and screen.query_one(ChatTurn).answer.source == second.text
        assert second.usage.seed != first.usage.seed  # unseeded sampling: a fresh draw


async def test_seed_makes_answers_reproducible(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        set_sampling(screen, temperature="1.5", top_p="0.9", max_new_tokens="16", seed="1234")
        await send(pilot, "Pick a word")
        first = screen.last_result
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.last_result is not first and not screen.generating)
        assert screen.last_result.text == first.text and screen.last_result.usage.seed == 1234
        assert "seed 1234" in str(screen.query_one(ChatTurn).footer.render())


async def test_invalid_sampling_values_are_refused_with_the_engine_message(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        assert screen.sampling.has_class("-hidden")
        set_sampling(screen, top_p="1.5")
        prompt = screen.query_one("#chat-input", ChatInput)
        prompt.value = "Hello"
        await pilot.press("enter")
        await pilot.pause(0.05)
        message = "top_p must be in (0, 1], got 1.5"
        assert str(screen.query_one("#sampling-error").render()) == message
        assert not screen.sampling.has_class("-hidden")  # shown so the value can be fixed
        assert [e.message for e in app.errors] == [message]
        assert prompt.value == "Hello" and not screen.query(ChatTurn) and screen.chat_id is None
        set_sampling(screen, top_p="0.9", temperature="hot")
        await pilot.pause(0.05)
        assert "temperature must be a number" in str(screen.query_one("#sampling-error").render())
        set_sampling(screen, temperature="0.7")
        await pilot.pause(0.05)
        assert str(screen.query_one("#sampling-error").render()) == ""
        await pilot.press("f9")
        assert screen.sampling.has_class("-hidden")


async def test_engine_error_is_shown_and_retry_answers_the_kept_message(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        assert screen.sampling.values()["max_new_tokens"] == "64"  # 256 would not fit a 128-token context
        set_sampling(screen, max_new_tokens="128")  # valid as a setting, too long for this model
        screen.query_one("#chat-input", ChatInput).value = "Hello"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not screen.generating and app.errors)
        assert "leaves no room for a prompt" in app.errors[0].message
        turn = screen.query_one(ChatTurn)
        assert "error" in str(turn.footer.render()) and turn.user_text == "Hello"
        assert [m["content"] for m in store.chat_messages(screen.chat_id)] == ["Hello"]
        await pilot.press("f7")
        await wait_for(pilot, lambda: notified(app, FAILED))
        assert not app.received
        set_sampling(screen, max_new_tokens="8")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not screen.generating and screen.last_result is not None)
        assert [m.role for m in screen.messages] == ["user", "assistant"]
        assert turn.answer.source == screen.last_result.text and "tok/s" in str(turn.footer.render())


async def test_system_prompt_edit_changes_the_prompt_sent(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        set_sampling(screen, max_new_tokens="8")
        await send(pilot, "Hello")
        assert "<|system|>" not in screen.last_result.prompt_text
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, SystemPromptDialog))
        app.screen.query_one(TextArea).text = "You are a pirate."
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.system_prompt == "You are a pirate."
        assert "system: You are a pirate." in str(screen.query_one("#chat-header").render())
        await send(pilot, "Hello again")
        assert "<|system|>You are a pirate.<|end|><|user|>Hello<|end|>" in screen.last_result.prompt_text
        roles = [m["role"] for m in store.chat_messages(screen.chat_id)]
        assert roles == ["user", "assistant", "system", "user", "assistant"]


async def test_prompt_modal_shows_the_chat_templated_prompt(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        set_sampling(screen, max_new_tokens="8")
        await send(pilot, "Show me")
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptViewDialog))
        shown = app.screen.query_one(TextArea).text
        assert shown == screen.last_result.prompt_text
        assert "<|user|>Show me<|end|><|assistant|>" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_chats_reopen_with_their_messages_and_settings(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        set_sampling(screen, max_new_tokens="10", temperature="0.5", seed="7")
        await send(pilot, "First question")
        await send(pilot, "Second question")
        old = screen.last_result
        await pilot.press("ctrl+r")  # regenerated: the store keeps both, reopening keeps the new one
        await wait_for(pilot, lambda: not screen.generating and screen.last_result is not old)
        expected = list(screen.messages)
        chat_id = screen.chat_id
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: not screen.query(ChatTurn))
        set_sampling(screen, max_new_tokens="99", temperature="0", seed="")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatListDialog))
        options = app.screen.query_one(OptionList)
        assert options.option_count == 1 and "First question" in str(options.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.query(ChatTurn)) == 2)
        assert screen.messages == expected and screen.chat_id == chat_id
        assert screen.sampling.values() == {"temperature": "0.5", "top_p": "1.0", "max_new_tokens": "10", "seed": "7"}
        turns = list(screen.query(ChatTurn))
        assert [t.user_text for t in turns] == ["First question", "Second question"]
        assert turns[1].answer.source == expected[-1].content and "tok/s" in str(turns[1].footer.render())
        await send(pilot, "Third")  # goes on in the same stored chat
        assert len(store.chats()) == 1 and store.chat_messages(chat_id)[-1]["content"] == screen.messages[-1].content


async def test_reopened_chat_shows_the_prompt_sent_and_probes_the_answer(engine, tmp_path, tiny_causal):
    path = tmp_path / "r.sqlite"
    first = Host(engine=engine, store=Store(path), model=tiny_causal)
    async with first.run_test(size=(100, 30)) as pilot:
        screen = chat(first)
        set_sampling(screen, max_new_tokens="12")
        await send(pilot, "Remember me")
        original = screen.last_result
    assert original.logprobs and original.top_logprobs

    app = ProbingHost(engine=Engine(EngineConfig(threads=1)), store=Store(path), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:  # a new app and connection on the same store
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatListDialog))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.query(ChatTurn)) == 1)
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptViewDialog))
        assert app.screen.query_one(TextArea).text == original.prompt_text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, ProbeScreen))
        assert app.screen.result == original  # every field, the log-probabilities bit for bit
        view = app.screen.query_one(TokenView)
        assert view.tokens == list(original.logprobs) and view.alternatives == list(original.top_logprobs)


async def test_reopened_answers_without_token_data_say_why(engine, tmp_path, tiny_causal):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # a chat saved before answers kept their tokens (no result column)
        db.executescript("""
            CREATE TABLE chats (id TEXT PRIMARY KEY, title TEXT NOT NULL, model TEXT NOT NULL,
                                settings TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
            CREATE TABLE chat_messages (chat_id TEXT NOT NULL, idx INTEGER NOT NULL, role TEXT NOT NULL,
                                        content TEXT NOT NULL, usage TEXT, created_at REAL NOT NULL,
                                        PRIMARY KEY (chat_id, idx));
            INSERT INTO chats VALUES ('old', 'Hi', 'default', '{"system_prompt": "", "sampling": {}}', 1, 1);
            INSERT INTO chat_messages VALUES ('old', 0, 'user', 'Hi', NULL, 1);
            INSERT INTO chat_messages VALUES ('old', 1, 'assistant', 'Hello!',
                '{"new_tokens": 2, "tokens_per_s": 9.0, "finish_reason": "stop"}', 1);
        """)
    store = Store(path)
    stopped = store.create_chat(tiny_causal, {})
    store.add_message(stopped, "user", "Tell me more")
    store.add_message(stopped, "assistant", "Well", {"finish_reason": "cancelled", "params": {}})
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        for chat_id, reason in (("old", NO_TOKEN_DATA), (stopped, STOPPED)):
            await screen.restore_chat(chat_id)
            assert screen.messages[-1].role == "assistant" and screen.last_result is None
            app.clear_notifications()
            await pilot.press("f10")
            await wait_for(pilot, lambda: notified(app, reason))
            app.clear_notifications()
            await pilot.press("f7")
            await wait_for(pilot, lambda: notified(app, reason))
            assert app.screen is screen and not app.received
        turn = screen.query_one(ChatTurn)
        assert turn.user_text == "Tell me more" and turn.answer.source == "Well"


async def test_promote_and_probe_post_the_last_turn(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        set_sampling(screen, max_new_tokens="6")
        await send(pilot, "Promote me")
        await pilot.press("f6", "f7")
        await wait_for(pilot, lambda: len(app.received) == 2)
        promote, probe = app.received
        assert promote == PromoteRequested("Promote me", screen.messages[-1].content, tiny_causal)
        assert probe.result is screen.last_result
        assert len(probe.result.logprobs) == probe.result.usage.new_tokens
        assert all(len(top) == 5 for top in probe.result.top_logprobs)


async def test_header_follows_the_app_model(engine, store, tiny_causal, tiny_causal_b):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        app.model_name = tiny_causal_b
        header = screen.query_one("#chat-header")
        await wait_for(pilot, lambda: tiny_causal_b in str(header.render()) and screen.model_info is not None)
        assert screen.model_info.name == tiny_causal_b


def test_snapshot(snap, tmp_path, monkeypatch):
    monkeypatch.setattr("scenarios.conversation.clock", lambda: 0.0)  # waits measured as 0: no timing in the picture
    async def run_before(pilot) -> None:
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.model_info is not None)
        screen.query_one("#chat-input", ChatInput).value = "What is the capital of France?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(screen.messages) == 2 and not screen.generating)
        await pilot.press("f9")
        await pilot.pause()

    app = Host(engine=ScriptedEngine(), store=Store(tmp_path / "r.sqlite"), model="scripted")
    assert snap(app, terminal_size=(80, 24), run_before=run_before)
