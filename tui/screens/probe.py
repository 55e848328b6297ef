"""Probing tools: token surprisal with top-k alternatives, fill-mask, and perplexity of pasted text.

Every engine call runs in an exclusive worker per tool (a new request supersedes the old one);
results land in the widgets from the event loop. A chat can open this screen on an answer it
already has (``ProbeScreen(result=...)``, pushed by the app on :class:`tui.messages.ProbeRequested`).
"""

from __future__ import annotations

import math

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Static, TabbedContent, TabPane, TextArea

from engine import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    FillMaskRequest,
    FillMaskResult,
    GenerationParams,
    GenerationResult,
    LmscopeError,
    PerplexityResult,
    Text2TextRequest,
    TokenDelta,
    UnsupportedModelError,
)
from tui.widgets.token_view import TokenView, format_probability

# The widget that takes the keyboard when a tool's tab is opened from a key.
TAB_FOCUS = {"surprisal": "surprisal-prompt", "fill-mask": "mask-text", "perplexity": "ppl-text"}


def error_text(exc: Exception) -> str:
    """An engine error as one or two lines: message, then hint."""
    if isinstance(exc, LmscopeError):
        return exc.message + (f"\n{exc.hint}" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


def fill_mask_text(result: FillMaskResult) -> Content:
    """Top-k predictions per mask position, with probabilities and bars."""
    lines: list[Content] = []
    for k, predictions in enumerate(result.predictions, 1):
        lines.append(Content.styled(f"mask {k} of {len(result.predictions)}", "bold $accent"))
        for rank, p in enumerate(predictions, 1):
            bar = "█" * max(1, round(p.probability * 20))
            lines.append(Content.assemble(f"{rank:>3}. ", (f"{p.token:<14}", "bold"), " ",
                                          f"{format_probability(p.probability):>8} ", (bar, "$accent")))
        if predictions:
            lines.append(Content.assemble(("     → ", "dim"), (predictions[0].sequence, "italic")))
    return Content("\n").join(lines) if lines else Content.styled("no mask token in the text", "dim")


def perplexity_text(model: str, result: PerplexityResult) -> Content:
    """Token and word perplexity, bits per byte, counts and the method string."""
    rows = [
        ("token perplexity", f"{result.token_perplexity:.3f}"),
        ("word perplexity", f"{result.word_perplexity:.3f}"),
        ("bits per byte", f"{result.bits_per_byte:.4f}"),
        ("tokens/words/bytes", f"{result.num_tokens} / {result.num_words} / {result.num_bytes}"),
        ("neg. log-likelihood", f"{result.nll:.3f} nats"),
        ("method", result.method),
        ("model", model),
    ]
    return Content("\n").join(Content.assemble((f"{name:<20}", "dim"), (value, "bold")) for name, value in rows)


class ProbeScreen(Screen):
    """Surprisal of each answer token (with alternatives), fill-mask, and perplexity of pasted text.

    Args:
        result: an answer to show at once in the surprisal tool (it needs ``logprobs``).
        max_new_tokens: length of the answers generated here.
        top_k: alternatives per token, and predictions per mask.
    """

    CSS_PATH = "probe.tcss"
    AUTO_FOCUS = "#surprisal-prompt"
    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop / back"),
        Binding("ctrl+r", "run_tool", "Run tool"),
        Binding("f8", "show_tab('surprisal')", "Surprisal"),
        Binding("f9", "show_tab('fill-mask')", "Fill-mask"),
        Binding("f10", "show_tab('perplexity')", "Perplexity"),
    ]

    def __init__(self, result: GenerationResult | None = None, *, max_new_tokens: int = 64, top_k: int = 5,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.result: GenerationResult | None = result
        self.max_new_tokens = max_new_tokens
        self.top_k = top_k
        self.fill_mask_result: FillMaskResult | None = None
        self.perplexity_result: PerplexityResult | None = None
        self._request_id: str | None = None

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="surprisal", id="probe-tabs"):
            with TabPane("Surprisal", id="surprisal"):
                with Horizontal(classes="probe-row"):
                    yield Input(placeholder="a prompt; Enter generates with log-probabilities", id="surprisal-prompt")
                    yield Checkbox("chat", value=True, id="surprisal-chat",
                                   tooltip="send the prompt through the chat template")
                yield Static("", id="surprisal-status", classes="probe-status")
                yield TokenView(placeholder="Type a prompt above: the answer appears here, each token coloured "
                                            "by how surprising it was to the model.", id="token-view")
            with TabPane("Fill-mask", id="fill-mask"):
                with Horizontal(classes="probe-row"):
                    yield Input(self.app.model_name, placeholder="a masked LM (BERT-style)", id="mask-model")
                yield Input(placeholder="text with [MASK], e.g. The capital of France is [MASK].", id="mask-text")
                yield Static(Content.styled("Predictions appear here.", "dim"), id="mask-results",
                             classes="probe-results")
            with TabPane("Perplexity", id="perplexity"):
                yield TextArea(id="ppl-text", soft_wrap=True, show_line_numbers=False)
                with Horizontal(classes="probe-row probe-actions"):
                    yield Button("Score", id="ppl-run", variant="primary", compact=True)
                    yield Static("", id="ppl-model", classes="probe-status")
                yield Static(Content.styled("Paste text above and press Score (ctrl+r).", "dim"),
                             id="ppl-results", classes="probe-results")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "model_name", self._model_changed)
        if self.result is not None:
            self._show_existing(self.result)

    def _model_changed(self, name: str) -> None:
        self.query_one("#ppl-model", Static).update(Content.assemble(("model ", "dim"), name))

    def _show_existing(self, result: GenerationResult) -> None:
        view = self.query_one(TokenView)
        view.show_result(result)
        self._status(Content.assemble(("answer of ", "dim"), result.model, ("  ", ""),
                                      f"{len(result.token_ids)} tokens", ("  ·  ←/→ move the cursor", "dim")))
        if result.logprobs:
            view.focus()

    def _status(self, text: str | Content) -> None:
        self.query_one("#surprisal-status", Static).update(text)

    # ---------------------------------------------------------------- actions
    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one(f"#{TAB_FOCUS[tab]}").focus()

    def action_run_tool(self) -> None:
        tab = self.query_one(TabbedContent).active
        if tab == "surprisal":
            self._start_generation()
        elif tab == "fill-mask":
            self._start_fill_mask()
        else:
            self._start_perplexity()

    def action_stop_or_close(self) -> None:
        if self._request_id is not None:
            self.app.engine.cancel(self._request_id)
        elif len(self.app.screen_stack) > 1 and self.app.screen is self:
            self.dismiss()

    # ---------------------------------------------------------------- surprisal
    @on(Input.Submitted, "#surprisal-prompt")
    def _prompt_submitted(self) -> None:
        self._start_generation()

    def _start_generation(self) -> None:
        prompt = self.query_one("#surprisal-prompt", Input).value
        if not prompt.strip():
            self._status(Content.styled("Type a prompt first.", "$warning"))
            return
        self._generate(prompt, self.query_one("#surprisal-chat", Checkbox).value)

    @work(exclusive=True, exit_on_error=False, group="surprisal")
    async def _generate(self, prompt: str, chat: bool) -> None:
        engine, model = self.app.engine, self.app.model_name
        view = self.query_one(TokenView)
        params = GenerationParams(max_new_tokens=self.max_new_tokens, logprobs=True, top_logprobs=self.top_k)
        self._status(Content.assemble(("loading ", "dim"), model, ("…", "dim")))
        request = None
        try:
            info = await engine.load(model)
            if info.kind == "masked":
                raise UnsupportedModelError(f"{model!r} is a masked language model; it does not generate text",
                                            "use the Fill-mask tab, or pick a causal or seq2seq model")
            if info.kind == "seq2seq":
                request = Text2TextRequest(model, prompt, params=params)
            elif chat:
                request = ChatRequest(model, (ChatMessage("user", prompt),), params)
            else:
                request = CompletionRequest(model, prompt, params)
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
                self.result = result
                view.show_result(result)
                note = "  (stopped)" if result.finish_reason == "cancelled" else ""
                self._status(Content.assemble(f"{len(result.token_ids)} tokens", (note, "$warning"),
                                              ("  ·  ←/→ or click a token to see its alternatives", "dim")))
                if isinstance(self.focused, Input):
                    view.focus()
        except Exception as exc:  # engine errors become a message; the screen keeps working
            self._status(Content.styled(error_text(exc), "$error"))
            self.app.show_error(exc)
        finally:
            if request is not None and self._request_id == request.request_id:
                self._request_id = None

    # ---------------------------------------------------------------- fill-mask
    @on(Input.Submitted, "#mask-text")
    @on(Input.Submitted, "#mask-model")
    def _mask_submitted(self) -> None:
        self._start_fill_mask()

    def _start_fill_mask(self) -> None:
        text = self.query_one("#mask-text", Input).value
        model = self.query_one("#mask-model", Input).value.strip() or self.app.model_name
        results = self.query_one("#mask-results", Static)
        if "[MASK]" not in text:
            results.update(Content.styled("Put at least one [MASK] in the text.", "$warning"))
            return
        results.update(Content.assemble(("predicting with ", "dim"), model, ("…", "dim")))
        self._fill_mask(model, text)

    @work(exclusive=True, exit_on_error=False, group="fill-mask")
    async def _fill_mask(self, model: str, text: str) -> None:
        results = self.query_one("#mask-results", Static)
        try:
            result = await self.app.engine.fill_mask(FillMaskRequest(model, text, self.top_k))
        except UnsupportedModelError as exc:
            # Expected when the current model is causal: say so here, no alarm needed.
            results.update(Content.assemble(("Not a masked language model. ", "bold $warning"), error_text(exc)))
            return
        except Exception as exc:
            results.update(Content.styled(error_text(exc), "$error"))
            self.app.show_error(exc)
            return
        self.fill_mask_result = result
        results.update(fill_mask_text(result))

    # ---------------------------------------------------------------- perplexity
    @on(Button.Pressed, "#ppl-run")
    def _score_pressed(self) -> None:
        self._start_perplexity()

    def _start_perplexity(self) -> None:
        text = self.query_one("#ppl-text", TextArea).text
        results = self.query_one("#ppl-results", Static)
        if not text.strip():
            results.update(Content.styled("Paste some text first.", "$warning"))
            return
        model = self.app.model_name
        results.update(Content.assemble(("scoring with ", "dim"), model, ("…", "dim")))
        self._perplexity(model, text)

    @work(exclusive=True, exit_on_error=False, group="perplexity")
    async def _perplexity(self, model: str, text: str) -> None:
        results = self.query_one("#ppl-results", Static)
        try:
            [result] = await self.app.engine.perplexity(model, text)
        except Exception as exc:
            results.update(Content.styled(error_text(exc), "$error"))
            self.app.show_error(exc)
            return
        if not result.num_tokens or math.isnan(result.token_perplexity):
            results.update(Content.styled("The text is too short to score (no token after the first).", "$warning"))
            return
        self.perplexity_result = result
        results.update(perplexity_text(model, result))
