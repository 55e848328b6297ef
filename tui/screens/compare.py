"""Compare 2–4 models: a multi-turn chat streamed to all side by side, or a finished scenario run.

**Chat** mode sends each message to every model at once. Each :class:`ComparePane` keeps its own
conversation (the user's messages and that model's own answers) and sends the next message with
it, so every model continues its own thread, as in side-by-side arenas. The panes show their
transcripts; the latest answer streams with its own stats, scored live against an optional
reference answer. Esc stops them all (partial answers stay in the conversation); Ctrl+N starts a
new comparison. **Scenario** mode shows a finished run's per-model corpus scores side by side, the
paired-significance verdict per metric for each pair of models, and the examples where the
pair's outputs differ, sortable by score difference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static, TabbedContent, TabPane

from engine import GenerationParams, LmscopeError
from scenarios.comparison import LABELS, MAX_MODELS, MIN_MODELS, RunComparison, compare_run, verdict_text
from scenarios.errors import StoreError
from scenarios.rescoring import model_pairs
from tui.widgets.chat_dialogs import ChatListDialog
from tui.widgets.chat_input import ChatInput
from tui.widgets.compare_pane import ComparePane, short_name

MIN_PANE_WIDTH = 45  # narrower than two of these side by side: the panes stack


# ----------------------------------------------------------------------------- helpers
def parse_model_specs(text: str) -> list[str]:
    """Comma-separated model specs, stripped, empty ones dropped (order kept). A model may come
    twice: each pane is (model, settings), so ``default, default`` compares two settings."""
    return [part.strip() for part in text.split(",") if part.strip()]


def sampling_settings(params: GenerationParams) -> dict[str, str]:
    """A sampling panel's values for ``params`` (each pane starts from the screen's settings)."""
    return {"temperature": f"{params.temperature:g}", "top_p": f"{params.top_p:g}",
            "max_new_tokens": str(params.max_new_tokens), "seed": "" if params.seed is None else str(params.seed)}


def _nan_low(value: float) -> float:
    """Sort key that puts missing (NaN) scores last in a descending sort."""
    return -math.inf if math.isnan(value) else value


def _one_line(text: str) -> Text:
    return Text(" ".join(text.split()) or "∅", no_wrap=True, overflow="ellipsis")


# ----------------------------------------------------------------------------- screen
class CompareScreen(Screen):
    """Side-by-side comparison of 2–4 models, live on a prompt or on a finished scenario run.

    ``models``: comma-separated specs to load (default: the app's current model); a spec may
    come twice, each pane then gets its own settings (F9: sampling and system prompt per pane);
    ``run_id``: a run to open in scenario mode (default: the latest finished run with two or
    more models, loaded when the scenario tab opens); ``params``: every pane's starting decoding
    settings in chat mode; ``mode``: the tab shown first, ``"chat"`` or ``"scenario"``.
    """

    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding("escape", "stop_all", "Stop all"),
        Binding("ctrl+n", "new_comparison", "New"),
        Binding("f9", "toggle_sampling", "Settings"),
        Binding("ctrl+o", "open_comparison", "Open"),
        Binding("ctrl+t", "toggle_mode", "Chat/scenario"),
        Binding("s", "sort_diffs", "Sort by Δ"),
        Binding("m", "next_metric", "Next metric"),
        Binding("p", "next_pair", "Next pair"),
    ]

    def __init__(self, models: str | None = None, *, run_id: str | None = None,
                 params: GenerationParams | None = None, mode: str = "chat") -> None:
        super().__init__()
        self._initial_models = models
        self._initial_run = run_id
        self.params = params or GenerationParams(max_new_tokens=256)
        self._mode = mode
        self.comparison: RunComparison | None = None
        self._pair = 0
        self._metric = 0
        self._sort_reverse = True
        self._run_requested = False
        self.comparison_id = uuid.uuid4().hex[:12]  # the stored comparison the panes' chats belong to

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="chat-tab" if self._mode == "chat" else "scenario-tab", id="compare-tabs"):
            with TabPane("Chat", id="chat-tab"):
                with Horizontal(classes="field"):
                    yield Label("Models", classes="field-label")
                    yield Input(self._initial_models if self._initial_models is not None else self.app.model_name,
                                placeholder="2–4 models, comma-separated (one twice: two settings); Enter loads",
                                id="models", compact=True)
                with Horizontal(classes="field"):
                    yield Label("Reference", classes="field-label")
                    yield Input(placeholder="optional reference answer, scored live (chrF, ROUGE-L)",
                                id="reference", compact=True)
                yield Grid(id="panes", classes="-cols-1")
                yield Static("", id="chat-status", markup=False)
                yield ChatInput(placeholder="Message for every model · Enter sends · Shift+Enter new line · Esc stops",
                                id="prompt")
            with TabPane("Scenario", id="scenario-tab"):
                with Horizontal(classes="field"):
                    yield Label("Run", classes="field-label")
                    yield Input(self._initial_run or "", placeholder="run id (empty: latest run with 2+ models); Enter",
                                id="run-id", compact=True)
                yield DataTable(id="scores", cursor_type="none", zebra_stripes=True)
                yield Static("", id="verdicts", markup=False)
                yield Static("", id="diff-title", markup=False)
                yield DataTable(id="diffs", cursor_type="row", zebra_stripes=True)
                yield Static("", id="diff-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        specs = parse_model_specs(self.query_one("#models", Input).value)
        if MIN_MODELS <= len(specs) <= MAX_MODELS:
            self.load_models(specs)
        else:
            self._chat_status(f"type {MIN_MODELS}–{MAX_MODELS} models separated by commas (the same one twice compares "
                              "two settings) and press Enter")
        if self._mode == "scenario":
            self._request_run()

    def on_resize(self) -> None:
        self._layout_panes()

    # ----------------------------------------------------------------------------- chat mode
    @property
    def panes(self) -> list[ComparePane]:
        """The model panes, in the order the models were typed."""
        return list(self.query(ComparePane))

    def _chat_status(self, text: str) -> None:
        self.query_one("#chat-status", Static).update(text)

    def _layout_panes(self) -> None:
        """Side by side when each pane gets MIN_PANE_WIDTH columns, else stacked."""
        grid = self.query_one("#panes", Grid)
        n = max(1, len(self.panes))
        columns = max(1, min(n, self.size.width // MIN_PANE_WIDTH))
        grid.set_classes(f"-cols-{columns}")

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_models(self, specs: list[str], stored: list | None = None) -> None:
        """Load ``specs`` concurrently and put one pane per entry on screen (a model named twice
        gets two panes); ``stored``: the panes' stored chats to reopen, in the same order."""
        if not MIN_MODELS <= len(specs) <= MAX_MODELS:
            self.app.show_error(LmscopeError(
                f"choose {MIN_MODELS} to {MAX_MODELS} models, got {len(specs)}",
                hint="separate models with commas; name one model twice to compare two settings of it"))
            return
        self.action_stop_all()
        unique = list(dict.fromkeys(specs))
        self._chat_status(f"loading {len(unique)} model(s) …")
        outcomes = await asyncio.gather(*(self.app.engine.load(s) for s in unique), return_exceptions=True)
        infos = dict(zip(unique, outcomes))
        grid = self.query_one("#panes", Grid)
        await grid.remove_children()
        if stored is None:
            self.comparison_id = uuid.uuid4().hex[:12]
        loaded = []
        for index, spec in enumerate(specs):
            outcome = infos[spec]
            if isinstance(outcome, Exception):
                if spec in unique:
                    self.app.show_error(outcome)
                    unique.remove(spec)  # one error per model, however many panes it had
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                loaded.append((index, spec, outcome))
        defaults = sampling_settings(self.params) | self.app.sampling_defaults  # the user's saved ones win
        panes = []
        for k, (index, spec, info) in enumerate(loaded):
            chat = stored[index] if stored is not None else None
            settings = dict(defaults)
            if chat is not None:
                settings.update(chat.settings.get("sampling") or {})
                settings["system"] = chat.settings.get("system_prompt", "")
            panes.append(ComparePane(spec, info, LABELS[k], comparison=self.comparison_id, settings=settings))
        await grid.mount_all(panes)
        if stored is not None:
            for pane, (index, _spec, _info) in zip(panes, loaded):
                await pane.restore(stored[index])
        self._layout_panes()
        if len(loaded) < MIN_MODELS:
            self._chat_status(f"{len(loaded)} of {len(specs)} models loaded; comparing needs {MIN_MODELS}")
        else:
            self._chat_status(f"{len(loaded)} models ready · Enter sends to all · F9 pane settings · "
                              "Esc stops · Ctrl+N new")
            self.query_one("#prompt", ChatInput).focus()

    def send(self, prompt: str) -> bool:
        """Send ``prompt`` as the next message to every pane at once (with the reference typed, if
        any); each pane sends it with its own conversation. False when nothing was sent."""
        panes = self.panes
        if not panes:
            self.app.show_error(LmscopeError("no models loaded", hint="type 2–4 models and press Enter"))
            return False
        if any(pane.streaming for pane in panes):
            self.notify("answers are still being generated (Esc stops them)", severity="warning")
            return False
        reference = self.query_one("#reference", Input).value.strip()
        checked = [pane.checked_params() for pane in panes]
        if any(params is None for params in checked):
            return False  # a pane's settings are invalid: it says why, nothing is sent
        for pane, params in zip(panes, checked):
            pane.start(prompt, reference, params)
        turn = sum(message.role == "user" for message in panes[0].messages) + 1
        self._chat_status(f"turn {turn} · Esc stops · Ctrl+N new comparison")
        return True

    @on(Input.Submitted, "#models")
    def _models_submitted(self, event: Input.Submitted) -> None:
        self.load_models(parse_model_specs(event.value))

    @on(ChatInput.Submitted, "#prompt")
    def _prompt_submitted(self, event: ChatInput.Submitted) -> None:
        text = event.text.strip()
        if text and self.send(text):
            event.chat_input.remember(text)
            event.chat_input.clear()

    @on(Input.Changed, "#reference")
    def _reference_changed(self, event: Input.Changed) -> None:
        for pane in self.panes:
            pane.set_reference(event.value.strip())

    def action_stop_all(self) -> None:
        """Stop every pane's answer (Esc)."""
        for pane in self.panes:
            pane.stop()

    async def action_new_comparison(self) -> None:
        """Stop every answer and clear every pane's conversation (Ctrl+N); the models stay loaded.
        The old comparison stays in the store (Ctrl+O reopens it)."""
        panes = self.panes
        await asyncio.gather(*(pane.clear() for pane in panes))
        self.comparison_id = uuid.uuid4().hex[:12]
        for pane in panes:
            pane.conversation.comparison = self.comparison_id
        if panes:
            self._chat_status(f"new comparison · {len(panes)} models ready · Enter sends to all")
        self.query_one("#prompt", ChatInput).focus()

    def action_toggle_sampling(self) -> None:
        """Show or hide every pane's own settings (sampling and system prompt)."""
        panes = self.panes
        hidden = not panes or panes[0].sampling.has_class("-hidden")
        for pane in panes:
            pane.sampling.set_class(not hidden, "-hidden")

    def action_open_comparison(self) -> None:
        """Pick a stored comparison and reopen it: its models, each pane's settings and turns."""
        groups: dict[str, list] = {}
        for chat in self.app.store.chat_list(comparisons=True):
            groups.setdefault(chat.comparison, []).append(chat)
        entries = [dataclasses.replace(max(chats, key=lambda c: c.updated_at), id=comparison,
                                       model=", ".join(short_name(c.model) for c in sorted(chats, key=lambda c: c.pane)))
                   for comparison, chats in groups.items()]

        def reopen(comparison: str | None) -> None:
            if comparison is not None:
                self.reopen(comparison)

        self.app.push_screen(ChatListDialog(entries, title="Stored comparisons"), reopen)

    def reopen(self, comparison: str) -> None:
        """Show the stored comparison ``comparison`` and go on with it."""
        chats = self.app.store.comparison_chats(comparison)
        if not chats:
            self.notify(f"no comparison {comparison!r} in the store", severity="error")
            return
        self.query_one("#models", Input).value = ", ".join(c.model for c in chats)
        self.comparison_id = comparison
        self.load_models([c.model for c in chats], stored=chats)

    # ----------------------------------------------------------------------------- mode
    def action_toggle_mode(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "scenario-tab" if tabs.active == "chat-tab" else "chat-tab"

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        if event.pane.id == "scenario-tab":
            self._request_run()

    def _request_run(self) -> None:
        if not self._run_requested:
            self._run_requested = True
            self.load_run(self.query_one("#run-id", Input).value.strip() or None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        scenario = self.query_one(TabbedContent).active == "scenario-tab" if self.is_mounted else False
        if action in ("sort_diffs", "next_metric", "next_pair"):
            return scenario and self.comparison is not None
        if action in ("stop_all", "new_comparison", "open_comparison", "toggle_sampling"):
            return not scenario
        return True

    # ----------------------------------------------------------------------------- scenario mode
    @on(Input.Submitted, "#run-id")
    def _run_submitted(self, event: Input.Submitted) -> None:
        self._run_requested = True
        self.load_run(event.value.strip() or None)

    @work(exclusive=True, group="scenario", exit_on_error=False)
    async def load_run(self, run_id: str | None) -> None:
        """Rescore a run from the store (in a thread) and show it side by side."""
        status = self.query_one("#diff-title", Static)
        status.update("scoring the run …")
        try:
            comparison = await asyncio.to_thread(compare_run, self.app.store, run_id)
        except Exception as exc:
            status.update(str(exc.message if isinstance(exc, LmscopeError) else exc))
            if run_id is not None or not isinstance(exc, StoreError):
                self.app.show_error(exc)
            return
        self.comparison = comparison
        self._pair = self._metric = 0
        self._sort_reverse = True
        self.query_one("#run-id", Input).value = comparison.run.id
        self._show_scores()
        self._show_verdicts()
        self._show_diffs()
        self.refresh_bindings()

    def _show_scores(self) -> None:
        comparison = self.comparison
        assert comparison is not None
        table = self.query_one("#scores", DataTable)
        table.clear(columns=True)
        table.add_column("metric", key="metric")
        for model in comparison.models:
            table.add_column(f"{comparison.label(model)} · {short_name(model)}", key=model)
        for metric in comparison.metrics:
            cells: list[object] = []
            display = metric
            for model in comparison.models:
                result = comparison.scores[model].get(metric)
                if result is None:
                    cells.append("–")
                    continue
                display = result.name
                text = f"{result.score:.2f}"
                if result.ci is not None and all(math.isfinite(v) for v in result.ci):
                    text += f" ({result.interval(1)})"
                cells.append(Text(text, justify="right"))
            table.add_row(display, *cells, key=metric)

    def verdict_lines(self) -> list[str]:
        """The paired-significance verdicts shown, one per metric and pair of models."""
        comparison = self.comparison
        if comparison is None:
            return []
        lines = []
        for v in comparison.verdicts:
            line = verdict_text(v.result, comparison.label(v.a), comparison.label(v.b))
            if len(comparison.models) > 2 and not line.startswith(f"{comparison.label(v.b)} >") \
                    and not line.startswith(f"{comparison.label(v.a)} >"):
                line += f" [{comparison.label(v.a)} vs {comparison.label(v.b)}]"
            lines.append(line)
        return lines

    def _show_verdicts(self) -> None:
        self.query_one("#verdicts", Static).update("\n".join(self.verdict_lines()))

    @property
    def pair(self) -> tuple[str, str]:
        """The two models whose differing examples are listed."""
        assert self.comparison is not None
        return model_pairs(self.comparison.models)[self._pair]

    @property
    def metric(self) -> str:
        """The metric (spec name) whose per-example scores are listed and sorted on."""
        assert self.comparison is not None
        return self.comparison.metrics[self._metric]

    def _show_diffs(self) -> None:
        comparison = self.comparison
        assert comparison is not None
        a, b = self.pair
        la, lb = comparison.label(a), comparison.label(b)
        metric = self.metric
        name = comparison.display(metric)
        rows = comparison.differing(a, b)
        table = self.query_one("#diffs", DataTable)
        table.clear(columns=True)
        output_width = max(10, (self.size.width - 40) // 2)
        table.add_column("example", key="id")
        table.add_column(f"Δ {name}", key="delta")
        table.add_column(f"{la} {name}", key="score_a")
        table.add_column(f"{la} output", key="out_a", width=output_width)
        table.add_column(f"{lb} {name}", key="score_b")
        table.add_column(f"{lb} output", key="out_b", width=output_width)
        for row_a, row_b in rows:
            score_a = row_a.scores.get(metric, float("nan"))
            score_b = row_b.scores.get(metric, float("nan"))
            table.add_row(row_a.example_id, score_b - score_a, score_a, _one_line(row_a.output), score_b,
                          _one_line(row_b.output), key=row_a.example_id)
        self._sort()
        same = len([i for i in comparison.examples[a] if i in comparison.examples[b]]) - len(rows)
        self.query_one("#diff-title", Static).update(
            f"{len(rows)} examples differ between {la} and {lb} ({same} identical) · "
            f"sorted by Δ {name} = {lb} − {la}")
        self._show_detail()

    def differing_example_ids(self) -> list[str]:
        """Example ids in the differing-examples table, in display order."""
        table = self.query_one("#diffs", DataTable)
        return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]

    def _sort(self) -> None:
        self.query_one("#diffs", DataTable).sort("delta", key=_nan_low, reverse=self._sort_reverse)

    def action_sort_diffs(self) -> None:
        """Flip the order of the differing examples by score difference."""
        self._sort_reverse = not self._sort_reverse
        self._sort()

    def action_next_metric(self) -> None:
        if self.comparison is not None:
            self._metric = (self._metric + 1) % len(self.comparison.metrics)
            self._show_diffs()

    def action_next_pair(self) -> None:
        if self.comparison is not None:
            self._pair = (self._pair + 1) % len(model_pairs(self.comparison.models))
            self._show_diffs()

    @on(DataTable.HeaderSelected, "#diffs")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_key.value
        if column == "delta":
            self.action_sort_diffs()
        elif column == "id":
            event.data_table.sort("id")
        elif column in ("score_a", "score_b"):
            event.data_table.sort(column, key=_nan_low, reverse=True)

    @on(DataTable.RowHighlighted, "#diffs")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.row_key.value)

    def _show_detail(self, example_id: str | None = None) -> None:
        comparison = self.comparison
        detail = self.query_one("#diff-detail", Static)
        table = self.query_one("#diffs", DataTable)
        if comparison is None or not table.row_count:
            detail.update("")
            return
        if example_id is None:
            example_id = str(table.get_row_at(max(0, table.cursor_row))[0])
        a, b = self.pair
        row_a, row_b = comparison.examples[a][example_id], comparison.examples[b][example_id]
        detail.update(f"{example_id} · input: {' '.join(row_a.input.split())}\n"
                      f"{comparison.label(a)}: {' '.join(row_a.output.split())}\n"
                      f"{comparison.label(b)}: {' '.join(row_b.output.split())}")
