"""The help screen lists the bindings of the screen below it (focused widget, screen, app)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tests.tui.pilot_helpers import HostApp
from tests.tui.scripted_engine import ScriptedEngine
from tui.screens.help import HelpScreen
from tui.screens.probe import ProbeScreen
from tui.widgets.token_view import TokenView


class HostScreen(Screen):
    BINDINGS = [
        Binding("ctrl+x", "frobnicate", "Frobnicate the answer"),
        Binding("f9", "twiddle", "Twiddle"),
        Binding("f10", "twiddle", "Twiddle"),
    ]

    def compose(self) -> ComposeResult:
        yield Input(id="text")
        yield TokenView(id="tokens")
        yield Footer()


class HelpHost(HostApp):
    """The host app with F1 opening the help, as in the real app."""

    BINDINGS = [Binding("f1", "help", "Help")]

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def _help_text(app) -> str:
    return "\n".join(str(w.render()) for w in app.screen.query(Static))


async def test_help_lists_the_bindings_of_the_host_screen_and_the_app(host_app, engine):
    app = host_app(HostScreen, engine=engine, app_class=HelpHost)
    async with app.run_test(size=(100, 40)) as pilot:
        app.screen.query_one(TokenView).focus()
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        titles = [g.title for g in app.screen.groups]
        assert titles[:3] == ["HostScreen", "App", "TokenView (focused)"]
        text = _help_text(app)
        for expected in ("Frobnicate the answer", "Next token", "Previous token", "Help", "Quit"):
            assert expected in text
        assert "f9, f10" in text and "Twiddle" in text  # one row per action, its keys joined
        assert "^x" in text or "ctrl+x" in text
        screen_rows = dict((d, k) for k, d in next(g for g in app.screen.groups if g.title == "HostScreen").rows)
        assert {"Frobnicate the answer", "Twiddle", "Focus Next"} <= set(screen_rows)  # Screen's own too
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)


async def test_help_lists_the_screen_and_app_keys_before_generic_text_input_keys(host_app, engine):
    """Finding 10: F1 listed ~30 generic text-input keys before the screen's own."""
    app = host_app(HostScreen, engine=engine, app_class=HelpHost)
    async with app.run_test(size=(100, 40)) as pilot:
        app.screen.query_one(Input).focus()
        await pilot.press("f1")
        await pilot.pause()
        titles = [g.title for g in app.screen.groups]
        assert titles[:2] == ["HostScreen", "App"]
        assert titles[-1] == "Input (focused, generic keys)"
        assert titles.index("TokenView") < titles.index("Input (focused, generic keys)")


async def test_help_over_the_probe_screen_lists_its_tools(host_app, engine):
    app = host_app(ProbeScreen, engine=engine, app_class=HelpHost)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        text = _help_text(app)
        for expected in ("Run tool", "Surprisal", "Fill-mask", "Perplexity", "Stop/back", "Next token"):
            assert expected in text


def test_help_screen_snapshot(snap, host_app):
    app = host_app(HostScreen, engine=ScriptedEngine(), app_class=HelpHost)

    async def open_help(pilot) -> None:
        app.screen.query_one(TokenView).focus()
        await pilot.press("f1")
        await pilot.pause()

    assert snap(app, terminal_size=(80, 24), run_before=open_help)
