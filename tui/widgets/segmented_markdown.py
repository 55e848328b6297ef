"""Markdown that stays cheap to append to, however long the answer grows.

Textual's ``Markdown.append`` re-parses and re-renders the document's last block on every
append, so appending to one long answer costs more and more per token. This widget starts a
new ``Markdown`` segment at a paragraph break once the current segment is long, so each append
only touches a short segment: rendering stays linear. Splits happen at blank lines outside
fenced code blocks, where a Markdown block ends anyway, so the rendered result is unchanged;
only a single paragraph longer than ``4 * segment_chars`` with no break at all is cut at a
space (shown as two paragraphs) rather than let every append re-render it.
"""

from __future__ import annotations

from textual.containers import Vertical
from textual.widgets import Markdown

SEGMENT_CHARS = 1200


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


class SegmentedMarkdown(Vertical):
    """A column of Markdown segments holding one document; ``source`` is the whole text."""

    DEFAULT_CSS = """
    SegmentedMarkdown { height: auto; }
    SegmentedMarkdown > Markdown { margin: 0; }
    """

    def __init__(self, markdown: str = "", *, classes: str | None = None, segment_chars: int = SEGMENT_CHARS) -> None:
        super().__init__(classes=classes)
        self._initial = markdown
        self.segment_chars = segment_chars

    def compose(self):
        yield from (Markdown(part) for part in self._segments(self._initial))

    @property
    def source(self) -> str:
        return "".join(m.source for m in self.children if isinstance(m, Markdown))

    def _segments(self, text: str) -> list[str]:
        parts, rest = [], text
        while len(rest) > self.segment_chars and (
                cut := split_point(rest, self.segment_chars, 4 * self.segment_chars)) is not None:
            parts.append(rest[:cut])
            rest = rest[cut:]
        return parts + [rest]

    async def append(self, text: str) -> None:
        """Append ``text`` to the document, opening a new segment at a paragraph break when the
        current one has grown long."""
        current = self.children[-1]  # direct children only: a DOM query would walk every block
        combined = current.source + text
        cut = (split_point(combined, self.segment_chars, 4 * self.segment_chars)
               if len(combined) > self.segment_chars else None)
        if cut is None or cut <= len(current.source):
            await current.append(text)
            return
        await current.append(combined[len(current.source):cut])
        await self.mount(Markdown(combined[cut:]))

    async def update(self, text: str) -> None:
        """Replace the whole document."""
        await self.remove_children()
        await self.mount_all([Markdown(part) for part in self._segments(text)])
