"""The help screen lists the bindings of the screen below it (focused widget, screen, app)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from scenarios.store import Store
from tests.tui.scripted_engine import ScriptedEngine
from tui.base import LmscopeAppBase
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


class Host(LmscopeAppBase):
    BINDINGS = [Binding("f1", "help", "Help")]

    def __init__(self, host_screen=HostScreen, **kwargs) -> None:
        super().__init__(**kwargs)
        self._host_screen = host_screen

    def on_mount(self) -> None:
        self.push_screen(self._host_screen())

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def _help_text(app) -> str:
    return "\n".join(str(w.render()) for w in app.screen.query(Static))


async def test_help_lists_the_bindings_of_the_host_screen_and_the_app(engine, tmp_path):
    app = Host(engine=engine, store=Store(tmp_path / "r.sqlite"))
    async with app.run_test(size=(100, 40)) as pilot:
        app.screen.query_one(TokenView).focus()
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        titles = [g.title for g in app.screen.groups]
        assert titles[0] == "TokenView (focused)" and "HostScreen" in titles and titles[-1] == "App"
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


async def test_help_over_the_probe_screen_lists_its_tools(engine, tmp_path):
    app = Host(ProbeScreen, engine=engine, store=Store(tmp_path / "r.sqlite"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        text = _help_text(app)
        for expected in ("Run tool", "Surprisal", "Fill-mask", "Perplexity", "Stop / back", "Next token"):
            assert expected in text


def test_help_screen_snapshot(snap_compare, tmp_path):
    app = Host(engine=ScriptedEngine(), store=Store(tmp_path / "r.sqlite"))

    async def open_help(pilot) -> None:
        app.screen.query_one(TokenView).focus()
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_help)
