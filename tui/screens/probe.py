"""Probing tools: token surprisal with top-k alternatives, fill-mask, and perplexity of pasted text.

Each tool has its own model field (a :class:`~tui.widgets.model_field.ModelField`): it shows the
app's model until the user types another, so a BERT can fill masks while the chat runs a causal
LM. Perplexity keeps one row per model for the current text, to compare models on the same text.

Every engine call runs in an exclusive worker per tool (a new request supersedes the old one);
results land in the widgets from the event loop. A chat can open this screen on an answer it
already has (``ProbeScreen(result=...)``, pushed by the app on :class:`tui.messages.ProbeRequested`).
"""

from __future__ import annotations

import math

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Static, TabbedContent, TabPane, TextArea

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
from tui.widgets.model_field import ModelField
from tui.widgets.token_view import TokenView, format_probability

# The widget that takes the keyboard when a tool's tab is opened from a key.
TAB_FOCUS = {"surprisal": "surprisal-prompt", "fill-mask": "mask-text", "perplexity": "ppl-text"}
# Columns of the perplexity comparison: key, label.
PPL_COLUMNS = (("model", "model"), ("token", "token ppl"), ("word", "word ppl"), ("bpb", "bits/byte"),
               ("tokens", "tokens"))
MODEL_LABEL_WIDTH = 32
PPL_HINT = "Paste text above and press Score (ctrl+r)."
PPL_COMPARE_HINT = "Name another model above and Score again to compare."


