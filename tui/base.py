"""What every lmscope screen can rely on: the app's engine, results store and current model.

Screens reach these as ``self.app.engine``, ``self.app.store`` and ``self.app.model_name``
(attributes down); they report back with the messages in :mod:`tui.messages` (messages up).
"""

from __future__ import annotations

import gc

from textual.app import App
from textual.reactive import reactive

from engine import Engine, EngineConfig
from scenarios.errors import describe_error
from scenarios.store import Store


class LmscopeAppBase(App):
    """Holds the shared engine, store and selected model; shows errors without crashing."""

    model_name: reactive[str] = reactive("default")

    def __init__(self, model: str = "default", *, engine: Engine | None = None, store: Store | None = None,
                 device: str | None = None, dtype: str | None = None, threads: int | None = None,
                 isolate: bool = True, backend: str | None = None) -> None:
        super().__init__()
        # Models in processes of their own by default: a decode loop sharing this interpreter
        # waits on the UI thread for the GIL (SmolLM2 streamed ~25% slower; engine.process).
        self.engine = engine or Engine(EngineConfig(threads=threads, device=device, dtype=dtype, isolate=isolate,
                                                          backend=backend))
        self.store = store or Store()
        self.set_reactive(LmscopeAppBase.model_name, model)

    @property
    def sampling_defaults(self) -> dict[str, str]:
        """Sampling panel values every new pane or chat starts from (none here; the app keeps
        the user's saved ones)."""
        return {}

    def show_error(self, error: Exception) -> None:
        """A notification with the error's message and hint (as the CLI prints them); the app keeps running."""
        message, hint = describe_error(error)
        self.notify(message + (f"\n{hint}" if hint else ""), title="error", severity="error", timeout=10)

    def on_mount(self) -> None:
        # Keep full garbage collections of the import-time heap (torch, transformers, Textual)
        # off the event loop; the engine does the same for each model it loads.
        gc.freeze()

    async def on_unmount(self) -> None:
        await self.engine.aclose()
