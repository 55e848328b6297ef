"""Choice-task views: one example's options with their log-likelihoods (chosen ✓ and gold ★
marked), and a classification run's confusion matrices.

Both read what the store holds (the same outcome every export reads) and load it off the event
loop. Option and label texts come from data files and are shown as plain text, never as markup.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.widgets import Static

from scenarios.choice_report import Confusion, choice_outcome, option_rows, run_confusions
from scenarios.store import Store, StoredExample

BAR_WIDTH = 12


def options_text(record: StoredExample) -> Text | None:
    """Every option of ``record``, best first is not implied: data order, with a bar scaled to the
    option's probability among the options (softmax of the log-likelihoods). None for other tasks."""
    outcome = choice_outcome(record)
    if outcome is None:
        return None
    rows = option_rows(outcome)
    top = max(r.logprob for r in rows)
    weights = [2.718281828459045 ** (r.logprob - top) for r in rows]
    total = sum(weights)
    width = min(28, max(len(r.text) for r in rows))
    text = Text()
    for k, (row, weight) in enumerate(zip(rows, weights)):
        share = weight / total
        mark = ("✓" if row.chosen else " ") + ("★" if row.gold else " ")
        style = "bold green" if row.chosen and row.gold else ("bold red" if row.chosen else "")
        text.append(("\n" if k else "") + mark + " ", style or "dim")
        label = row.text if len(row.text) <= width else row.text[:width - 1] + "…"
        text.append(f"{label:<{width}} ", style)
        text.append(f"{row.logprob:10.4f} ", "bold" if row.chosen else "")
        filled = round(share * BAR_WIDTH)
        text.append("█" * filled + "·" * (BAR_WIDTH - filled), "cyan")
        text.append(f" {100 * share:5.1f}%", "dim")
    text.append("\n✓ chosen (highest log-likelihood, first on ties)  ★ gold  % = share among the options", "dim")
    return text


def confusion_text(model: str, matrix: Confusion) -> Text:
    """One model's confusion matrix: gold labels down, predicted across; the diagonal in green."""
    width = max(5, min(14, max(len(label) for label in matrix.labels)))
    text = Text(f"Confusion · {model}\n", style="bold")
    text.append(f"{'gold→pred':<{width + 1}}", "dim")
    for label in matrix.labels:
        text.append(f"{label[:width]:>{width + 1}}", "dim")
    for g, (label, row) in enumerate(zip(matrix.labels, matrix.counts)):
        text.append(f"\n{label[:width]:<{width + 1}}", "dim")
        for p, count in enumerate(row):
            text.append(f"{count:>{width + 1}}", "bold green" if g == p and count else ("red" if count else "dim"))
    return text


class OptionTable(Static):
    """The options of one example. Shows nothing for examples of other tasks; a live record (which
    carries no scores) is read back from the store."""

    def __init__(self, record: StoredExample, store: Store | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.record = record
        self.store = store

    def on_mount(self) -> None:
        text = options_text(self.record)
        if text is not None:
            self.update(text)
        elif self.store is not None and self.record.likelihood is None and not self.record.error:
            self.run_worker(self._load(), exclusive=True, exit_on_error=False)
        else:
            self.display = False

    async def _load(self) -> None:
        r = self.record
        rows = await asyncio.to_thread(self.store.examples, r.run_id, r.model)
        stored = next((row for row in rows if row.example_id == r.example_id), None)
        text = options_text(stored) if stored is not None else None
        if text is None:
            self.display = False
        else:
            self.update(text)


class ConfusionPanel(Static):
    """Confusion matrices of a classification run's models (hidden for other runs)."""

    DEFAULT_CSS = "ConfusionPanel { height: auto; margin-top: 1; display: none; }"

    def show_run(self, store: Store, run_id: str) -> None:
        """Load the run's examples from the store (in a worker) and draw one matrix per model."""
        self.run_worker(self._load(store, run_id), exclusive=True, exit_on_error=False, group="confusion")

    async def _load(self, store: Store, run_id: str) -> None:
        rows = await asyncio.to_thread(store.examples, run_id)
        matrices = await asyncio.to_thread(run_confusions, rows)
        self.display = bool(matrices)
        text = Text()
        for k, (model, matrix) in enumerate(matrices.items()):
            if k:
                text.append("\n\n")
            text.append_text(confusion_text(model.rsplit("/", 1)[-1], matrix))
        self.update(text)
