"""The model picker: the embedded default, loaded models, the Hugging Face cache, or a typed spec.

Loading runs in a worker; the engine reports progress from its loading thread, which reaches
the screen through ``app.call_from_thread``. The picker stays open (and usable) while a model
loads, shows load errors in place, and closes with the model's name once it is ready.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from engine import LmscopeError
from tui.messages import ModelLoaded, ModelSelected

DEFAULT_LABEL = "default — SmolLM2-135M-Instruct (embedded)"


def cached_models(cache_dir: str | Path | None = None) -> list[str]:
    """Model repository ids in the Hugging Face cache, sorted; empty when there is no cache."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(cache_dir)
    except Exception:  # no cache folder, unreadable cache, hub library missing: nothing to list
        return []
    return sorted(repo.repo_id for repo in info.repos if repo.repo_type == "model")


class ModelPickerScreen(ModalScreen[str | None]):
    """Pick and load a model; dismisses with its name (``None`` if cancelled).

    On success it also posts :class:`~tui.messages.ModelLoaded` and
    :class:`~tui.messages.ModelSelected` to the app (which then sets ``model_name``).
    ``hf_cache_dir`` overrides the Hugging Face cache folder scanned (default: the hub's own).
    """

    CSS_PATH = "model_picker.tcss"
    BINDINGS = [Binding("escape", "cancel", "Close picker")]

    def __init__(self, hf_cache_dir: str | Path | None = None) -> None:
        super().__init__()
        self.hf_cache_dir = hf_cache_dir
        self.loading: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static("Choose a model — Enter loads, Esc closes", id="picker-title")
            yield OptionList(id="picker-models")
            yield Input(placeholder="hub id, folder or .gguf path", id="picker-input")
            yield Static("", id="picker-status", markup=False)

    def on_mount(self) -> None:
        options = self.query_one("#picker-models", OptionList)
        options.add_option(Option(DEFAULT_LABEL, id="default"))
        loaded = [m.name for m in self.app.engine.loaded_models() if m.name != "default"]
        if loaded:
            options.add_option(None)
            options.add_options(Option(f"{name}  (loaded)", id=name) for name in loaded)
        self.query_one("#picker-input", Input).focus()
        self._scan_cache(set(loaded) | {"default"})

    @work(exclusive=True, group="picker-scan", exit_on_error=False)
    async def _scan_cache(self, shown: set[str]) -> None:
        """List the Hugging Face cache (a disk scan, so off the event loop)."""
        repos = await asyncio.to_thread(cached_models, self.hf_cache_dir)
        repos = [r for r in repos if r not in shown]
        if repos:
            options = self.query_one("#picker-models", OptionList)
            options.add_option(None)
            options.add_options(Option(f"{repo}  (cache)", id=repo) for repo in repos)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.load(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.load(event.value.strip())

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#picker-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    def _progress(self, line: str) -> None:
        """Called by the engine from its loading thread."""
        try:
            self.app.call_from_thread(self._status, f"loading {self.loading} … {line}")
        except Exception:  # noqa: BLE001 - progress is cosmetic and must never fail a load
            pass  # (e.g. the picker closed meanwhile, or the app is shutting down)

    def load(self, spec: str) -> None:
        """Load ``spec`` in the background (a new choice supersedes a load in progress)."""
        self.loading = spec
        self._status(f"loading {spec} …")
        self._load(spec)

    @work(exclusive=True, group="picker-load", exit_on_error=False)
    async def _load(self, spec: str) -> None:
        try:
            info = await self.app.engine.load(spec, progress=self._progress)
        except LmscopeError as exc:
            self.loading = None
            self._status(exc.message + (f"\n{exc.hint}" if exc.hint else ""), error=True)
            return
        self.loading = None
        self.app.post_message(ModelLoaded(info))
        self.app.post_message(ModelSelected(info.name))
        self.dismiss(info.name)

    def action_cancel(self) -> None:
        self.dismiss(None)
