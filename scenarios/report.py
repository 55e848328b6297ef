"""Exporting a stored run: JSON, CSV, Markdown, or one self-contained HTML file.

Every format carries the same numbers as ``lmscope show``: corpus scores with their bootstrap
intervals, the paired tests between the run's models, warnings and example counts. Model output
is hostile input: CSV cells that a spreadsheet would run as a formula are neutralised, and
Markdown and HTML escape every character that could become markup.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import evaluators
from scenarios.choice_report import Confusion, choice_outcome, confusion_lines, option_rows, options_line, run_confusions
from scenarios.errors import ScenarioError
from scenarios.rescoring import corpus_scores, model_pairs, paired
from scenarios.store import Store, StoredExample, StoredRun

FORMATS = ("json", "csv", "md", "html")
_SUFFIXES = {"json": "json", "csv": "csv", "md": "md", "markdown": "md", "html": "html", "htm": "html"}
# A spreadsheet runs a cell starting with one of these as a formula (OWASP's CSV injection list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def format_for_path(path: str) -> str:
    """The export format a report file name asks for (by suffix).

    Raises:
        ScenarioError: an unsupported suffix such as ``.pdf``.
    """
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in _SUFFIXES:
        raise ScenarioError(f"cannot write a report as {Path(path).name!r}: unknown format {suffix or '(none)'!r}",
                            hint="use a .json, .csv, .md or .html file name")
    return _SUFFIXES[suffix]


@dataclass(frozen=True)
class _Report:
    """Everything an export shows, computed once."""

    run: StoredRun
    scores: dict[str, dict[str, evaluators.MetricResult]]
    tests: list[tuple[str, str, evaluators.PairedResult]]  # (baseline model, system model, result)
    examples: list[StoredExample]
    counts: dict[str, tuple[int, int]]  # model -> (finished, failed)
    confusions: dict[str, Confusion]  # classification runs: model -> confusion matrix

    @property
    def has_options(self) -> bool:
        """A choice-task run: examples carry option log-likelihoods."""
        return any(choice_outcome(e) is not None for e in self.examples)

    @property
    def metric_names(self) -> list[str]:
        return sorted({k for e in self.examples for k in e.scores})


def _gather(store: Store, run: StoredRun) -> _Report:
    scores = corpus_scores(store, run)
    scored = [m for m in run.model_names if m in scores]
    tests = []
    for a, b in model_pairs(scored):
        try:
            tests += [(a, b, result) for result in paired(store, run, a, run, b)]
        except evaluators.LmscopeError:  # fewer than two common examples: nothing to test
            pass
    examples = store.examples(run.id)
    counts = {m: (sum(1 for e in examples if e.model == m and not e.error),
                  sum(1 for e in examples if e.model == m and e.error)) for m in run.model_names}
    return _Report(run, scores, tests, examples, counts, run_confusions(examples))


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _ci(result: evaluators.MetricResult) -> str:
    return result.interval() or "-"


def _result_dict(result: evaluators.MetricResult) -> dict:
    return {"score": result.score, "ci": list(result.ci) if result.ci else None, "signature": result.signature,
            "n": result.n, "higher_is_better": result.higher_is_better,
            "warnings": [w.message for w in result.warnings]}


def _test_dict(a: str, b: str, r: evaluators.PairedResult) -> dict:
    return {"metric": r.metric, "baseline": a, "system": b, "baseline_score": r.baseline_score,
            "system_score": r.system_score, "delta": r.delta, "p_value": r.p_value, "significant": r.significant(),
            "method": r.method, "signature": r.signature}


def export(store: Store, run: StoredRun, fmt: str) -> str:
    """The run as text in ``fmt`` (json, csv, md, html)."""
    if fmt not in FORMATS:
        raise ScenarioError(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    report = _gather(store, run)
    return {"json": _json, "csv": _csv, "md": _markdown, "html": _html}[fmt](report)


def _json(report: _Report) -> str:
    run = report.run
    return json.dumps({
        "run": {"id": run.id, "scenario": run.scenario_name, "scenario_hash": run.scenario_hash,
                "data_hash": run.data_hash, "status": run.status, "started": _when(run.started_at),
                "ended": _when(run.ended_at), "models": run.models, "model_errors": run.model_errors,
                "generation": run.generation, "seed": run.seed, "language": run.language, "versions": run.versions,
                "examples": {m: {"finished": ok, "failed": bad, "total": run.total}
                             for m, (ok, bad) in report.counts.items()}},
        "scores": {m: {k: _result_dict(r) for k, r in per.items()} for m, per in report.scores.items()},
        "paired_tests": [_test_dict(a, b, r) for a, b, r in report.tests],
        "examples": [{"model": e.model, "id": e.example_id, "input": e.input, "prompt": e.prompt,
                      "output": e.output, "references": list(e.references), "scores": e.scores,
                      "latency_s": e.latency_s, "new_tokens": e.new_tokens, "error": e.error,
                      "warnings": list(e.warnings), **_json_options(e)} for e in report.examples],
        **({"confusion": {m: {"labels": list(c.labels), "counts": [list(r) for r in c.counts],
                              "rows": "gold", "columns": "predicted"} for m, c in report.confusions.items()}}
           if report.confusions else {}),
    }, ensure_ascii=False, indent=2)


def _json_options(e: StoredExample) -> dict:
    outcome = choice_outcome(e)
    if outcome is None:
        return {}
    return {"options": [{"option": r.text, "loglikelihood": r.logprob, "chosen": r.chosen, "gold": r.gold}
                        for r in option_rows(outcome)]}


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet runs as a formula: risky text gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv(report: _Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    metrics = report.metric_names
    options = ["options"] if report.has_options else []
    writer.writerow(["model", "id", "input", "output", "references", *metrics, "latency_s", "new_tokens", "error",
                     "warnings", *options])
    for e in report.examples:
        outcome = choice_outcome(e)
        writer.writerow([csv_cell(c) for c in (e.model, e.example_id, e.input, e.output, " ||| ".join(e.references))]
                        + [e.scores.get(m, "") for m in metrics]
                        + [f"{e.latency_s:.3f}", e.new_tokens, csv_cell(e.error or ""), csv_cell(" | ".join(e.warnings))]
                        + ([csv_cell(options_line(outcome) if outcome else "")] if options else []))
    for model, matrix in report.confusions.items():
        writer.writerow([])
        writer.writerow([csv_cell(f"confusion {model} (rows gold, columns predicted)"), *map(csv_cell, matrix.labels)])
        for label, row in zip(matrix.labels, matrix.counts):
            writer.writerow([csv_cell(label), *row])
    writer.writerow([])
    writer.writerow(["model", "metric", "score", "ci_low", "ci_high", "n", "signature", "warnings"])
    for model, per in report.scores.items():
        for r in per.values():
            writer.writerow([csv_cell(model), r.name, r.score, *(r.ci or ("", "")), r.n, csv_cell(r.signature),
                             csv_cell(" | ".join(w.message for w in r.warnings))])
    if report.tests:
        writer.writerow([])
        writer.writerow(["metric", "baseline", "system", "baseline_score", "system_score", "delta", "p_value"])
        for a, b, r in report.tests:
            writer.writerow([r.metric, csv_cell(a), csv_cell(b), r.baseline_score, r.system_score, r.delta, r.p_value])
    return buffer.getvalue()


def md_cell(value: object) -> str:
    """Text for one Markdown table cell: HTML escaped, pipes and Markdown markup neutralised, one line."""
    text = html.escape(" ".join(str(value).split()), quote=True)
    for char in "\\`*_[]|#!~":
        text = text.replace(char, "\\" + char)
    return text


def _markdown(report: _Report) -> str:
    run = report.run
    lines = [f"# {md_cell(run.scenario_name)} — run {md_cell(run.id)}", "",
             f"Status: {md_cell(run.status)} · started {_when(run.started_at)} · "
             f"models: {md_cell(', '.join(run.model_names))}", "",
             "| model | examples | metric | score | 95% CI (bootstrap mean ± half-width) | signature |", "|---|---|---|---|---|---|"]
    for model, per in report.scores.items():
        ok, bad = report.counts[model]
        for r in per.values():
            lines.append(f"| {md_cell(model)} | {ok}/{run.total}" + (f", {bad} failed" if bad else "")
                         + f" | {md_cell(r.name)} | {r.score:.2f} | {_ci(r)} | {md_cell(r.signature)} |")
    for model, reason in run.model_errors.items():
        lines.append(f"\n**{md_cell(model)} failed:** {md_cell(reason)}")
    warnings = [(m, w.message) for m, per in report.scores.items() for r in per.values() for w in r.warnings]
    if warnings:
        lines += ["", "Warnings:", ""] + [f"- {md_cell(m)}: {md_cell(w)}" for m, w in warnings]
    if report.tests:
        lines += ["", "| metric | A | B | A score | B score | delta | p |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {md_cell(r.metric)} | {md_cell(a)} | {md_cell(b)} | {r.baseline_score:.2f} | "
                  f"{r.system_score:.2f} | {r.delta:+.2f} | {r.p_value:.4f} |" for a, b, r in report.tests]
    for model, matrix in report.confusions.items():
        lines += ["", f"Confusion matrix, {md_cell(model)} (rows: gold, columns: predicted):", "",
                  "| gold \\ predicted | " + " | ".join(md_cell(x) for x in matrix.labels) + " |",
                  "|---|" + "---|" * len(matrix.labels)]
        lines += [f"| {md_cell(label)} | " + " | ".join(str(n) for n in row) + " |"
                  for label, row in zip(matrix.labels, matrix.counts)]
    metrics = report.metric_names
    second = "options (log-likelihood; ✓ chosen, ★ gold)" if report.has_options else "references"
    lines += ["", f"| model | id | output | {second} | " + " | ".join(md_cell(m) for m in metrics) + " |",
              "|---|---|---|---|" + "---|" * len(metrics)]
    for e in report.examples:
        output = e.output if not e.error else "ERROR: " + e.error
        outcome = choice_outcome(e)
        detail = md_cell(" / ".join(e.references)) if outcome is None else "; ".join(
            f"{md_cell(r.text)} {r.logprob:.4f}" + (" ✓" if r.chosen else "") + (" ★" if r.gold else "")
            for r in option_rows(outcome))
        lines.append(f"| {md_cell(e.model)} | {md_cell(e.example_id)} | {md_cell(output)} | {detail} | "
                     + " | ".join(f"{e.scores.get(m, '')}" for m in metrics) + " |")
    return "\n".join(lines) + "\n"


def _svg_bars(values: list[tuple[str, float]], width: int = 420) -> str:
    top = max([abs(v) for _, v in values] + [1e-9])
    bar_height, gap = 18, 6
    rows = []
    for i, (label, value) in enumerate(values):
        y = i * (bar_height + gap)
        w = max(1, int((width - 160) * abs(value) / top))
        rows.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(label[-22:])}</text>'
                    f'<rect x="150" y="{y}" width="{w}" height="{bar_height}" fill="#4a78c2"/>'
                    f'<text x="{155 + w}" y="{y + 13}" font-size="12">{value:.2f}</text>')
    height = len(values) * (bar_height + gap)
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">{"".join(rows)}</svg>'


def _html(report: _Report) -> str:
    esc = html.escape
    run = report.run
    metrics = sorted({name for per in report.scores.values() for name in per})
    charts = "".join(
        f"<section><h3>{esc(name)}</h3>"
        f"{_svg_bars([(m, per[name].score) for m, per in report.scores.items() if name in per])}"
        f"<p class=sig>{esc(next(iter(per[name].signature for per in report.scores.values() if name in per)))}</p>"
        f"</section>" for name in metrics)
    table = "".join(
        f"<tr><td>{esc(model)}</td><td>{report.counts[model][0]}/{run.total}"
        + (f", {report.counts[model][1]} failed" if report.counts[model][1] else "")
        + f"</td><td>{esc(r.name)}</td><td>{r.score:.2f}</td><td>{_ci(r)}</td>"
        f"<td>{esc('; '.join(w.message for w in r.warnings))}</td><td class=sig>{esc(r.signature)}</td></tr>"
        for model, per in report.scores.items() for r in per.values())
    failures = "".join(f"<p><b>{esc(m)} failed:</b> {esc(reason)}</p>" for m, reason in run.model_errors.items())
    tests = "".join(
        f"<tr><td>{esc(r.metric)}</td><td>{esc(a)}</td><td>{esc(b)}</td><td>{r.baseline_score:.2f}</td>"
        f"<td>{r.system_score:.2f}</td><td>{r.delta:+.2f}</td><td>{r.p_value:.4f}</td></tr>"
        for a, b, r in report.tests)
    tests_html = ("<h2>Paired tests</h2><table><tr><th>metric</th><th>A</th><th>B</th><th>A score</th>"
                  f"<th>B score</th><th>delta</th><th>p</th></tr>{tests}</table>") if tests else ""
    names = report.metric_names
    confusions = "".join(
        f"<h3>Confusion matrix: {esc(model)}</h3><table><tr><th>gold \\ predicted</th>"
        + "".join(f"<th>{esc(x)}</th>" for x in matrix.labels) + "</tr>"
        + "".join(f"<tr><th>{esc(label)}</th>" + "".join(f"<td>{n}</td>" for n in row) + "</tr>"
                  for label, row in zip(matrix.labels, matrix.counts)) + "</table>"
        for model, matrix in report.confusions.items())
    rows = "".join(
        f"<tr><td>{esc(e.model)}</td><td>{esc(e.example_id)}</td><td>{esc(e.input)}</td>"
        f"<td>{esc(e.output) if not e.error else '<b>error</b>: ' + esc(e.error)}</td>"
        f"<td>{_html_detail(e)}</td>"
        + "".join(f"<td>{e.scores[m]:.4g}</td>" if m in e.scores else "<td></td>" for m in names)
        + f"<td>{esc('; '.join(e.warnings))}</td></tr>" for e in report.examples)
    head = "".join(f"<th>{esc(m)}</th>" for m in names)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(run.scenario_name)} — {esc(run.id)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}.sig{{color:#666;font-size:11px}}
section{{display:inline-block;margin-right:2em}}</style></head>
<body><h1>{esc(run.scenario_name)}</h1>
<p>Run {esc(run.id)} · {esc(run.status)} · started {esc(_when(run.started_at))} · models: {esc(', '.join(run.model_names))}</p>
<h2>Scores</h2>{charts}
<table><tr><th>model</th><th>examples</th><th>metric</th><th>score</th><th>95% CI</th><th>warnings</th><th>signature</th></tr>{table}</table>
{failures}{tests_html}{confusions}
<h2>Examples</h2><table><tr><th>model</th><th>id</th><th>input</th><th>output</th><th>{'options (✓ chosen, ★ gold)' if report.has_options else 'references'}</th>{head}<th>warnings</th></tr>{rows}</table>
</body></html>
"""


def _html_detail(e: StoredExample) -> str:
    """The references, or for a choice task every option's log-likelihood with chosen and gold marked."""
    outcome = choice_outcome(e)
    if outcome is None:
        return html.escape(" / ".join(e.references))
    return "<br>".join(
        ("<b>" if r.chosen else "") + f"{html.escape(r.text)} {r.logprob:.4f}" + (" ✓</b>" if r.chosen else "")
        + (" ★" if r.gold else "") for r in option_rows(outcome))
