"""The lmscope terminal app: chat, scenario runs, side-by-side comparison and probing.

Four modes (F2–F5) and the runs browser (Ctrl+B) share one engine, one results store and the
current model (F1: help, Ctrl+L: load a model, Ctrl+P: command palette). A tab line at the top
of every mode names these keys, so the footer keeps room for the screen's own. Screens talk to the app with the messages in
:mod:`tui.messages`; the app owns what spans screens (model changes, probing an answer,
promoting a chat turn to a scenario case).
"""

from __future__ import annotations

from functools import partial

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.widgets import Footer, Input

from tui.base import LmscopeAppBase
from tui.formatting import format_parameters
from tui.messages import CaseSaved, ModelSelected, ProbeRequested, PromoteRequested, RunRequested
from tui.screens.chat import ChatScreen
from tui.screens.compare import CompareScreen
from tui.screens.help import HelpScreen
from tui.screens.model_picker import ModelPickerScreen
from tui.screens.probe import ProbeScreen
from tui.screens.promote import PromoteCaseScreen, SavedCase
from tui.screens.run import RunScreen
from tui.screens.runs import RunsScreen
from tui.settings import Settings, load_settings, save_settings
from tui.widgets.mode_tabs import ModeTabs
from tui.widgets.sampling_panel import SamplingPanel

SCREENS = {"chat": "Chat", "run": "Scenario run", "compare": "Compare models", "probe": "Probe tokens",
           "runs": "Runs browser"}


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
    MODES = {"chat": ChatScreen, "run": RunScreen, "compare": CompareScreen, "probe": ProbeScreen,
             "runs": RunsScreen}
    DEFAULT_MODE = "chat"
    COMMANDS = App.COMMANDS | {LmscopeCommands}
    # Shown in the tab line at the top (ModeTabs), not in the footer: it keeps the screen's keys.
    BINDINGS = [
        Binding("f1", "help", "Help", priority=True, show=False),
        Binding("f2", "switch_mode('chat')", "Chat", priority=True, show=False),
        Binding("f3", "switch_mode('run')", "Run", priority=True, show=False),
        Binding("f4", "switch_mode('compare')", "Compare", priority=True, show=False),
        Binding("f5", "switch_mode('probe')", "Probe", priority=True, show=False),
        Binding("ctrl+b", "switch_mode('runs')", "Runs", priority=True, show=False),
        Binding("ctrl+l", "pick_model", "Load model", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
    ]

    _last_case_path: str | None = None
    _settings: Settings | None = None  # None until read: changes before then are not saved

    def on_mount(self) -> None:
        super().on_mount()
        try:
            settings = load_settings()
        except Exception as exc:  # noqa: BLE001 - a broken config file must not stop the app
            self.show_error(exc)
            settings = Settings()
        if settings.theme in self.available_themes:
            self.theme = settings.theme
        self._settings = settings
        self.call_after_refresh(self._show_tabs)
        self.load_current_model()

    def watch_theme(self, theme: str) -> None:
        """Keep the theme picked (Ctrl+P, "theme") for the next start."""
        if self._settings is not None and theme != self._settings.theme:
            self._settings.theme = theme
            self._save_settings()

    def _save_settings(self) -> None:
        try:
            save_settings(self._settings)
        except Exception as exc:  # noqa: BLE001 - shown; the app keeps running
            self.show_error(exc)

    @property
    def sampling_defaults(self) -> dict[str, str]:
        """The sampling settings saved from the chat (config file), for panels made later too."""
        return dict(self._settings.sampling) if self._settings is not None else {}

    def _chat_sampling(self) -> SamplingPanel | None:
        """The chat's sampling panel, once it shows the saved defaults (its tab line is mounted
        with them): before that its values are the built-in ones, not the user's choice."""
        try:
            screen = self.get_screen_stack("chat")[0]
            shown = screen.is_mounted and screen.query(ModeTabs)
            return screen.query_one(SamplingPanel) if shown else None
        except Exception:  # noqa: BLE001 - the chat screen was never shown, or is gone
            return None

    def remember_sampling(self) -> None:
        """Keep the chat's sampling settings as the defaults of the next start (when changed)."""
        panel = self._chat_sampling()
        if panel is None or self._settings is None:
            return
        values = panel.values()
        if values != self._settings.sampling and panel.check() is None:
            self._settings.sampling = values
            self._save_settings()

    async def action_quit(self) -> None:
        self.remember_sampling()
        await super().action_quit()

    def switch_mode(self, mode: str):
        if self.current_mode == "chat":
            self.remember_sampling()
        done = super().switch_mode(mode)
        self.call_after_refresh(self._show_tabs)
        return done

    def _show_tabs(self) -> None:
        """Put the tab line on the current mode's screen (once) and mark the active mode."""
        screen = self.screen
        if self.current_mode not in self.MODES or screen is not self.get_screen_stack(self.current_mode)[-1]:
            return
        for footer in screen.query(Footer):
            footer.compact = True  # a space less per key: the screen's keys fit 80 columns
        tabs = screen.query(ModeTabs)
        if not tabs:  # the mode's first showing: restore the saved sampling defaults too
            screen.mount(ModeTabs(self.current_mode))
            if self.sampling_defaults:
                for panel in screen.query(SamplingPanel):
                    panel.apply(self.sampling_defaults)
        else:
            tabs.first().active = self.current_mode

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
        self.notify(f"{info.name}: {info.kind}, {format_parameters(info.num_parameters)} parameters on {info.device} "
                    f"{info.dtype}", timeout=4)

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
        self.push_screen(PromoteCaseScreen(message.prompt, message.answer, message.model, system=message.system,
                                           history=message.history), self._case_saved)

    async def on_run_requested(self, message: RunRequested) -> None:
        """The runs browser asked to open, resume or rerun a stored run: the run screen does it."""
        await self.switch_mode("run")
        screen = self.screen
        assert isinstance(screen, RunScreen)
        if message.action == "open":
            screen.open_run(message.run_id)
        elif message.action == "resume":
            screen.resume(message.run_id)
        elif message.action == "rerun":
            try:
                screen.rerun(message.run_id)
            except Exception as exc:  # noqa: BLE001 - e.g. the scenario file is gone
                self.show_error(exc)

    def on_case_saved(self, message: CaseSaved) -> None:
        self._last_case_path = message.scenario_path

    def _case_saved(self, saved: SavedCase | None) -> None:
        """After the promote dialog: a rerun runs the file just saved on the chat's model."""
        if saved is None:
            return
        self.notify(f"saved case {saved.case_id} in {saved.scenario_path}")
        if saved.rerun:
            self.call_later(self._rerun_cases, saved.scenario_path, saved.model)

    async def _rerun_cases(self, scenario_path: str, model: str) -> None:
        """Run the saved cases' scenario on ``model`` (the chat's), in the run screen."""
        await self.switch_mode("run")
        self.screen.query_one("#path", Input).value = scenario_path
        self.screen.query_one("#models", Input).value = model
        self.screen.action_start_run()
