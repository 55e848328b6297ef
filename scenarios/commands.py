"""Headless commands: run, score, runs, show, compare, export, scenarios, models.

Each ``cmd_*`` takes parsed arguments, prints to stdout (progress to stderr) and returns an exit
status. ``add_commands`` registers them on the ``lmscope`` argument parser.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import evaluators
from engine import Engine, EngineConfig, LmscopeError
from scenarios.catalog import builtin_scenarios, find_scenario
from scenarios.errors import ScenarioError
from scenarios.events import ExampleFinished, RunCancelled, RunFailed, RunFinished, RunStarted, ScoresUpdated
from scenarios.report import FORMATS, export
from scenarios.rescoring import corpus_scores, paired
from scenarios.runner import ScenarioRun
from scenarios.store import Store


def add_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a scenario headless and print scores")
    run.add_argument("scenario", nargs="?", help="a scenario file or a built-in name (see `lmscope scenarios`)")
    run.add_argument("--model", "-m", dest="models", action="append", default=[],
                     help="model to run (repeat to compare several); default: the embedded default")
    run.add_argument("--limit", type=int, default=None, help="run only the first N examples")
    run.add_argument("--out", default=None, help="write a report (.json, .csv, .md or .html)")
    run.add_argument("--resume", metavar="RUN_ID", default=None, help="complete an interrupted run")
    run.add_argument("--batch-size", type=int, default=None)
    run.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs (0 = none)")
    run.add_argument("--db", default=None, help="results store (default: user data dir or $LMSCOPE_DB)")
    run.set_defaults(handler=cmd_run)

    score = sub.add_parser("score", help="score a file of outputs against reference files")
    score.add_argument("--hyp", required=True, help="hypotheses, one per line")
    score.add_argument("--ref", required=True, action="append", help="references, one per line (repeatable)")
    score.add_argument("--metrics", default="bleu,chrf", help="comma-separated metric names")
    score.add_argument("--lang", default=None, help="target language (picks tokenizers, e.g. zh)")
    score.add_argument("--format", choices=("text", "json"), default="text")
    score.set_defaults(handler=cmd_score)

    runs = sub.add_parser("runs", help="list stored runs")
    runs.add_argument("--db", default=None)
    runs.set_defaults(handler=cmd_runs)

    show = sub.add_parser("show", help="show a stored run's scores")
    show.add_argument("run_id")
    show.add_argument("--db", default=None)
    show.set_defaults(handler=cmd_show)

    compare = sub.add_parser("compare", help="per-metric deltas between two runs, with significance")
    compare.add_argument("run_a")
    compare.add_argument("run_b")
    compare.add_argument("--model-a", default=None)
    compare.add_argument("--model-b", default=None)
    compare.add_argument("--db", default=None)
    compare.set_defaults(handler=cmd_compare)

    exp = sub.add_parser("export", help="export a stored run")
    exp.add_argument("run_id")
    exp.add_argument("--format", choices=FORMATS, default="json")
    exp.add_argument("--out", default=None, help="file to write (default: stdout)")
    exp.add_argument("--db", default=None)
    exp.set_defaults(handler=cmd_export)

    scen = sub.add_parser("scenarios", help="list the built-in scenarios")
    scen.set_defaults(handler=cmd_scenarios)

    models = sub.add_parser("models", help="list models available without a network")
    models.set_defaults(handler=cmd_models)


# ----------------------------------------------------------------------------------- run
class _Progress:
    """One stderr line per model: done/total, rate, ETA and the live main score."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.lines: dict[str, str] = {}
        self.tty = sys.stderr.isatty()

    def update(self, event: ScoresUpdated) -> None:
        elapsed = time.perf_counter() - self.started
        rate = event.done / elapsed if elapsed > 0 else 0.0
        eta = (event.total - event.done) / rate if rate > 0 else float("inf")
        name, result = next(iter(event.results.items()), ("", None))
        score = f" {name} {result.score:.2f}" if result else ""
        line = f"[{_short(event.model)}] {event.done}/{event.total} ({rate:.2f} ex/s, ETA {eta:.0f} s){score}"
        self.lines[event.model] = line
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _short(model: str, width: int = 32) -> str:
    return model if len(model) <= width else "…" + model[-(width - 1):]


