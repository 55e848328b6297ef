"""The probing screen through the real engine on tiny models, plus snapshots with the scripted engine."""

from __future__ import annotations

import math

from rich.cells import cell_len

from textual.widgets import DataTable, Input, Static, TabbedContent, TextArea

from engine import CompletionRequest, FillMaskRequest, GenerationParams
from scenarios.store import Store
from tests.tui.scripted_engine import ScriptedEngine
from tests.tui.pilot_helpers import wait_for as _wait_for
from tui.base import LmscopeAppBase
from tui.screens.probe import ProbeScreen, perplexity_cells, short_model_name
from tui.widgets.token_view import TokenText, TokenView, display_token, format_probability


class Host(LmscopeAppBase):
    def __init__(self, screen_factory=ProbeScreen, **kwargs) -> None:
        super().__init__(**kwargs)
        self._factory = screen_factory

    def on_mount(self) -> None:
        self.push_screen(self._factory())



def _text(widget: Static) -> str:
    return str(widget.render())


def _table_rows(screen: ProbeScreen) -> list[list[str]]:
    table = screen.query_one("#ppl-table", DataTable)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


def _model_fields(screen: ProbeScreen) -> dict[str, str]:
    return {tool: screen.query_one(f"#{tool}-model", Input).value for tool in ("surprisal", "mask", "ppl")}


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
        screen.max_new_tokens = 12
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
        assert "masked" in _text(results) and screen.fill_mask_result is None
        assert not app._notifications  # the wrong kind of model is said in place, without alarm
        model_input.value = tiny_masked
        await pilot.press("ctrl+r")
        await _wait_for(pilot, lambda: screen.fill_mask_result is not None)
        assert app.model_name == tiny_causal and screen.fill_mask_result.model == tiny_masked
        expected = await engine.fill_mask(FillMaskRequest(tiny_masked, "The capital of France is [MASK] .", 5))
        shown = _text(results)
        assert tiny_masked in shown
        assert [p.token for p in screen.fill_mask_result.predictions[0]] == [p.token for p in expected.predictions[0]]
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
        await _wait_for(pilot, lambda: tiny_causal in screen.perplexity_results)
        screen.query_one("#ppl-model", Input).value = tiny_causal_b
        await pilot.press("ctrl+r")  # (a second click within 0.2 s would hit the button's press animation)
        await _wait_for(pilot, lambda: tiny_causal_b in screen.perplexity_results)
        assert app.model_name == tiny_causal  # probing another model leaves the app's model alone

        expected = {model: (await engine.perplexity(model, text))[0] for model in (tiny_causal, tiny_causal_b)}
        assert screen.perplexity_results == expected
        assert expected[tiny_causal].nll != expected[tiny_causal_b].nll  # really two models
        assert _table_rows(screen) == [[short_model_name(model), *perplexity_cells(result)]
                                       for model, result in expected.items()]
        assert perplexity_cells(expected[tiny_causal])[0] == f"{expected[tiny_causal].token_perplexity:.3f}"
        detail = _text(screen.query_one("#ppl-detail", Static))  # the latest result names its model
        assert tiny_causal_b in detail and expected[tiny_causal_b].method in detail

        before = screen.perplexity_result
        await pilot.press("ctrl+r")  # the same model again replaces its row
        await _wait_for(pilot, lambda: screen.perplexity_result is not before)
        assert [row[0] for row in _table_rows(screen)] == [short_model_name(m) for m in (tiny_causal, tiny_causal_b)]

        screen.query_one("#ppl-text", TextArea).insert(" Really.")
        await _wait_for(pilot, lambda: not screen.perplexity_results)
        assert _table_rows(screen) == [] and screen.perplexity_result is None
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
        await _wait_for(pilot, lambda: screen.perplexity_result is not None)
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
        assert list(screen.perplexity_results) == [tiny_causal]  # the earlier row stays
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
        assert _model_fields(screen) == {"surprisal": "default", "mask": "default", "ppl": "default"}
        app.model_name = "org/chat-model"
        await pilot.pause()
        assert _model_fields(screen) == {"surprisal": "org/chat-model", "mask": "org/chat-model",
                                         "ppl": "org/chat-model"}
        screen.query_one("#mask-model", Input).value = "google-bert/bert-base-uncased"
        screen.query_one("#ppl-model", Input).value = ""  # empty: the app's model, and still following
        await pilot.pause()
        app.model_name = "./other-model"
        await pilot.pause()
        assert _model_fields(screen) == {"surprisal": "./other-model", "mask": "google-bert/bert-base-uncased",
                                         "ppl": "./other-model"}


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
    await _wait_for(pilot, lambda: screen.perplexity_result is not None)
    screen.query_one("#ppl-model", Input).value = "HuggingFaceTB/SmolLM2-360M-Instruct"
    await pilot.press("ctrl+r")
    await _wait_for(pilot, lambda: len(screen.perplexity_results) == 2)
    screen.query_one("#ppl-text", TextArea).blur()
    await pilot.pause()


def test_probe_perplexity_snapshot(snap_compare, tmp_path):
    app = Host(engine=ScriptedEngine(), store=Store(tmp_path / "r.sqlite"), model="default")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_scripted_perplexity)
