"""The probing screen through the real engine on tiny models, plus snapshots with the scripted engine."""

from __future__ import annotations

import math
from xml.etree import ElementTree

import numpy as np
import pytest
from rich.cells import cell_len
from rich.color import Color

from textual.widgets import Checkbox, DataTable, Input, Static, TabbedContent, TextArea

from engine import AttentionResult, CompletionRequest, FillMaskRequest, GenerationParams
from scenarios.store import Store
from tests.tui.scripted_engine import ScriptedEngine
from tests.tui.pilot_helpers import HostApp, wait_for as _wait_for
from tui.screens.probe import ProbeScreen
from tui.widgets.attention_data import LEVELS, MASKED, PALETTE, top_keys
from tui.widgets.attention_heatmap import AttentionHeatmap
from tui.widgets.attention_svg import heatmap_svg
from tui.widgets.attention_tool import AttentionTool
from tui.widgets.fill_mask_tool import FillMaskTool
from tui.widgets.perplexity_tool import PerplexityTool, perplexity_cells, short_model_name
from tui.widgets.surprisal_tool import SurprisalTool
from tui.widgets.token_view import TokenText, TokenView, display_token, format_probability


class Host(HostApp):
    """The shared host app showing the probe screen (or the screen ``screen_factory`` makes)."""

    def __init__(self, screen_factory=ProbeScreen, **kwargs) -> None:
        super().__init__(screen_factory, **kwargs)


def _ppl(screen: ProbeScreen) -> PerplexityTool:
    return screen.query_one(PerplexityTool)


def _text(widget: Static) -> str:
    return str(widget.render())


def _table_rows(screen: ProbeScreen) -> list[list[str]]:
    table = screen.query_one("#ppl-table", DataTable)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


def _model_fields(screen: ProbeScreen) -> dict[str, str]:
    return {tool: screen.query_one(f"#{tool}-model", Input).value for tool in ("surprisal", "mask", "ppl", "attn")}


def _cell_indices(view: TokenView) -> list[int]:
    """Token index of every styled cell the tokens widget renders, in order."""
    content = view.query_one(TokenText).render()
    return [span.style.meta["token"] for span in content.spans if "token" in span.style.meta]


def _check_alternatives(view: TokenView, top_logprobs) -> None:
    box = _text(view.query_one("#token-alternatives", Static))
    assert f"{view.cursor + 1}/{view.token_count}" in box
    for alt in top_logprobs[view.cursor]:
        assert f"'{display_token(alt.token)}'"[:9] in box
        assert format_probability(math.exp(alt.logprob)) in box


async def test_surprisal_shows_a_cell_per_token_and_the_alternatives_at_the_cursor(engine, tiny_causal, tmp_path):
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, ProbeScreen)
        screen.query_one(SurprisalTool).max_new_tokens = 12
        screen.query_one("#surprisal-prompt", Input).value = "Hello"
        await pilot.press("enter")
        await _wait_for(pilot, lambda: screen.result is not None)
        result = screen.result
        view = screen.query_one(TokenView)
        assert len(result.token_ids) == len(result.logprobs) == view.token_count > 0
        await pilot.pause()
        assert sorted(set(_cell_indices(view))) == list(range(len(result.token_ids)))
        assert len(result.top_logprobs[0]) == 5
        _check_alternatives(view, result.top_logprobs)
        assert app.focused is view
        await pilot.press("right", "right")
        assert view.cursor == 2
        _check_alternatives(view, result.top_logprobs)
        await pilot.press("end")
        assert view.cursor == view.token_count - 1
        _check_alternatives(view, result.top_logprobs)
        await pilot.press("left")
        assert view.cursor == view.token_count - 2
        await pilot.press("home")
        assert view.cursor == 0


