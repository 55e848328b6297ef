"""A labelled input naming a model, which shows the app's current model until the user types another.

The owner passes the app's model down (``field.app_model = name``); the field follows it only
while it still shows the previous app model or is empty, so a model the user typed is kept.
Enter in the field posts the usual :class:`textual.widgets.Input.Submitted`.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Input, Label


class ModelField(Horizontal):
    """``model [input]``: anything the model picker accepts (``default``, a folder, a .gguf file, a hub id).

    Args:
        app_model: the app's current model, shown at first.
        input_id: id of the inner :class:`~textual.widgets.Input` (for queries and ``@on`` selectors).
    """

    DEFAULT_CSS = """
    ModelField {
        height: auto;
    }
    ModelField > Label {
        width: auto;
        padding: 1 1 0 0;
        color: $text-muted;
    }
    ModelField > Input {
        width: 1fr;
    }
    """

    app_model: reactive[str] = reactive("")
    """The app's current model; the field follows it until the user types their own."""

    def __init__(self, app_model: str, *, input_id: str, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(ModelField.app_model, app_model)
        self._input_id = input_id

    def compose(self) -> ComposeResult:
        yield Label("model")
        yield Input(self.app_model, placeholder="default, a folder, a .gguf file or a hub id (empty: the app's model)",
                    id=self._input_id, tooltip="the model this tool uses; it need not be the chat's model")

    @property
    def model(self) -> str:
        """The model to use: what the field holds, or the app's model when it is empty."""
        return self.query_one(Input).value.strip() or self.app_model

    @property
    def follows_app(self) -> bool:
        """Whether the field shows the app's model (or nothing), so it will follow the next change."""
        return self.query_one(Input).value.strip() in ("", self.app_model)

    def watch_app_model(self, old: str, new: str) -> None:
        for field in self.query(Input):  # none before compose
            if field.value.strip() in ("", old):
                field.value = new
