"""Markdown that stays cheap to append to, however long the answer and the chat grow.

Two costs grow with a long answer in a terminal UI: re-parsing the whole text on every append,
and laying out one widget per Markdown block (paragraph, list item, quote) on every refresh.
This widget avoids both. The document is split into segments at paragraph breaks once the
current segment is long; each segment is a single widget rendering its Markdown with Rich, and
an append re-renders only the last, short segment. Splits happen at blank lines outside fenced
code blocks, where a Markdown block ends anyway, so the rendered result is unchanged; only a
single paragraph longer than ``2 * segment_chars`` with no break at all is cut at a space (its
rest starts on a new line, with no gap) rather than let every append re-render it.

(Textual's ``Markdown`` widget was measured at 19 ms of UI time per token early in a 2,000-token
answer and 43 ms by its end, even with segments: one widget per block makes every layout pass
longer. One widget per segment: 7 ms, and 6 ms at the end.)
"""

from __future__ import annotations

from typing import ClassVar
from weakref import WeakKeyDictionary

import rich.markdown
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.theme import Theme
from textual.app import App
from textual.containers import Vertical
from textual.geometry import Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

SEGMENT_CHARS = 400
_BLANK_LINE = Segment.line()


def split_point(text: str, start: int, hard_limit: int | None = None) -> int | None:
    """Where to start a new segment: just after the last blank line past ``start`` that is
    outside a code fence; failing that, when ``text`` is longer than ``hard_limit`` and not
    inside a code fence, just after its last space."""
    best = None
    position = 0
    in_fence = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        position += len(line)
        if not in_fence and not line.strip() and position > start and position < len(text):
            best = position
    if best is None and hard_limit is not None and len(text) > hard_limit and not in_fence:
        space = text.rfind(" ", start)
        best = space + 1 if space >= start else None
    return best


class _LeftHeading(rich.markdown.Heading):
    """Headings flush left, as in a chat transcript (Rich centres level 1)."""

    LEVEL_ALIGN: ClassVar[dict[str, rich.markdown.JustifyMethod]] = {f"h{n}": "left" for n in range(1, 7)}


class _ChatMarkdown(rich.markdown.Markdown):
    elements = {**rich.markdown.Markdown.elements, "heading_open": _LeftHeading}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Rich opens a document that starts with a list with a blank line; segments are spaced
        # by CSS, so leading blank lines would show as double gaps.
        started = False
        for segment in super().__rich_console__(console, options):
            if not started and segment == _BLANK_LINE:
                continue
            started = True
            yield segment


# Which Textual theme's colours each app's console carries for the ``markdown.*`` styles.
_themed: WeakKeyDictionary[App, str] = WeakKeyDictionary()


def _colour(value: str | None, fallback: str) -> str:
    """A theme variable as a Rich colour (``#RRGGBB``; alpha dropped), or ``fallback``."""
    if value and value.startswith("#") and len(value) in (7, 9):
        return value[:7]
    return fallback


def markdown_theme(variables: dict[str, str]) -> Theme:
    """Rich's ``markdown.*`` styles in the colours of a Textual theme (its ``theme_variables``)."""
    primary = _colour(variables.get("text-primary") or variables.get("primary"), "blue")
    accent = _colour(variables.get("text-accent") or variables.get("accent"), "yellow")
    muted = _colour(variables.get("foreground-muted"), "grey50")
    styles = {
        "markdown.code": f"bold {accent}",
        "markdown.block_quote": f"italic {muted}",
        "markdown.item.bullet": f"bold {primary}",
        "markdown.item.number": primary,
        "markdown.list": primary,
        "markdown.link": f"underline {primary}",
        "markdown.link_url": f"underline {primary}",
        "markdown.table.border": primary,
        "markdown.table.header": f"bold {primary}",
    }
    for level in range(1, 7):
        colour = _colour(variables.get(f"markdown-h{level}-color"), primary)
        text_style = variables.get(f"markdown-h{level}-text-style") or "bold"
        try:
            styles[f"markdown.h{level}"] = str(Style.parse(f"{text_style} {colour}"))
        except Exception:  # noqa: BLE001 - a theme's odd text style falls back to bold
            styles[f"markdown.h{level}"] = f"bold {colour}"
    return Theme(styles, inherit=False)


