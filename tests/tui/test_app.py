"""The whole app: modes, help, model picker, and what crosses screens (probe, promote)."""

from __future__ import annotations

from pathlib import Path

import pytest

from textual.widgets import Input

from engine import Engine, EngineConfig
from tests.tui.scripted_engine import ScriptedEngine
from tests.tui.pilot_helpers import wait_for
from tui.widgets.chat_input import ChatInput
from tui.app import LmscopeApp
from tui.screens.chat import ChatScreen
from tui.screens.compare import CompareScreen
from tui.screens.help import HelpScreen
from tui.screens.model_picker import ModelPickerScreen
from tui.screens.probe import ProbeScreen
from tui.screens.promote import PromoteCaseScreen
from tui.screens.run import RunScreen
from tui.screens.runs import RunsScreen
from tui.widgets.mode_tabs import ModeTabs
from tui.widgets.chat_turn import ChatTurn



async def test_function_keys_switch_between_the_four_screens(tiny_causal, store):
    app = LmscopeApp(model=tiny_causal, engine=Engine(EngineConfig(threads=1)), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        assert isinstance(app.screen, ChatScreen)
        for key, screen_type in [("f3", RunScreen), ("f4", CompareScreen), ("f5", ProbeScreen), ("f2", ChatScreen)]:
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, screen_type))
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        listed = " ".join(str(group) for group in app.screen.groups)
        assert "Load model" in listed and "Compare" in listed
        await pilot.press("escape")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPickerScreen))


async def test_a_chat_answer_opens_in_the_probe_and_can_become_a_case(tiny_causal, store):
    app = LmscopeApp(model=tiny_causal, engine=Engine(EngineConfig(threads=1)), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        chat = app.screen
        await wait_for(pilot, lambda: chat.model_info is not None)
        chat.query_one("#chat-input", ChatInput).value = "What is the capital of France?"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not chat.generating and len(chat.messages) == 2)
        await pilot.press("f7")
        await wait_for(pilot, lambda: isinstance(app.screen, ProbeScreen))
        assert app.screen.result is not None and app.screen.result.logprobs
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteCaseScreen))


async def test_a_model_that_cannot_load_is_reported_and_the_app_keeps_running(tmp_path, store):
    app = LmscopeApp(model=str(tmp_path / "missing.gguf"), engine=Engine(EngineConfig(threads=1)), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: any("not found" in n.message for n in app._notifications))
        assert app.is_running
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))


def test_app_snapshot(snap, store):
    app = LmscopeApp(model="default", engine=ScriptedEngine(), store=store)

    async def without_toasts(pilot) -> None:
        await wait_for(pilot, lambda: app.screen.model_info is not None)
        app.clear_notifications()

    assert snap(app, terminal_size=(80, 24), run_before=without_toasts)


async def test_the_app_runs_its_model_in_a_process_of_its_own_and_esc_still_stops_it(tiny_causal_long, store):
    from engine.process import ProcessBackend

    app = LmscopeApp(model=tiny_causal_long, store=store)  # the engine `lmscope` itself builds
    async with app.run_test(size=(100, 30)) as pilot:
        chat = app.screen
        await wait_for(pilot, lambda: chat.model_info is not None)
        assert isinstance(await app.engine.backend(tiny_causal_long), ProcessBackend)
        chat.sampling.apply({"max_new_tokens": 3000})
        chat.query_one("#chat-input", ChatInput).value = "Tell me a long story."
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(chat.query_one(ChatTurn).answer.source) > 20)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not chat.generating, steps=100)
        result = chat.last_result
        assert result.finish_reason == "cancelled" and 0 < result.usage.new_tokens < 3000
        assert chat.query_one(ChatTurn).answer.source == result.text
        assert store.chat_messages(chat.chat_id)[-1]["content"] == result.text


