"""A scrollable heatmap of one attention matrix: query tokens as rows, key tokens as columns.

Drawn line by line (the Line API): a paint costs only the visible cells, whatever the prompt's
length. The query labels (left) and the key ruler (top) stay in place while the cells scroll.
A cell cursor picks a query (row) and key (column); ``+`` / ``-`` zoom (cell width 1-4), ``s``
switches the colour scale between the matrix's largest weight and each row's.

Attributes down: the owner calls :meth:`AttentionHeatmap.show` with a matrix and its tokens.
Messages up: :class:`AttentionHeatmap.CursorMoved`. Labels are drawn as plain segments, never
parsed as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.widgets.attention_data import LEVELS, MASKED, PALETTE, Scale, levels, token_label
from tui.widgets.token_view import fit_cells

LABEL_WIDTH = 10
ZOOMS = (1, 2, 3, 4)
_CELL_STYLES = [Style(bgcolor=colour) for colour in PALETTE]
_CURSOR_STYLES = [Style(bgcolor=colour, color="#000000" if level >= LEVELS // 2 else "#ffffff", bold=True)
                  for level, colour in enumerate(PALETTE)]
_MASKED_STYLE = Style(color="#555555")
_LABEL_STYLE = Style(color="#9a9a9a")
_CURSOR_LABEL_STYLE = Style(reverse=True, bold=True)
_RULER_STYLE = Style(color="#777777")


@dataclass(frozen=True)
class HeatmapData:
    """What one heatmap shows: ``matrix[query, key]``, the tokens, and whether a causal mask applies."""

    matrix: np.ndarray
    query_tokens: tuple[str, ...]
    key_tokens: tuple[str, ...]
    causal: bool = False


class AttentionHeatmap(ScrollView, can_focus=True):
    """Query rows x key columns, each cell coloured by its attention weight (see the module docstring)."""

    DEFAULT_CSS = """
    AttentionHeatmap {
        height: 1fr;
        scrollbar-size: 1 1;
    }
    """
    BINDINGS = [
        Binding("up", "move(-1, 0)", "Query up", show=False),
        Binding("down", "move(1, 0)", "Query down", show=False),
        Binding("left", "move(0, -1)", "Key left", show=False),
        Binding("right", "move(0, 1)", "Key right", show=False),
        Binding("pageup", "move(-10, 0)", "Page up", show=False),
        Binding("pagedown", "move(10, 0)", "Page down", show=False),
        Binding("home", "jump(0)", "First key", show=False),
        Binding("end", "jump(-1)", "Last key", show=False),
        Binding("plus,equals_sign", "zoom(1)", "Zoom in"),
        Binding("minus", "zoom(-1)", "Zoom out"),
        Binding("s", "toggle_scale", "Scale"),
    ]

    cell_width: reactive[int] = reactive(2, init=False)
    scale: reactive[Scale] = reactive("matrix", init=False)

    @dataclass
    class CursorMoved(Message):
        """The cursor is on query ``row`` and key ``column`` (also sent when the data or the scale change)."""

        heatmap: "AttentionHeatmap"
        row: int
        column: int

        @property
        def control(self) -> "AttentionHeatmap":
            return self.heatmap

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.data: HeatmapData | None = None
        self.cells: np.ndarray = np.zeros((0, 0), dtype=np.int8)
        self.row = 0
        self.column = 0
        self._labels: list[str] = []

    # ------------------------------------------------------------------ feeding
    def show(self, data: HeatmapData | None, *, keep_cursor: bool = True) -> None:
        """Draw ``data`` (None: clear). The cursor stays where it was when it still fits."""
        self.data = data
        if data is None:
            self.cells = np.zeros((0, 0), dtype=np.int8)
            self._labels = []
        else:
            self._labels = [token_label(t) for t in data.query_tokens]
            self._recolour()
            if not keep_cursor:
                self.row = self.column = 0
        self.row, self.column = self._clamp(self.row, self.column)
        self._resize()
        self._announce()

    def _recolour(self) -> None:
        if self.data is not None:
            self.cells = levels(self.data.matrix, scale=self.scale, causal=self.data.causal)
        self.refresh()

    @property
    def label_columns(self) -> int:
        """Columns taken by the query labels (and a space)."""
        return LABEL_WIDTH + 1

    def _resize(self) -> None:
        rows, cols = self.cells.shape
        self.virtual_size = Size(self.label_columns + cols * self.cell_width, rows + 1)
        self.refresh()

    def watch_cell_width(self) -> None:
        self._resize()
        self.call_after_refresh(self._scroll_to_cursor)

    def watch_scale(self) -> None:
        self._recolour()
        self._announce()  # the owner redraws what depends on the scale (its legend)

    # ------------------------------------------------------------------ cursor
    def _clamp(self, row: int, column: int) -> tuple[int, int]:
        rows, cols = self.cells.shape
        return max(0, min(row, rows - 1)), max(0, min(column, cols - 1))

    def move_cursor(self, row: int, column: int) -> None:
        """Put the cursor on query ``row``, key ``column`` (clamped) and keep it in view."""
        row, column = self._clamp(row, column)
        if (row, column) != (self.row, self.column):
            self.row, self.column = row, column
            self.refresh()
            self._announce()
        self._scroll_to_cursor()

    def _announce(self) -> None:
        if self.data is not None:
            self.post_message(self.CursorMoved(self, self.row, self.column))

    def _scroll_to_cursor(self) -> None:
        width, height = self.scrollable_content_region.size
        if not width or not height:
            return
        cw = self.cell_width
        x, y = self.scroll_offset
        left = self.column * cw
        x = min(x, left)
        x = max(x, self.label_columns + left + cw - width)
        y = min(y, self.row)
        y = max(y, self.row + 2 - height)
        self.scroll_to(x, y, animate=False, immediate=True)

    def action_move(self, rows: int, columns: int) -> None:
        self.move_cursor(self.row + rows, self.column + columns)

    def action_jump(self, column: int) -> None:
        self.move_cursor(self.row, column if column >= 0 else self.cells.shape[1] - 1)

    def action_zoom(self, step: int) -> None:
        index = ZOOMS.index(self.cell_width) if self.cell_width in ZOOMS else 1
        self.cell_width = ZOOMS[max(0, min(len(ZOOMS) - 1, index + step))]

    def action_toggle_scale(self) -> None:
        self.scale = "row" if self.scale == "matrix" else "matrix"

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        cell = None if offset is None else self.cell_at(offset.x, offset.y)
        if cell is not None:
            self.move_cursor(*cell)

    def cell_at(self, x: int, y: int) -> tuple[int, int] | None:
        """The (row, column) drawn at widget content offset (x, y) with the current scroll, if any."""
        if x < self.label_columns or y < 1:
            return None
        row = self.scroll_offset.y + y - 1
        column = (self.scroll_offset.x + x - self.label_columns) // self.cell_width
        rows, cols = self.cells.shape
        return (row, column) if row < rows and column < cols else None

    # ------------------------------------------------------------------ drawing
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        rows, cols = self.cells.shape
        if not rows:
            return Strip.blank(width)
        scroll_x, scroll_y = self.scroll_offset
        cw, gutter = self.cell_width, self.label_columns
        first = scroll_x // cw
        last = min(cols, (scroll_x + max(0, width - gutter)) // cw + 1)
        if y == 0:
            left = Segment(" " * gutter)
            cells = self._ruler(first, last)
        else:
            row = scroll_y + y - 1
            if row >= rows:
                return Strip.blank(width)
            label = fit_cells(self._labels[row], LABEL_WIDTH) + " "
            left = Segment(label, _CURSOR_LABEL_STYLE if row == self.row else _LABEL_STYLE)
            cells = self._row_segments(row, first, last)
        body = Strip(cells).crop(scroll_x - first * cw, scroll_x - first * cw + max(0, width - gutter))
        return Strip([left, *body]).adjust_cell_length(width)

    def _row_segments(self, row: int, first: int, last: int) -> list[Segment]:
        """The cells ``first .. last-1`` of ``row``: one segment per run of equal cells (fewer
        segments to crop and paint), the cursor's cell a segment of its own."""
        cw = self.cell_width
        marker = ("◆" if cw < 3 else "[]").center(cw)
        cursor = self.column if row == self.row else -1
        segments: list[Segment] = []
        run_level, run_length = None, 0

        def flush() -> None:
            if run_length:
                if run_level == MASKED:
                    segments.append(Segment("·".center(cw) * run_length, _MASKED_STYLE))
                else:
                    segments.append(Segment(" " * (cw * run_length), _CELL_STYLES[run_level]))

        for column, level in enumerate(self.cells[row, first:last].tolist(), first):
            if column == cursor:
                flush()
                run_level, run_length = None, 0
                segments.append(Segment(marker, _CURSOR_LABEL_STYLE if level == MASKED else _CURSOR_STYLES[level]))
            elif level == run_level:
                run_length += 1
            else:
                flush()
                run_level, run_length = level, 1
        flush()
        return segments

    def _ruler(self, first: int, last: int) -> list[Segment]:
        """Key positions every 5 columns (at zoom 1: every 10), and ``▼`` over the cursor's column."""
        cw = self.cell_width
        step = 10 if cw == 1 else 5
        text = [" "] * ((last - first) * cw)
        for column in range(first, last):
            if column % step == 0:
                for k, ch in enumerate(str(column)):
                    at = (column - first) * cw + k
                    if at < len(text):
                        text[at] = ch
        segments = [Segment("".join(text), _RULER_STYLE)]
        at = (self.column - first) * cw
        if 0 <= at < len(text):
            joined = "".join(text)
            segments = [Segment(joined[:at], _RULER_STYLE), Segment("▼", _CURSOR_LABEL_STYLE),
                        Segment(joined[at + 1:], _RULER_STYLE)]
        return segments
