"""The attention tool: a heatmap of a layer's and head's attention over a text, and the keys the
query under the cursor attends to most.

Causal and masked models show their self-attention; seq2seq models their encoder
self-attention, or with "cross" their decoder's cross-attention (queries: the model's greedy
answer). The weights come from :meth:`engine.Engine.attention` in a worker; picking a layer or
head only re-slices the array already here (numpy, well under a millisecond for 256 tokens:
``bench/attention.py``). Ctrl+E writes the heatmap on screen as an SVG file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal
from textual.content import Content
from textual.style import Style
from textual.widgets import Checkbox, Input, Select, Static

from engine import AttentionResult
from tui.widgets.attention_data import PALETTE, Scale, legend_parts, select, token_label, top_keys
from tui.widgets.attention_heatmap import AttentionHeatmap, HeatmapData
from tui.widgets.attention_svg import default_svg_name, write_heatmap_svg
from tui.widgets.probe_tool import ProbeTool, busy, error_text
from tui.widgets.token_view import fit_cells

MEAN = "mean"
TOP_KEYS = 8
KIND_LABEL = {"self": "self-attention", "encoder-self": "encoder self-attention",
              "decoder-cross": "decoder cross-attention"}


class AttentionTool(ProbeTool):
    """Model, text, layer and head pickers, the heatmap, and the focus panel (see the module docstring).

    Args:
        max_tokens: longer texts are cut to their first ``max_tokens`` tokens (with a note).
        export_dir: where Ctrl+E writes SVG files (default: the current directory).
    """

    DEFAULT_CSS = """
    AttentionTool #attn-controls { height: 1; margin: 0 0 0 0; }
    AttentionTool #attn-controls Select { width: 16; margin: 0 1 0 0; }
    AttentionTool #attn-controls #attn-status { width: 1fr; height: 1; color: $text-muted; }
    AttentionTool #attn-body { height: 1fr; }
    AttentionTool AttentionHeatmap { width: 1fr; border: round $panel-lighten-2; }
    AttentionTool AttentionHeatmap:focus { border: round $accent; }
    AttentionTool #attn-focus {
        width: 30; height: 1fr; border: round $panel-lighten-2; border-title-color: $text-muted;
        padding: 0 1; text-wrap: nowrap; overflow-x: hidden;
    }
    AttentionTool #attn-legend { height: 1; color: $text-muted; padding: 0 1; }
    AttentionTool #attn-notes { height: auto; max-height: 2; color: $warning; padding: 0 1; }
    """
    BINDINGS = [
        Binding("left_square_bracket", "step_layer(-1)", "Layer -"),
        Binding("right_square_bracket", "step_layer(1)", "Layer +"),
        Binding("left_curly_bracket", "step_head(-1)", "Head -", show=False),
        Binding("right_curly_bracket", "step_head(1)", "Head +", show=False),
        Binding("ctrl+e", "export_svg", "Export SVG"),
    ]
    tool = "attn"
    focus_id = "attn-text"

    def __init__(self, app_model: str, *, max_tokens: int = 256, export_dir: str | Path | None = None,
                 id: str | None = None) -> None:
        super().__init__(app_model, id=id)
        self.max_tokens = max_tokens
        self.export_dir = Path(export_dir) if export_dir is not None else Path.cwd()
        self.result: AttentionResult | None = None
        self.layer_index = 0
        self.head_index: int | None = None
        self.last_export: Path | None = None
        self._legend: Content | None = None

    def compose(self) -> ComposeResult:
        yield self.model_field()
        with Horizontal(classes="probe-row"):
            yield Input(placeholder="text whose attention to show; Enter runs", id="attn-text")
            yield Checkbox("cross", value=False, id="attn-cross",
                           tooltip="seq2seq models: the decoder's cross-attention over the text "
                                   "(queries: the model's answer) instead of the encoder's self-attention")
        with Horizontal(id="attn-controls"):
            yield Select([], prompt="layer", allow_blank=True, compact=True, id="attn-layer")
            yield Select([], prompt="head", allow_blank=True, compact=True, id="attn-head")
            yield Static(Content.styled("Type a text above and press Enter.", "dim"), id="attn-status")
        with Horizontal(id="attn-body"):
            yield AttentionHeatmap(id="attn-heatmap")
            yield Static("", id="attn-focus")
        yield Static("", id="attn-legend")
        yield Static("", id="attn-notes")

    def on_mount(self) -> None:
        self.query_one(AttentionHeatmap).border_title = "query ↓  key →"
        self.query_one("#attn-focus").border_title = "at the cursor"

    def _status(self, text: Content) -> None:
        self.query_one("#attn-status", Static).update(text)

    # ------------------------------------------------------------------ running
    @on(Input.Submitted, "#attn-text")
    def _text_submitted(self) -> None:
        self.run()

    def run(self) -> None:
        text = self.query_one("#attn-text", Input).value
        if not text.strip():
            self._status(Content.styled("Type a text first.", "$warning"))
            return
        self._attention(self.model, text, self.query_one("#attn-cross", Checkbox).value)

    @work(exclusive=True, exit_on_error=False, group="attention")
    async def _attention(self, model: str, text: str, cross: bool) -> None:
        try:
            self._status(busy("loading", model))
            await self.app.engine.load(model)
            self._status(busy("computing attention with", model))
            result = await self.app.engine.attention(model, text, cross=cross, max_tokens=self.max_tokens)
        except Exception as exc:
            self.report(self.query_one("#attn-status", Static), exc, "No attention weights: ")
            return
        self.show_result(result)

    def show_result(self, result: AttentionResult) -> None:
        """Show ``result``: the last layer's mean over heads at first."""
        self.result = result
        self.layer_index, self.head_index = result.num_layers - 1, None
        layers = self.query_one("#attn-layer", Select)
        heads = self.query_one("#attn-head", Select)
        with self.prevent(Select.Changed):
            layers.set_options([(f"layer {i}", i) for i in range(result.num_layers)])
            heads.set_options([("mean of heads", MEAN), *((f"head {h}", h) for h in range(result.num_heads))])
            layers.value, heads.value = self.layer_index, MEAN
        self.query_one("#attn-notes", Static).update(Content("  ·  ".join(result.notes)))
        self._redraw(keep_cursor=False)
        heatmap = self.query_one(AttentionHeatmap)
        if isinstance(self.screen.focused, Input):
            heatmap.focus()

    # ------------------------------------------------------------------ layer and head
    @on(Select.Changed, "#attn-layer")
    def _layer_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, int):
            self.set_view(event.value, self.head_index)

    @on(Select.Changed, "#attn-head")
    def _head_picked(self, event: Select.Changed) -> None:
        if event.value == MEAN or isinstance(event.value, int):
            self.set_view(self.layer_index, None if event.value == MEAN else event.value)

    def set_view(self, layer: int, head: int | None) -> None:
        """Show ``layer`` and ``head`` (None: the mean over heads), keeping the cursor."""
        if self.result is None:
            return
        self.layer_index = max(0, min(layer, self.result.num_layers - 1))
        self.head_index = None if head is None else max(0, min(head, self.result.num_heads - 1))
        with self.prevent(Select.Changed):
            self.query_one("#attn-layer", Select).value = self.layer_index
            self.query_one("#attn-head", Select).value = MEAN if self.head_index is None else self.head_index
        self._redraw(keep_cursor=True)

    def action_step_layer(self, step: int) -> None:
        self.set_view(self.layer_index + step, self.head_index)

    def action_step_head(self, step: int) -> None:
        """Cycle mean → head 0 → head 1 … → mean."""
        if self.result is None:
            return
        order = [None, *range(self.result.num_heads)]
        self.set_view(self.layer_index, order[(order.index(self.head_index) + step) % len(order)])

    # ------------------------------------------------------------------ drawing
    def matrix(self):
        """The ``[query, key]`` matrix on screen (numpy), or None before a result."""
        return None if self.result is None else select(self.result.weights, self.layer_index, self.head_index)

    def _redraw(self, keep_cursor: bool) -> None:
        result = self.result
        assert result is not None
        data = HeatmapData(self.matrix(), result.query_tokens, result.key_tokens, result.causal)
        self.query_one(AttentionHeatmap).show(data, keep_cursor=keep_cursor)
        self._status(Content.assemble(KIND_LABEL[result.kind], (" · ", "dim"),
                                      f"{len(result.query_tokens)}×{len(result.key_tokens)}", (" · { } head", "dim")))

    @on(AttentionHeatmap.CursorMoved)
    def _cursor_moved(self, event: AttentionHeatmap.CursorMoved) -> None:
        # Both boxes have a fixed size: no layout pass per cursor step (the keypress costs less).
        self.query_one("#attn-focus", Static).update(self.focus_text(event.row, event.column), layout=False)
        legend = self.legend()
        if legend != self._legend:
            self._legend = legend
            self.query_one("#attn-legend", Static).update(legend, layout=False)

    def legend(self) -> Content:
        """The colour scale: 0, a swatch per level, what the hottest level stands for."""
        matrix = self.matrix()
        if matrix is None:
            return Content("")
        top, how = legend_parts(matrix, self.query_one(AttentionHeatmap).scale)
        swatches = [(" ", Style(background=Color.parse(colour))) for colour in PALETTE]
        return Content.assemble("0 ", *swatches, f" {top}  ", (how, "dim"))

    def focus_text(self, row: int, column: int) -> Content:
        """The query under the cursor, the cell's weight, and the keys that query attends to most."""
        result, matrix = self.result, self.matrix()
        if result is None or matrix is None:
            return Content("")
        query, key = token_label(result.query_tokens[row]), token_label(result.key_tokens[column])
        lines = [
            Content.assemble(("query ", "dim"), f"{row}/{len(result.query_tokens) - 1} ", (f"'{query}'", "bold")),
            Content.assemble(("key ", "dim"), f"{column} ", (f"'{key}'", "bold"), ("  ", ""),
                             f"{matrix[row, column]:.3f}"),
            Content.styled("attends most to", "bold"),
        ]
        for kw in top_keys(matrix, row, result.key_tokens, TOP_KEYS):
            bar = "█" * max(1, round(kw.weight * 8)) if kw.weight >= 1 / 16 else "▏"
            lines.append(Content.assemble(f"{kw.index:>4} ", (fit_cells(f"'{kw.label}'", 10), "bold"),
                                          f" {kw.weight:.3f} ", (bar, "$accent")))
        return Content("\n").join(lines)

    # ------------------------------------------------------------------ export
    def action_export_svg(self) -> None:
        if self.result is None:
            self._status(Content.styled("Nothing to export yet.", "$warning"))
            return
        path = self.export_dir / default_svg_name(self.result, self.layer_index, self.head_index)
        self._export(path, self.result, self.layer_index, self.head_index, self.query_one(AttentionHeatmap).scale)

    @work(exclusive=True, exit_on_error=False, group="attention-export")
    async def _export(self, path: Path, result: AttentionResult, layer: int, head: int | None, scale: Scale) -> None:
        """Write the SVG off the event loop (tens of milliseconds for 256 tokens: ``bench/attention.py``)."""
        try:
            await asyncio.to_thread(write_heatmap_svg, path, result, layer, head, scale=scale)
        except OSError as exc:
            self._status(Content.styled(f"Cannot write {path}: {error_text(exc)}", "$error"))
            return
        self.last_export = path
        self._status(Content.assemble(("wrote ", "dim"), str(path)))