def _use_app_theme(app: App) -> None:
    """Give ``app``'s console the current Textual theme's Markdown colours (once per theme)."""
    name = app.theme
    if _themed.get(app) == name:
        return
    if app in _themed:
        app.console.pop_theme()
    app.console.push_theme(markdown_theme(app.theme_variables))
    _themed[app] = name


def _markdown(app: App, source: str) -> _ChatMarkdown:
    _use_app_theme(app)
    return _ChatMarkdown(source, code_theme="github-dark" if app.current_theme.dark else "default")


def _render_source(app: App, source: str, width: int) -> list[Strip]:
    """``source`` rendered as Markdown into lines ``width`` cells wide (not padded)."""
    options = app.console_options.update(width=width, height=None, highlight=False)
    lines = [Strip(line) for line in app.console.render_lines(_markdown(app, source), options, pad=False)]
    # Blocks are one blank line apart; a segment cut inside a paragraph (not after a blank
    # line) continues on the next line.
    if source.endswith("\n"):
        lines.append(Strip([]))
    return lines


def _highlight(strip: Strip, start: int, end: int, style: Style) -> Strip:
    """``strip`` with the characters ``start`` to ``end`` (``-1``: the line's end) in ``style``."""
    text = strip.text
    end = len(text) if end == -1 else min(end, len(text))
    if start >= end:
        return strip
    a, b = cell_len(text[:start]), cell_len(text[:end])
    before, middle, after = strip.divide([a, b, strip.cell_length])
    selected = Strip(Segment.apply_style(list(middle), post_style=style))
    return Strip.join([before, selected, after])


class _RenderedLines(Widget):
    """A widget painted from cached rendered lines, with text selection (mouse drag, Ctrl+C).

    Each painted line carries its content offsets, so Textual maps the mouse to characters;
    :meth:`get_selection` returns the text as shown (Textual's default would copy the
    widget's name, as it has no text renderable).
    """

    DEFAULT_CSS = """
    _RenderedLines { height: auto; }
    """

    _lines: list[Strip]

    def _ensure_lines(self, width: int) -> None:
        raise NotImplementedError

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if not width:
            return 0
        self._ensure_lines(width)
        return len(self._lines)

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        self._ensure_lines(width)
        style = self.rich_style
        if y >= len(self._lines):
            return Strip.blank(width, style)
        line = self._lines[y]
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(y)) is not None:
            line = _highlight(line, *span, self.screen.get_component_rich_style("screen--selection"))
        return line.apply_style(style).crop_extend(0, width, style).apply_offsets(0, y)

    @property
    def rendered_text(self) -> str:
        """The text as shown on screen, one line per rendered line (trailing spaces dropped)."""
        self._ensure_lines(self.content_size.width or self.app.size.width)
        return "\n".join(line.text.rstrip() for line in self._lines)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract(self.rendered_text), "\n"


class MarkdownSegment(_RenderedLines):
    """The live (last) segment of a document: its Markdown rendered by Rich in one widget."""

    DEFAULT_CSS = """
    MarkdownSegment { height: auto; }
    """

    def __init__(self, source: str = "") -> None:
        super().__init__()
        self.source = source
        self._lines = []
        self._rendered: tuple[int, str, str] | None = None  # (width, theme, source) of ``_lines``

    def append(self, text: str) -> None:
        """Add ``text`` to the segment and re-render it."""
        self.replace(self.source + text)

    def replace(self, source: str) -> None:
        """Show ``source`` instead."""
        self.source = source
        self.refresh(layout=True)

    def _ensure_lines(self, width: int) -> None:
        key = (width, self.app.theme, self.source)
        if key != self._rendered:
            self._rendered = key
            lines = _render_source(self.app, self.source, width) if self.source else []
            # The live segment never ends with a gap: the next segment (or nothing) follows.
            self._lines = lines[:-1] if self.source.endswith("\n") else lines


