"""Views of a choice-task run that every report shares: the confusion matrix, each example's
options with their log-likelihoods (chosen and gold marked), and where two models disagree.

The chosen option is the plain ``acc`` prediction (highest log-likelihood, first on ties), the
same one stored as the example's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import evaluators
from scenarios.choice_runs import is_choice_json, outcome_from_json
from scenarios.store import StoredExample


@dataclass(frozen=True)
class OptionRow:
    """One option of one example."""

    text: str     # the label name (classification) or the option text
    logprob: float
    chosen: bool
    gold: bool


def choice_outcome(row: StoredExample) -> evaluators.ChoiceOutcome | None:
    """The stored example's option scores, or None for an example of another task (or a failed one)."""
    return outcome_from_json(row.likelihood) if is_choice_json(row.likelihood) else None


def option_rows(outcome: evaluators.ChoiceOutcome) -> list[OptionRow]:
    chosen = outcome.predicted()
    names = outcome.labels or outcome.options
    return [OptionRow(names[i], lp, i == chosen, i == outcome.gold) for i, lp in enumerate(outcome.logprobs)]


def options_line(outcome: evaluators.ChoiceOutcome) -> str:
    """``positive -1.234 [chosen] [gold] | negative -2.345`` on one line (CSV, plain text)."""
    return " | ".join(f"{r.text} {r.logprob:.4f}" + (" [chosen]" if r.chosen else "") + (" [gold]" if r.gold else "")
                      for r in option_rows(outcome))


@dataclass(frozen=True)
class Confusion:
    """Rows are gold labels, columns predicted ones."""

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]


def confusion(outcomes: Iterable[evaluators.ChoiceOutcome]) -> Confusion | None:
    """The confusion matrix of a classification model's examples (None when there are none, or the
    options are not one fixed label set), pooled exactly as macro-F1 and MCC pool it."""
    items = [o for o in outcomes if o.labels]
    if not items or len({o.labels for o in items}) != 1:
        return None
    metric = evaluators.build("macro_f1")
    for outcome in items:
        metric.add(outcome)
    details = metric.corpus().details
    return Confusion(tuple(details["labels"]), tuple(tuple(r) for r in details["confusion"]))


def run_confusions(examples: Iterable[StoredExample]) -> dict[str, Confusion]:
    """model -> confusion matrix, for the models of a classification run."""
    per_model: dict[str, list[evaluators.ChoiceOutcome]] = {}
    for row in examples:
        outcome = choice_outcome(row) if not row.error else None
        if outcome is not None:
            per_model.setdefault(row.model, []).append(outcome)
    found = {model: confusion(items) for model, items in per_model.items()}
    return {model: c for model, c in found.items() if c is not None}


def confusion_lines(matrix: Confusion) -> list[str]:
    """A plain-text table: gold down, predicted across."""
    width = max(9, *(len(label) for label in matrix.labels))
    corner = "gold/pred"
    lines = [f"{corner:<{width + 2}}" + "".join(f"{label:>{width + 2}}" for label in matrix.labels)]
    for label, row in zip(matrix.labels, matrix.counts):
        lines.append(f"{label:<{width + 2}}" + "".join(f"{n:>{width + 2}}" for n in row))
    return lines


@dataclass(frozen=True)
class Disagreement:
    example_id: str
    chosen_a: str
    chosen_b: str
    gold: str


def disagreements(rows_a: list[StoredExample], rows_b: list[StoredExample]) -> list[Disagreement]:
    """Examples (matched pairs, as :func:`scenarios.rescoring.common_examples` gives them) where the
    two models chose different options."""
    out = []
    for a, b in zip(rows_a, rows_b):
        oa, ob = choice_outcome(a), choice_outcome(b)
        if oa is None or ob is None or oa.predicted() == ob.predicted():
            continue
        names = oa.labels or oa.options
        out.append(Disagreement(a.example_id, names[oa.predicted()], (ob.labels or ob.options)[ob.predicted()],
                                names[oa.gold]))
    return out


def disagreement_lines(rows_a: list[StoredExample], rows_b: list[StoredExample], shown: int = 20) -> list[str]:
    """``lmscope compare``'s lines for a choice task: where A and B chose different options."""
    if not any(choice_outcome(r) is not None for r in rows_a):
        return []
    found = disagreements(rows_a, rows_b)
    lines = [f"A and B chose different options on {len(found)} of {len(rows_a)} examples" + (":" if found else "")]
    lines += [f"  {d.example_id}: A chose {d.chosen_a!r}, B chose {d.chosen_b!r} (gold {d.gold!r})"
              for d in found[:shown]]
    if len(found) > shown:
        lines.append(f"  ... and {len(found) - shown} more (export the runs to see every one)")
    return lines


def confusion_report_lines(examples: Iterable[StoredExample]) -> list[str]:
    """``lmscope show``'s lines for a classification run: each model's confusion matrix."""
    lines = []
    for model, matrix in run_confusions(examples).items():
        lines += ["", f"confusion matrix, {model} (rows: gold, columns: predicted)"]
        lines += ["  " + line for line in confusion_lines(matrix)]
    return lines
