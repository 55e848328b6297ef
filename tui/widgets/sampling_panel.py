"""The sampling settings panel: temperature, top-p, max new tokens and seed, validated live
(and, for a compare pane, its system prompt)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from engine import GenerationParams, InvalidRequestError

# (field, label, default text)
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("temperature", "temperature", "0"),
    ("top_p", "top-p", "1.0"),
    ("max_new_tokens", "max tokens", "256"),
    ("seed", "seed", ""),
)


def _parse(field: str, text: str) -> float | int | None:
    text = text.strip()
    if field == "seed" and not text:
        return None
    try:
        return int(text) if field in ("max_new_tokens", "seed") else float(text)
    except ValueError:
        kind = "an integer" if field in ("max_new_tokens", "seed") else "a number"
        raise InvalidRequestError(f"{field} must be {kind}, got {text!r}") from None


class SamplingPanel(Vertical):
    """Inputs for the decoding settings. :meth:`params` turns them into
    :class:`~engine.GenerationParams` or raises the engine's :class:`InvalidRequestError`;
    the panel also shows that message under the inputs as the user types. ``system``: add a
    system prompt field (compare panes; the chat screen edits its system prompt with F8)."""

    def __init__(self, *, system: bool = False, values: dict[str, Any] | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._with_system = system
        self._initial = {k: "" if v is None else str(v) for k, v in (values or {}).items()}

    def compose(self) -> ComposeResult:
        yield Static("sampling", classes="sampling-title")
        if self._with_system:
            with Horizontal(classes="sampling-row"):
                yield Label("system", classes="sampling-label")
                yield Input(self._initial.get("system", ""), placeholder="none", id="sampling-system",
                            classes="sampling-input")
        for field, label, default in FIELDS:
            with Horizontal(classes="sampling-row"):
                yield Label(label, classes="sampling-label")
                placeholder = "random" if field == "seed" else ""
                yield Input(self._initial.get(field, default), placeholder=placeholder, id=f"sampling-{field}",
                            classes="sampling-input")
        yield Static("", id="sampling-error", markup=False)

    def _input(self, field: str) -> Input:
        return self.query_one(f"#sampling-{field}", Input)

    def values(self) -> dict[str, str]:
        """The raw texts of the inputs, by field name (what the store keeps as settings)."""
        return {field: self._input(field).value for field, _, _ in FIELDS}

    def apply(self, values: dict[str, Any]) -> None:
        """Fill the inputs from a dict of field → value (e.g. settings restored from the store)."""
        if self._with_system and "system" in values:
            self._input("system").value = values["system"] or ""
        for field, _, _ in FIELDS:
            if field in values:
                value = values[field]
                self._input(field).value = "" if value is None else str(value)

    @property
    def system_prompt(self) -> str:
        """The system prompt typed (empty without a system field)."""
        return self._input("system").value.strip() if self._with_system else ""

    def fit_context(self, context_length: int | None) -> None:
        """Halve max new tokens when it leaves the prompt no room in ``context_length`` tokens
        (a setting that would fail every request)."""
        if not context_length:
            return
        try:
            current = self.params().max_new_tokens
        except InvalidRequestError:
            return
        if current >= context_length:
            self.apply({"max_new_tokens": context_length // 2})

    def params(self, **extra: Any) -> GenerationParams:
        """The settings as generation parameters (``extra`` adds fields such as ``logprobs``).

        Raises:
            InvalidRequestError: a field is not a number or is out of range (the engine's message).
        """
        parsed = {field: _parse(field, text) for field, text in self.values().items()}
        return GenerationParams(**parsed, **extra)

    def check(self) -> InvalidRequestError | None:
        """Validate, show the error (or clear it) and return it."""
        try:
            self.params()
        except InvalidRequestError as exc:
            self.query_one("#sampling-error", Static).update(exc.message)
            return exc
        self.query_one("#sampling-error", Static).update("")
        return None

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id != "sampling-system":
            self.check()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter in a settings field must not send the chat message.
        event.stop()
