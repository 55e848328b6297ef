"""The perplexity tool: pasted text scored by one model after another, a table row per model."""

from __future__ import annotations

import math

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, DataTable, Static, TextArea

from engine import PerplexityResult
from tui.formatting import format_perplexity
from tui.widgets.probe_tool import ProbeTool, busy

# Columns of the perplexity comparison: key, label.
PPL_COLUMNS = (("model", "model"), ("token", "token ppl"), ("word", "word ppl"), ("bpb", "bits/byte"),
               ("tokens", "tokens"))
MODEL_LABEL_WIDTH = 32
PPL_HINT = "Paste text above and press Score (ctrl+r)."
PPL_COMPARE_HINT = "Name another model above and Score again to compare."


def short_model_name(model: str, width: int = MODEL_LABEL_WIDTH) -> str:
    """``model`` cut to ``width`` cells from the left, keeping the end (a folder's or file's own name)."""
    return model if len(model) <= width else "…" + model[-(width - 1):]


def _perplexity(value: float) -> str:
    """Three decimals, as before; from a million up (a word perplexity of a random or tiny model
    runs to 1e10) three significant digits, not ``54847031526.351``."""
    return f"{value:.3f}" if value < 1e6 else format_perplexity(value)


def perplexity_cells(result: PerplexityResult) -> tuple[str, str, str, str]:
    """Token perplexity, word perplexity, bits per byte and token count, formatted for the table."""
    return (_perplexity(result.token_perplexity), _perplexity(result.word_perplexity), f"{result.bits_per_byte:.4f}",
            str(result.num_tokens))


def perplexity_detail(model: str, result: PerplexityResult) -> Content:
    """The model that produced ``result``, its log-likelihood and counts, and the method string."""
    return Content.assemble(
        (model, "bold"), ("  ", ""),
        f"{result.nll:.3f} nats over {result.num_tokens} tokens / {result.num_words} words / {result.num_bytes} bytes",
        ("  ·  ", "dim"), (result.method, "dim"))


class PerplexityTool(ProbeTool):
    """Perplexity of pasted text; one row per model for the same text, to compare models."""

    tool = "ppl"
    focus_id = "ppl-text"

    def __init__(self, app_model: str, *, id: str | None = None) -> None:
        super().__init__(app_model, id=id)
        self.result: PerplexityResult | None = None
        """The latest perplexity result (also in :attr:`results`)."""
        self.results: dict[str, PerplexityResult] = {}
        """Model → perplexity of :attr:`text`, in the order first scored; shown as a table."""
        self.text: str | None = None

    def compose(self) -> ComposeResult:
        yield self.model_field()
        yield TextArea(id="ppl-text", soft_wrap=True, show_line_numbers=False)
        with Horizontal(classes="probe-row probe-actions"):
            yield Button("Score", id="ppl-run", variant="primary", compact=True)
            yield Static(Content.styled(PPL_HINT, "dim"), id="ppl-status", classes="probe-status")
        yield DataTable(id="ppl-table", cursor_type="row", classes="-empty")
        yield Static("", id="ppl-detail", classes="probe-status")

    def on_mount(self) -> None:
        table = self.query_one("#ppl-table", DataTable)
        for key, label in PPL_COLUMNS:
            table.add_column(label if key == "model" else Text(label, justify="right"), key=key)

    @on(Button.Pressed, "#ppl-run")
    def _score_pressed(self) -> None:
        self.run()

    @on(TextArea.Changed, "#ppl-text")
    def _text_changed(self) -> None:
        if self.results and self.query_one("#ppl-text", TextArea).text != self.text:
            self._set_rows(None, {})
            self._status(Content.styled(PPL_HINT, "dim"))

    def run(self) -> None:
        text = self.query_one("#ppl-text", TextArea).text
        if not text.strip():
            self._status(Content.styled("Paste some text first.", "$warning"))
            return
        self._perplexity(self.model, text)

    def _status(self, text: Content) -> None:
        self.query_one("#ppl-status", Static).update(text)

    @work(exclusive=True, exit_on_error=False, group="perplexity")
    async def _perplexity(self, model: str, text: str) -> None:
        try:
            self._status(busy("loading", model))
            await self.app.engine.load(model)
            self._status(busy("scoring with", model))
            [result] = await self.app.engine.perplexity(model, text)
        except Exception as exc:
            self.report(self.query_one("#ppl-status", Static), exc, "Cannot score with this model. ")
            return
        if text != self.query_one("#ppl-text", TextArea).text:
            self._status(Content.styled("The text changed while it was scored; press Score again.", "$warning"))
        elif not result.num_tokens or math.isnan(result.token_perplexity):
            self._status(Content.styled("The text is too short to score (no token after the first).", "$warning"))
        else:
            self._add(model, text, result)

    def _add(self, model: str, text: str, result: PerplexityResult) -> None:
        """Add (or replace) ``model``'s row; rows of another text are dropped first."""
        rows = self.results if text == self.text else {}
        self._set_rows(text, {**rows, model: result})
        self.result = result
        table = self.query_one("#ppl-table", DataTable)
        table.move_cursor(row=table.get_row_index(model))
        self.query_one("#ppl-detail", Static).update(perplexity_detail(model, result))
        self._status(Content.styled(PPL_COMPARE_HINT, "dim"))

    def _set_rows(self, text: str | None, results: dict[str, PerplexityResult]) -> None:
        """Show ``results`` (model → perplexity of ``text``) as the comparison table."""
        self.text, self.results = text, results
        if not results:
            self.result = None
            self.query_one("#ppl-detail", Static).update("")
        table = self.query_one("#ppl-table", DataTable)
        table.clear()
        for model, result in results.items():
            table.add_row(short_model_name(model), *(Text(cell, justify="right") for cell in perplexity_cells(result)),
                          key=model)
        table.set_class(not results, "-empty")
