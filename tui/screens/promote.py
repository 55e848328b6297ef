"""A modal that saves a chat turn as a scenario case: the prompt and an edited gold answer.

The case keeps the chat's system prompt and earlier turns, so rerunning it asks the model what
the chat asked. Dismissed with ``None`` (cancelled, nothing written) or a :class:`SavedCase`:
the file just written, the case id, and whether the user asked to rerun it (``Save and rerun``:
the app then runs that very file on the chat's model, the first time as every time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from scenarios.errors import ScenarioError
from scenarios.user_cases import append_case, default_cases_path
from tui.messages import CaseSaved



@dataclass(frozen=True)
class SavedCase:
    """What the dialog saved: ``case_id`` in ``scenario_path``; ``rerun``: run it now on ``model``."""

    scenario_path: str
    case_id: str
    model: str
    rerun: bool = False


class PromoteCaseScreen(ModalScreen["SavedCase | None"]):
    """Prompt (read-only), gold answer (editable, prefilled with the model's answer), target file.

    Args:
        prompt: the user's message of the chat turn.
        answer: the model's answer, the starting point of the gold answer.
        model: the model that answered (shown for context; a rerun runs on it).
        system: the chat's system prompt; history: its earlier turns (``ChatMessage``), oldest first.
    """

    CSS_PATH = "probe.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save case"),
        Binding("ctrl+r", "save(True)", "Save and rerun"),
    ]

    def __init__(self, prompt: str, answer: str, model: str, *, system: str = "", history: tuple = (),
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.prompt = prompt
        self.answer = answer
        self.model = model
        self.system = system
        self.history = tuple(history)
        self.saved_path: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="promote-dialog"):
            yield Static(Content.assemble(("Save as a scenario case", "bold"), ("   answer of ", "dim"), self.model),
                         id="promote-title")
            context = [f"system prompt: {self.system.splitlines()[0][:50]}"] if self.system else []
            if self.history:
                context.append(f"{sum(m.role == 'user' for m in self.history)} earlier turn(s)")
            yield Label("Prompt" + (f" (kept with it: {'; '.join(context)})" if context else ""),
                        classes="promote-label", markup=False)
            with VerticalScroll(id="promote-prompt"):
                yield Static(Content(self.prompt))
            yield Label("Gold answer (edit it into the answer you want)", classes="promote-label")
            yield TextArea(self.answer, id="promote-answer", soft_wrap=True)
            yield Label("Scenario file (created if missing)", classes="promote-label")
            yield Input(str(default_cases_path(getattr(getattr(self.app, "store", None), "path", None))),
                        id="promote-path")
            yield Static("", id="promote-error")
            with Horizontal(id="promote-buttons"):
                yield Button("Save", id="promote-save", variant="primary", compact=True)
                yield Button("Save and rerun", id="promote-rerun", compact=True)
                yield Button("Cancel", id="promote-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#promote-answer", TextArea).focus()

    @on(Button.Pressed, "#promote-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#promote-rerun")
    def _rerun_pressed(self) -> None:
        self.action_save(True)

    @on(Button.Pressed, "#promote-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self, rerun: bool = False) -> None:
        """Append the case; on error say why and stay open, so nothing typed is lost."""
        answer = self.query_one("#promote-answer", TextArea).text
        raw_path = self.query_one("#promote-path", Input).value.strip()
        error = self.query_one("#promote-error", Static)
        if not raw_path:
            error.update(Content.styled("Name a scenario file (.yaml).", "$error"))
            return
        path = Path(raw_path).expanduser()
        try:
            case_id = append_case(path, self.prompt, answer, system=self.system,
                                  history=[(m.role, m.content) for m in self.history])
        except (ScenarioError, OSError) as exc:
            error.update(Content.styled(str(exc), "$error"))
            self.app.show_error(exc)
            return
        self.saved_path = path
        # Posted to the app directly: this screen is gone once dismissed.
        self.app.post_message(CaseSaved(str(path), case_id))
        self.dismiss(SavedCase(str(path), case_id, self.model, rerun))
