"""Long answers are split into Markdown segments at paragraph breaks, never inside code."""

from __future__ import annotations

import re

from textual.app import App
from tui.widgets.segmented_markdown import SegmentedMarkdown, split_point

PARAGRAPH = "A sentence about lighthouses and the sea, long enough to matter. " * 4 + "\n\n"
CODE = "```python\n" + "x = 1\n\n" * 40 + "```\n\n"


def test_split_point_skips_blank_lines_inside_code_fences():
    text = "intro\n\n" + CODE + "after\n\nmore"
    cut = split_point(text, 10)
    assert cut is not None and text[:cut].endswith(CODE + "after\n\n")
    assert split_point("no breaks at all " * 100, 10) is None


class Host(App):
    def compose(self):
        yield SegmentedMarkdown(segment_chars=300)


async def test_streamed_text_is_kept_exactly_and_segments_stay_short():
    app = Host()
    document = "".join(PARAGRAPH if i % 5 else CODE for i in range(12))
    async with app.run_test() as pilot:
        widget = app.query_one(SegmentedMarkdown)
        for start in range(0, len(document), 37):  # arbitrary chunking, as a stream would deliver
            await widget.append(document[start:start + 37])
        await pilot.pause()
        segments = widget.segment_sources
        assert widget.source == document
        assert len(segments) > 5
        for segment in segments[:-1]:
            assert segment.endswith("\n\n") and segment.count("```") % 2 == 0
        await widget.update(document)
        assert widget.source == document and widget.segment_sources == widget._segments(document)


def test_an_endless_paragraph_is_cut_at_a_space_past_the_hard_limit():
    text = "word " * 300
    assert split_point(text, 100) is None  # no break: left alone below the hard limit
    cut = split_point(text, 100, hard_limit=1000)
    assert cut is not None and text[cut - 1] == " " and cut > 100
    fenced = "```\n" + "code " * 300
    assert split_point(fenced, 100, hard_limit=1000) is None  # never inside a code block


async def test_segments_stay_short_when_each_blank_line_arrives_at_the_end_of_a_delta():
    # How a model streams: a paragraph, then "\n\n" ends a delta, then the next paragraph.
    app = Host()
    paragraph = "The keeper climbed the stairs of the lighthouse and counted every step. " * 3
    async with app.run_test() as pilot:
        widget = app.query_one(SegmentedMarkdown)
        document = ""
        for _ in range(30):
            for piece in (paragraph.strip(), "\n\n"):
                await widget.append(piece)
                document += piece
        await pilot.pause()
        assert widget.source == document
        lengths = [len(segment) for segment in widget.segment_sources]
        assert len(lengths) > 10 and max(lengths) <= 2 * widget.segment_chars


class Whole(App):
    def compose(self):
        yield SegmentedMarkdown(segment_chars=10**9)


async def test_a_segmented_document_looks_exactly_like_the_whole_one():
    document = "".join(PARAGRAPH if i % 3 else "- an item\n- another\n\n> a quote\n\n" for i in range(7))
    document += "The end."
    screens = []
    for app in (Host(), Whole()):
        async with app.run_test(size=(80, 120)) as pilot:
            widget = app.query_one(SegmentedMarkdown)
            for start in range(0, len(document), 97):
                await widget.append(document[start:start + 97])
            await pilot.pause()
            # The SVG's ids and title derive from the app's class name; the picture must not differ.
            picture = re.sub(r"terminal-\d+", "terminal", app.export_screenshot()).replace(type(app).__name__, "App")
            screens.append((picture, len(widget.segment_sources)))
    (segmented, parts), (whole, one) = screens
    assert parts >= 3 and one == 1
    assert segmented == whole


async def test_selected_text_copies_as_shown_not_the_widget_name():
    # Finding 1: selecting a finished answer and pressing Ctrl+C copied "SealedSegments".
    app = Host()
    document = "".join(f"Paragraph {i} about the lighthouse keeper and his lamp.\n\n" for i in range(12))
    document += "The **end** of it."
    async with app.run_test(size=(80, 60)) as pilot:
        widget = app.query_one(SegmentedMarkdown)
        await widget.append(document)
        await pilot.pause()
        assert widget.sealed.sources  # part of the text is in the sealed segments
        start = widget.sealed.region.offset
        end = widget.live.region.offset + (20, 0)
        await pilot.mouse_down(offset=start)
        await pilot.hover(offset=end)
        await pilot.mouse_up(offset=end)
        await pilot.pause()
        await pilot.press("ctrl+c")
        copied = app.clipboard
        assert "SealedSegments" not in copied and "MarkdownSegment" not in copied
        assert copied.startswith("Paragraph 0 about the lighthouse keeper")
        assert "Paragraph 11 about the lighthouse keeper and his lamp." in copied
        assert copied.endswith("The end of it.")  # as shown: the Markdown's ** are not on screen
