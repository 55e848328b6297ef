"""The surprisal tool: generate with log-probabilities and show each token coloured by how
surprising it was, with the alternatives the model weighed (:class:`~tui.widgets.token_view.TokenView`)."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Checkbox, Input, Static

from engine import ChatMessage, GenerationParams, GenerationResult, TokenDelta
from scenarios.conversation import build_request
from tui.widgets.probe_tool import ProbeTool, busy
from tui.widgets.token_view import TokenView


class SurprisalTool(ProbeTool):
    """A prompt, then the answer token by token with surprisal and top-k alternatives.

    Args:
        result: an answer to show at once (it needs ``logprobs``).
        max_new_tokens: length of the answers generated here.
        top_k: alternatives per token.
    """

    tool = "surprisal"
    focus_id = "surprisal-prompt"

    def __init__(self, app_model: str, result: GenerationResult | None = None, *, max_new_tokens: int = 64,
                 top_k: int = 5, id: str | None = None) -> None:
        super().__init__(app_model, id=id)
        self.result: GenerationResult | None = result
        self.max_new_tokens = max_new_tokens
        self.top_k = top_k
        self._request_id: str | None = None

    def compose(self) -> ComposeResult:
        yield self.model_field()
        with Horizontal(classes="probe-row"):
            yield Input(placeholder="a prompt; Enter generates with log-probabilities", id="surprisal-prompt")
            yield Checkbox("chat", value=True, id="surprisal-chat", tooltip="send the prompt through the chat template")
        yield Static("", id="surprisal-status", classes="probe-status")
        yield TokenView(placeholder="Type a prompt above: the answer appears here, each token coloured "
                                    "by how surprising it was to the model.", id="token-view")

    def on_mount(self) -> None:
        if self.result is not None:
            self._show_existing(self.result)

    def _status(self, text: str | Content) -> None:
        self.query_one("#surprisal-status", Static).update(text)

    def _show_existing(self, result: GenerationResult) -> None:
        view = self.query_one(TokenView)
        view.show_result(result)
        self._status(Content.assemble(("answer of ", "dim"), result.model, ("  ", ""),
                                      f"{len(result.token_ids)} tokens", ("  ·  ←/→ move the cursor", "dim")))
        if result.logprobs:
            view.focus()

    @on(Input.Submitted, "#surprisal-prompt")
    def _prompt_submitted(self) -> None:
        self.run()

    def run(self) -> None:
        prompt = self.query_one("#surprisal-prompt", Input).value
        if not prompt.strip():
            self._status(Content.styled("Type a prompt first.", "$warning"))
            return
        self._generate(self.model, prompt, self.query_one("#surprisal-chat", Checkbox).value)

    def stop(self) -> bool:
        if self._request_id is None:
            return False
        self.app.engine.cancel(self._request_id)
        return True

    @work(exclusive=True, exit_on_error=False, group="surprisal")
    async def _generate(self, model: str, prompt: str, chat: bool) -> None:
        engine = self.app.engine
        view = self.query_one(TokenView)
        params = GenerationParams(max_new_tokens=self.max_new_tokens, logprobs=True, top_logprobs=self.top_k)
        self._status(busy("loading", model))
        request = None
        try:
            info = await engine.load(model)
            request = build_request(model, info, (ChatMessage("user", prompt),), params, chat=chat)
            self._request_id = request.request_id
            view.clear("Generating…")
            self._status(Content.assemble(("generating with ", "dim"), model, ("… (esc stops)", "dim")))
            result = None
            async for event in engine.stream(request):
                if isinstance(event, TokenDelta):
                    view.append(event.logprobs, event.top_logprobs)
                else:
                    result = event
            if result is not None:
                self._show_generated(result)
        except Exception as exc:  # engine errors become a message; the screen keeps working
            self.report(self.query_one("#surprisal-status", Static), exc, "Cannot generate with this model. ")
        finally:
            if request is not None and self._request_id == request.request_id:
                self._request_id = None

    def _show_generated(self, result: GenerationResult) -> None:
        self.result = result
        view = self.query_one(TokenView)
        view.show_result(result)
        note = "  (stopped)" if result.finish_reason == "cancelled" else ""
        self._status(Content.assemble(result.model, ("  ·  ", "dim"), f"{len(result.token_ids)} tokens",
                                      (note, "$warning"),
                                      ("  ·  ←/→ or click a token to see its alternatives", "dim")))
        if isinstance(self.screen.focused, Input):
            view.focus()
