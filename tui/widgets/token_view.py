"""An answer shown token by token, each token coloured by its surprisal, with the top-k
alternatives the model weighed at the token under the cursor.

Surprisal is ``-log2 p`` of the chosen token under the model's unmodified distribution (the
engine's ``logprobs`` are natural logs). Tokens are laid out here rather than by Textual's word
wrap, so the line of every token is known and the cursor can be kept in view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.style import Style
from textual.widget import Widget
from textual.widgets import Static

from engine import GenerationResult, TokenLogprob

LN2 = math.log(2)


@dataclass(frozen=True)
class SurprisalBand:
    """One colour of the scale: tokens with ``low <= bits < high``."""

    low: float
    high: float
    background: str
    foreground: str

    @property
    def label(self) -> str:
        if math.isinf(self.high):
            return f"≥{self.low:g}"
        return f"<{self.high:g}" if self.low == 0 else f"{self.low:g}–{self.high:g}"


SCALE: tuple[SurprisalBand, ...] = (
    SurprisalBand(0, 1, "#1b5e20", "#ffffff"),
    SurprisalBand(1, 3, "#558b2f", "#ffffff"),
    SurprisalBand(3, 6, "#f9a825", "#000000"),
    SurprisalBand(6, 10, "#ef6c00", "#000000"),
    SurprisalBand(10, math.inf, "#c62828", "#ffffff"),
)
_CONTROL_PICTURES = {i: chr(0x2400 + i) for i in range(32)} | {127: "␡"}


def surprisal_bits(logprob: float) -> float:
    """``-log2 p`` for a natural-log probability."""
    return -logprob / LN2


def band(bits: float) -> SurprisalBand:
    """The colour band for a surprisal in bits."""
    for candidate in SCALE:
        if bits < candidate.high:
            return candidate
    return SCALE[-1]


def format_probability(p: float) -> str:
    """A probability as the alternatives box shows it: ``12.3%``, or ``4.2e-05`` when tiny."""
    return f"{p * 100:.1f}%" if p >= 0.001 else f"{p:.1e}"


def display_token(text: str) -> str:
    """A token made visible: control characters as their Unicode pictures, newline as ``↵``,
    tab as ``⇥``, an empty token (a partial character) as ``∅``."""
    if not text:
        return "∅"
    return "".join("↵" if ch == "\n" else "⇥" if ch == "\t" else _CONTROL_PICTURES.get(ord(ch), ch) for ch in text)


def fit_cells(text: str, width: int) -> str:
    """``text`` padded (or cut, with an ellipsis) to ``width`` cells."""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    while cell_len(text) > width - 1:
        text = text[:-1]
    return text + "…" + " " * (width - 1 - cell_len(text))


def legend() -> Content:
    """The colour scale: one swatch per surprisal band."""
    parts: list[str | tuple[str, Style]] = ["surprisal (bits): "]
    for b in SCALE:
        parts += [(f" {b.label} ", Style(background=Color.parse(b.background), foreground=Color.parse(b.foreground))),
                  " "]
    return Content.assemble(*parts)


def _layout(tokens: Sequence[str], width: int) -> list[list[tuple[int, str]]]:
    """Greedy wrap of display tokens into lines of at most ``width`` cells: ``(index, piece)``
    per line; a token wider than a line is split, and a line ends after a newline token."""
    width = max(width, 1)
    lines: list[list[tuple[int, str]]] = [[]]
    used = 0
    for index, raw in enumerate(tokens):
        text = display_token(raw)
        while text:
            room = width - used
            if cell_len(text) <= room:
                piece, text = text, ""
            elif used > 0:
                lines.append([])
                used = 0
                continue
            else:
                cut = 1
                while cut < len(text) and cell_len(text[:cut + 1]) <= room:
                    cut += 1
                piece, text = text[:cut], text[cut:]
            lines[-1].append((index, piece))
            used += cell_len(piece)
        if "\n" in raw:
            lines.append([])
            used = 0
    if len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines


class TokenText(Widget):
    """The coloured tokens (one styled cell per token, carrying its index for clicks)."""

    DEFAULT_CLASSES = "token-text"

    def __init__(self, view: "TokenView", **kwargs) -> None:
        super().__init__(**kwargs)
        self._view = view
        self._cache: tuple[int, list[list[tuple[int, str]]]] | None = None

    def invalidate(self) -> None:
        self._cache = None
        self.refresh(layout=True)

    def lines(self, width: int) -> list[list[tuple[int, str]]]:
        if self._cache is None or self._cache[0] != width:
            self._cache = (width, _layout([t.token for t in self._view.tokens], width))
        return self._cache[1]

    def line_of(self, index: int) -> int:
        """The line the token at ``index`` starts on, at the current width."""
        for number, line in enumerate(self.lines(self.size.width)):
            if any(i == index for i, _ in line):
                return number
        return 0

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.lines(width))) if self._view.tokens else 1

    def render(self) -> Content:
        view = self._view
        if not view.tokens:
            return Content.styled(view.placeholder, "italic $text-muted")
        cursor = view.cursor
        parts: list[str | tuple[str, Style]] = []
        for number, line in enumerate(self.lines(self.size.width)):
            if number:
                parts.append("\n")
            for index, piece in line:
                b = band(surprisal_bits(view.tokens[index].logprob))
                style = Style(background=Color.parse(b.background), foreground=Color.parse(b.foreground),
                              reverse=index == cursor, bold=index == cursor, underline=index == cursor)
                parts.append((piece, style + Style.from_meta({"token": index})))
        return Content.assemble(*parts, strip_control_codes=False)

    def on_click(self, event: events.Click) -> None:
        index = event.style.meta.get("token")
        if isinstance(index, int):
            self._view.cursor = index


class TokenView(Widget, can_focus=True):
    """Tokens of an answer coloured by surprisal, a legend, and the top-k alternatives at the cursor.

    Feed it a finished :class:`~engine.GenerationResult` (``show_result``) or stream it
    (``clear`` then ``append`` per delta); it needs ``logprobs`` (and ``top_logprobs`` for the
    alternatives), which the engine returns for ``GenerationParams(logprobs=True, top_logprobs=k)``.
    """

    DEFAULT_CSS = (Path(__file__).parent / "token_view.tcss").read_text(encoding="utf-8")
    BINDINGS = [
        Binding("left", "move(-1)", "Previous token"),
        Binding("right", "move(1)", "Next token"),
        Binding("home", "move_to(0)", "First token"),
        Binding("end", "move_to(-1)", "Last token"),
    ]

    cursor: reactive[int] = reactive(0, init=False)

    def __init__(self, result: GenerationResult | None = None, *, placeholder: str = "No answer yet.",
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.tokens: list[TokenLogprob] = []
        self.alternatives: list[tuple[TokenLogprob, ...]] = []
        self.placeholder = placeholder
        self._text = TokenText(self, id="token-text")
        self._initial = result

    def compose(self) -> ComposeResult:
        with Horizontal(id="token-body"):
            with VerticalScroll(id="token-scroll"):
                yield self._text
            yield Static(id="token-alternatives")
        yield Static(legend(), id="token-legend")

    def on_mount(self) -> None:
        self.query_one("#token-scroll").border_title = "tokens"
        self.query_one("#token-alternatives").border_title = "at the cursor"
        if self._initial is not None:
            self.show_result(self._initial)
        else:
            self._refresh_all()

    # ------------------------------------------------------------------ feeding
    def clear(self, placeholder: str | None = None) -> None:
        """Drop every token (and optionally change what is shown when there are none)."""
        if placeholder is not None:
            self.placeholder = placeholder
        self.tokens.clear()
        self.alternatives.clear()
        self.set_reactive(TokenView.cursor, 0)
        self._refresh_all()

    def append(self, logprobs: Sequence[TokenLogprob], top_logprobs: Sequence[tuple[TokenLogprob, ...]] = ()) -> None:
        """Add streamed tokens (a delta's ``logprobs`` and ``top_logprobs``)."""
        self.tokens.extend(logprobs)
        tops = list(top_logprobs)
        self.alternatives.extend(tops + [()] * (len(logprobs) - len(tops)))
        self._refresh_all()

    def show_result(self, result: GenerationResult) -> None:
        """Show a finished answer; says so when it carries no log-probabilities."""
        self.tokens = list(result.logprobs)
        tops = list(result.top_logprobs)
        self.alternatives = tops + [()] * (len(self.tokens) - len(tops))
        if not self.tokens:
            self.placeholder = ("This answer has no log-probabilities (it was generated without them); "
                                "type its prompt above to probe it.")
        self.set_reactive(TokenView.cursor, 0)
        self._refresh_all()

    @property
    def token_count(self) -> int:
        return len(self.tokens)

    # ------------------------------------------------------------------ cursor
    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.tokens) - 1)) if self.tokens else 0

    def watch_cursor(self) -> None:
        self._text.refresh()
        self._show_alternatives()
        self._scroll_to_cursor()

    def action_move(self, step: int) -> None:
        self.cursor += step

    def action_move_to(self, index: int) -> None:
        self.cursor = index if index >= 0 else len(self.tokens) - 1

    # ------------------------------------------------------------------ drawing
    def _refresh_all(self) -> None:
        if not self.is_mounted:
            return
        self._text.invalidate()
        self._show_alternatives()

    def _scroll_to_cursor(self) -> None:
        if self.tokens and self._text.size.width:
            line = self._text.line_of(self.cursor)
            self.query_one("#token-scroll", VerticalScroll).scroll_to_region(Region(0, line, 1, 1), animate=False)

    def alternatives_text(self) -> Content:
        """What the box shows for the token under the cursor."""
        if not self.tokens:
            return Content("")
        i = self.cursor
        chosen = self.tokens[i]
        bits = surprisal_bits(chosen.logprob)
        lines = [
            Content.assemble(("token ", "dim"), f"{i + 1}/{len(self.tokens)}"),
            Content.styled(f"'{display_token(chosen.token)}'", "bold"),
            Content.assemble(("p ", "dim"), format_probability(math.exp(chosen.logprob)), (" · ", "dim"),
                             f"{bits:.2f} bits"),
        ]
        tops = self.alternatives[i] if i < len(self.alternatives) else ()
        if tops:
            lines.append(Content.styled(f"top {len(tops)} alternatives", "bold"))
            for rank, alt in enumerate(tops, 1):
                p = math.exp(alt.logprob)
                bar = "█" * max(1, round(p * 8)) if p >= 1 / 16 else "▏"
                mark = "▶" if alt.token_id == chosen.token_id else " "
                lines.append(Content.assemble(
                    f"{mark}{rank:>2} ", (fit_cells(f"'{display_token(alt.token)}'", 10), "bold"), " ",
                    f"{format_probability(p):>7}", " ", (bar, "$accent")))
            if all(alt.token_id != chosen.token_id for alt in tops):
                lines.append(Content.styled("(chosen token not in the top-k: sampled)", "dim"))
        else:
            lines.append(Content.styled("no alternatives recorded", "dim"))
        return Content("\n").join(lines)

    def _show_alternatives(self) -> None:
        self.query_one("#token-alternatives", Static).update(self.alternatives_text())
