"""The tab line at the top of every mode: the screens and the keys that reach them.

Each entry is clickable; the active mode is highlighted. It lives here rather than in the
footer so the footer keeps room for the screen's own keys (at 80 columns there is little).
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

TABS = (("f2", "chat", "Chat"), ("f3", "run", "Run"), ("f4", "compare", "Compare"), ("f5", "probe", "Probe"),
        ("^b", "runs", "Runs"))
EXTRA = (("f1", "help", "Help"), ("^l", "pick_model", "Model"), ("^p", "command_palette", "Palette"))


class ModeTabs(Static):
    """``F2 Chat  F3 Run  F4 Compare  F5 Probe  ^B Runs │ F1 Help ^L Model ^P Palette``, the active mode lit."""

    DEFAULT_CSS = """
    ModeTabs {
        dock: top;
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text-muted;
    }
    """

    active: reactive[str] = reactive("chat")

    def __init__(self, active: str) -> None:
        super().__init__(id="mode-tabs")
        self.set_reactive(ModeTabs.active, active)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, mode, label in TABS:
            style = "bold reverse" if mode == self.active else ""
            text.append(f" {key.upper()} ", style=f"bold {style}".strip())
            text.append(f"{label} ", style=style)
        text.append("│", style="dim")
        for key, _action, label in EXTRA:
            text.append(f" {key.upper()} ", style="bold")
            text.append(label)
        return text

    async def on_click(self, event) -> None:
        """A click on an entry does what its key does."""
        x, position = event.x, 0
        for key, mode, label in TABS:
            position += len(key) + len(label) + 3
            if x < position:
                await self.app.run_action(f"switch_mode('{mode}')")
                return
        position += 1
        for key, action, label in EXTRA:
            position += len(key) + len(label) + 2
            if x < position:
                await self.app.run_action(action)
                return
