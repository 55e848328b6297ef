"""The chat screen: multi-turn chat with the current model, streamed as Markdown.

Answers stream through :class:`~tui.widgets.chat_stream.BufferedMarkdownStream` (linear
rendering); Esc cancels the request in the engine and keeps the partial answer. Every user
message and every finished or stopped answer is written to the results store as it happens.

Store conventions for a chat: the chat's settings hold ``system_prompt`` and ``sampling`` at
creation; a later system-prompt edit is stored as a ``system`` message; every answer's usage
holds the settings it was generated with (``params``); an answer stored right after another
answer replaced it (regenerate), so reopening keeps the later one. A finished answer also keeps
its :func:`~scenarios.result_record.result_record` (prompt sent, tokens, log-probabilities), so
F10 and F7 work on a reopened chat's last answer as on a fresh one; a stopped or failed answer
(no result from the engine) keeps none, and F10/F7 then say why.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from engine import ChatMessage, ChatRequest, GenerationResult, InvalidRequestError, LmscopeError, ModelInfo
from scenarios.result_record import result_from_record, result_record
from tui.messages import ProbeRequested, PromoteRequested
from tui.widgets.chat_dialogs import ChatListDialog, PromptViewDialog, SystemPromptDialog
from tui.widgets.chat_stream import BufferedMarkdownStream
from tui.widgets.chat_turn import ChatTurn, format_usage, usage_record
from tui.widgets.sampling_panel import SamplingPanel

# Why F10 / F7 have no answer to show (``ChatScreen.no_result_reason``).
NO_ANSWER = "no answer yet"
STOPPED = ("this answer was stopped before it finished, so its prompt and tokens were not kept; "
           "regenerate it (ctrl+r) to probe it")
FAILED = ("this answer failed before it finished, so its prompt and tokens were not kept; "
          "regenerate it (ctrl+r) to probe it")
UNANSWERED = "the last message has no answer yet; ctrl+r answers it"
NO_TOKEN_DATA = ("this chat was saved without token data (by an older lmscope); "
                 "regenerate the answer (ctrl+r) to probe it")
UNREADABLE = "the stored token data of this answer could not be read; regenerate it (ctrl+r) to probe it"


class ChatScreen(Screen):
    """Chat with ``app.model_name``; see the module docstring for what is stored."""

    CSS_PATH = "chat.tcss"
    BINDINGS = [
        Binding("escape", "stop", "Stop answer"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("f8", "edit_system_prompt", "System prompt"),
        Binding("f9", "toggle_sampling", "Sampling"),
        Binding("f10", "show_prompt", "Prompt sent"),
        Binding("ctrl+n", "new_chat", "New chat"),
        Binding("ctrl+o", "open_chat", "Open chat"),
        Binding("f6", "promote", "Save as case"),
        Binding("f7", "probe", "Probe answer"),
    ]

    def __init__(self, *, name: str | None = None, id: str | None = None) -> None:
        super().__init__(name=name, id=id)
        self.messages: list[ChatMessage] = []  # user and assistant turns, in order
        self.system_prompt = ""
        self.chat_id: str | None = None
        self.last_result: GenerationResult | None = None
        self.no_result_reason = NO_ANSWER  # shown by F10 / F7 while ``last_result`` is None
        self.model_info: ModelInfo | None = None
        self._request_id: str | None = None
        self._generating = False

    # ------------------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Static("", id="chat-header", markup=False)
        with Horizontal(id="chat-body"):
            yield VerticalScroll(id="chat-transcript")
            yield SamplingPanel(id="sampling-panel", classes="-hidden")
        yield Input(placeholder="Message (Enter sends, Esc stops the answer)", id="chat-input")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "model_name", self._model_changed, init=True)
        self.query_one("#chat-input", Input).focus()

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#chat-transcript", VerticalScroll)

    @property
    def sampling(self) -> SamplingPanel:
        return self.query_one(SamplingPanel)

    @property
    def generating(self) -> bool:
        """Whether an answer is being produced."""
        return self._generating

    def _model_changed(self, name: str) -> None:
        self.model_info = None
        self._update_header()
        self._load_model(name)

    def _update_header(self) -> None:
        text = f"model: {self.app.model_name}"
        if self.model_info is not None:
            i = self.model_info
            text += f" · {i.kind} · {i.num_parameters / 1e6:.0f}M · {i.device} {i.dtype}"
            if i.context_length:
                text += f" · ctx {i.context_length}"
        if self.system_prompt:
            text += f" · system: {self.system_prompt.splitlines()[0][:40]}"
        self.query_one("#chat-header", Static).update(text)

    @work(exclusive=True, group="chat-load", exit_on_error=False)
    async def _load_model(self, name: str) -> None:
        """Load the model ahead of the first message, for the header and a fitting max tokens."""
        try:
            info = await self.app.engine.load(name)
        except LmscopeError as exc:
            self.app.show_error(exc)
            return
        if name != self.app.model_name:
            return
        self.model_info = info
        if info.context_length:
            # A max-token setting that leaves no room for the prompt would fail every request.
            try:
                current = self.sampling.params().max_new_tokens
            except InvalidRequestError:
                current = None
            if current is not None and current >= info.context_length:
                self.sampling.apply({"max_new_tokens": info.context_length // 2})
        self._update_header()

    # ----------------------------------------------------------------------- sending
    def _settings(self) -> dict[str, Any]:
        return {"system_prompt": self.system_prompt, "sampling": self.sampling.values()}

    def _request_messages(self) -> tuple[ChatMessage, ...]:
        system = (ChatMessage("system", self.system_prompt),) if self.system_prompt else ()
        return system + tuple(self.messages)

    def _checked_params(self):
        """Generation parameters from the panel, or ``None`` after showing why they are invalid."""
        try:
            return self.sampling.params(logprobs=True, top_logprobs=5)
        except InvalidRequestError as exc:
            self.sampling.check()
            self.sampling.remove_class("-hidden")
            self.app.show_error(exc)
            return None

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "chat-input":
            return
        text = event.value.strip()
        if not text:
            return
        if self._generating:
            self.notify("an answer is still being generated (Esc stops it)", severity="warning")
            return
        params = self._checked_params()
        if params is None:
            return  # the typed text stays in the input
        event.input.clear()
        self.messages.append(ChatMessage("user", text))
        self._persist("user", text)
        turn = ChatTurn(text)
        await self.transcript.mount(turn)
        self.transcript.scroll_end(animate=False)
        self._start_answer(turn, params)

    def _persist(self, role: str, content: str, usage: dict[str, Any] | None = None,
                 result: dict[str, Any] | None = None) -> None:
        store = self.app.store
        if self.chat_id is None:
            self.chat_id = store.create_chat(self.app.model_name, self._settings())
        store.add_message(self.chat_id, role, content, usage, result)

    def _start_answer(self, turn: ChatTurn, params) -> None:
        self._generating = True
        self._answer(turn, params)

    @work(exclusive=True, group="chat-answer", exit_on_error=False)
    async def _answer(self, turn: ChatTurn, params) -> None:
        request = ChatRequest(self.app.model_name, self._request_messages(), params)
        self._request_id = request.request_id
        turn.set_footer("generating … (Esc stops)")
        writer = BufferedMarkdownStream(turn.answer, on_flush=self._follow)
        result: GenerationResult | None = None
        settings = self.sampling.values()
        ended = "cancelled"  # how it ended if no result arrives
        try:
            async for event in self.app.engine.stream(request):
                if isinstance(event, GenerationResult):
                    result = event
                else:
                    writer.write(event.text)
        except Exception as exc:  # noqa: BLE001 - any failure is shown; the app and the text survive
            ended = "error"
            self.app.show_error(exc)
            message = exc.message if isinstance(exc, LmscopeError) else str(exc)
            turn.set_footer(f"error: {message} (ctrl+r retries)", error=True)
        finally:
            shown = writer.text
            await writer.stop()
            self._request_id = None
            self._generating = False
            if result is not None:
                await self._finish(turn, result, shown, settings)
            else:
                self._keep_partial(turn, shown, ended, settings)

    def _keep_partial(self, turn: ChatTurn, shown: str, ended: str, settings: dict[str, str]) -> None:
        """End an answer that got no result from the engine (an error, or the worker cancelled)."""
        self.last_result = None
        self.no_result_reason = STOPPED if ended == "cancelled" else FAILED
        if shown:  # keep whatever was produced before the error or the worker's cancellation
            self.messages.append(ChatMessage("assistant", shown))
            self._persist("assistant", shown, {"finish_reason": ended, "params": settings})
            if ended == "cancelled" and turn.is_attached:
                turn.set_footer("stopped")

    async def _finish(self, turn: ChatTurn, result: GenerationResult, shown: str, settings: dict[str, str]) -> None:
        if result.text != shown:  # the final text can hold a last piece no delta carried
            if result.text.startswith(shown):
                await turn.answer.append(result.text[len(shown):])
            else:
                await turn.answer.update(result.text)
        record = usage_record(result, settings)
        self.last_result = result
        self.messages.append(ChatMessage("assistant", result.text))
        self._persist("assistant", result.text, record, result_record(result))
        footer = format_usage(record)
        if result.warnings:
            footer += " · " + "; ".join(result.warnings)
        turn.set_footer(footer)
        self._follow()

    def _follow(self) -> None:
        self.transcript.scroll_end(animate=False)

    # ----------------------------------------------------------------------- actions
    def action_stop(self) -> None:
        """Stop the answer now; what was produced stays (finish reason ``cancelled``)."""
        if not self._generating:
            return
        if self._request_id is None or not self.app.engine.cancel(self._request_id):
            # Not yet running in the engine (the model may still be loading): stop the worker.
            self.workers.cancel_group(self, "chat-answer")

    async def action_regenerate(self) -> None:
        """Answer the last user message again (replacing the last answer)."""
        if self._generating:
            self.notify("an answer is still being generated (Esc stops it)", severity="warning")
            return
        if not self.messages:
            return
        params = self._checked_params()
        if params is None:
            return
        if self.messages[-1].role == "assistant":
            self.messages.pop()
        turns = self.query(ChatTurn)
        if not turns:
            return
        turn = turns.last()
        await turn.reset_answer()
        self._start_answer(turn, params)

    def action_edit_system_prompt(self) -> None:
        """Open the system prompt editor; a change applies to the next answer."""

        def apply(text: str | None) -> None:
            if text is None or text == self.system_prompt:
                return
            self.system_prompt = text
            if self.chat_id is not None:
                self.app.store.add_message(self.chat_id, "system", text)
            self._update_header()

        self.app.push_screen(SystemPromptDialog(self.system_prompt), apply)

    def action_toggle_sampling(self) -> None:
        """Show or hide the sampling settings panel."""
        self.sampling.toggle_class("-hidden")

    def _answer_or_explain(self) -> GenerationResult | None:
        """The last answer's result, or ``None`` after saying why there is none to show."""
        if self._generating:
            self.notify("an answer is still being generated (Esc stops it)", severity="warning")
            return None
        if self.last_result is None:
            self.notify(self.no_result_reason)
        return self.last_result

    def action_show_prompt(self) -> None:
        """Show the exact prompt of the last answer, after the chat template."""
        if (result := self._answer_or_explain()) is not None:
            self.app.push_screen(PromptViewDialog(result.prompt_text))

    async def action_new_chat(self) -> None:
        """Start an empty chat (the current one stays in the store)."""
        await self._clear()

    def action_open_chat(self) -> None:
        """Pick a saved chat and restore its messages and settings."""

        async def restore(chat_id: str | None) -> None:
            if chat_id is not None:
                await self.restore_chat(chat_id)

        self.app.push_screen(ChatListDialog(self.app.store.chats()), restore)

    def action_promote(self) -> None:
        """Ask to save the last turn as a scenario case."""
        if len(self.messages) < 2 or self.messages[-1].role != "assistant":
            self.notify("no finished turn to save yet")
            return
        self.post_message(PromoteRequested(self.messages[-2].content, self.messages[-1].content, self.app.model_name))

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
        self.messages = []
        self.chat_id = None
        self.last_result = None
        self.no_result_reason = NO_ANSWER

    async def restore_chat(self, chat_id: str) -> None:
        """Replace the screen's chat with a stored one (messages, system prompt, settings, and the
        last answer's result, so F10 and F7 work on it)."""
        store = self.app.store
        chat = next((c for c in store.chats() if c["id"] == chat_id), None)
        if chat is None:
            self.notify(f"no chat {chat_id!r} in the store", severity="error")
            return
        await self._clear()
        settings = chat.get("settings") or {}
        system_prompt = settings.get("system_prompt", "")
        sampling = dict(settings.get("sampling") or {})
        turns: list[ChatTurn] = []
        messages: list[ChatMessage] = []
        last_usage: dict[str, Any] = {}
        for row in store.chat_messages(chat_id):
            role, content, usage = row["role"], row["content"], row["usage"] or {}
            if role == "system":
                system_prompt = content
            elif role == "user":
                messages.append(ChatMessage("user", content))
                turns.append(ChatTurn(content))
            elif role == "assistant" and turns:
                if messages[-1].role == "assistant":
                    messages.pop()  # a regenerated answer replaces the one before it
                messages.append(ChatMessage("assistant", content))
                turns[-1] = ChatTurn(turns[-1].user_text, content, format_usage(usage) if usage else "")
                sampling.update(usage.get("params") or {})
                last_usage = usage
        self.messages = messages
        self.last_result, self.no_result_reason = self._stored_answer(chat_id, messages, last_usage)
        self.system_prompt = system_prompt
        self.chat_id = chat_id
        self.sampling.apply(sampling)
        await self.transcript.mount_all(turns)
        self.transcript.scroll_end(animate=False)
        self._update_header()
        if chat["model"] != self.app.model_name:
            self.notify(f"this chat was with {chat['model']}; answers now come from {self.app.model_name}")

    def _stored_answer(self, chat_id: str, messages: list[ChatMessage],
                       usage: dict[str, Any]) -> tuple[GenerationResult | None, str]:
        """The reopened chat's last answer rebuilt from the store, or why it cannot be."""
        if not messages:
            return None, NO_ANSWER
        if messages[-1].role != "assistant":
            return None, UNANSWERED
        try:
            record = self.app.store.last_answer_result(chat_id)
            if record is not None:
                return result_from_record(record), NO_ANSWER
        except ValueError:  # also a corrupt JSON text (json.JSONDecodeError)
            return None, UNREADABLE
        if "new_tokens" not in usage:  # stored without an engine result: stopped or failed
            return None, FAILED if usage.get("finish_reason") == "error" else STOPPED
        return None, NO_TOKEN_DATA

    def on_unmount(self) -> None:
        if self._request_id is not None:
            self.app.engine.cancel(self._request_id)