def error_text(exc: Exception) -> str:
    """An engine error as one or two lines: message, then hint."""
    if isinstance(exc, LmscopeError):
        return exc.message + (f"\n{exc.hint}" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


def short_model_name(model: str, width: int = MODEL_LABEL_WIDTH) -> str:
    """``model`` cut to ``width`` cells from the left, keeping the end (a folder's or file's own name)."""
    return model if len(model) <= width else "…" + model[-(width - 1):]


def fill_mask_text(result: FillMaskResult) -> Content:
    """The model, then the top-k predictions per mask position, with probabilities and bars."""
    lines: list[Content] = [Content.assemble(("model ", "dim"), result.model)]
    for k, predictions in enumerate(result.predictions, 1):
        lines.append(Content.styled(f"mask {k} of {len(result.predictions)}", "bold $accent"))
        for rank, p in enumerate(predictions, 1):
            bar = "█" * max(1, round(p.probability * 20))
            lines.append(Content.assemble(f"{rank:>3}. ", (f"{p.token:<14}", "bold"), " ",
                                          f"{format_probability(p.probability):>8} ", (bar, "$accent")))
        if predictions:
            lines.append(Content.assemble(("     → ", "dim"), (predictions[0].sequence, "italic")))
    if not result.predictions:
        lines.append(Content.styled("no mask token in the text", "dim"))
    return Content("\n").join(lines)


def perplexity_cells(result: PerplexityResult) -> tuple[str, str, str, str]:
    """Token perplexity, word perplexity, bits per byte and token count, formatted for the table."""
    return (f"{result.token_perplexity:.3f}", f"{result.word_perplexity:.3f}", f"{result.bits_per_byte:.4f}",
            str(result.num_tokens))


def perplexity_detail(model: str, result: PerplexityResult) -> Content:
    """The model that produced ``result``, its log-likelihood and counts, and the method string."""
    return Content.assemble(
        (model, "bold"), ("  ", ""),
        f"{result.nll:.3f} nats over {result.num_tokens} tokens / {result.num_words} words / {result.num_bytes} bytes",
        ("  ·  ", "dim"), (result.method, "dim"))


class ProbeScreen(Screen):
    """Surprisal of each answer token (with alternatives), fill-mask, and perplexity of pasted text.

    Each tool runs on the model in its own model field, which follows ``app.model_name`` until
    the user types another model there.

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
        """The latest perplexity result (also in :attr:`perplexity_results`)."""
        self.perplexity_results: dict[str, PerplexityResult] = {}
        """Model → perplexity of :attr:`perplexity_text`, in the order first scored; shown as a table."""
        self.perplexity_text: str | None = None
        self._request_id: str | None = None

    def compose(self) -> ComposeResult:
        model = self.app.model_name
        with TabbedContent(initial="surprisal", id="probe-tabs"):
            with TabPane("Surprisal", id="surprisal"):
                yield ModelField(model, input_id="surprisal-model", id="surprisal-model-field")
                with Horizontal(classes="probe-row"):
                    yield Input(placeholder="a prompt; Enter generates with log-probabilities", id="surprisal-prompt")
                    yield Checkbox("chat", value=True, id="surprisal-chat",
                                   tooltip="send the prompt through the chat template")
                yield Static("", id="surprisal-status", classes="probe-status")
                yield TokenView(placeholder="Type a prompt above: the answer appears here, each token coloured "
                                            "by how surprising it was to the model.", id="token-view")
            with TabPane("Fill-mask", id="fill-mask"):
                yield ModelField(model, input_id="mask-model", id="mask-model-field")
                yield Input(placeholder="text with [MASK], e.g. The capital of France is [MASK].", id="mask-text")
                yield Static(Content.styled("Predictions appear here (the model must be a masked LM, BERT-style).",
                                            "dim"), id="mask-results", classes="probe-results")
            with TabPane("Perplexity", id="perplexity"):
                yield ModelField(model, input_id="ppl-model", id="ppl-model-field")
                yield TextArea(id="ppl-text", soft_wrap=True, show_line_numbers=False)
                with Horizontal(classes="probe-row probe-actions"):
                    yield Button("Score", id="ppl-run", variant="primary", compact=True)
                    yield Static(Content.styled(PPL_HINT, "dim"), id="ppl-status", classes="probe-status")
                yield DataTable(id="ppl-table", cursor_type="row", classes="-empty")
                yield Static("", id="ppl-detail", classes="probe-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#ppl-table", DataTable)
        for key, label in PPL_COLUMNS:
            table.add_column(label if key == "model" else Text(label, justify="right"), key=key)
        self.watch(self.app, "model_name", self._model_changed)
        if self.result is not None:
            self._show_existing(self.result)

    def _model_changed(self, name: str) -> None:
        for field in self.query(ModelField):
            field.app_model = name

    def _model(self, tool: str) -> str:
        """The model named in ``tool``'s field (``surprisal``, ``mask`` or ``ppl``)."""
        return self.query_one(f"#{tool}-model-field", ModelField).model

    def _show_existing(self, result: GenerationResult) -> None:
        view = self.query_one(TokenView)
        view.show_result(result)
        self._status(Content.assemble(("answer of ", "dim"), result.model, ("  ", ""),
                                      f"{len(result.token_ids)} tokens", ("  ·  ←/→ move the cursor", "dim")))
        if result.logprobs:
            view.focus()

    def _status(self, text: str | Content) -> None:
        self.query_one("#surprisal-status", Static).update(text)

    def _report(self, target: Static, exc: Exception, unsupported: str) -> None:
        """Show an engine error in ``target``; only unexpected ones also raise a notification.

        A model of the wrong kind for a tool (``UnsupportedModelError``) is an ordinary outcome
        of trying models here, so it is said in place, led by ``unsupported``.
        """
        if isinstance(exc, UnsupportedModelError):
            target.update(Content.assemble((unsupported, "bold $warning"), error_text(exc)))
        else:
            target.update(Content.styled(error_text(exc), "$error"))
            self.app.show_error(exc)

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

    @on(Input.Submitted, "#surprisal-model, #mask-model, #ppl-model")
    def _model_submitted(self) -> None:
        self.action_run_tool()

    # ---------------------------------------------------------------- surprisal
    @on(Input.Submitted, "#surprisal-prompt")
    def _prompt_submitted(self) -> None:
        self._start_generation()

    def _start_generation(self) -> None:
        prompt = self.query_one("#surprisal-prompt", Input).value
        if not prompt.strip():
            self._status(Content.styled("Type a prompt first.", "$warning"))
            return
        self._generate(self._model("surprisal"), prompt, self.query_one("#surprisal-chat", Checkbox).value)

    @work(exclusive=True, exit_on_error=False, group="surprisal")
    async def _generate(self, model: str, prompt: str, chat: bool) -> None:
        engine = self.app.engine
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
                self._show_generated(result)
        except Exception as exc:  # engine errors become a message; the screen keeps working
            self._report(self.query_one("#surprisal-status", Static), exc, "Cannot generate with this model. ")
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
        if isinstance(self.focused, Input):
            view.focus()

    # ---------------------------------------------------------------- fill-mask
    @on(Input.Submitted, "#mask-text")
    def _mask_submitted(self) -> None:
        self._start_fill_mask()

    def _start_fill_mask(self) -> None:
        text = self.query_one("#mask-text", Input).value
        results = self.query_one("#mask-results", Static)
        if "[MASK]" not in text:
            results.update(Content.styled("Put at least one [MASK] in the text.", "$warning"))
            return
        self._fill_mask(self._model("mask"), text)

    @work(exclusive=True, exit_on_error=False, group="fill-mask")
    async def _fill_mask(self, model: str, text: str) -> None:
        results = self.query_one("#mask-results", Static)
        try:
            results.update(Content.assemble(("loading ", "dim"), model, ("…", "dim")))
            await self.app.engine.load(model)
            results.update(Content.assemble(("predicting with ", "dim"), model, ("…", "dim")))
            result = await self.app.engine.fill_mask(FillMaskRequest(model, text, self.top_k))
        except Exception as exc:
            self._report(results, exc, "Not a masked language model. ")
            return
        self.fill_mask_result = result
        results.update(fill_mask_text(result))

    # ---------------------------------------------------------------- perplexity
    @on(Button.Pressed, "#ppl-run")
    def _score_pressed(self) -> None:
        self._start_perplexity()

    @on(TextArea.Changed, "#ppl-text")
    def _ppl_text_changed(self) -> None:
        if self.perplexity_results and self.query_one("#ppl-text", TextArea).text != self.perplexity_text:
            self._set_perplexity_rows(None, {})
            self._ppl_status(Content.styled(PPL_HINT, "dim"))

    def _start_perplexity(self) -> None:
        text = self.query_one("#ppl-text", TextArea).text
        if not text.strip():
            self._ppl_status(Content.styled("Paste some text first.", "$warning"))
            return
        self._perplexity(self._model("ppl"), text)

    def _ppl_status(self, text: Content) -> None:
        self.query_one("#ppl-status", Static).update(text)

    @work(exclusive=True, exit_on_error=False, group="perplexity")
    async def _perplexity(self, model: str, text: str) -> None:
        try:
            self._ppl_status(Content.assemble(("loading ", "dim"), model, ("…", "dim")))
            await self.app.engine.load(model)
            self._ppl_status(Content.assemble(("scoring with ", "dim"), model, ("…", "dim")))
            [result] = await self.app.engine.perplexity(model, text)
        except Exception as exc:
            self._report(self.query_one("#ppl-status", Static), exc, "Cannot score with this model. ")
            return
        if text != self.query_one("#ppl-text", TextArea).text:
            self._ppl_status(Content.styled("The text changed while it was scored; press Score again.", "$warning"))
        elif not result.num_tokens or math.isnan(result.token_perplexity):
            self._ppl_status(Content.styled("The text is too short to score (no token after the first).", "$warning"))
        else:
            self._add_perplexity(model, text, result)

    def _add_perplexity(self, model: str, text: str, result: PerplexityResult) -> None:
        """Add (or replace) ``model``'s row; rows of another text are dropped first."""
        rows = self.perplexity_results if text == self.perplexity_text else {}
        self._set_perplexity_rows(text, {**rows, model: result})
        self.perplexity_result = result
        table = self.query_one("#ppl-table", DataTable)
        table.move_cursor(row=table.get_row_index(model))
        self.query_one("#ppl-detail", Static).update(perplexity_detail(model, result))
        self._ppl_status(Content.styled(PPL_COMPARE_HINT, "dim"))

    def _set_perplexity_rows(self, text: str | None, results: dict[str, PerplexityResult]) -> None:
        """Show ``results`` (model → perplexity of ``text``) as the comparison table."""
        self.perplexity_text, self.perplexity_results = text, results
        if not results:
            self.perplexity_result = None
            self.query_one("#ppl-detail", Static).update("")
        table = self.query_one("#ppl-table", DataTable)
        table.clear()
        for model, result in results.items():
            table.add_row(short_model_name(model), *(Text(cell, justify="right") for cell in perplexity_cells(result)),
                          key=model)
        table.set_class(not results, "-empty")
