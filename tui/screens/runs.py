"""The runs browser: every stored scenario run, with what the CLI can do to one.

Lists runs newest first (status, scenario, models, done/total, main corpus scores). Enter opens
a run in the run screen, R resumes it (cancelled, failed or interrupted: ``Store.reconcile``
first marks runs whose process died), N reruns its scenario as a new run, E exports it, Space
marks a run and C compares the marked run with the highlighted one (paired tests, as
``lmscope compare``). Acting on a run is posted to the app as :class:`RunRequested`; the logic
is the ``scenarios`` package's, shared with the CLI.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Select, Static

from engine import LmscopeError
from scenarios.commands import compare_runs, done_examples, write_export
from scenarios.report import FORMATS, export
from scenarios.rescoring import corpus_scores
from scenarios.store import RESUMABLE, StoredRun
from tui.formatting import format_score
from tui.messages import RunRequested
from tui.widgets.score_panel import printable, short_model_name

STATUS_STYLE = {"finished": "green", "running": "cyan", "cancelled": "yellow", "failed": "red",
                "interrupted": "red"}


def main_scores(results: dict[str, dict]) -> str:
    """Each model's first metric: ``chrf 41.20`` (``model: …`` per model when several)."""
    parts = []
    for model, per in results.items():
        if per:
            name, result = next(iter(per.items()))
            prefix = f"{short_model_name(model)}: " if len(results) > 1 else ""
            parts.append(f"{prefix}{name} {format_score(result.score)}")
    return "; ".join(parts) or "—"


class RunsScreen(Screen):
    """Stored scenario runs: open, resume, rerun, export, compare."""

    CSS_PATH = "runs.tcss"
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("r", "resume", "Resume"),
        Binding("n", "rerun", "Rerun"),
        Binding("e", "export", "Export"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("ctrl+t", "refresh", "Refresh", show=False),
    ]

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.runs: list[StoredRun] = []
        self.marked: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("Scenario runs — Space marks one, C compares it with the highlighted one", id="runs-title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-detail")
        yield Select([(f, f) for f in FORMATS], value="html", id="export-format", compact=True)
        yield Input(placeholder="export to… (Enter writes)", id="export-path", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for label, key in (("run", "id"), ("status", "status"), ("scenario", "scenario"), ("done", "done"),
                           ("scores", "scores"), ("models", "models")):
            table.add_column(label, key=key)
        self.query_one("#export-format").display = self.query_one("#export-path").display = False
        table.focus()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        """Read the runs again (a run elsewhere may have ended)."""
        self._load()

    @work(exclusive=True, group="runs-list", exit_on_error=False)
    async def _load(self) -> None:
        store = self.app.store

        def read() -> list[tuple[StoredRun, int, str]]:
            store.reconcile()
            rows = []
            for run in store.runs():
                try:
                    scores = main_scores(corpus_scores(store, run, ci=False))
                except LmscopeError:
                    scores = "—"
                rows.append((run, done_examples(store, run), scores))
            return rows

        rows = await asyncio.to_thread(read)
        table = self.query_one("#runs", DataTable)
        current = self.current_run_id()
        table.clear()
        self.runs = [run for run, _, _ in rows]
        for run, done, scores in rows:
            mark = "● " if run.id == self.marked else ""
            table.add_row(Text(mark + run.id), Text(run.status, style=STATUS_STYLE.get(run.status, "")),
                          Text(printable(run.scenario_name)), Text(f"{done}/{run.total * len(run.models)}"),
                          Text(printable(scores)), Text(", ".join(short_model_name(m) for m in run.model_names)),
                          key=run.id)
        if current in {r.id for r in self.runs}:
            table.move_cursor(row=table.get_row_index(current))
        self.query_one("#runs-title", Static).update(
            f"Scenario runs ({len(rows)}) — Space marks one, C compares it with the highlighted one"
            if rows else "No scenario runs yet: F3 starts one")

    def current_run_id(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _current(self) -> StoredRun | None:
        run_id = self.current_run_id()
        run = next((r for r in self.runs if r.id == run_id), None)
        if run is None:
            self.notify("no run selected")
        return run

    def _detail(self, text: str | Text) -> None:
        self.query_one("#runs-detail", Static).update(text)

    # --------------------------------------------------------------------------- actions
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        """Show the highlighted run in the run screen."""
        if (run := self._current()) is not None:
            self.post_message(RunRequested(run.id, "open"))

    def action_resume(self) -> None:
        """Resume the highlighted run if it is cancelled, failed or interrupted."""
        if (run := self._current()) is None:
            return
        if run.status not in RESUMABLE:
            self.app.show_error(LmscopeError(f"run {run.id} is {run.status}; only {', '.join(RESUMABLE)} runs "
                                             "can be resumed", "N reruns it as a new run"))
            return
        self.post_message(RunRequested(run.id, "resume"))

    def action_rerun(self) -> None:
        """Run the highlighted run's scenario again (same models and limit) as a new run."""
        if (run := self._current()) is not None:
            self.post_message(RunRequested(run.id, "rerun"))

    def action_mark(self) -> None:
        """Mark (or unmark) the highlighted run as the first of a comparison."""
        if (run := self._current()) is None:
            return
        self.marked = None if self.marked == run.id else run.id
        self._detail(f"marked run {run.id}: highlight another and press C" if self.marked else "")
        self._load()

    def action_compare(self) -> None:
        """Paired tests of the marked run (A) against the highlighted one (B), as ``lmscope compare``."""
        run = self._current()
        if run is None:
            return
        if self.marked is None or self.marked == run.id:
            self.notify("mark a run with Space, then highlight another and press C")
            return
        self._compare(self.marked, run.id)

    @work(exclusive=True, group="runs-compare", exit_on_error=False)
    async def _compare(self, run_a: str, run_b: str) -> None:
        self._detail(Text("comparing…", style="dim"))
        try:
            lines = await asyncio.to_thread(compare_runs, self.app.store, run_a, run_b)
        except LmscopeError as exc:
            self._detail("")
            self.app.show_error(exc)
            return
        self._detail(Text(printable("\n".join(lines))))

    def action_export(self) -> None:
        """Ask where to export the highlighted run (the format follows the chooser)."""
        if (run := self._current()) is None:
            return
        path = self.query_one("#export-path", Input)
        fmt = self.query_one("#export-format", Select)
        path.display = fmt.display = True
        path.value = str(Path.cwd() / f"lmscope-run-{run.id}.{fmt.value}")
        path.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "export-path" and event.value.strip():
            run = self._current()
            if run is not None:
                self._export(run.id, str(self.query_one("#export-format", Select).value), event.value.strip())

    @work(exclusive=True, group="runs-export", exit_on_error=False)
    async def _export(self, run_id: str, fmt: str, out: str) -> None:
        store = self.app.store
        try:
            text = await asyncio.to_thread(export, store, store.run(run_id), fmt)
            await asyncio.to_thread(write_export, text, out)
        except LmscopeError as exc:
            self.app.show_error(exc)
            return
        self.query_one("#export-path").display = self.query_one("#export-format").display = False
        self.query_one("#runs", DataTable).focus()
        self._detail(f"run {run_id} exported to {out}")
        self.notify(f"exported to {out}")
