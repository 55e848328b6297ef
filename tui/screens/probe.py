"""Probing tools, one per tab: token surprisal with top-k alternatives, fill-mask, perplexity of
pasted text, and attention heatmaps.

Each tool is a widget of its own (:class:`~tui.widgets.probe_tool.ProbeTool`) with its own model
field: it shows the app's model until the user types another, so a BERT can fill masks while the
chat runs a causal LM. This screen only holds the tabs, passes the app's model down and maps its
keys to the active tool. A chat can open it on an answer it already has
(``ProbeScreen(result=...)``, pushed by the app on :class:`tui.messages.ProbeRequested`).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from engine import GenerationResult
from tui.widgets.attention_tool import AttentionTool
from tui.widgets.fill_mask_tool import FillMaskTool
from tui.widgets.perplexity_tool import PerplexityTool
from tui.widgets.probe_tool import ProbeTool
from tui.widgets.surprisal_tool import SurprisalTool

# Tab id → tool widget id.
TOOLS = {"surprisal": "surprisal-tool", "fill-mask": "mask-tool", "perplexity": "ppl-tool", "attention": "attn-tool"}


class ProbeScreen(Screen):
    """Surprisal, fill-mask, perplexity and attention, each a tool in a tab.

    Args:
        result: an answer to show at once in the surprisal tool (it needs ``logprobs``).
        max_new_tokens: length of the answers generated here.
        top_k: alternatives per token, and predictions per mask.
    """

    CSS_PATH = "probe.tcss"
    AUTO_FOCUS = "#surprisal-prompt"
    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop/back"),
        Binding("ctrl+r", "run_tool", "Run tool"),
        Binding("f7", "show_tab('attention')", "Attention"),
        Binding("f8", "show_tab('surprisal')", "Surprisal"),
        Binding("f9", "show_tab('fill-mask')", "Fill-mask"),
        Binding("f10", "show_tab('perplexity')", "Perplexity"),
    ]

    def __init__(self, result: GenerationResult | None = None, *, max_new_tokens: int = 64, top_k: int = 5,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._initial = result
        self.max_new_tokens = max_new_tokens
        self.top_k = top_k

    def compose(self) -> ComposeResult:
        model = self.app.model_name
        with TabbedContent(initial="surprisal", id="probe-tabs"):
            with TabPane("Surprisal", id="surprisal"):
                yield SurprisalTool(model, self._initial, max_new_tokens=self.max_new_tokens, top_k=self.top_k,
                                    id=TOOLS["surprisal"])
            with TabPane("Fill-mask", id="fill-mask"):
                yield FillMaskTool(model, top_k=self.top_k, id=TOOLS["fill-mask"])
            with TabPane("Perplexity", id="perplexity"):
                yield PerplexityTool(model, id=TOOLS["perplexity"])
            with TabPane("Attention", id="attention"):
                yield AttentionTool(model, id=TOOLS["attention"])
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "model_name", self._model_changed)

    def _model_changed(self, name: str) -> None:
        for tool in self.query(ProbeTool):
            tool.follow_app_model(name)

    def tool(self, tab: str | None = None) -> ProbeTool:
        """The tool in ``tab`` (default: the active tab)."""
        tab = tab or self.query_one(TabbedContent).active
        return self.query_one(f"#{TOOLS[tab]}", ProbeTool)

    @property
    def result(self) -> GenerationResult | None:
        """The answer the surprisal tool shows."""
        return self.query_one(SurprisalTool).result if self.is_mounted else self._initial

    # ---------------------------------------------------------------- actions
    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one(f"#{self.tool(tab).focus_id}").focus()

    def action_run_tool(self) -> None:
        self.tool().run()

    def action_stop_or_close(self) -> None:
        if any(tool.stop() for tool in self.query(ProbeTool)):
            return
        if len(self.app.screen_stack) > 1 and self.app.screen is self:
            self.dismiss()
