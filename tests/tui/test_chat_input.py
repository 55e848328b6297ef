"""The chat editor and transcript as a daily driver: paste, history, scrolling, copying, waiting.

Each test names the finding of issue 11 it covers; all run the real engine on tiny models.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events

from engine import Engine, EngineConfig
from scenarios.store import Store
from tests.tui.pilot_helpers import wait_for
from tests.tui.test_chat import Host, ask_for_a_long_story, chat, send, set_sampling
from tui.screens.chat import ChatScreen, last_code_block
from tui.formatting import format_parameters
from tui.widgets.chat_input import ChatInput
from tui.widgets.chat_turn import ChatTurn


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "r.sqlite")


async def test_a_multi_line_paste_is_sent_whole(engine, store, tiny_causal):
    # Finding 2: pasting multi-line text kept only the first line.
    document = "Summarise this:\nline one of the report\n\n    def code():\n        return 1\nthe end"
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        await wait_for(pilot, lambda: screen.model_info is not None)
        set_sampling(screen, max_new_tokens="4")
        editor = screen.query_one("#chat-input", ChatInput)
        app.post_message(events.Paste(document))  # as the driver delivers a bracketed paste
        await pilot.pause()
        assert editor.text == document
        await pilot.press("enter")
        await wait_for(pilot, lambda: not screen.generating and len(screen.messages) == 2)
        assert screen.messages[0].content == document.strip()
        assert f"<|user|>{document.strip()}<|end|>" in screen.last_result.prompt_text
        assert editor.text == ""


async def test_shift_enter_and_ctrl_j_add_lines_and_up_recalls_sent_messages(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        set_sampling(screen, max_new_tokens="4")
        await send(pilot, "first message")
        editor = screen.query_one("#chat-input", ChatInput)
        await pilot.press("a", "shift+enter", "b", "ctrl+j", "c")
        assert editor.text == "a\nb\nc" and not screen.generating and len(screen.messages) == 2
        editor.clear()
        await pilot.press("up")
        assert editor.text == "first message"
        await pilot.press("down")
        assert editor.text == ""


async def test_scrolling_back_while_an_answer_streams_stays_put(engine, store, tiny_causal_long):
    # Finding 3: PgUp during streaming was undone within half a second (the view jumped back).
    app = Host(engine=engine, store=store, model=tiny_causal_long)
    async with app.run_test(size=(60, 16)) as pilot:
        screen = chat(app)
        await ask_for_a_long_story(pilot, screen, 3500)
        transcript = screen.transcript
        await wait_for(pilot, lambda: transcript.max_scroll_y > 8)
        await pilot.press("pageup")
        await pilot.pause(0.1)
        held = transcript.scroll_y
        assert held < transcript.max_scroll_y
        grown = transcript.max_scroll_y
        await wait_for(pilot, lambda: transcript.max_scroll_y > grown + 5)  # more text arrived
        assert transcript.scroll_y == held  # the view stayed where the user put it
        assert not screen.query_one("#chat-new-text").has_class("-hidden")  # says new text is below
        await pilot.press("end")  # back to the bottom: following again
        await wait_for(pilot, lambda: transcript.max_scroll_y > grown + 10 or not screen.generating)
        await pilot.pause(0.1)
        assert transcript.scroll_y == transcript.max_scroll_y or not screen.generating
        assert screen.query_one("#chat-new-text").has_class("-hidden")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not screen.generating)


async def test_a_resize_while_streaming_keeps_the_bottom_in_view(engine, store, tiny_causal_long):
    # Finding 11: after a resize during streaming the last lines fell below the view.
    app = Host(engine=engine, store=store, model=tiny_causal_long)
    async with app.run_test(size=(80, 20)) as pilot:
        screen = chat(app)
        await ask_for_a_long_story(pilot, screen, 3500)
        transcript = screen.transcript
        await wait_for(pilot, lambda: transcript.max_scroll_y > 3)
        await pilot.resize_terminal(60, 16)
        after_resize = transcript.max_scroll_y
        await wait_for(pilot, lambda: transcript.max_scroll_y > after_resize + 2)  # more text arrived
        await pilot.press("escape")  # the whole answer takes minutes on a busy machine
        await wait_for(pilot, lambda: not screen.generating)
        await pilot.pause(0.1)
        assert transcript.max_scroll_y > 0 and transcript.scroll_y == transcript.max_scroll_y


async def test_keys_copy_the_last_answer_and_its_last_code_block(engine, store, tiny_causal):
    app = Host(engine=engine, store=store, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        set_sampling(screen, max_new_tokens="6")
        await pilot.press("alt+k")
        await send(pilot, "Hello")
        await pilot.press("alt+c")
        assert app.clipboard == screen.messages[-1].content
        assert any("OSC 52" in n.message for n in app._notifications)
    assert last_code_block("Run:\n```python\nprint(1)\n```\nthen\n~~~\nls -l\n~~~\n") == "ls -l"
    assert last_code_block("partial:\n```sh\necho hi\n") == "echo hi"
    assert last_code_block("no code") is None


async def test_the_footer_splits_the_wait_into_load_and_prefill(store, tiny_causal, monkeypatch):
    # Finding 5: "first token 0.20 s" although the user waited for loading; and finding 6:
    # loading stages are shown, not 40 s of silence.
    monkeypatch.setattr(ChatScreen, "_load_model", lambda self, name: None)  # the answer loads it
    shown: list[str] = []
    set_footer = ChatTurn.set_footer
    monkeypatch.setattr(ChatTurn, "set_footer", lambda self, text, error=False: (shown.append(text),
                                                                               set_footer(self, text, error)))
    engine = Engine(EngineConfig(threads=1))  # nothing loaded yet
    app = Host(engine=engine, store=store, model=tiny_causal)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = chat(app)
            set_sampling(screen, max_new_tokens="4")
            screen.query_one("#chat-input", ChatInput).value = "Hi"
            await pilot.press("enter")
            await wait_for(pilot, lambda: not screen.generating and len(screen.messages) == 2)
            footer = str(screen.query_one(ChatTurn).footer.render())
            timings = store.chat_messages(screen.chat_id)[1]["usage"]["timings"]
            assert timings["load_s"] > 0 and timings["prefill_s"] > 0 and timings["queue_s"] is None
            assert timings["first_token_s"] >= timings["load_s"] + timings["prefill_s"] - 1e-6
            if timings["load_s"] >= 0.005:
                assert (f"first token {timings['first_token_s']:.2f} s (load {timings['load_s']:.2f} s, "
                        f"prefill {timings['prefill_s']:.2f} s)") in footer
            assert f"loading {tiny_causal} (Esc stops)" in shown  # the loader's own stage, while waiting
    finally:
        await engine.aclose()


async def test_the_header_shows_load_stages_and_a_tiny_model_is_not_0m(store, tiny_causal, monkeypatch):
    headers: list[str] = []
    update = ChatScreen._update_header

    def spy(self: ChatScreen) -> None:
        update(self)
        headers.append(str(self.query_one("#chat-header").render()))

    monkeypatch.setattr(ChatScreen, "_update_header", spy)
    engine = Engine(EngineConfig(threads=1))
    app = Host(engine=engine, store=store, model=tiny_causal)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            screen = chat(app)
            await wait_for(pilot, lambda: screen.model_info is not None)
            header = str(screen.query_one("#chat-header").render())
            # Finding 11: tiny models showed "0M" parameters.
            assert " 0M " not in header
            assert f" {format_parameters(screen.model_info.num_parameters)} " in header
    finally:
        await engine.aclose()
    # Finding 6: the loader's stages reach the screen (the CLI printed them, the app was silent).
    assert any(f"loading: loading {tiny_causal}" in line for line in headers)


async def test_a_missing_model_is_reported_once(store, tmp_path):
    # Finding 11: `--model /nope` showed its error twice (the app's load and the chat screen's).
    from tui.app import LmscopeApp

    missing = str(tmp_path / "nope")
    app = LmscopeApp(model=missing, engine=Engine(EngineConfig(threads=1)), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = chat(app)
        header = screen.query_one("#chat-header")
        await wait_for(pilot, lambda: "failed" in str(header.render()))
        await pilot.pause(0.2)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1 and "not found" in errors[0].message
        assert "not found" in str(header.render())
