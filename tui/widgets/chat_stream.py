"""Streams text deltas into a Markdown widget, appending at most every ``interval`` seconds.

:class:`SegmentedMarkdown` keeps rendering linear (it appends to a short last segment, never
re-parses the whole message); buffering the deltas and writing a few times a second instead of once per token cuts
the layout passes, which is where the CPU goes at high token rates (see DESIGN.md).
"""

from __future__ import annotations

from typing import Callable

from textual.timer import Timer

from tui.widgets.segmented_markdown import SegmentedMarkdown


class BufferedMarkdownStream:
    """Collects deltas with :meth:`write`; a timer appends them to ``markdown`` in one go.

    Every delta is kept (never dropped or coalesced away); only the writes to the widget are
    batched. Call :meth:`stop` once, when the answer ends, to flush what is left.
    """

    def __init__(self, markdown: SegmentedMarkdown, interval: float = 0.04,
                 on_flush: Callable[[], None] | None = None) -> None:
        self.markdown = markdown
        self._pending: list[str] = []
        self._parts: list[str] = []
        self._on_flush = on_flush
        self._timer: Timer = markdown.set_interval(interval, self._flush)

    @property
    def text(self) -> str:
        """Everything written so far (flushed or not)."""
        return "".join(self._parts)

    def write(self, text: str) -> None:
        """Queue one delta for the next flush."""
        if text:
            self._pending.append(text)
            self._parts.append(text)

    async def _flush(self) -> None:
        if not self._pending:
            return
        chunk = "".join(self._pending)
        self._pending.clear()
        await self.markdown.append(chunk)
        if self._on_flush is not None:
            self._on_flush()

    async def stop(self) -> None:
        """Flush what is pending and end the stream (the widget then holds the full text)."""
        self._timer.stop()
        await self._flush()
