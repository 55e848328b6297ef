"""A modal showing one example of a scenario run: prompt, output, references and every score."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from scenarios.events import ExampleFinished
from scenarios.store import StoredExample
from tui.widgets.score_panel import format_score, short_model_name


@dataclass(frozen=True)
class ExampleRecord:
    """One model's result on one example, from a live event or from the results store."""

    model: str
    example_id: str
    index: int
    input: str
    prompt: str
    output: str
    references: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    latency_s: float = 0.0
    new_tokens: int = 0
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, event: ExampleFinished) -> ExampleRecord:
        e = event.example
        return cls(event.model, e.id, e.index, e.input, event.prompt, event.output, tuple(e.references),
                   dict(event.scores), event.error, event.latency_s, event.new_tokens, event.warnings)

    @classmethod
    def from_stored(cls, row: StoredExample) -> ExampleRecord:
        return cls(row.model, row.example_id, row.index, row.input, row.prompt, row.output, tuple(row.references),
                   dict(row.scores), row.error, row.latency_s, row.new_tokens, row.warnings)


class ExampleDetailScreen(ModalScreen[None]):
    """Everything about one example; Esc closes it."""

    CSS_PATH = "run.tcss"
    BINDINGS = [Binding("escape", "close", "Close"), Binding("q", "close", "Close", show=False)]

    def __init__(self, record: ExampleRecord) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        r = self.record
        with VerticalScroll(id="detail"):
            title = Text.assemble(("example ", "dim"), (r.example_id, "bold"), ("  #", "dim"), str(r.index),
                                  ("  model ", "dim"), (short_model_name(r.model), "bold"))
            if r.new_tokens:
                title.append(f"  {r.new_tokens} tokens in {r.latency_s:.2f} s", "dim")
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
            yield Static("References", classes="detail-heading")
            refs = Text()
            for k, ref in enumerate(r.references, 1):
                refs.append(f"{k}. ", "dim")
                refs.append(ref + ("\n" if k < len(r.references) else ""))
            yield Static(refs if r.references else Text("(none)", style="dim"), id="detail-references",
                         classes="detail-body")
            yield Static("Scores", classes="detail-heading")
            scores = Text()
            for k, (metric, value) in enumerate(r.scores.items()):
                scores.append(("\n" if k else "") + f"{metric}: ", "bold")
                scores.append(format_score(value))
            yield Static(scores if r.scores else Text("(none)", style="dim"), id="detail-scores",
                         classes="detail-body")
            yield Static(Text("Esc closes", style="dim"), id="detail-help")

    def action_close(self) -> None:
        self.dismiss(None)