@pytest.mark.parametrize("width", [80, 160])
async def test_every_mode_names_the_screens_and_its_footer_fits(store, width):
    """Finding 10: footers cut off at 80 and 160 columns; F1-F5 never on screen."""
    from textual.widgets._footer import FooterKey

    app = LmscopeApp(model="default", engine=ScriptedEngine(), store=store)
    async with app.run_test(size=(width, 24)) as pilot:
        for key, screen_type in [("f3", RunScreen), ("f4", CompareScreen), ("f5", ProbeScreen),
                                 ("ctrl+b", RunsScreen), ("f2", ChatScreen)]:
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, screen_type) and app.screen.query(ModeTabs))
            await pilot.pause()
            tabs = app.screen.query_one(ModeTabs).render().plain
            for entry in ("F1 Help", "F2 Chat", "F3 Run", "F4 Compare", "F5 Probe", "^B Runs"):
                assert entry in tabs
            shown = [k for k in app.screen.query(FooterKey) if k.display]
            assert shown and all(k.region.right <= width for k in shown), \
                [(k.description, k.region.right) for k in shown]
            assert app.screen.query_one(ModeTabs).active == app.current_mode
        await pilot.click(ModeTabs, offset=(12, 0))  # "F3 Run"
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))


async def test_theme_and_sampling_defaults_are_kept_in_the_config_file(store, config_file):
    """Finding 11: the theme was not kept after a restart; sampling defaults were not either."""
    from engine.endpoints import load_endpoints

    config_file.write_text('# my servers\n[endpoints.big]\nurl = "http://gpu-box:8000/v1"\nmodel = "qwen"\n',
                           encoding="utf-8")
    app = LmscopeApp(model="default", engine=ScriptedEngine(), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query(ModeTabs))
        app.theme = "gruvbox"
        app.screen.sampling.apply({"temperature": "0.7", "max_new_tokens": "99"})
        await pilot.press("ctrl+q")
    text = config_file.read_text(encoding="utf-8")
    assert "# my servers" in text and load_endpoints(config_file)["big"].model == "qwen"  # the rest kept

    app = LmscopeApp(model="default", engine=ScriptedEngine(), store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query(ModeTabs))
        await pilot.pause()
        assert app.theme == "gruvbox"
        values = app.screen.sampling.values()
        assert (values["temperature"], values["max_new_tokens"]) == ("0.7", "99")


async def test_compare_panes_made_after_start_up_start_from_the_saved_sampling_defaults(store, config_file):
    """The saved sampling defaults reached only the panels present at a screen's first showing;
    compare panes are made when their models load, and started greedy with 256 tokens."""
    from tui.settings import Settings, save_settings

    save_settings(Settings(None, {"temperature": "0.7", "top_p": "0.9", "max_new_tokens": "99", "seed": ""}))
    app = LmscopeApp(model="default", engine=ScriptedEngine(), store=store)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query(ModeTabs))
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.query(ModeTabs))
        models = app.screen.query_one("#models", Input)
        models.value = "default, default"
        models.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.screen.panes) == 2)
        for pane in app.screen.panes:
            values = pane.sampling.values()
            assert (values["temperature"], values["top_p"], values["max_new_tokens"]) == ("0.7", "0.9", "99")


async def test_leaving_the_chat_before_its_first_frame_keeps_the_saved_sampling_defaults(store, config_file):
    """Switching mode saves the chat's sampling settings; pressed before the chat had shown the
    saved ones, it wrote the built-in values over them."""
    from tui.settings import Settings, load_settings, save_settings

    saved = {"temperature": "0.7", "top_p": "0.9", "max_new_tokens": "99", "seed": ""}
    save_settings(Settings(None, saved))
    app = LmscopeApp(model="default", engine=ScriptedEngine(), store=store)
    async with app.run_test(size=(120, 30)) as pilot:
        app.switch_mode("compare")  # at once, as a key pressed during start-up
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.press("ctrl+q")
    assert load_settings().sampling == saved


async def test_model_processes_write_their_log_where_the_readme_says(tiny_causal, store, isolated_cache):
    """Finding 11: the process log was not where the README says (logs/ under the cache dir)."""
    from engine.process import ProcessBackend, log_path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "`logs/model-processes.log` under the\nlmscope cache directory (`LMSCOPE_CACHE_DIR`)" in readme
    app = LmscopeApp(model=tiny_causal, store=store)  # models in processes of their own, as `lmscope`
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.model_info is not None)
        assert isinstance(await app.engine.backend(tiny_causal), ProcessBackend)
    assert log_path() == isolated_cache / "logs" / "model-processes.log" and log_path().is_file()
