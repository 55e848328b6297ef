"""Comparing models on a finished scenario run: corpus scores, paired verdicts, differing examples.

The headless part of the compare screen's scenario mode (no Textual): :func:`compare_run` reads
and rescores a run from the store (blocking; call it in a thread) into a :class:`RunComparison`,
which the screen, or any other consumer, shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluators import MetricResult, PairedResult
from scenarios.errors import StoreError
from scenarios.rescoring import corpus_scores, model_pairs, paired, stored_scenario
from scenarios.store import Store, StoredExample, StoredRun

LABELS = "ABCD"
MIN_MODELS, MAX_MODELS = 2, 4


def format_p(p: float) -> str:
    """A p-value with two significant digits (0.012, 0.41)."""
    return f"{p:.2g}"


def verdict_text(result: PairedResult, label_a: str, label_b: str, alpha: float = 0.05) -> str:
    """"B > A on chrF, p = 0.012" or "no significant difference on BLEU (p = 0.41)".

    ``result`` tests system ``label_b`` against baseline ``label_a``.
    """
    if result.significant(alpha):
        better, worse = (label_b, label_a) if result.system_better else (label_a, label_b)
        return f"{better} > {worse} on {result.metric}, p = {format_p(result.p_value)}"
    return f"no significant difference on {result.metric} (p = {format_p(result.p_value)})"


def latest_comparable_run(store: Store) -> StoredRun:
    """The most recent finished run with at least two models."""
    for run in store.runs():
        if run.status == "finished" and len(run.model_names) >= MIN_MODELS:
            return run
    raise StoreError("no finished run with two or more models in the store",
                     hint="run a scenario with two models first, or type a run id")


@dataclass(frozen=True)
class Verdict:
    """The paired test of model ``b`` against model ``a`` on one metric (``metric`` is the spec name)."""

    a: str
    b: str
    metric: str
    result: PairedResult


@dataclass(frozen=True)
class RunComparison:
    """Everything scenario mode shows about one run, computed off the event loop."""

    run: StoredRun
    models: list[str]
    metrics: list[str]  # metric spec names, the keys of per-example scores
    scores: dict[str, dict[str, MetricResult]]  # model -> metric -> corpus result
    verdicts: list[Verdict]
    examples: dict[str, dict[str, StoredExample]]  # model -> example id -> row

    def label(self, model: str) -> str:
        return LABELS[self.models.index(model)]

    def display(self, metric: str) -> str:
        """A metric's display name (``chrF`` for the spec name ``chrf``)."""
        for results in self.scores.values():
            if metric in results:
                return results[metric].name
        return metric

    def differing(self, a: str, b: str) -> list[tuple[StoredExample, StoredExample]]:
        """Examples both models finished whose outputs differ, in example order."""
        rows_a, rows_b = self.examples[a], self.examples[b]
        common = sorted((rows_a[i] for i in rows_a if i in rows_b), key=lambda r: r.index)
        return [(row, rows_b[row.example_id]) for row in common if row.output != rows_b[row.example_id].output]


def compare_run(store: Store, run_id: str | None) -> RunComparison:
    """Corpus scores, paired verdicts and per-example rows of a run (blocking: call in a thread)."""
    run = store.run(run_id) if run_id else latest_comparable_run(store)
    scores = corpus_scores(store, run)
    models = [m for m in run.model_names if m in scores][:MAX_MODELS]
    if len(models) < MIN_MODELS:
        raise StoreError(f"run {run.id} has finished examples for {len(models)} model(s); comparing needs 2",
                         hint="pick a run with two or more models")
    metrics = [spec.name for spec in stored_scenario(run).metrics]
    verdicts = []
    for a, b in model_pairs(models):
        for name, result in zip(metrics, paired(store, run, a, run, b)):
            verdicts.append(Verdict(a, b, name, result))
    examples = {m: {r.example_id: r for r in store.examples(run.id, m, include_failed=False)} for m in models}
    return RunComparison(run, models, metrics, scores, verdicts, examples)
