"""A modal showing one example of a scenario run: prompt, output, every reference and every score."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from scenarios.events import ExampleFinished
from scenarios.store import StoredExample
from tui.formatting import format_duration, format_score
from tui.widgets.score_panel import short_model_name
from tui.widgets.choice_view import OptionTable


def stored_from_event(event: ExampleFinished) -> StoredExample:
    """A live example result as the store records it (one type for live and stored results)."""
    e = event.example
    return StoredExample(event.run_id, event.model, e.id, e.index, e.input, event.prompt, event.output,
                         tuple(e.references), dict(event.scores), None, event.latency_s, event.new_tokens,
                         event.error, tuple(event.warnings))


class ExampleDetailScreen(ModalScreen[None]):
    """Everything about one example; Esc closes it."""

    CSS_PATH = "run.tcss"
    BINDINGS = [Binding("escape", "close", "Close"), Binding("q", "close", "Close", show=False)]

    def __init__(self, record: StoredExample) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        r = self.record
        with VerticalScroll(id="detail"):
            title = Text.assemble(("example ", "dim"), (r.example_id, "bold"), ("  #", "dim"), str(r.index + 1),
                                  ("  model ", "dim"), (short_model_name(r.model), "bold"))
            if r.new_tokens:  # examples generate in batches: its own time, from its batch's start
                title.append(f"  {r.new_tokens} tokens, done {format_duration(r.latency_s)} after its batch began",
                             "dim")
            yield Static(title, id="detail-title")
            if r.error:
                yield Static(Text(f"failed: {r.error}", style="bold red"), id="detail-error")
            if r.warnings:
                yield Static(Text("\n".join(f"warning: {w}" for w in r.warnings), style="yellow"),
                             id="detail-warnings")
            yield Static("Prompt", classes="detail-heading")
            yield Static(Text(r.prompt), id="detail-prompt", classes="detail-body")
            yield Static("Output", classes="detail-heading")
            yield Static(Text(r.output) if r.output else Text("(empty)", style="dim"), id="detail-output",
                         classes="detail-body")
            yield Static(f"References ({len(r.references)})", classes="detail-heading")
            refs = Text()
            for k, ref in enumerate(r.references, 1):
                refs.append(f"{k}. ", "dim")
                refs.append(ref + ("\n" if k < len(r.references) else ""))
            yield Static(refs if r.references else Text("(none)", style="dim"), id="detail-references",
                         classes="detail-body")
            yield Static("Scores of this example (sentence-level; the run's panels show corpus scores)",
                         classes="detail-heading")
            scores = Text()
            for k, (metric, value) in enumerate(r.scores.items()):
                scores.append(("\n" if k else "") + f"{metric}: ", "bold")
                scores.append(format_score(value))
            yield Static(scores if r.scores else Text("(none)", style="dim"), id="detail-scores",
                         classes="detail-body")
            yield OptionTable(r, getattr(self.app, "store", None), id="detail-options", classes="detail-body")
            yield Static(Text("Esc closes", style="dim"), id="detail-help")

    def action_close(self) -> None:
        self.dismiss(None)
