"""Helpers shared by the pilot tests: the host app, waiting, and settling before a snapshot."""

from __future__ import annotations

from typing import Callable

from textual.screen import Screen
from textual.widgets import Input, TextArea

from tui.base import LmscopeAppBase
from tui.messages import CaseSaved, ModelLoaded, ModelSelected, ProbeRequested, PromoteRequested


async def wait_for(pilot, condition: Callable[[], object], steps: int = 1500) -> None:
    """Let the app run until ``condition()`` holds (polling every 20 ms, at most ``steps`` times)."""
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not reached")


class HostApp(LmscopeAppBase):
    """A bare app that shows the given screens (the last on top) and records what they report.

    ``screens`` are screen instances or zero-argument factories (a class). ``errors`` holds every
    error the app was asked to show, ``received`` every message that reached the app (model
    loaded or selected, probe or promote requested, case saved), ``dismissed`` what each pushed
    screen was dismissed with. Subclass it where a test needs the real app's reaction to a message.
    """

    def __init__(self, *screens: Screen | Callable[[], Screen], **kwargs) -> None:
        super().__init__(**kwargs)
        self._screens = screens
        self.pushed: list[Screen] = []
        self.errors: list[Exception] = []
        self.received: list[object] = []
        self.dismissed: list[object] = []

    def on_mount(self) -> None:
        super().on_mount()
        for screen in self._screens:
            screen = screen if isinstance(screen, Screen) else screen()
            self.pushed.append(screen)
            self.push_screen(screen, self.dismissed.append)

    @property
    def host_screen(self) -> Screen:
        """The screen the test put on top (the last given)."""
        return self.pushed[-1]

    def show_error(self, error: Exception) -> None:
        self.errors.append(error)
        super().show_error(error)

    def of_type(self, message_type: type) -> list:
        """The received messages of one type, oldest first."""
        return [m for m in self.received if isinstance(m, message_type)]

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.received.append(message)

    def on_model_selected(self, message: ModelSelected) -> None:
        self.received.append(message)
        self.model_name = message.name

    def on_promote_requested(self, message: PromoteRequested) -> None:
        self.received.append(message)

    def on_probe_requested(self, message: ProbeRequested) -> None:
        self.received.append(message)

    def on_case_saved(self, message: CaseSaved) -> None:
        self.received.append(message)


async def settle(pilot) -> None:
    """Make the screen deterministic before a screenshot, whatever the machine's load.

    Cursors stop blinking (shown steadily), animations are off and finished, pending refreshes
    and timers' callbacks have run, so a busy machine renders the same frame as an idle one.
    """
    app = pilot.app
    app.animation_level = "none"
    for screen in app.screen_stack:
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = False
            if isinstance(widget, (Input, TextArea)) and widget.has_focus:
                widget._cursor_visible = True
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
    await pilot.wait_for_animation()
    await pilot.pause()
