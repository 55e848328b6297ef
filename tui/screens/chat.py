"""The chat screen: a :class:`~scenarios.conversation.Conversation` plus its transcript.

The conversation (history, sending, stopping, regenerating, storage) lives in
:mod:`scenarios.conversation`; this screen shows it. Answers stream through
:class:`~tui.widgets.chat_stream.BufferedMarkdownStream` (linear rendering); Esc stops an answer
and keeps what was produced. The transcript follows a streaming answer until the user scrolls
up (PgUp, the mouse wheel), shows that new text arrived below, and follows again once scrolled
back to the bottom (End); a resize keeps the bottom in view while following.

The editor is multi-line: Enter sends, Shift+Enter or Ctrl+J starts a new line, a paste keeps
its newlines, Up / Down on the first / last line walk the messages sent before. Text selected
in the transcript with the mouse copies with Ctrl+C; Alt+C copies the last answer and Alt+K its
last code block (through the terminal's OSC 52 clipboard).
"""

from __future__ import annotations

import re
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine import ChatMessage, GenerationResult, InvalidRequestError, LmscopeError, ModelInfo, TokenDelta
from scenarios.conversation import (  # noqa: F401 - re-exported: what F10 / F7 say when there is no answer
    FAILED,
    NO_ANSWER,
    NO_TOKEN_DATA,
    STOPPED,
    UNANSWERED,
    UNREADABLE,
    Answer,
    Conversation,
    Waiting,
    format_usage,
    usage_record,
)
from scenarios.errors import StoreError
from tui.formatting import format_parameters
from tui.messages import ProbeRequested, PromoteRequested
from tui.widgets.chat_dialogs import ChatListDialog, PromptViewDialog, SystemPromptDialog
from tui.widgets.chat_input import ChatInput
from tui.widgets.chat_stream import BufferedMarkdownStream
from tui.widgets.chat_turn import ChatTurn
from tui.widgets.sampling_panel import SamplingPanel

BUSY = "an answer is still being generated (Esc stops it)"
CLIPBOARD_NOTE = "copied {what} ({chars} characters) through OSC 52; if it does not paste, the terminal lacks OSC 52"
_CODE_BLOCK = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1", re.S | re.M)


def last_code_block(text: str) -> str | None:
    """The content of the last fenced code block in ``text`` (an unclosed one counts), or None."""
    blocks = _CODE_BLOCK.findall(text)
    if blocks:
        return blocks[-1][1].rstrip("\n")
    fence = max(text.rfind("```"), text.rfind("~~~"))
    if fence != -1 and text[:fence].count(text[fence:fence + 3]) % 2 == 0:  # an opening fence, still open
        body = text[fence:].split("\n", 1)
        return body[1].rstrip("\n") if len(body) == 2 else None
    return None


class Transcript(VerticalScroll):
    """The turns, anchored to the bottom: it follows new text until the user scrolls up."""

    @property
    def following(self) -> bool:
        """Whether new text scrolls into view (the user has not scrolled away from the bottom)."""
        # Textual's anchor is released by a user scroll and restored at the bottom.
        return not self._anchor_released or self.scroll_y >= self.max_scroll_y


