"""The model picker, driven through Textual's pilot on the real engine and tiny models.

The snapshot test alone uses the scripted engine.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, OptionList

from tests.tui.scripted_engine import ScriptedEngine
from tests.tui.pilot_helpers import settle, wait_for
from tui.messages import ModelLoaded, ModelSelected
from tui.screens.chat import ChatScreen
from tui.screens.model_picker import ModelPickerScreen, cached_models


def picker_app(host_app, hf_cache_dir: Path | None, **kwargs):
    """The chat screen with the picker on top (the app records what the picker reports)."""
    return host_app(ChatScreen, ModelPickerScreen(hf_cache_dir=hf_cache_dir), **kwargs)


def fake_hf_cache(root: Path, *repos: str) -> Path:
    """A Hugging Face cache layout with one snapshot per repository (enough for the scanner)."""
    for repo in repos:
        folder = root / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text("abc123")
        snapshot = folder / "snapshots" / "abc123"
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text("{}")
    return root


def option_ids(picker: ModelPickerScreen) -> list[str | None]:
    options = picker.query_one(OptionList)
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


async def test_typed_folder_loads_in_the_background_and_is_selected(host_app, engine, tmp_path, tiny_causal,
                                                                   tiny_causal_b):
    app = picker_app(host_app, tmp_path / "no-cache", engine=engine, model=tiny_causal_b)
    async with app.run_test(size=(100, 30)) as pilot:
        picker = app.screen
        assert isinstance(picker, ModelPickerScreen)
        assert option_ids(picker)[0] == "default"
        assert "org/" not in str(option_ids(picker))  # no cache folder: nothing from the hub cache
        shown: list[str] = []
        status = picker._status
        picker._status = lambda text, error=False: (shown.append(text), status(text, error))
        picker.query_one(Input).value = tiny_causal
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.dismissed)
        assert app.dismissed == [tiny_causal] and isinstance(app.screen, ChatScreen)
        # the engine's progress lines, sent from its loading thread, reached the status line
        assert shown[0] == f"loading {tiny_causal} …" and f"loading {tiny_causal} … moving to cpu" in shown
        assert [type(m) for m in app.received] == [ModelLoaded, ModelSelected]
        assert app.received[0].info.kind == "causal" and app.received[1].name == tiny_causal
        assert app.model_name == tiny_causal
        await wait_for(pilot, lambda: tiny_causal in str(app.screen.query_one("#chat-header").render()))
        assert tiny_causal in [m.name for m in engine.loaded_models()]


async def test_missing_path_shows_the_error_and_keeps_the_picker_open(host_app, engine, tmp_path, tiny_causal):
    app = picker_app(host_app, tmp_path / "no-cache", engine=engine, model=tiny_causal)
    async with app.run_test(size=(100, 30)) as pilot:
        picker = app.screen
        missing = str(tmp_path / "nope" / "model.gguf")
        picker.query_one(Input).value = missing
        await pilot.press("enter")
        status = picker.query_one("#picker-status")
        await wait_for(pilot, lambda: status.has_class("-error"))
        assert "not found" in str(status.render()) and missing in str(status.render())
        assert app.screen is picker and not app.dismissed and not app.received
        assert picker.query_one(Input).value == missing  # what was typed stays, to be fixed
        await pilot.press("escape")
        assert app.dismissed == [None] and isinstance(app.screen, ChatScreen)


async def test_lists_loaded_and_cached_models_and_loads_a_listed_one(host_app, engine, tmp_path, tiny_causal,
                                                                    tiny_causal_b):
    await engine.load(tiny_causal_b)
    cache = fake_hf_cache(tmp_path / "hub", "org/tiny-one", "org/tiny-two")
    assert cached_models(cache) == ["org/tiny-one", "org/tiny-two"]
    assert cached_models(tmp_path / "absent") == []
    app = picker_app(host_app, cache, engine=engine, model=tiny_causal_b)
    async with app.run_test(size=(100, 30)) as pilot:
        picker = app.screen
        await wait_for(pilot, lambda: "org/tiny-two" in option_ids(picker))
        assert option_ids(picker) == ["default", tiny_causal_b, "org/tiny-one", "org/tiny-two"]
        options = picker.query_one(OptionList)
        options.focus()
        options.highlighted = 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.dismissed)
        assert app.dismissed == [tiny_causal_b] and app.model_name == tiny_causal_b


def test_snapshot(snap, host_app, tmp_path):
    async def run_before(pilot) -> None:
        picker = pilot.app.screen
        await wait_for(pilot, lambda: "org/tiny-one" in option_ids(picker))
        picker.query_one(Input).value = "HuggingFaceTB/SmolLM2-135M-Instruct"
        await pilot.pause()

    app = picker_app(host_app, fake_hf_cache(tmp_path / "hub", "org/tiny-one"), engine=ScriptedEngine(),
                     model="scripted")
    assert snap(app, terminal_size=(80, 24), run_before=run_before)


async def test_settled_screenshots_do_not_depend_on_the_cursor_blink_phase(host_app, tmp_path):
    """Finding 12: the picker's snapshot failed on a busy machine, its cursor caught mid-blink."""
    app = picker_app(host_app, fake_hf_cache(tmp_path / "hub", "org/tiny-one"), engine=ScriptedEngine(),
                     model="scripted")
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.host_screen
        await wait_for(pilot, lambda: "org/tiny-one" in option_ids(picker))
        await settle(pilot)
        shot = app.export_screenshot()
        typed = picker.query_one(Input)
        assert typed.has_focus  # focus is decided by the screen, not by timing
        typed._cursor_visible = False  # where a blink would be half a second later
        await pilot.pause(0.6)  # a slow machine: the blink timer could fire in here
        await settle(pilot)
        assert app.export_screenshot() == shot