async def test_clicking_a_token_moves_the_cursor(engine, tiny_causal, tmp_path):
    [result] = await engine.generate([CompletionRequest(
        tiny_causal, "Once upon a time", GenerationParams(max_new_tokens=8, logprobs=True, top_logprobs=3))])
    app = Host(lambda: ProbeScreen(result), engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.screen.query_one(TokenView)
        await pilot.pause()
        assert view.token_count == len(result.token_ids) and view.cursor == 0
        assert app.focused is view  # opened on an answer: the arrows move over its tokens at once
        text = view.query_one(TokenText)
        first_line = text.lines(text.size.width)[0]
        target, _ = first_line[-1]
        offset = sum(cell_len(piece) for _, piece in first_line[:-1])
        await pilot.click(TokenText, offset=(offset, 0))
        assert view.cursor == target
        _check_alternatives(view, result.top_logprobs)


async def test_fill_mask_shows_predictions_or_says_the_model_is_not_masked(engine, tiny_masked, tiny_causal,
                                                                            tmp_path):
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await pilot.press("f9")
        assert screen.query_one(TabbedContent).active == "fill-mask"
        results = screen.query_one("#mask-results", Static)
        model_input = screen.query_one("#mask-model", Input)
        assert model_input.value == tiny_causal  # defaults to the current model
        screen.query_one("#mask-text", Input).value = "The capital of France is [MASK] ."
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: "Not a masked language model" in _text(results))
        assert "masked" in _text(results) and screen.query_one(FillMaskTool).result is None
        assert not app._notifications  # the wrong kind of model is said in place, without alarm
        model_input.value = tiny_masked
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: screen.query_one(FillMaskTool).result is not None)
        assert app.model_name == tiny_causal and screen.query_one(FillMaskTool).result.model == tiny_masked
        expected = await engine.fill_mask(FillMaskRequest(tiny_masked, "The capital of France is [MASK] .", 5))
        shown = _text(results)
        assert tiny_masked in shown
        shown_tokens = [p.token for p in screen.query_one(FillMaskTool).result.predictions[0]]
        assert shown_tokens == [p.token for p in expected.predictions[0]]
        for p in expected.predictions[0]:
            assert p.token in shown and format_probability(p.probability) in shown


async def test_perplexity_of_one_text_under_two_models_gives_a_row_each_equal_to_the_engine(
        engine, tiny_causal, tiny_causal_b, tmp_path):
    text = "The quick brown fox jumps over the lazy dog.\nIt was not amused."
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await pilot.press("f10")
        screen.query_one("#ppl-text", TextArea).load_text(text)
        assert screen.query_one("#ppl-model", Input).value == tiny_causal  # defaults to the app's model
        await pilot.click("#ppl-run")
        await _wait_for(pilot, lambda: tiny_causal in _ppl(screen).results)
        screen.query_one("#ppl-model", Input).value = tiny_causal_b
        await pilot.press("ctrl+r")  # (a second click within 0.2 s would hit the button's press animation)
        await _wait_for(pilot, lambda: tiny_causal_b in _ppl(screen).results)
        assert app.model_name == tiny_causal  # probing another model leaves the app's model alone

        expected = {model: (await engine.perplexity(model, text))[0] for model in (tiny_causal, tiny_causal_b)}
        assert _ppl(screen).results == expected
        assert expected[tiny_causal].nll != expected[tiny_causal_b].nll  # really two models
        assert _table_rows(screen) == [[short_model_name(model), *perplexity_cells(result)]
                                       for model, result in expected.items()]
        assert perplexity_cells(expected[tiny_causal])[0] == f"{expected[tiny_causal].token_perplexity:.3f}"
        detail = _text(screen.query_one("#ppl-detail", Static))  # the latest result names its model
        assert tiny_causal_b in detail and expected[tiny_causal_b].method in detail

        before = _ppl(screen).result
        await pilot.press("ctrl+r")  # the same model again replaces its row
        await _wait_for(pilot, lambda: _ppl(screen).result is not before)
        assert [row[0] for row in _table_rows(screen)] == [short_model_name(m) for m in (tiny_causal, tiny_causal_b)]

        screen.query_one("#ppl-text", TextArea).insert(" Really.")
        await _wait_for(pilot, lambda: not _ppl(screen).results)
        assert _table_rows(screen) == [] and _ppl(screen).result is None
        assert _text(screen.query_one("#ppl-detail", Static)) == ""


async def test_probe_model_errors_show_in_place_and_the_screen_keeps_working(engine, tiny_causal, tiny_masked,
                                                                            tmp_path):
    text = "Paris is the capital of France."
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        await pilot.press("f10")
        screen.query_one("#ppl-text", TextArea).load_text(text)
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: _ppl(screen).result is not None)
        status = screen.query_one("#ppl-status", Static)

        screen.query_one("#ppl-model", Input).value = str(tmp_path / "missing.gguf")
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: "not found" in _text(status))
        assert any("not found" in n.message for n in app._notifications)
        app.clear_notifications()

        model_input = screen.query_one("#ppl-model", Input)
        model_input.value = tiny_masked
        model_input.focus()
        await pilot.press("enter")  # Enter in a model field runs the tool
        await _wait_for(pilot, lambda: "Cannot score with this model" in _text(status))
        assert "masked" in _text(status) and not app._notifications
        assert list(_ppl(screen).results) == [tiny_causal]  # the earlier row stays
        assert app.is_running