class ChatScreen(Screen):
    """Chat with ``app.model_name``; see the module docstring."""

    CSS_PATH = "chat.tcss"
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+o", "open_chat", "Open chat", show=False),  # the footer fits 80 columns; F1 lists it
        Binding("f6", "promote", "Save case"),
        Binding("f7", "probe", "Probe"),
        Binding("f8", "edit_system_prompt", "System"),
        Binding("f9", "toggle_sampling", "Sampling"),
        Binding("f10", "show_prompt", "Prompt sent", show=False),
        Binding("alt+c", "copy_answer", "Copy answer", show=False),
        Binding("alt+k", "copy_code", "Copy code block", show=False),
        Binding("pageup", "scroll_transcript('page_up')", "Scroll up", show=False),
        Binding("pagedown", "scroll_transcript('page_down')", "Scroll down", show=False),
        Binding("end,ctrl+end", "follow", "Follow the answer", show=False),
    ]

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.conversation: Conversation | None = None  # made on mount (needs the app's engine)
        self.model_info: ModelInfo | None = None
        self._load_stage = ""
        self._generating = False

    # ------------------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Static("", id="chat-header", markup=False)
        with Horizontal(id="chat-body"):
            yield Transcript(id="chat-transcript")
            yield SamplingPanel(id="sampling-panel", classes="-hidden")
        yield Static("▼ new text below · End follows the answer", id="chat-new-text", classes="-hidden", markup=False)
        yield ChatInput(placeholder="Message · Enter sends · Shift+Enter or Ctrl+J new line · Esc stops",
                        id="chat-input")
        yield Footer()

    def on_mount(self) -> None:
        self.conversation = Conversation(self.app.engine, self.app.store, self.app.model_name)
        self.transcript.anchor()
        self.watch(self.app, "model_name", self._model_changed, init=True)
        self.query_one("#chat-input", ChatInput).focus()

    @property
    def transcript(self) -> Transcript:
        return self.query_one("#chat-transcript", Transcript)

    @property
    def sampling(self) -> SamplingPanel:
        return self.query_one(SamplingPanel)

    @property
    def generating(self) -> bool:
        """Whether an answer is being produced."""
        return self._generating

    # What the conversation holds, read by tests, the bench and the app.
    @property
    def messages(self) -> list[ChatMessage]:
        return self.conversation.messages if self.conversation else []

    @property
    def chat_id(self) -> str | None:
        return self.conversation.chat_id if self.conversation else None

    @property
    def last_result(self) -> GenerationResult | None:
        return self.conversation.last_result if self.conversation else None

    @property
    def no_result_reason(self) -> str:
        return self.conversation.no_result_reason if self.conversation else NO_ANSWER

    @property
    def system_prompt(self) -> str:
        return self.conversation.system_prompt if self.conversation else ""

    def _model_changed(self, name: str) -> None:
        self.conversation.model = name
        self.model_info = None
        self._update_header()
        self._load_model(name)

    def _update_header(self) -> None:
        text = f"model: {self.app.model_name}"
        if self.model_info is not None:
            i = self.model_info
            text += f" · {i.kind} · {format_parameters(i.num_parameters)} · {i.device} {i.dtype}"
            if i.context_length:
                text += f" · ctx {i.context_length}"
        elif self._load_stage.startswith("failed"):
            text += f" · {self._load_stage}"
        elif self._load_stage:
            text += f" · loading: {self._load_stage}"
        if self.system_prompt:
            text += f" · system: {self.system_prompt.splitlines()[0][:40]}"
        self.query_one("#chat-header", Static).update(text)

    def _loading(self, line: str) -> None:
        self._load_stage = line
        self._update_header()

    @work(exclusive=True, group="chat-load", exit_on_error=False)
    async def _load_model(self, name: str) -> None:
        """Load the model ahead of the first message, showing its load stages in the header."""
        self._load_stage = "starting …"
        self._update_header()
        try:
            info = await self.conversation.load(self._loading)
        except LmscopeError as exc:
            # Said here, not as a notification: the app already reports its current model's
            # load failure (once), and sending a message says it again where it matters.
            self._load_stage = f"failed: {exc.message}"
            self._update_header()
            return
        if name != self.app.model_name:
            return
        self.model_info = info
        self._load_stage = ""
        self.sampling.fit_context(info.context_length)
        self._update_header()

    # ----------------------------------------------------------------------- sending
    def _checked_params(self):
        """Generation parameters from the panel, or ``None`` after showing why they are invalid."""
        try:
            return self.sampling.params(logprobs=True, top_logprobs=5)
        except InvalidRequestError as exc:
            self.sampling.check()
            self.sampling.remove_class("-hidden")
            self.app.show_error(exc)
            return None

    @on(ChatInput.Submitted, "#chat-input")
    async def _submitted(self, event: ChatInput.Submitted) -> None:
        text = event.text.strip()
        if not text:
            return
        if self._generating:
            self.notify(BUSY, severity="warning")
            return
        params = self._checked_params()
        if params is None:
            return  # the typed text stays in the editor
        event.chat_input.remember(text)
        event.chat_input.clear()
        turn = ChatTurn(text)
        await self.transcript.mount(turn)
        self.action_follow()  # a new message follows its answer again
        self._start_answer(turn, params, text)

    def _start_answer(self, turn: ChatTurn, params, prompt: str | None) -> None:
        self._generating = True
        self._answer(turn, params, prompt)

    @work(exclusive=True, group="chat-answer", exit_on_error=False)
    async def _answer(self, turn: ChatTurn, params, prompt: str | None) -> None:
        """Send ``prompt`` (``None``: answer the last message again) and stream the answer into ``turn``."""
        turn.set_footer("waiting … (Esc stops)")
        writer = BufferedMarkdownStream(turn.answer, on_flush=self._follow)
        settings = self.sampling.values()

        def on_event(event: Waiting | TokenDelta) -> None:
            if isinstance(event, Waiting):
                turn.set_footer(f"{event.text} (Esc stops)")
            else:
                if not writer.text:
                    turn.set_footer("generating … (Esc stops)")
                writer.write(event.text)

        answer: Answer | None = None
        try:
            if prompt is None:
                answer = await self.conversation.regenerate(params, settings, on_event)
            else:
                answer = await self.conversation.send(prompt, params, settings, on_event)
        finally:
            shown = writer.text
            await writer.stop()
            self._generating = False
            if turn.is_attached:
                await self._show_end(turn, answer, shown)

    async def _show_end(self, turn: ChatTurn, answer: Answer | None, shown: str) -> None:
        """Finish the turn on screen: the final text, and the footer (usage, or how it ended)."""
        if answer is None:  # the worker was cancelled (the model was still loading)
            turn.set_footer("stopped")
            return
        if answer.error is not None:
            self.app.show_error(answer.error)
            error = answer.error
            message = error.message if isinstance(error, LmscopeError) else str(error)
            turn.set_footer(f"error: {message} (ctrl+r retries)", error=True)
            return
        if answer.text != shown:  # the final text can hold a last piece no delta carried
            if answer.text.startswith(shown):
                await turn.answer.append(answer.text[len(shown):])
            else:
                await turn.answer.update(answer.text)
        footer = format_usage(usage_record(answer))
        if answer.result is not None and answer.result.warnings:
            footer += " · " + "; ".join(answer.result.warnings)
        turn.set_footer(footer if answer.result is not None or answer.text else "stopped")
        self._follow()

    def _follow(self) -> None:
        """After new text: the anchored transcript follows by itself; say so when it does not."""
        self.query_one("#chat-new-text").set_class(self.transcript.following, "-hidden")

    # ----------------------------------------------------------------------- actions
    def action_follow(self) -> None:
        """Scroll to the bottom and follow the answer again (End)."""
        self.transcript.anchor()
        self.query_one("#chat-new-text").add_class("-hidden")

    def action_scroll_transcript(self, direction: str) -> None:
        """PgUp / PgDn scroll the transcript, even while the editor has the focus."""
        if direction == "page_up":
            self.transcript.scroll_page_up()
        else:
            self.transcript.scroll_page_down()
            if self.transcript.following:
                self.query_one("#chat-new-text").add_class("-hidden")

    def action_stop(self) -> None:
        """Stop the answer now; what was produced stays (finish reason ``cancelled``)."""
        if not self._generating:
            return
        if not self.conversation.stop():
            # Not yet running in the engine (the model may still be loading): stop the worker.
            self.workers.cancel_group(self, "chat-answer")

    async def action_regenerate(self) -> None:
        """Answer the last user message again (replacing the last answer)."""
        if self._generating:
            self.notify(BUSY, severity="warning")
            return
        if not self.messages:
            return
        params = self._checked_params()
        if params is None:
            return
        turns = self.query(ChatTurn)
        if not turns:
            return
        turn = turns.last()
        await turn.reset_answer()
        self._start_answer(turn, params, None)

    def action_edit_system_prompt(self) -> None:
        """Open the system prompt editor; a change applies to the next answer."""

        def apply(text: str | None) -> None:
            if text is not None:
                self.conversation.set_system_prompt(text)
                self._update_header()

        self.app.push_screen(SystemPromptDialog(self.system_prompt), apply)

    def action_toggle_sampling(self) -> None:
        """Show or hide the sampling settings panel."""
        self.sampling.toggle_class("-hidden")

    def _answer_or_explain(self) -> GenerationResult | None:
        """The last answer's result, or ``None`` after saying why there is none to show."""
        if self._generating:
            self.notify(BUSY, severity="warning")
            return None
        if self.last_result is None:
            self.notify(self.no_result_reason)
        return self.last_result

    def action_show_prompt(self) -> None:
        """Show the exact prompt of the last answer, after the chat template."""
        if (result := self._answer_or_explain()) is not None:
            self.app.push_screen(PromptViewDialog(result.prompt_text))

    def _copy(self, text: str | None, what: str, missing: str) -> None:
        if not text:
            self.notify(missing)
            return
        self.app.copy_to_clipboard(text)
        self.notify(CLIPBOARD_NOTE.format(what=what, chars=len(text)))

    def action_copy_answer(self) -> None:
        """Copy the last answer's text (Alt+C)."""
        answer = next((m.content for m in reversed(self.messages) if m.role == "assistant"), None)
        self._copy(answer, "the last answer", "no answer to copy yet")

    def action_copy_code(self) -> None:
        """Copy the last code block of the last answer that has one (Alt+K)."""
        code = next((block for m in reversed(self.messages) if m.role == "assistant"
                     and (block := last_code_block(m.content)) is not None), None)
        self._copy(code, "the last code block", "no code block in the answers yet")

    async def action_new_chat(self) -> None:
        """Start an empty chat (the current one stays in the store)."""
        await self._clear()

    def action_open_chat(self) -> None:
        """Pick a saved chat and restore its messages and settings."""

        async def restore(chat_id: str | None) -> None:
            if chat_id is not None:
                await self.restore_chat(chat_id)

        self.app.push_screen(ChatListDialog(self.app.store.chat_list()), restore)

    def action_promote(self) -> None:
        """Ask to save the last turn, with the system prompt and earlier turns, as a scenario case."""
        if self._generating:
            self.notify(BUSY, severity="warning")
            return
        if len(self.messages) < 2 or self.messages[-1].role != "assistant":
            self.notify("no finished turn to save yet")
            return
        self.post_message(PromoteRequested(self.messages[-2].content, self.messages[-1].content,
                                           self.app.model_name, system=self.system_prompt,
                                           history=tuple(self.messages[:-2])))

    def action_probe(self) -> None:
        """Ask to inspect the last answer token by token."""
        if (result := self._answer_or_explain()) is not None:
            self.post_message(ProbeRequested(result))

    # ----------------------------------------------------------------------- history
    async def _clear(self) -> None:
        if self._generating:
            self.action_stop()
            await self.workers.wait_for_complete([w for w in self.workers if w.group == "chat-answer"])
        await self.transcript.remove_children()
        self.conversation.clear()

    async def restore_chat(self, chat_id: str) -> None:
        """Replace the screen's chat with a stored one (messages, system prompt, settings, and the
        last answer's result, so F10 and F7 work on it)."""
        try:
            chat = self.app.store.chat(chat_id)
        except StoreError as exc:
            self.app.show_error(exc)
            return
        await self._clear()
        turns, sampling = self.conversation.restore(chat)
        self.sampling.apply(sampling)
        await self.transcript.mount_all([ChatTurn(t.user, t.answer or "", t.footer) for t in turns])
        self.action_follow()
        self._update_header()
        if chat.model != self.app.model_name:
            self.notify(f"this chat was with {chat.model}; answers now come from {self.app.model_name}")

    def on_unmount(self) -> None:
        if self.conversation is not None:
            self.conversation.stop()

