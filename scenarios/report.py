"""Exporting a stored run: JSON, CSV, Markdown, or one self-contained HTML file."""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import datetime, timezone

import evaluators
from scenarios.rescoring import corpus_scores
from scenarios.store import Store, StoredRun

FORMATS = ("json", "csv", "md", "html")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _result_dict(result: evaluators.MetricResult) -> dict:
    return {"score": result.score, "ci": list(result.ci) if result.ci else None, "signature": result.signature,
            "n": result.n, "higher_is_better": result.higher_is_better,
            "warnings": [w.message for w in result.warnings]}


def export(store: Store, run: StoredRun, fmt: str) -> str:
    """The run as text in ``fmt`` (json, csv, md, html)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    scores = corpus_scores(store, run)
    examples = store.examples(run.id)
    if fmt == "json":
        return json.dumps({
            "run": {"id": run.id, "scenario": run.scenario_name, "scenario_hash": run.scenario_hash,
                    "status": run.status, "started": _when(run.started_at), "ended": _when(run.ended_at),
                    "models": run.models, "generation": run.generation, "seed": run.seed,
                    "versions": run.versions},
            "scores": {m: {k: _result_dict(r) for k, r in per.items()} for m, per in scores.items()},
            "examples": [{"model": e.model, "id": e.example_id, "input": e.input, "prompt": e.prompt,
                          "output": e.output, "references": list(e.references), "scores": e.scores,
                          "latency_s": e.latency_s, "new_tokens": e.new_tokens, "error": e.error} for e in examples],
        }, ensure_ascii=False, indent=2)
    metric_names = sorted({k for e in examples for k in e.scores})
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["model", "id", "input", "output", "references", *metric_names, "latency_s", "new_tokens", "error"])
        for e in examples:
            writer.writerow([e.model, e.example_id, e.input, e.output, " ||| ".join(e.references),
                             *[e.scores.get(m, "") for m in metric_names], f"{e.latency_s:.3f}", e.new_tokens,
                             e.error or ""])
        return buffer.getvalue()
    if fmt == "md":
        return _markdown(run, scores, examples, metric_names)
    return _html(run, scores, examples, metric_names)


def _markdown(run, scores, examples, metric_names) -> str:
    cell = lambda t: str(t).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = [f"# {run.scenario_name} — run {run.id}", "",
             f"Status: {run.status} · started {_when(run.started_at)} · models: {', '.join(run.model_names)}", "",
             "| model | metric | score | 95% CI | signature |", "|---|---|---|---|---|"]
    for model, per in scores.items():
        for name, r in per.items():
            ci = f"{r.ci[0]:.2f}–{r.ci[1]:.2f}" if r.ci else "-"
            lines.append(f"| {cell(model)} | {name} | {r.score:.2f} | {ci} | `{cell(r.signature)}` |")
    lines += ["", "| model | id | output | references | " + " | ".join(metric_names) + " |",
              "|---|---|---|---|" + "---|" * len(metric_names)]
    for e in examples:
        lines.append(f"| {cell(e.model)} | {cell(e.example_id)} | {cell(e.output if not e.error else 'ERROR: ' + e.error)} | "
                     f"{cell(' / '.join(e.references))} | " + " | ".join(f"{e.scores.get(m, '')}" for m in metric_names) + " |")
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


def _html(run, scores, examples, metric_names) -> str:
    esc = html.escape
    metrics = sorted({name for per in scores.values() for name in per})
    charts = "".join(
        f"<section><h3>{esc(name)}</h3>{_svg_bars([(m, per[name].score) for m, per in scores.items() if name in per])}"
        f"<p class=sig>{esc(next(iter(per[name].signature for per in scores.values() if name in per)))}</p></section>"
        for name in metrics)
    rows = "".join(
        f"<tr><td>{esc(e.model)}</td><td>{esc(e.example_id)}</td><td>{esc(e.input)}</td>"
        f"<td>{esc(e.output) if not e.error else '<b>error</b>: ' + esc(e.error)}</td><td>{esc(' / '.join(e.references))}</td>"
        + "".join(f"<td>{e.scores.get(m, ''):.4g}</td>" if m in e.scores else "<td></td>" for m in metric_names)
        + "</tr>" for e in examples)
    head = "".join(f"<th>{esc(m)}</th>" for m in metric_names)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(run.scenario_name)} — {esc(run.id)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}.sig{{color:#666;font-size:11px}}
section{{display:inline-block;margin-right:2em}}</style></head>
<body><h1>{esc(run.scenario_name)}</h1>
<p>Run {esc(run.id)} · {esc(run.status)} · started {esc(_when(run.started_at))} · models: {esc(', '.join(run.model_names))}</p>
<h2>Scores</h2>{charts}
<h2>Examples</h2><table><tr><th>model</th><th>id</th><th>input</th><th>output</th><th>references</th>{head}</tr>{rows}</table>
</body></html>
"""
