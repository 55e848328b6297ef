"""Headless commands: run, score, runs, show, compare, export, scenarios, models.

Each ``cmd_*`` takes parsed arguments, prints to stdout (progress to stderr) and returns an exit
status. ``add_commands`` registers them on the ``lmscope`` argument parser. Nothing here imports
torch until a command needs a model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import evaluators
from engine import LmscopeError
from scenarios.arguments import add_backend_option, at_least, chosen_backend, seed
from scenarios.catalog import builtin_scenarios, find_scenario
from scenarios.choice_report import confusion_report_lines, disagreement_lines
from scenarios.errors import DataError, ScenarioError
from scenarios.progress import RunProgress
from scenarios.events import ExampleFinished, RunCancelled, RunFailed, RunFinished, RunStarted, ScoresUpdated
from scenarios.report import FORMATS, export, format_for_path
from scenarios.rescoring import common_examples, corpus_scores, paired
from scenarios.store import Store


def add_commands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a scenario headless and print scores")
    run.add_argument("scenario", nargs="?", help="a scenario file or a built-in name (see `lmscope scenarios`)")
    run.add_argument("--model", "-m", dest="models", action="append", default=[],
                     help="model to run (repeat to compare several); default: the embedded default")
    run.add_argument("--limit", type=at_least(1), default=None, help="run only the first N examples")
    run.add_argument("--seed", type=seed, default=None, help="override the scenario's seed")
    run.add_argument("--out", default=None, help="write a report (.json, .csv, .md or .html)")
    run.add_argument("--resume", metavar="RUN_ID", default=None,
                     help="complete an interrupted, failed or cancelled run")
    run.add_argument("--force", action="store_true", help="resume even though the data files changed")
    run.add_argument("--batch-size", type=at_least(1), default=None)
    add_backend_option(run, dest="command_backend")
    run.add_argument("--bootstrap", type=at_least(0), default=1000, help="bootstrap resamples for CIs (0 = none)")
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

    compare = sub.add_parser("compare", help="per-metric deltas between two runs (B against A), with significance")
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
    """One stderr line per model: done/total, rate, ETA (the run screen's model:
    :class:`scenarios.progress.RunProgress`) and the live main score."""

    def __init__(self) -> None:
        self.progress = RunProgress()
        self.tty = sys.stderr.isatty()

    def start(self, event: RunStarted) -> None:
        for info in event.models:
            self.progress.start(info.name, event.total, event.already_done.get(info.name, 0))

    def update(self, event: ScoresUpdated) -> None:
        if event.model not in self.progress.models:
            return
        self.progress.update(event.model, event.done)
        model = self.progress.models[event.model]
        rate, eta = model.rate(), self.progress.eta()
        name, result = next(iter(event.results.items()), ("", None))
        score = f" {name} {result.score:.2f}" if result else ""
        timing = f"{rate:.2f} ex/s, run ETA {eta:.0f} s" if rate and eta is not None else "measuring…"
        line = f"[{_short(event.model)}] {event.done}/{event.total} ({timing}){score}"
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _short(model: str, width: int = 32) -> str:
    return model if len(model) <= width else "…" + model[-(width - 1):]


def print_scores(results: dict[str, dict[str, evaluators.MetricResult]], comparisons=(),
                 counts: dict[str, str] | None = None) -> None:
    """Each model's corpus results (one line per metric, as ``MetricResult.format`` writes it),
    then the paired tests."""
    for model, per in results.items():
        print(f"\n{model}" + (f" ({counts[model]})" if counts and model in counts else ""))
        for r in per.values():
            print(f"  {r.format()}")
            for warning in r.warnings:
                print(f"    warning: {warning.message}")
    for c in comparisons:
        print(f"  {c.metric}: {_short(c.system)} - {_short(c.baseline)} = {c.result.delta:+.3f} ({_verdict(c.result)})")


def _verdict(res: evaluators.PairedResult) -> str:
    """``p = 0.012, significant`` — or ``identical scores`` when there is no difference to test."""
    if res.delta == 0:
        return "identical scores"
    return f"p = {res.p_value:.4f}, {'significant' if res.significant() else 'not significant'}"


def _check_report_path(out: str | None) -> str | None:
    """The report format for ``--out``, checked before anything runs."""
    if out is None:
        return None
    fmt = format_for_path(out)
    folder = Path(out).expanduser().resolve().parent
    if not folder.is_dir():
        raise ScenarioError(f"cannot write the report: folder {folder} does not exist", hint="create it first")
    if Path(out).is_dir():
        raise ScenarioError(f"cannot write the report: {out} is a folder", hint="give a file name")
    return fmt


def cmd_run(args: argparse.Namespace) -> int:
    from engine import Engine, EngineConfig
    from scenarios.runner import ScenarioRun

    if not args.scenario and not args.resume:
        raise ScenarioError("give a scenario (file or built-in name) or --resume RUN_ID")
    if args.scenario and args.resume:
        raise ScenarioError("give either a scenario or --resume RUN_ID, not both")
    report_format = _check_report_path(args.out)
    scenario = find_scenario(args.scenario) if args.scenario else None
    if scenario is not None and args.seed is not None:
        scenario = scenario.with_seed(args.seed)
    models = args.models or ([] if args.resume else ["default"])
    store = Store(args.db)
    config = EngineConfig(threads=getattr(args, "threads", None), device=getattr(args, "device", None),
                          dtype=getattr(args, "dtype", None), backend=chosen_backend(args))

    async def go() -> int:
        progress = _Progress()
        async with Engine(config) as engine:
            run = ScenarioRun(scenario, models, engine, store, limit=args.limit, resume=args.resume,
                              batch_size=args.batch_size, n_bootstrap=args.bootstrap, force=args.force)
            async for event in run:
                if isinstance(event, RunStarted):
                    progress.start(event)
                    restored = sum(event.already_done.values())
                    print(f"run {event.run_id}: {event.scenario}, {event.total} examples x {len(event.models)} model(s)"
                          + (f", {restored} restored" if restored else ""), file=sys.stderr)
                elif isinstance(event, ScoresUpdated):
                    progress.update(event)
                elif isinstance(event, ExampleFinished):
                    if event.error:
                        print(f"\nexample {event.example.id} failed on {_short(event.model)}: {event.error}",
                              file=sys.stderr)
                    for warning in event.warnings:
                        print(f"\nexample {event.example.id} on {_short(event.model)}: warning: {warning}",
                              file=sys.stderr)
                elif isinstance(event, RunFinished):
                    progress.close()
                    return _finished(event, store, args.out, report_format)
                elif isinstance(event, RunCancelled):
                    print(f"\nrun {event.run_id} cancelled; resume with `lmscope run --resume {event.run_id}`",
                          file=sys.stderr)
                    return 130
                elif isinstance(event, RunFailed):
                    progress.close()
                    raise event.error or ScenarioError(event.message, hint=event.hint)
        return 1

    try:
        return asyncio.run(go())
    finally:
        store.close()


def _finished(event: RunFinished, store: Store, out: str | None, report_format: str | None) -> int:
    print(f"run {event.run_id} finished in {event.elapsed_s:.1f} s")
    run = store.run(event.run_id)
    print_scores(event.results, event.comparisons, _example_counts(store, run))
    for model, reason in event.model_errors.items():
        print(f"\n{model}: failed: {reason}")
    if out:
        try:
            Path(out).expanduser().write_text(export(store, run, report_format), encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot write the report {out}: {exc.strerror}",
                                hint=f"the run is stored: `lmscope export {event.run_id} --out FILE`") from None
        print(f"report written to {out}")
    failed = sum(event.failed.values())
    if failed:
        print(f"{failed} example(s) failed; `lmscope run --resume {event.run_id}` retries them", file=sys.stderr)
    return 1 if failed else 0


def _example_counts(store: Store, run) -> dict[str, str]:
    """model -> ``8/10 examples, 2 failed`` for a run."""
    counts = {}
    for model in run.model_names:
        rows = store.examples(run.id, model)
        failed = sum(1 for r in rows if r.error)
        counts[model] = f"{len(rows) - failed}/{run.total} examples" + (f", {failed} failed" if failed else "")
    return counts


# ---------------------------------------------------------------------------------- score
def read_lines(path: str) -> list[str]:
    """The lines of a text file as sacrebleu reads them: split at ``\\n`` only (a ``\\r`` inside
    a line is kept; a ``\\r\\n`` ending loses its ``\\r``)."""
    try:
        with open(path, encoding="utf-8", newline="\n") as fh:
            return [line[:-1] if line.endswith("\n") else line for line in fh]
    except FileNotFoundError:
        raise DataError("file not found", path=path) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a file of lines", path=path) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"invalid UTF-8 at byte {exc.start}", path=path, hint="re-encode the file as UTF-8") from None
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", path=path) from None


def _metric_names(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise ScenarioError(f"--metrics {text!r} names no metric", hint="e.g. --metrics bleu,chrf")
    for name in names:
        if evaluators.entry(name).input == "likelihood":
            raise ScenarioError(f"{name} is computed from a model's log-likelihoods, not from text files",
                                hint="run a scenario with that metric: `lmscope run perplexity`")
    return names


def cmd_score(args: argparse.Namespace) -> int:
    names = _metric_names(args.metrics)
    hyps = read_lines(args.hyp)
    ref_sets = [read_lines(r) for r in args.ref]
    for path, refs in zip(args.ref, ref_sets):
        if len(refs) != len(hyps):
            raise ScenarioError(f"{len(hyps)} hypotheses in {args.hyp} but {len(refs)} references in {path}")
    if not hyps:
        raise DataError("no lines to score", path=args.hyp, hint="the files are empty")
    references = [list(r) for r in zip(*ref_sets)]
    language = evaluators.resolve_language(args.lang, (r for refs in references for r in refs))
    out = {name: evaluators.build(name, language=language).score_corpus(hyps, references) for name in names}
    if args.format == "json":
        print(json.dumps({name: {"score": r.score, "signature": r.signature, "n": r.n,
                                 "warnings": [w.message for w in r.warnings]} for name, r in out.items()},
                         ensure_ascii=False))
    else:
        for r in out.values():
            print(r.format())
            for warning in r.warnings:
                print(f"  warning: {warning.message}")
    return 0


# --------------------------------------------------------------------------- stored runs
def cmd_runs(args: argparse.Namespace) -> int:
    store = Store(args.db)
    runs = store.runs()
    if not runs:
        print(f"no runs in {store.path}")
    for run in runs:
        done = done_examples(store, run)
        print(f"{run.id}  {run.status:<11} {run.scenario_name:<20} {done}/{run.total * len(run.models)} examples  "
              f"{', '.join(_short(m, 24) for m in run.model_names)}")
    return 0


def done_examples(store: Store, run) -> int:
    """Examples of a run with an output (every model together), as ``runs`` counts them."""
    return len(store.examples(run.id, include_failed=False))


def cmd_show(args: argparse.Namespace) -> int:
    store = Store(args.db)
    run = store.run(args.run_id)
    print(f"run {run.id}: {run.scenario_name} ({run.status})")
    print(f"scenario hash {run.scenario_hash[:12]}, seed {run.seed}, language {run.language or 'not set'}, "
          f"generation {json.dumps(run.generation)}")
    for m in run.models:
        if m.get("error"):
            print(f"  model {m['name']}: failed to load: {m['error']}")
        else:
            print(f"  model {m['name']}: {m['kind']}, {m.get('backend', 'unknown')} backend, {m['device']} "
                  f"{m['dtype']}, {_parameters(m['num_parameters'])} params")
    print(f"  versions: {', '.join(f'{k} {v}' for k, v in run.versions.items())}")
    print_scores(corpus_scores(store, run), counts=_example_counts(store, run))
    for line in confusion_report_lines(store.examples(run.id)):
        print(line)
    for model, reason in run.model_errors.items():
        print(f"\n{model}: failed: {reason}")
    failed = [e for e in store.examples(run.id) if e.error]
    if failed:
        print(f"\n{len(failed)} failed example(s), e.g. {failed[0].example_id}: {failed[0].error}")
    return 0


def _parameters(count: int) -> str:
    if count >= 1e9:
        return f"{count / 1e9:.1f}B"
    if count >= 1e6:
        return f"{count / 1e6:.1f}M"
    return f"{count / 1e3:.1f}K" if count >= 1e3 else str(count)


def cmd_compare(args: argparse.Namespace) -> int:
    store = Store(args.db)
    print("\n".join(compare_runs(store, args.run_a, args.run_b, args.model_a, args.model_b)))
    return 0


def compare_runs(store: Store, run_a_id: str, run_b_id: str, model_a: str | None = None,
                 model_b: str | None = None) -> list[str]:
    """The paired comparison of two stored runs (first models unless named), as lines of text."""
    run_a, run_b = store.run(run_a_id), store.run(run_b_id)
    model_a = model_a or run_a.model_names[0]
    model_b = model_b or run_b.model_names[0]
    for run, model, flag in ((run_a, model_a, "--model-a"), (run_b, model_b, "--model-b")):
        if model not in run.model_names:
            raise ScenarioError(f"run {run.id} has no model {model!r}", hint=f"{flag} one of {run.model_names}")
    rows_a, rows_b = common_examples(store, run_a, model_a, run_b, model_b)
    ids_a = {r.example_id for r in store.examples(run_a.id, model_a, include_failed=False)}
    ids_b = {r.example_id for r in store.examples(run_b.id, model_b, include_failed=False)}
    lines = [f"A = run {run_a.id} ({_short(model_a)})", f"B = run {run_b.id} ({_short(model_b)})",
             f"compared on {len(rows_a)} examples both finished; "
             f"missing from B: {_some(ids_a - ids_b)}; missing from A: {_some(ids_b - ids_a)}"]
    for res in paired(store, run_a, model_a, run_b, model_b):
        better = (", B better" if res.system_better else ", A better") if res.significant() else ""
        lines.append(f"  {res.metric:<10} A {res.baseline_score:9.3f}  B {res.system_score:9.3f}  "
                     f"delta {res.delta:+.3f}  {_verdict(res)}{better}")
    return lines + disagreement_lines(rows_a, rows_b)


def _some(ids: set[str], shown: int = 5) -> str:
    if not ids:
        return "none"
    ordered = sorted(ids)
    more = f" and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return f"{len(ordered)} ({', '.join(ordered[:shown])}{more})"


def cmd_export(args: argparse.Namespace) -> int:
    store = Store(args.db)
    text = export(store, store.run(args.run_id), args.format)
    if args.out:
        write_export(text, args.out)
        print(f"written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def write_export(text: str, out: str) -> None:
    """Write an exported report; an unwritable path is one clear error."""
    try:
        Path(out).expanduser().write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot write {out}: {exc.strerror}") from None


# -------------------------------------------------------------------------- catalogues
def cmd_scenarios(args: argparse.Namespace) -> int:
    from scenarios.examples import load_examples

    for s in builtin_scenarios():
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
