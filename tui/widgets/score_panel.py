"""A panel of one model's live corpus scores: score, bootstrap CI, running sparkline, signature.

Attributes down: whoever consumes a scenario run sets :attr:`ScoresPanel.results` from each
``ScoresUpdated`` event (and from ``RunFinished``); the panel never talks to the runner.
Also here: :func:`format_verdict` for the paired-significance verdict between two models
(scores become text in :func:`tui.formatting.format_score`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from evaluators import MetricResult, PairedResult
from tui.formatting import format_score  # noqa: F401 - the one place a score becomes text


_CONTROL = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(128, 160)], "\ufffd")


def printable(text: str) -> str:
    """Model output made safe to paint: control characters (escapes, carriage returns, ...) become
    U+FFFD, so they can neither move the cursor nor hide text. Newlines are kept."""
    return text.translate(_CONTROL)


@lru_cache(maxsize=256)
def short_model_name(model: str) -> str:
    """A model spec shortened for narrow places: the last path component of a folder or file."""
    if "/" in model and (model.startswith(("/", ".", "~")) or Path(model).exists()):
        return Path(model).name or model
    return model


def format_verdict(result: PairedResult, baseline: str, system: str, *, metric: str | None = None,
                   alpha: float = 0.05) -> str:
    """One line such as ``B > A on chrf, p = 0.012`` or ``chrf: no significant difference``.

    ``metric`` names the metric as the scenario does (default: the test's own name).
    """
    a, b, name = short_model_name(baseline), short_model_name(system), metric or result.metric
    if a == b:  # two folders with the same last component
        a, b = baseline, system
    if result.delta == 0:
        return f"{name}: no difference (identical scores)"
    if not result.significant(alpha):
        return f"{name}: no significant difference (p = {result.p_value:.3f})"
    system_better = (result.delta > 0) == result.higher_is_better
    better, worse = (b, a) if system_better else (a, b)
    return f"{better} > {worse} on {name}, p = {result.p_value:.3f}"


class _MetricRow(Widget):
    """One metric: a score line, a sparkline of the running score, the signature (toggled)."""

    def __init__(self, metric: str) -> None:
        super().__init__(classes="metric")
        self.metric = metric
        self.line = Static(classes="metric-line")
        self.sparkline = Sparkline([], classes="metric-sparkline")
        self.signature = Static(classes="metric-signature")

    def compose(self) -> ComposeResult:
        yield self.line
        yield self.sparkline
        yield self.signature

    def show(self, result: MetricResult, history: list[float]) -> None:
        text = Text.assemble((self.metric, "bold"), (" ↑" if result.higher_is_better else " ↓", "dim"), " ",
                             (format_score(result.score), "bold"))
        if result.ci is not None:  # on its own line: the side panel is narrow at 80 columns
            # the 95% interval as every view prints it (sacrebleu: bootstrap mean ± half-width)
            text.append(f"\n  {result.interval()}", "dim")
        self.line.update(text)
        self.sparkline.data = list(history)
        # One point is no trend (and a Sparkline paints it as a solid bar): shown from two on.
        self.sparkline.display = len(history) >= 2
        self.signature.update(Text(result.signature, style="dim italic"))


class ScoresPanel(Widget):
    """Live corpus scores of one model in a scenario run.

    Usage::

        panel = ScoresPanel(model)              # mount it
        panel.progress = (event.done, event.total)
        panel.results = event.results           # from ScoresUpdated, then RunFinished
        panel.show_signatures = True            # reveal each metric's signature

    Each assignment to :attr:`results` is one point of each metric's sparkline, except that a
    result over the same number of examples as the previous point replaces it (so the final
    ``RunFinished`` results do not add a duplicate point). :meth:`clear` starts over.
    """

    results: reactive[dict[str, MetricResult]] = reactive(dict, always_update=True, init=False)
    """Metric name → corpus result, as in ``ScoresUpdated.results``."""
    progress: reactive[tuple[int, int]] = reactive((0, 0), init=False)
    """(examples done, examples in total), shown in the title."""
    show_signatures: reactive[bool] = reactive(False, init=False)
    """Whether each metric's signature is shown under its score."""

    # Styles live in score_panel.tcss beside this file; read here so every screen gets them.
    DEFAULT_CSS = (Path(__file__).parent / "score_panel.tcss").read_text(encoding="utf-8")

    def __init__(self, model: str, *, title: str | None = None, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = model
        self.title = title or short_model_name(model)
        self._rows: dict[str, _MetricRow] = {}
        self._history: dict[str, list[float]] = {}
        self._last_n: dict[str, int] = {}
        self._title = Static(classes="panel-title")
        self._empty = Static(Text("waiting for scores…", style="dim"), classes="panel-empty")

    def compose(self) -> ComposeResult:
        yield self._title
        yield self._empty

    def on_mount(self) -> None:
        self._show_title()

    def history(self, metric: str) -> list[float]:
        """The running corpus score of ``metric``, one point per update (what the sparkline shows)."""
        return list(self._history.get(metric, []))

    def clear(self) -> None:
        """Forget every score and point (for a new run)."""
        for row in self._rows.values():
            row.remove()
        self._rows.clear()
        self._history.clear()
        self._last_n.clear()
        self._empty.display = True
        self.set_reactive(ScoresPanel.results, {})
        self.progress = (0, 0)

    def watch_progress(self) -> None:
        self._show_title()

    def watch_show_signatures(self, show: bool) -> None:
        self.set_class(show, "-signatures")

    def watch_results(self, results: dict[str, MetricResult]) -> None:
        for metric, result in results.items():
            history = self._history.setdefault(metric, [])
            if history and self._last_n.get(metric) == result.n:
                history[-1] = result.score
            else:
                history.append(result.score)
            self._last_n[metric] = result.n
            row = self._rows.get(metric)
            if row is None:
                row = self._rows[metric] = _MetricRow(metric)
                self.mount(row)
            row.show(result, [x for x in history if not math.isnan(x)])
        self._empty.display = not self._rows

    def _show_title(self) -> None:
        done, total = self.progress
        text = Text(self.title, style="bold")
        if total:
            text.append(f"  {done}/{total}", style="dim")
        self._title.update(text)
