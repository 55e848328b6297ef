"""The scenario run screen: pick a scenario and models, watch examples and scores arrive live.

A :class:`scenarios.runner.ScenarioRun` runs in an exclusive worker on the event loop (the
engine does its heavy work in its own threads); its events update the examples table, the
streaming output line, one :class:`ScoresPanel` per model and the progress bar. Esc cancels
the run (it stays resumable in the store); Ctrl+R resumes the last resumable run (cancelled,
failed or interrupted). The runs browser (:mod:`tui.screens.runs`) opens stored runs here.

The scenario is either a built-in (the dropdown) or a file path (typed): choosing one clears
the other, so what runs is always what the form shows. Rows are kept in data order whatever
order examples finish in; the table's scores are per example (sentence-level), the panels'
are corpus scores.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, ProgressBar, Select, Static

from engine import LmscopeError
from scenarios.catalog import builtin_names, find_scenario
from scenarios.events import (
    ExampleDelta,
    ExampleFinished,
    ExampleStarted,
    RunCancelled,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    ScoresUpdated,
)
from scenarios.progress import RunProgress
from scenarios.rescoring import corpus_scores, stored_scenario
from scenarios.runner import ScenarioRun
from scenarios.scenario import Scenario
from scenarios.store import RESUMABLE, StoredExample
from tui.formatting import format_duration, format_rate, format_score
from tui.screens.example_detail import ExampleDetailScreen, stored_from_event
from tui.widgets.choice_view import ConfusionPanel
from tui.widgets.score_panel import ScoresPanel, format_verdict, printable, short_model_name

STREAM_FLUSH_S = 0.04  # streamed text is buffered (never dropped) and painted at most this often
CELL_CHARS = 32


def parse_models(text: str) -> list[str]:
    """Comma-separated model specs, stripped, empty ones and repeats dropped, order kept."""
    seen: dict[str, None] = {}
    for part in text.split(","):
        if part.strip():
            seen.setdefault(part.strip(), None)
    return list(seen)


def _cell(text: str, style: str = "", limit: int = CELL_CHARS) -> Text:
    flat = " ".join(printable(text).split())
    return Text(flat if len(flat) <= limit else flat[:limit - 1] + "…", style=style, no_wrap=True)


class RunScreen(Screen):
    """Run a scenario over one or more models with live tables, scores and progress.

    Args:
        batch_size: examples per engine batch (``None``: the backend's own choice).
        n_bootstrap: bootstrap resamples for the confidence intervals.
        clock: monotonic seconds, for rate and ETA (tests freeze it).
    """

    CSS_PATH = "run.tcss"
    BINDINGS = [
        Binding("ctrl+s", "start_run", "Run"),
        Binding("escape", "cancel_run", "Cancel"),
        Binding("ctrl+r", "resume_run", "Resume"),
        Binding("ctrl+g", "toggle_signatures", "Signatures"),
    ]

    def __init__(self, *, batch_size: int | None = None, n_bootstrap: int = 1000,
                 clock: Callable[[], float] = time.monotonic, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.batch_size = batch_size
        self.n_bootstrap = n_bootstrap
        self.clock = clock
        self.scenario_run: ScenarioRun | None = None
        self.run_id: str | None = None
        self.last_cancelled: str | None = None
        self.last_finished: RunFinished | None = None
        self.records: dict[str, StoredExample] = {}
        self.panels: dict[str, ScoresPanel] = {}
        self.streams: dict[tuple[str, str], list[str]] = {}  # (model, example) -> every delta, in order
        self._current: dict[str, list[str]] = {}  # model -> examples in flight, oldest first
        self._stream_dirty = False
        self._metrics: list[str] = []
        self._multi = False
        self.progress = RunProgress(clock)
        self._models: list[str] = []
        self._order_dirty = False
        self._default_model = ""
        self._signatures = False

    # ---------------------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            with Horizontal(classes="form-row"):
                yield Label("scenario", classes="form-label")
                yield Select([(n, n) for n in builtin_names()], prompt="built-in…", id="builtin", compact=True)
                yield Label("or", classes="form-or")
                yield Input(placeholder="…or a scenario file path", id="path", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("models", classes="form-label")
                yield Input(placeholder="model[, model…]", id="models", compact=True)
                yield Label("limit", classes="form-label-short")
                yield Input(placeholder="all", id="limit", type="integer", compact=True)
                yield Button("Run", id="start", variant="primary", compact=True)
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield DataTable(id="examples", cursor_type="row", zebra_stripes=True)
                yield Static(Text("no run yet", style="dim"), id="stream")
            with VerticalScroll(id="side"):
                yield Vertical(id="panels")
                yield Static(id="verdicts")
                yield ConfusionPanel(id="confusion")
        with Horizontal(id="progress-row"):
            yield ProgressBar(id="progress", show_eta=False, total=1)
            yield Static("idle", id="rate")
        yield Footer()

    def on_mount(self) -> None:
        self._default_model = self.app.model_name
        self.query_one("#models", Input).value = self._default_model
        self.watch(self.app, "model_name", self._model_changed, init=False)
        self.query_one("#progress", ProgressBar).display = False  # no bar (nor its pulse) while idle
        self.set_interval(STREAM_FLUSH_S, self._flush_stream)

    def _model_changed(self, name: str) -> None:
        """Follow the app's current model unless the user has typed other models."""
        models = self.query_one("#models", Input)
        if models.value.strip() in ("", self._default_model):
            models.value = name
        self._default_model = name

    # ------------------------------------------------------------------- the form's choice
    @on(Select.Changed, "#builtin")
    def _builtin_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):  # a built-in replaces a typed path
            self.query_one("#path", Input).value = ""

    @on(Input.Changed, "#path")
    def _path_typed(self, event: Input.Changed) -> None:
        if event.value.strip():  # a typed path replaces the built-in
            builtin = self.query_one("#builtin", Select)
            if isinstance(builtin.value, str):
                builtin.clear()

    def chosen_scenario(self) -> str:
        """What Run would run: the typed path, or the built-in picked (never both: see above)."""
        path = self.query_one("#path", Input).value.strip()
        builtin = self.query_one("#builtin", Select).value
        return path or (builtin if isinstance(builtin, str) else "")

    # --------------------------------------------------------------------------- actions
    @on(Button.Pressed, "#start")
    @on(Input.Submitted, "#path, #models, #limit")
    def action_start_run(self) -> None:
        """Start a run of the chosen scenario over the chosen models (supersedes a running one)."""
        scenario = self.chosen_scenario()
        if not scenario:
            self.app.show_error(LmscopeError("choose a built-in scenario or type a scenario file path"))
            return
        models = parse_models(self.query_one("#models", Input).value)
        if not models:
            self.app.show_error(LmscopeError("no model to run", "type one or more model names, comma-separated"))
            return
        limit_text = self.query_one("#limit", Input).value.strip()
        limit = int(limit_text) if limit_text.lstrip("-").isdigit() else None
        if limit is not None and limit < 1:
            self.app.show_error(LmscopeError(f"limit must be at least 1, not {limit}"))
            return
        self._drive(scenario, models, limit, None)

    def action_cancel_run(self) -> None:
        """Stop the running scenario; what finished stays in the store and can be resumed."""
        if self.scenario_run is not None:
            self.scenario_run.cancel()
            self.query_one("#rate", Static).update("cancelling…")

    def action_resume_run(self) -> None:
        """Resume this screen's last cancelled run, else the newest resumable one in the store
        (cancelled, failed, or interrupted: a run whose process died is found by ``reconcile``)."""
        run_id = self.last_cancelled
        if run_id is None:
            self.app.store.reconcile()
            resumable = [r for r in self.app.store.runs() if r.status in RESUMABLE]
            run_id = resumable[0].id if resumable else None
        if run_id is None:
            self.notify(f"no run to resume (only {', '.join(RESUMABLE)} runs can be)")
            return
        self.resume(run_id)

    def resume(self, run_id: str) -> None:
        """Resume a stored run (its finished examples are restored, the rest generated)."""
        self._drive(None, [], None, run_id)

    def rerun(self, run_id: str) -> None:
        """Run a stored run's scenario again, on the same models and limit, as a new run."""
        stored = self.app.store.run(run_id)
        self.query_one("#path", Input).value = stored.scenario_path or ""
        self.query_one("#models", Input).value = ", ".join(stored.model_names)
        self.query_one("#limit", Input).value = str(stored.limit or "")
        self._drive(stored_scenario(stored), stored.model_names, stored.limit, None)

    @work(exclusive=True, group="scenario-run", exit_on_error=False)
    async def open_run(self, run_id: str) -> None:
        """Show a stored run as it ended: its rows, corpus scores (rescored as ``show`` does)."""
        store = self.app.store
        try:
            run = store.run(run_id)
            rows = await asyncio.to_thread(store.examples, run.id)
            results = await asyncio.to_thread(corpus_scores, store, run)
        except LmscopeError as exc:
            self.app.show_error(exc)
            return
        metrics = sorted({m for sigs in run.signatures.values() for m in sigs})
        await self._setup(run.id, run.model_names, metrics)
        for row in rows:
            self._add_row(row)
        self._sort_rows()
        for model, panel in self.panels.items():
            done = sum(1 for r in rows if r.model == model)
            panel.progress = (done, run.total)
            panel.results = results.get(model, {})
        self.query_one(ConfusionPanel).show_run(store, run.id)
        self.last_cancelled = run.id if run.status in RESUMABLE else None
        resumable = " · Ctrl+R resumes" if run.status in RESUMABLE else ""
        self.query_one("#rate", Static).update(f"{run.status} run {run.id}: {len(rows)}/{run.total * len(run.models)}"
                                               + resumable)

    def action_toggle_signatures(self) -> None:
        """Show or hide each metric's signature in the score panels."""
        self._signatures = not self._signatures
        for panel in self.panels.values():
            panel.show_signatures = self._signatures

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":
            return self.scenario_run is not None  # otherwise Esc goes on to the app
        return True

    @on(DataTable.RowSelected, "#examples")
    def _open_detail(self, event: DataTable.RowSelected) -> None:
        record = self.records.get(str(event.row_key.value))
        if record is not None:
            self.app.push_screen(ExampleDetailScreen(record))

    # ---------------------------------------------------------------------------- worker
    @work(exclusive=True, group="scenario-run", exit_on_error=False)
    async def _drive(self, scenario: Scenario | str | None, models: list[str], limit: int | None,
                     resume: str | None) -> None:
        """Run (or resume) a scenario (loaded, or a built-in name or file path to find) and feed
        its events to the widgets."""
        run: ScenarioRun | None = None
        try:
            if resume is None:
                scenario = await asyncio.to_thread(find_scenario, scenario) if isinstance(scenario, str) \
                    else scenario
                run = ScenarioRun(scenario, models, self.app.engine, self.app.store, limit=limit,
                                  batch_size=self.batch_size, n_bootstrap=self.n_bootstrap)
            else:
                run = ScenarioRun(None, [], self.app.engine, self.app.store, resume=resume,
                                  batch_size=self.batch_size, n_bootstrap=self.n_bootstrap)
            self.scenario_run = run
            self.refresh_bindings()
            self.query_one("#rate", Static).update("starting…")
            async for event in run:
                await self._handle(event)
        except LmscopeError as exc:
            self.app.show_error(exc)
            self.query_one("#rate", Static).update("error")
        except Exception as exc:  # anything unexpected: report it, keep the screen usable
            self.app.show_error(exc)
            self.query_one("#rate", Static).update("error")
        finally:
            # A superseded worker ends after its successor started: leave the successor's run alone.
            if self.scenario_run is run:
                self.scenario_run = None
                self.refresh_bindings()

    async def _handle(self, event: RunEvent) -> None:
        if isinstance(event, ExampleDelta):
            self.streams.setdefault((event.model, event.example_id), []).append(event.text)
            self._stream_dirty = True
        elif isinstance(event, ExampleStarted):
            self._current.setdefault(event.model, []).append(event.example_id)
            self.streams[(event.model, event.example_id)] = []
            self._stream_dirty = True
        elif isinstance(event, ExampleFinished):
            self._finish_example(stored_from_event(event))
        elif isinstance(event, ScoresUpdated):
            panel = self.panels.get(event.model)
            if panel is not None:
                panel.progress = (event.done, event.total)
                panel.results = event.results
        elif isinstance(event, RunStarted):
            await self._start(event)
        elif isinstance(event, RunFinished):
            self._finished(event)
        elif isinstance(event, RunCancelled):
            self.last_cancelled = event.run_id
            done = sum(event.done.values())
            self.query_one("#rate", Static).update(f"cancelled at {done}/{self.progress.total} · Ctrl+R resumes")
            self.notify(f"run {event.run_id} cancelled; Ctrl+R resumes it")
        elif isinstance(event, RunFailed):
            self.app.show_error(LmscopeError(event.message, event.hint))
            self.query_one("#rate", Static).update("failed")

    async def _setup(self, run_id: str, models: list[str], metrics: list[str]) -> None:
        """Columns and panels for a run (kept when the same run goes on, e.g. resumed)."""
        self.last_finished = None
        if run_id == self.run_id and models == self._models:
            return
        table = self.query_one("#examples", DataTable)
        self.run_id = run_id
        self.records.clear()
        self._metrics = metrics
        self._models = list(models)
        self._multi = len(models) > 1
        table.clear(columns=True)
        # Position first (rows stay in data order), then scores and output: they fit at 80 columns.
        # Per-example scores are sentence-level ("sent."); the side panels show corpus scores.
        table.add_column("#", key="index")
        table.add_column("id", key="id")
        if self._multi:
            table.add_column("model", key="model")
        for metric in metrics:
            table.add_column(f"{metric} sent.", key=f"score:{metric}")
        for column in ("output", "reference", "input"):
            table.add_column(column, key=column)
        await self.query_one("#panels", Vertical).remove_children()
        self.panels = {m: ScoresPanel(m, title=f"{short_model_name(m)} · corpus") for m in models}
        for panel in self.panels.values():
            panel.show_signatures = self._signatures
        await self.query_one("#panels", Vertical).mount_all(self.panels.values())
        self.query_one("#verdicts", Static).update("")
        self.query_one(ConfusionPanel).display = False

    async def _start(self, event: RunStarted) -> None:
        models = [m.name for m in event.models]
        metrics = sorted({m for sigs in event.signatures.values() for m in sigs})
        await self._setup(event.run_id, models, metrics)
        self.query_one("#verdicts", Static).update("")
        self.streams.clear()
        self._current.clear()
        if any(event.already_done.values()):
            rows = await asyncio.to_thread(self.app.store.examples, event.run_id)
            for row in rows:
                if row.error is None and f"{row.model}\x00{row.example_id}" not in self.records:
                    self._add_row(row)
            self._sort_rows()
        self.progress = RunProgress(self.clock)
        for model in models:
            self.progress.start(model, event.total, event.already_done.get(model, 0))
        bar = self.query_one("#progress", ProgressBar)
        bar.display = True
        bar.update(total=self.progress.total, progress=self.progress.done)
        self._show_rate()
        self._stream_dirty = True

    def _finish_example(self, record: StoredExample) -> None:
        self._add_row(record)
        self._order_dirty = True  # sorted at the next paint: examples finish out of data order
        in_flight = self._current.get(record.model, [])
        if record.example_id in in_flight:
            in_flight.remove(record.example_id)
        self._stream_dirty = True
        if record.model in self.progress.models:
            self.progress.advance(record.model)
        self.query_one("#progress", ProgressBar).update(progress=self.progress.done)
        self._show_rate()

    def _sort_rows(self) -> None:
        """Rows in data order (then in the run's model order)."""
        self._order_dirty = False
        rank = {short_model_name(m): k for k, m in enumerate(self._models)}
        table = self.query_one("#examples", DataTable)
        if self._multi:
            table.sort("index", "model", key=lambda cells: (int(cells[0].plain), rank.get(cells[1].plain, 0)))
        else:
            table.sort("index", key=lambda cell: int(cell.plain))

    def _add_row(self, record: StoredExample) -> None:
        table = self.query_one("#examples", DataTable)
        key = f"{record.model}\x00{record.example_id}"
        failed = record.error is not None
        output = _cell("✗ " + record.error, "bold red") if failed else _cell(record.output)
        marker = " ⚠" if record.warnings and not failed else ""  # truncated input etc.: Enter shows why
        cells: dict[str, Text] = {
            "index": Text(str(record.index + 1), style="dim", justify="right"),
            "id": Text(record.example_id + marker, style="red" if failed else ("yellow" if marker else "")),
            "model": _cell(short_model_name(record.model), limit=20),
        }
        for metric in self._metrics:
            cells[f"score:{metric}"] = Text(format_score(record.scores.get(metric)), justify="right")
        cells["output"] = output
        refs = record.references
        reference = _cell(refs[0] if refs else "", limit=24)
        if len(refs) > 1:  # the detail view (Enter) shows all of them
            reference.append(f" +{len(refs) - 1}", style="dim")
        cells["reference"] = reference
        cells["input"] = _cell(record.input)
        if key in self.records:  # a failed example redone on resume: replace its row
            for column, value in cells.items():
                if column != "model" or self._multi:
                    table.update_cell(key, column, value)
        else:
            table.add_row(*(v for c, v in cells.items() if c != "model" or self._multi), key=key)
        self.records[key] = record

    def _finished(self, event: RunFinished) -> None:
        self.last_finished = event
        for model, results in event.results.items():
            panel = self.panels.get(model)
            if panel is not None:
                panel.results = results
        lines = [format_verdict(c.result, c.baseline, c.system, metric=c.metric) for c in event.comparisons]
        verdicts = Text()
        if lines:
            verdicts.append("Paired tests\n", "bold")
            verdicts.append("\n".join(lines))
        self.query_one("#verdicts", Static).update(verdicts)
        self.query_one(ConfusionPanel).show_run(self.app.store, event.run_id)
        failed = sum(event.failed.values())
        text = f"finished {self.progress.done}/{self.progress.total} in {format_duration(self.progress.elapsed())}"
        self.query_one("#rate", Static).update(text + (f" · {failed} failed" if failed else ""))
        self._current.clear()
        self._stream_dirty = True

    # ------------------------------------------------------------------------ rendering
    def _show_rate(self) -> None:
        progress = self.progress
        text = f"{progress.done}/{progress.total}"
        rate = progress.rate()
        if rate:
            text += f" · {format_rate(rate)}"
            eta = progress.eta()
            text += f" · ETA {format_duration(eta)}" if eta is not None else " · ETA …"
        self.query_one("#rate", Static).update(text)

    def _flush_stream(self) -> None:
        """Paint the newest text of each model's oldest example in flight (buffered deltas);
        put rows that finished out of order in their place."""
        if self._order_dirty:
            self._sort_rows()
        if not self._stream_dirty:
            return
        self._stream_dirty = False
        widget = self.query_one("#stream", Static)
        lines = []
        width = max(widget.size.width, 20)
        for model, in_flight in self._current.items():
            if not in_flight:
                continue
            example = in_flight[0]
            text = printable("".join(self.streams.get((model, example), []))).replace("\n", "⏎ ")
            prefix = f"{short_model_name(model)} · {example} ▸ " if self._multi else f"{example} ▸ "
            room = max(width * (3 if len(self._current) == 1 else 1) - len(prefix), 10)
            line = Text(prefix, style="dim")
            line.append(text[-room:])
            lines.append(line)
        widget.update(Text("\n").join(lines) if lines else Text("", style="dim"))

    def stream_text(self, model: str, example_id: str) -> str:
        """Every delta streamed for an example of the current run, joined (kept after it finishes)."""
        return "".join(self.streams.get((model, example_id), []))
