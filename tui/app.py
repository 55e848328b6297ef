"""A minimal chat screen until the full terminal app lands: type, watch the answer stream.

The model loads in a background worker; every engine call runs in a worker and the UI is only
touched from the event loop.
"""

from __future__ import annotations

from textual import work
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input, Markdown, Static

from engine import ChatMessage, ChatRequest, Engine, EngineConfig, GenerationParams, GenerationResult, LmscopeError


class LmscopeApp(App):
    """Chat with one model; Esc stops the answer being generated."""

    TITLE = "lmscope"
    CSS_PATH = "app.tcss"
    BINDINGS = [("escape", "stop", "Stop answer"), ("ctrl+q", "quit", "Quit")]

    def __init__(self, model: str = "default", device: str | None = None, dtype: str | None = None,
                 threads: int | None = None, engine: Engine | None = None) -> None:
        super().__init__()
        self.model_name = model
        self.engine = engine or Engine(EngineConfig(threads=threads, device=device, dtype=dtype))
        self.history: list[ChatMessage] = []
        self._request_id: str | None = None
        self.max_new_tokens = 256

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"loading {self.model_name} …", id="status")
        yield VerticalScroll(id="transcript")
        yield Input(placeholder="Type a message and press Enter", id="prompt", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load_model()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_model(self) -> None:
        status = self.query_one("#status", Static)
        try:
            info = await self.engine.load(self.model_name)
        except LmscopeError as exc:
            status.update(f"[b red]error:[/] {exc.message}" + (f"\n{exc.hint}" if exc.hint else ""))
            return
        if info.context_length:
            self.max_new_tokens = min(self.max_new_tokens, info.context_length // 2)
        status.update(f"{info.name} · {info.kind} · {info.num_parameters / 1e6:.0f}M params · {info.device} {info.dtype}")
        prompt = self.query_one("#prompt", Input)
        prompt.disabled = False
        prompt.focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        event.input.clear()
        self.history.append(ChatMessage("user", text))
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.mount(Static(text, classes="user"))
        answer = Markdown("", classes="assistant")
        await transcript.mount(answer)
        self.answer(answer)

    @work(exclusive=True, group="answer", exit_on_error=False)
    async def answer(self, widget: Markdown) -> None:
        request = ChatRequest(self.model_name, tuple(self.history), GenerationParams(max_new_tokens=self.max_new_tokens))
        self._request_id = request.request_id
        stream = Markdown.get_stream(widget)
        text = ""
        try:
            async for event in self.engine.stream(request):
                if isinstance(event, GenerationResult):
                    u = event.usage
                    self.query_one("#status", Static).update(
                        f"{u.new_tokens} tokens · first token {u.time_to_first_token_s:.2f} s · "
                        f"{u.tokens_per_s:.1f} tok/s · {u.device} {u.dtype} · {event.finish_reason}")
                    text = event.text
                else:
                    await stream.write(event.text)
                    self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)
        except LmscopeError as exc:
            self.notify(str(exc), severity="error")
        finally:
            await stream.stop()
            self._request_id = None
        if text:
            self.history.append(ChatMessage("assistant", text))

    def action_stop(self) -> None:
        if self._request_id:
            self.engine.cancel(self._request_id)

    async def on_unmount(self) -> None:
        await self.engine.aclose()