class SealedSegments(_RenderedLines):
    """Every finished segment in one widget, each rendered once into cached lines.

    One widget however long the document: a widget per segment made every layout pass walk
    them all, and the cost per token crept up with the answer's length. Lines are rendered
    again only when the width or the theme changes.
    """

    DEFAULT_CSS = """
    SealedSegments { height: auto; }
    """

    def __init__(self, sources: list[str] | None = None) -> None:
        super().__init__()
        self.sources: list[str] = list(sources or [])
        self._lines = []
        self._rendered: tuple[int, str] | None = None  # (width, theme) the lines were made for
        self._rendered_count = 0  # sources already in ``_lines``

    @property
    def source(self) -> str:
        return "".join(self.sources)

    def add(self, source: str) -> None:
        """Append a finished segment (rendered on the next layout, alone)."""
        self.sources.append(source)
        self.refresh(layout=True)

    def reset(self, sources: list[str]) -> None:
        """Hold ``sources`` instead (all rendered again)."""
        self.sources = list(sources)
        self._rendered = None
        self.refresh(layout=True)

    def _ensure_lines(self, width: int) -> None:
        key = (width, self.app.theme)
        if key != self._rendered:
            self._rendered, self._lines, self._rendered_count = key, [], 0
        while self._rendered_count < len(self.sources):
            self._lines += _render_source(self.app, self.sources[self._rendered_count], width)
            self._rendered_count += 1


class SegmentedMarkdown(Vertical):
    """One document as finished segments (:class:`SealedSegments`) and a live last segment
    (:class:`MarkdownSegment`); ``source`` is the whole text."""

    DEFAULT_CSS = """
    SegmentedMarkdown { height: auto; }
    """

    def __init__(self, markdown: str = "", *, classes: str | None = None, segment_chars: int = SEGMENT_CHARS) -> None:
        super().__init__(classes=classes)
        self._initial = markdown
        self.segment_chars = segment_chars

    def compose(self):
        *sealed, live = self._segments(self._initial)
        yield SealedSegments(sealed)
        yield MarkdownSegment(live)

    @property
    def sealed(self) -> SealedSegments:
        return self.children[0]  # type: ignore[return-value]

    @property
    def live(self) -> MarkdownSegment:
        return self.children[-1]  # type: ignore[return-value]

    @property
    def segment_sources(self) -> list[str]:
        """The segments' texts, in order (the last one is still growing)."""
        return [*self.sealed.sources, self.live.source]

    @property
    def source(self) -> str:
        return self.sealed.source + self.live.source

    def _segments(self, text: str) -> list[str]:
        parts, rest = [], text
        while len(rest) > self.segment_chars and (
                cut := split_point(rest, self.segment_chars, 2 * self.segment_chars)) is not None:
            parts.append(rest[:cut])
            rest = rest[cut:]
        return parts + [rest]

    async def append(self, text: str) -> None:
        """Append ``text`` to the document, sealing the live segment at a paragraph break once
        it has grown long."""
        live = self.live
        combined = live.source + text
        cut = (split_point(combined, self.segment_chars, 2 * self.segment_chars)
               if len(combined) > self.segment_chars else None)
        if cut is None or cut >= len(combined):
            live.append(text)
            return
        # The break may lie in text already shown (a blank line arrives before the text after
        # it): the live segment then gives up its tail, which renders the same after the seal.
        self.sealed.add(combined[:cut])
        live.replace(combined[cut:])

    async def update(self, text: str) -> None:
        """Replace the whole document."""
        *sealed, live = self._segments(text)
        self.sealed.reset(sealed)
        self.live.replace(live)