def print_scores(results: dict[str, dict[str, evaluators.MetricResult]], comparisons=()) -> None:
    for model, per in results.items():
        print(f"\n{model}")
        for name, r in per.items():
            ci = f"[{r.ci[0]:.2f}, {r.ci[1]:.2f}]" if r.ci else ""
            print(f"  {name:<18} {r.score:10.3f} {ci:<20} {r.signature}")
    for c in comparisons:
        print(f"  {c.metric}: {_short(c.system)} - {_short(c.baseline)} = {c.result.delta:+.3f} ({_verdict(c.result)})")


def _verdict(res: evaluators.PairedResult) -> str:
    """``p = 0.012, significant`` — or ``identical scores`` when there is no difference to test."""
    if res.delta == 0:
        return "identical scores"
    return f"p = {res.p_value:.4f}, {'significant' if res.significant() else 'not significant'}"


def cmd_run(args: argparse.Namespace) -> int:
    if not args.scenario and not args.resume:
        raise ScenarioError("give a scenario (file or built-in name) or --resume RUN_ID")
    scenario = find_scenario(args.scenario) if args.scenario else None
    models = args.models or ([] if args.resume else ["default"])
    store = Store(args.db)
    config = EngineConfig(threads=getattr(args, "threads", None), device=getattr(args, "device", None),
                          dtype=getattr(args, "dtype", None))

    async def go() -> int:
        progress = _Progress()
        async with Engine(config) as engine:
            run = ScenarioRun(scenario, models, engine, store, limit=args.limit, resume=args.resume,
                              batch_size=args.batch_size, n_bootstrap=args.bootstrap)
            async for event in run:
                if isinstance(event, RunStarted):
                    restored = sum(event.already_done.values())
                    print(f"run {event.run_id}: {event.scenario}, {event.total} examples x {len(event.models)} model(s)"
                          + (f", {restored} restored" if restored else ""), file=sys.stderr)
                elif isinstance(event, ScoresUpdated):
                    progress.update(event)
                elif isinstance(event, ExampleFinished) and event.error:
                    print(f"\nexample {event.example.id} failed on {_short(event.model)}: {event.error}", file=sys.stderr)
                elif isinstance(event, RunFinished):
                    progress.close()
                    print(f"run {event.run_id} finished in {event.elapsed_s:.1f} s")
                    print_scores(event.results, event.comparisons)
                    if args.out:
                        fmt = Path(args.out).suffix.lstrip(".").lower()
                        fmt = {"htm": "html", "markdown": "md"}.get(fmt, fmt)
                        Path(args.out).write_text(export(store, store.run(event.run_id), fmt), encoding="utf-8")
                        print(f"report written to {args.out}")
                    failed = sum(event.failed.values())
                    if failed:
                        print(f"{failed} example(s) failed; `lmscope run --resume {event.run_id}` retries them",
                              file=sys.stderr)
                    return 1 if failed else 0
                elif isinstance(event, RunCancelled):
                    print(f"\nrun {event.run_id} cancelled; resume with `lmscope run --resume {event.run_id}`",
                          file=sys.stderr)
                    return 130
                elif isinstance(event, RunFailed):
                    progress.close()
                    raise ScenarioError(event.message, hint=event.hint)
        return 1

    try:
        return asyncio.run(go())
    finally:
        store.close()


# ---------------------------------------------------------------------------------- score
def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [line.rstrip("\n").rstrip("\r") for line in fh]
    except FileNotFoundError:
        raise ScenarioError("file not found", path=path) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"invalid UTF-8 ({exc.reason})", path=path) from None