async def test_surprisal_generates_with_the_model_in_its_field(engine, tiny_causal, tiny_causal_b, tmp_path):
    app = Host(lambda: ProbeScreen(max_new_tokens=4), engine=engine, store=Store(tmp_path / "r.sqlite"),
               model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        screen.query_one("#surprisal-model", Input).value = tiny_causal_b
        screen.query_one("#surprisal-prompt", Input).value = "Hello"
        await pilot.press("enter")
        await _wait_for(pilot, lambda: screen.result is not None)
        assert screen.result.model == tiny_causal_b and app.model_name == tiny_causal
        assert tiny_causal_b in _text(screen.query_one("#surprisal-status", Static))


async def test_model_fields_follow_the_app_model_until_the_user_types_one(tmp_path):
    app = Host(engine=ScriptedEngine(), store=Store(tmp_path / "r.sqlite"), model="default")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert _model_fields(screen) == {"surprisal": "default", "mask": "default", "ppl": "default", "attn": "default"}
        app.model_name = "org/chat-model"
        await pilot.pause()
        assert _model_fields(screen) == {"surprisal": "org/chat-model", "mask": "org/chat-model",
                                         "ppl": "org/chat-model", "attn": "org/chat-model"}
        screen.query_one("#mask-model", Input).value = "google-bert/bert-base-uncased"
        screen.query_one("#ppl-model", Input).value = ""  # empty: the app's model, and still following
        await pilot.pause()
        app.model_name = "./other-model"
        await pilot.pause()
        assert _model_fields(screen) == {"surprisal": "./other-model", "mask": "google-bert/bert-base-uncased",
                                         "ppl": "./other-model", "attn": "./other-model"}


async def test_escape_stops_a_long_generation_and_keeps_its_tokens(engine, tiny_causal_long, tmp_path):
    app = Host(lambda: ProbeScreen(max_new_tokens=2000), engine=engine, store=Store(tmp_path / "r.sqlite"),
               model=tiny_causal_long)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        screen.query_one("#surprisal-prompt", Input).value = "Tell me a story"
        await pilot.press("enter")
        view = screen.query_one(TokenView)
        await _wait_for(pilot, lambda: view.token_count >= 3)
        await pilot.press("escape")
        await _wait_for(pilot, lambda: screen.result is not None, steps=250)
        assert screen.result.finish_reason == "cancelled"
        assert view.token_count == len(screen.result.token_ids) < 2000
        assert "stopped" in _text(screen.query_one("#surprisal-status", Static))


# ------------------------------------------------------------------ snapshots (scripted engine)
async def _scripted_surprisal(pilot) -> None:
    screen = pilot.app.screen
    screen.query_one("#surprisal-prompt", Input).value = "What is the capital of France?"
    await pilot.press("enter")
    await _wait_for(pilot, lambda: screen.result is not None)
    await pilot.press("right", "right", "right")
    await pilot.pause()


def test_probe_screen_snapshot(snap_compare, tmp_path):
    app = Host(engine=ScriptedEngine(), store=Store(tmp_path / "r.sqlite"), model="default")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_scripted_surprisal)


async def _scripted_perplexity(pilot) -> None:
    screen = pilot.app.screen
    await pilot.press("f10")
    screen.query_one("#ppl-text", TextArea).load_text("Paris is the capital of France.")
    await pilot.press("ctrl+r")
    await _wait_for(pilot, lambda: _ppl(screen).result is not None)
    screen.query_one("#ppl-model", Input).value = "HuggingFaceTB/SmolLM2-360M-Instruct"
    await pilot.press("ctrl+r")
    await _wait_for(pilot, lambda: len(_ppl(screen).results) == 2)
    screen.query_one("#ppl-text", TextArea).blur()
    await pilot.pause()


