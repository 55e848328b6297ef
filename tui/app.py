"""The lmscope terminal app: chat, scenario runs, side-by-side comparison and probing.

Four modes (F2–F5) share one engine, one results store and the current model (F1: help,
Ctrl+L: load a model, Ctrl+P: command palette). Screens talk to the app with the messages in
:mod:`tui.messages`; the app owns what spans screens (model changes, probing an answer,
promoting a chat turn to a scenario case).
"""

from __future__ import annotations

from functools import partial

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.widgets import Input

from tui.base import LmscopeAppBase
from tui.messages import CaseSaved, ModelSelected, ProbeRequested, PromoteRequested
from tui.screens.chat import ChatScreen
from tui.screens.compare import CompareScreen
from tui.screens.help import HelpScreen
from tui.screens.model_picker import ModelPickerScreen
from tui.screens.probe import ProbeScreen
from tui.screens.promote import PromoteCaseScreen
from tui.screens.run import RunScreen

SCREENS = {"chat": "Chat", "run": "Scenario run", "compare": "Compare models", "probe": "Probe tokens"}


class LmscopeCommands(Provider):
    """Command palette entries for lmscope's screens and tools."""

    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        commands = [(f"Open {label}", partial(app.switch_mode, mode), f"Switch to the {label.lower()} screen")
                    for mode, label in SCREENS.items()]
        commands += [("Pick model", app.action_pick_model, "Load another model and make it current"),
                     ("Help: key bindings", app.action_help, "Every key binding of this screen and the app")]
        return commands

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield Hit(1.0, name, callback, help=help_text)


class LmscopeApp(LmscopeAppBase):
    """lmscope: chat with, score and compare language models."""

    TITLE = "lmscope"
    CSS_PATH = "app.tcss"
    MODES = {"chat": ChatScreen, "run": RunScreen, "compare": CompareScreen, "probe": ProbeScreen}
    DEFAULT_MODE = "chat"
    COMMANDS = App.COMMANDS | {LmscopeCommands}
    BINDINGS = [
        Binding("f1", "help", "Help", priority=True),
        Binding("f2", "switch_mode('chat')", "Chat", priority=True),
        Binding("f3", "switch_mode('run')", "Run", priority=True),
        Binding("f4", "switch_mode('compare')", "Compare", priority=True),
        Binding("f5", "switch_mode('probe')", "Probe", priority=True),
        Binding("ctrl+l", "pick_model", "Load model"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    _last_case_path: str | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self.load_current_model()

    def watch_model_name(self, name: str) -> None:
        self.sub_title = name

    @work(exclusive=True, group="load-model", exit_on_error=False)
    async def load_current_model(self) -> None:
        name = self.model_name
        self.notify(f"loading {name} …", timeout=3)
        try:
            info = await self.engine.load(name)
        except Exception as exc:  # noqa: BLE001 - shown, and the app keeps running
            self.show_error(exc)
            return
        self.notify(f"{info.name}: {info.kind}, {info.num_parameters / 1e6:.0f}M parameters on {info.device} {info.dtype}",
                    timeout=4)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_pick_model(self) -> None:
        self.push_screen(ModelPickerScreen(), self._model_picked)

    def _model_picked(self, name: str | None) -> None:
        if name:
            self.model_name = name

    def on_model_selected(self, message: ModelSelected) -> None:
        self.model_name = message.name

    def on_probe_requested(self, message: ProbeRequested) -> None:
        self.push_screen(ProbeScreen(result=message.result))

    def on_promote_requested(self, message: PromoteRequested) -> None:
        self.push_screen(PromoteCaseScreen(message.prompt, message.answer, message.model), self._case_saved)

    def on_case_saved(self, message: CaseSaved) -> None:
        self._last_case_path = message.scenario_path

    def _case_saved(self, outcome: str | None) -> None:
        """After the promote dialog: ``rerun:ID`` runs the cases' scenario on every loaded model."""
        if not outcome:
            return
        self.notify(f"saved case {outcome.removeprefix('rerun:')}")
        if outcome.startswith("rerun:") and self._last_case_path:
            self.call_later(self._rerun_cases, self._last_case_path)

    async def _rerun_cases(self, scenario_path: str) -> None:
        """Run the saved cases' scenario on every loaded model, in the run screen."""
        await self.switch_mode("run")
        models = [m.name for m in self.engine.loaded_models()] or [self.model_name]
        self.screen.query_one("#path", Input).value = scenario_path
        self.screen.query_one("#models", Input).value = ", ".join(models)
        self.screen.action_start_run()