def cmd_score(args: argparse.Namespace) -> int:
    hyps = _read_lines(args.hyp)
    ref_sets = [_read_lines(r) for r in args.ref]
    for path, refs in zip(args.ref, ref_sets):
        if len(refs) != len(hyps):
            raise ScenarioError(f"{len(hyps)} hypotheses in {args.hyp} but {len(refs)} references in {path}")
    out = {}
    for name in [m.strip() for m in args.metrics.split(",") if m.strip()]:
        try:
            metric = evaluators.get(name, language=args.lang) if args.lang else evaluators.get(name)
        except TypeError:
            metric = evaluators.get(name)
        result = metric.score_corpus(hyps, [list(r) for r in zip(*ref_sets)])
        out[name] = result
    if args.format == "json":
        print(json.dumps({name: {"score": r.score, "signature": r.signature} for name, r in out.items()},
                         ensure_ascii=False))
    else:
        for r in out.values():
            print(r.format())
    return 0


# --------------------------------------------------------------------------- stored runs
def cmd_runs(args: argparse.Namespace) -> int:
    store = Store(args.db)
    runs = store.runs()
    if not runs:
        print(f"no runs in {store.path}")
    for run in runs:
        done = len(store.examples(run.id, include_failed=False))
        print(f"{run.id}  {run.status:<10} {run.scenario_name:<20} {done}/{run.total * len(run.models)} examples  "
              f"{', '.join(_short(m, 24) for m in run.model_names)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = Store(args.db)
    run = store.run(args.run_id)
    print(f"run {run.id}: {run.scenario_name} ({run.status})")
    print(f"scenario hash {run.scenario_hash[:12]}, seed {run.seed}, generation {json.dumps(run.generation)}")
    for m in run.models:
        print(f"  model {m['name']}: {m['kind']}, {m['device']} {m['dtype']}, {m['num_parameters'] / 1e6:.1f}M params")
    print(f"  versions: {', '.join(f'{k} {v}' for k, v in run.versions.items())}")
    print_scores(corpus_scores(store, run))
    failed = [e for e in store.examples(run.id) if e.error]
    if failed:
        print(f"\n{len(failed)} failed example(s), e.g. {failed[0].example_id}: {failed[0].error}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    store = Store(args.db)
    run_a, run_b = store.run(args.run_a), store.run(args.run_b)
    model_a = args.model_a or run_a.model_names[0]
    model_b = args.model_b or run_b.model_names[0]
    print(f"{run_b.id} ({_short(model_b)}) vs {run_a.id} ({_short(model_a)})")
    for res in paired(store, run_a, model_a, run_b, model_b):
        better = (", B better" if res.system_better else ", A better") if res.significant() else ""
        print(f"  {res.metric:<10} A {res.baseline_score:9.3f}  B {res.system_score:9.3f}  delta {res.delta:+.3f}  "
              f"{_verdict(res)}{better}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = Store(args.db)
    text = export(store, store.run(args.run_id), args.format)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


# -------------------------------------------------------------------------- catalogues
def cmd_scenarios(args: argparse.Namespace) -> int:
    for s in builtin_scenarios():
        from scenarios.examples import load_examples

        count = len(load_examples(s))
        print(f"{s.name:<20} {s.task:<14} {count:>3} examples  {', '.join(m.name for m in s.metrics):<40} {s.description}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from engine.spec import default_model_path

    try:
        print(f"default                  SmolLM2-135M-Instruct (embedded GGUF: {default_model_path()})")
    except LmscopeError as exc:
        print(f"default                  not installed ({exc.hint})")
    try:
        from huggingface_hub import scan_cache_dir

        for repo in sorted(scan_cache_dir().repos, key=lambda r: r.repo_id):
            if repo.repo_type == "model":
                print(f"{repo.repo_id:<24} Hugging Face cache, {repo.size_on_disk / 1e6:.0f} MB")
    except Exception:  # noqa: BLE001 - no cache folder yet is normal
        pass
    print("\nAlso: a model folder (with config.json), a .gguf file, or any hub id cached locally.")
    return 0