def test_probe_perplexity_snapshot(snap_compare, tmp_path):
    app = Host(engine=ScriptedEngine(), store=Store(tmp_path / "r.sqlite"), model="default")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_scripted_perplexity)


# ------------------------------------------------------------------ attention
ATTN_TEXT = "The quick brown fox jumps over the lazy dog."
SVG = "{http://www.w3.org/2000/svg}"


def _rendered_levels(heatmap: AttentionHeatmap) -> np.ndarray:
    """The colour level of every cell the heatmap paints (MASKED where it paints masked dots),
    read back from the segments' colours (a segment spans one or more cells). Needs every cell
    on screen."""
    by_colour = {tuple(Color.parse(colour).triplet): level for level, colour in enumerate(PALETTE)}
    rows = []
    for y in range(1, heatmap.cells.shape[0] + 1):
        row = []
        for segment in list(heatmap.render_line(y))[1:]:
            colour = segment.style.bgcolor if segment.style else None
            cells = cell_len(segment.text) // heatmap.cell_width
            if colour is not None and colour.triplet is not None and tuple(colour.triplet) in by_colour:
                row += [by_colour[tuple(colour.triplet)]] * cells
            elif segment.text.strip() and set(segment.text) <= set("·◆ "):
                row += [MASKED] * cells
        rows.append(row)
    return np.array(rows)


async def _run_attention(pilot, text: str, *, cross: bool = False) -> AttentionTool:
    screen = pilot.app.screen
    await pilot.press("f7")
    assert screen.query_one(TabbedContent).active == "attention"
    tool = screen.query_one(AttentionTool)
    before = tool.result
    screen.query_one("#attn-cross", Checkbox).value = cross
    screen.query_one("#attn-text", Input).value = text
    screen.query_one("#attn-text", Input).focus()
    await pilot.press("enter")
    await _wait_for(pilot, lambda: tool.result is not before and tool.result is not None)
    await pilot.pause()
    return tool


async def test_attention_heatmap_draws_the_engine_weights_and_the_top_keys_at_the_cursor(engine, tiny_causal,
                                                                                        tmp_path):
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(160, 60)) as pilot:
        tool = await _run_attention(pilot, ATTN_TEXT)
        expected = await engine.attention(tiny_causal, ATTN_TEXT)
        np.testing.assert_array_equal(tool.result.weights, expected.weights)
        heatmap = tool.query_one(AttentionHeatmap)
        assert app.focused is heatmap
        layer = expected.num_layers - 1
        assert (tool.layer_index, tool.head_index) == (layer, None)  # the last layer, mean of heads
        matrix = expected.weights[layer].mean(axis=0)

        drawn = _rendered_levels(heatmap)
        n = len(expected.key_tokens)
        assert drawn.shape == (n, n)
        assert ((drawn == MASKED) == np.triu(np.ones((n, n), dtype=bool), k=1)).all()  # the causal mask
        hottest = drawn == drawn.max()
        assert hottest[np.unravel_index(matrix.argmax(), matrix.shape)]  # the array's argmax is drawn hottest
        assert (matrix[hottest] >= matrix.max() * (LEVELS - 1) / LEVELS).all()

        legend = tool.query_one("#attn-legend", Static)
        assert f"{matrix.max():.3f}" in _text(legend) and "largest weight shown" in _text(legend)
        await pilot.press("s")  # each row scaled to its own largest weight: every row has a hottest cell
        assert heatmap.scale == "row" and "row max" in _text(legend)
        assert (heatmap.cells.max(axis=1) == LEVELS - 1).all()
        await pilot.press("s")
        assert heatmap.scale == "matrix"

        await pilot.press("down", "down", "down", "right")
        assert (heatmap.row, heatmap.column) == (3, 1)
        focus = str(tool.query_one("#attn-focus", Static).render())
        assert "query 3/" in focus and f"{matrix[3, 1]:.3f}" in focus
        for kw in top_keys(matrix, 3, expected.key_tokens, 4):
            assert f"{kw.weight:.3f}" in focus
        assert "attends most to" in focus

        await pilot.press("left_square_bracket", "right_curly_bracket")  # layer -1, then head 0
        assert (tool.layer_index, tool.head_index) == (layer - 1, 0)
        np.testing.assert_array_equal(heatmap.data.matrix, expected.weights[layer - 1, 0])
        assert (heatmap.row, heatmap.column) == (3, 1)  # the cursor stays on the same cell

        tool.export_dir = tmp_path
        await pilot.press("ctrl+e")
        await _wait_for(pilot, lambda: tool.last_export is not None)
        assert tool.last_export.parent == tmp_path and str(tool.last_export) in _text(tool.query_one("#attn-status"))
        svg = ElementTree.parse(tool.last_export).getroot()
        cells = [r for r in svg.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
        assert len(cells) == n * (n + 1) // 2  # every unmasked cell, with its weight as a tooltip
        hottest_title = max(float(r.find(f"{SVG}title").text) for r in cells)
        assert hottest_title == pytest.approx(float(expected.weights[layer - 1, 0].max()), abs=1e-4)


async def test_attention_at_80_columns_scrolls_to_the_cursor_and_zooms(engine, tiny_causal, tmp_path):
    text = " ".join([ATTN_TEXT] * 4)
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(80, 24)) as pilot:
        tool = await _run_attention(pilot, text)
        heatmap = tool.query_one(AttentionHeatmap)
        n = len(tool.result.key_tokens)
        width = heatmap.scrollable_content_region.width
        assert heatmap.label_columns + n * heatmap.cell_width > width  # it does not fit: it scrolls
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown", "end")
        await pilot.pause()
        assert (heatmap.row, heatmap.column) == (min(40, n - 1), n - 1)
        assert heatmap.scroll_offset.x > 0 and heatmap.scroll_offset.y > 0
        visible = {heatmap.cell_at(x, y) for x in range(width) for y in range(heatmap.scrollable_content_region.height)}
        assert (heatmap.row, heatmap.column) in visible
        await pilot.press("minus")
        assert heatmap.cell_width == 1
        await pilot.press("plus", "plus")
        assert heatmap.cell_width == 3
        await pilot.pause()
        visible = {heatmap.cell_at(x, y) for x in range(width) for y in range(heatmap.scrollable_content_region.height)}
        assert (heatmap.row, heatmap.column) in visible


async def test_attention_on_masked_and_seq2seq_models(engine, tiny_masked, tiny_seq2seq, tmp_path):
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_masked)
    async with app.run_test(size=(100, 30)) as pilot:
        tool = await _run_attention(pilot, ATTN_TEXT)
        assert tool.result.kind == "self" and not tool.result.causal
        assert (tool.query_one(AttentionHeatmap).cells >= 0).all()  # nothing masked
        status = tool.query_one("#attn-status", Static)
        tool.query_one("#attn-model", Input).value = tiny_seq2seq
        tool = await _run_attention(pilot, ATTN_TEXT, cross=True)
        assert tool.result.kind == "decoder-cross" and "decoder cross-attention" in _text(status)
        assert "greedy answer" in _text(tool.query_one("#attn-notes", Static))


async def test_attention_tokens_are_drawn_as_text_never_as_markup(engine, tiny_causal, tmp_path):
    tokens = ("[bold red]x[/]", "<script>&", "\x1b[31mred", "line\nbreak")
    weights = np.full((1, 1, 4, 4), 0.25, dtype=np.float32)
    hostile = AttentionResult("r", "[b]model[/b]", "self", tokens, tokens, weights)
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"), model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f7")
        tool = app.screen.query_one(AttentionTool)
        tool.show_result(hostile)
        await pilot.pause()
        heatmap = tool.query_one(AttentionHeatmap)
        labels = [list(heatmap.render_line(y))[0].text for y in range(1, 5)]
        assert labels[0].startswith("[bold red…") and labels[1].startswith("<script>&")
        assert "\x1b" not in "".join(labels) and "↵" in labels[3]
        assert "[bold red]x[/]" in str(tool.query_one("#attn-focus", Static).render())
    svg = heatmap_svg(hostile, 0, None)
    root = ElementTree.fromstring(svg)  # well-formed: every label escaped
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<script>&" in texts and "[bold red]x[/]" in texts and all("\x1b" not in (t or "") for t in texts)


def test_a_huge_word_perplexity_prints_with_four_significant_digits():
    # Finding 11: a word perplexity printed as 54847031526.351.
    from engine import PerplexityResult

    result = PerplexityResult(nll=40.0, num_tokens=4, num_words=1, num_bytes=5, method="test")
    assert result.word_perplexity > 1e10
    assert perplexity_cells(result)[1] == f"{result.word_perplexity:.2e}"
