"""The scenario runner: examples → engine (batched) → store → evaluators → events.

``ScenarioRun`` is an async iterator of :mod:`scenarios.events`. Every model gets every
example; models run concurrently; each model's examples go to the engine in batches while
token deltas stream. Each finished example's output is committed to the store first, then
scored, then announced; the model's corpus scores are re-announced after every example.

A run always ends with a status other than ``running``: ``finished`` (every example of every
model has an output), ``failed`` (some examples or whole models failed: the reasons are stored
and ``--resume`` retries them) or ``cancelled``. A model that fails never takes the others down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.metadata
import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Sequence

import evaluators
from engine import LmscopeError, ModelInfo, PerplexityResult
from evaluators import ChoiceOutcome
from scenarios.errors import ScenarioError, describe_error
from scenarios.events import (
    Comparison,
    ExampleDelta,
    ExampleFinished,
    ExampleStarted,
    RunCancelled,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    ScoresUpdated,
)
from scenarios.examples import Example, draw_shots, few_shot_pool, load_examples
from scenarios.choice_runs import CHOICE_CHUNK, chosen_text, plan_choice
from scenarios.prompting import build_request
from scenarios.rescoring import outcome as stored_outcome
from scenarios.rescoring import stored_scenario
from scenarios.scenario import Scenario
from scenarios.scoring import Outcome, corpus_results, fill_metrics, paired_tests, scenario_language, score_one
from scenarios.store import RESUMABLE, Store, StoredExample

if TYPE_CHECKING:
    from engine import Engine

log = logging.getLogger(__name__)
_END = object()
VERSIONED_PACKAGES = ("lmscope", "torch", "transformers", "sacrebleu", "rouge-score", "textual")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def data_hash(scenario: Scenario) -> str:
    """SHA-256 over the scenario's data files (examples, references, few-shot pool), in order."""
    paths = [scenario.data.path, *scenario.data.references]
    if scenario.few_shot is not None and scenario.few_shot.pool is not None:
        paths += [scenario.few_shot.pool.path, *scenario.few_shot.pool.references]
    digest = hashlib.sha256()
    for path in paths:
        if path is None:
            continue
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            digest.update(b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass
class _ModelState:
    info: ModelInfo
    metrics: list[evaluators.Metric]
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    failed: int = 0
    first_error: str | None = None


class ScenarioRun:
    """One run of a scenario over one or more models. Iterate it for events; ``cancel()`` stops
    it at the next decoding step and leaves a resumable run in the store.

    ``resume`` continues a stored run: its examples already finished are restored (scores
    included) and only the rest are generated. A run whose data files changed since it began is
    refused unless ``force``.
    """

    def __init__(self, scenario: Scenario | None, models: Sequence[str], engine: "Engine", store: Store, *,
                 limit: int | None = None, resume: str | None = None, batch_size: int | None = None,
                 n_bootstrap: int = 1000, force: bool = False) -> None:
        self.scenario = scenario
        self.models = list(models)
        self.engine = engine
        self.store = store
        self.limit = limit
        self.resume = resume
        self.batch_size = batch_size
        self.n_bootstrap = n_bootstrap
        self.force = force
        self.run_id: str | None = resume
        self.language: str | None = None
        self._cancelled = False
        self._inflight: set[str] = set()

    def cancel(self) -> None:
        """Stop the run: in-flight generations end within one decoding step; unfinished
        examples are not recorded, so ``resume`` completes them later."""
        self._cancelled = True
        for request_id in list(self._inflight):
            self.engine.cancel(request_id)

    def __aiter__(self) -> AsyncIterator[RunEvent]:
        return self._events()

    # ---------------------------------------------------------------------------- setup
    def _resume_target(self) -> Scenario:
        stored = self.store.run(self.resume)
        self.run_id = stored.id
        if stored.status not in RESUMABLE and stored.status != "running":
            raise ScenarioError(f"run {stored.id} is {stored.status}; only {', '.join(RESUMABLE)} runs can be resumed",
                                hint="start a new run instead")
        scenario = stored_scenario(stored)
        if stored.seed != scenario.seed:  # the run was started with --seed
            scenario = scenario.with_seed(stored.seed)
        self.models = self.models or stored.model_names
        if self.models != stored.model_names:
            raise ScenarioError(f"run {stored.id} was started with models {stored.model_names}; "
                                f"cannot resume it with {self.models}", hint="resume without --model")
        if stored.data_hash and not self.force and data_hash(scenario) != stored.data_hash:
            raise ScenarioError(f"the data of run {stored.id} changed since it began ({scenario.data.path})",
                                hint="scores would mix two versions of the data; pass --force to resume anyway")
        self.limit = stored.limit
        self.language = stored.language
        return scenario

    async def _load_models(self) -> tuple[list[ModelInfo], dict[str, str]]:
        """The models that loaded, and why each other one did not (raises when none did)."""
        infos: list[ModelInfo] = []
        errors: dict[str, LmscopeError] = {}
        for spec in self.models:
            try:
                infos.append(await self.engine.load(spec))
            except LmscopeError as exc:
                errors[spec] = exc
        if not infos:
            raise next(iter(errors.values()))
        return infos, {spec: describe_error(exc)[0] for spec, exc in errors.items()}

    async def _prepare(self) -> tuple[Scenario, list[Example], list[Example], dict[str, _ModelState],
                                      dict[str, set[str]], dict[str, str]]:
        done: dict[str, set[str]] = {}
        scenario = self._resume_target() if self.resume else self.scenario
        if not self.models:
            raise ScenarioError("no model to run", hint="give at least one --model")
        examples = await asyncio.to_thread(load_examples, scenario, self.limit)
        pool = await asyncio.to_thread(few_shot_pool, scenario, examples)
        if self.language is None:
            self.language = scenario_language(scenario, (e.references for e in examples))
        infos, load_errors = await self._load_models()
        self._scenario = scenario
        states = {info.name: _ModelState(info, [spec.build(self.language) for spec in scenario.metrics])
                  for info in infos}
        if self.resume:
            by_id = {e.id: e for e in examples}
            for row in self.store.examples(self.run_id, include_failed=False):
                if row.model in states and row.example_id in by_id:
                    states[row.model].outcomes[row.example_id] = stored_outcome(row)
            for name, state in states.items():
                for example in examples:  # restore the corpus statistics in example order
                    if example.id in state.outcomes:
                        self._score(scenario, state, state.outcomes[example.id])
                done[name] = set(state.outcomes)
            self.store.set_status(self.run_id, "running")
        else:
            path = scenario.path.resolve() if scenario.path else Path.cwd().resolve() / f"{scenario.name}.yaml"
            self.run_id = self.store.create_run(
                scenario_name=scenario.name, scenario_path=str(path),
                scenario_hash=scenario.content_hash, scenario_text=scenario.text,
                models=[dataclasses.asdict(i) for i in infos] + [_failed_model(m, e) for m, e in load_errors.items()],
                generation=dataclasses.asdict(scenario.generation), seed=scenario.seed, limit=self.limit,
                total=len(examples), versions=package_versions(),
                signatures={n: {s.name: m.signature for s, m in zip(scenario.metrics, st.metrics)}
                            for n, st in states.items()},
                data_hash=await asyncio.to_thread(data_hash, scenario), language=self.language)
        return scenario, examples, pool, states, done, load_errors

    # ------------------------------------------------------------------------------ run
    async def _events(self) -> AsyncIterator[RunEvent]:
        started = time.perf_counter()
        try:
            scenario, examples, pool, states, done, load_errors = await self._prepare()
        except LmscopeError as exc:
            yield RunFailed(self.run_id, *describe_error(exc), exc)
            return
        status: str | None = None  # recorded once the run ends on its own
        try:
            yield RunStarted(self.run_id, scenario.name, tuple(s.info for s in states.values()), len(examples),
                             {n: len(d) for n, d in done.items()},
                             {n: {s.name: m.signature for s, m in zip(scenario.metrics, st.metrics)}
                              for n, st in states.items()})
            for name, state in states.items():
                if state.outcomes:
                    yield self._scores_event(name, state, len(examples))
            queue: asyncio.Queue = asyncio.Queue()
            tasks = [asyncio.create_task(self._run_model(
                scenario, state, [e for e in examples if e.id not in done.get(name, set())], pool, queue,
                len(examples))) for name, state in states.items()]
            everything = asyncio.gather(*tasks, return_exceptions=True)
            everything.add_done_callback(lambda _f: queue.put_nowait(_END))
            try:
                while (event := await queue.get()) is not _END:
                    yield event
            finally:
                if not everything.done():  # the consumer went away: stop, and leave a resumable run
                    self.cancel()
                    for task in tasks:
                        task.cancel()
            if self._cancelled:
                status = "cancelled"
                self._set_status(status)
                yield RunCancelled(self.run_id, {n: len(s.outcomes) for n, s in states.items()})
                return
            for name, result in zip(states, everything.result()):
                if isinstance(result, BaseException):  # a bug, not a model error: keep the others
                    states[name].first_error = describe_error(result)[0]
            model_errors = dict(load_errors)
            model_errors.update({n: s.first_error for n, s in states.items()
                                 if s.first_error and not s.outcomes})
            failed = {n: s.failed for n, s in states.items()} | {m: len(examples) for m in load_errors}
            results, comparisons = await asyncio.to_thread(self._final_scores, scenario, states)
            status = "failed" if model_errors or any(failed.values()) else "finished"
            self._set_status(status, model_errors)
            yield RunFinished(self.run_id, results, comparisons, failed, time.perf_counter() - started,
                              model_errors)
        except Exception:
            if status is None:
                status = "failed"
                self._set_status(status)
            raise
        finally:
            if status is None:  # the consumer went away (or the task was cancelled): resumable
                self._set_status("cancelled")

    def _set_status(self, status: str, model_errors: dict[str, str] | None = None) -> None:
        try:
            self.store.set_status(self.run_id, status, model_errors)
        except LmscopeError as exc:  # the store's reconcile() marks the run interrupted later
            log.warning("could not record run %s as %s: %s", self.run_id, status, exc.message)

    async def _run_model(self, scenario: Scenario, state: _ModelState, pending: list[Example], pool: list[Example],
                         queue: asyncio.Queue, total: int) -> None:
        if scenario.is_choice:
            await self._run_choices(scenario, state, pending, pool, queue, total)
            return
        name = state.info.name
        size = self.batch_size or getattr(await self.engine.backend(name), "batch_size", 8)
        # Batches of similar prompt length waste less compute on padding, as the engine's own
        # batching does; the order examples finish in does not matter (they carry their index).
        planned = sorted(((build_request(scenario, state.info, e, draw_shots(scenario, pool, e)), e) for e in pending),
                         key=lambda pair: -_prompt_length(pair[0]))
        for chunk in _chunks(planned, size):
            if self._cancelled:
                return
            await self._run_batch(scenario, state, chunk, queue, total)

    async def _run_batch(self, scenario: Scenario, state: _ModelState, chunk: list, queue: asyncio.Queue,
                         total: int) -> None:
        name = state.info.name
        requests, batch = [r for r, _ in chunk], [e for _, e in chunk]
        for example in batch:
            queue.put_nowait(ExampleStarted(self.run_id, name, example.id, example.index))
        by_request = {r.request_id: e for r, e in zip(requests, batch)}
        self._inflight.update(by_request)
        results, likelihoods, error = [None] * len(batch), [None] * len(batch), None
        try:
            if scenario.needs_generation:
                results = await self.engine.generate(requests, on_delta=lambda d: queue.put_nowait(
                    ExampleDelta(self.run_id, name, by_request[d.request_id].id, d.text)))
            if any(m.is_likelihood for m in scenario.metrics):
                likelihoods = await self.engine.perplexity(name, [e.input for e in batch])
        except Exception as exc:  # noqa: BLE001 - one batch's failure must not end the run
            error = describe_error(exc)[0]
        finally:
            self._inflight.difference_update(by_request)
        if self._cancelled:
            return  # partial outputs of cancelled requests are not results
        for example, request, result, likelihood in zip(batch, requests, results, likelihoods):
            prompt = _prompt_text(request, result)
            if error is not None:
                self._fail(state, example, prompt, error, queue)
            else:
                self._finish(scenario, state, example, prompt, result, likelihood, queue)
            if state.outcomes:  # the corpus scores move with every example, not every batch
                queue.put_nowait(self._scores_event(state.info.name, state, total))

    async def _run_choices(self, scenario: Scenario, state: _ModelState, pending: list[Example], pool: list[Example],
                           queue: asyncio.Queue, total: int) -> None:
        """Choice tasks: every option of a chunk of examples (and their content-free prompts, when
        a metric calibrates) goes to the engine as one scoring job; nothing is generated."""
        name = state.info.name
        calibrate = any(m.calibrated for m in scenario.metrics)
        planned = [(e, plan_choice(scenario, state.info, e, draw_shots(scenario, pool, e), calibrate)) for e in pending]
        for chunk in _chunks(planned, self.batch_size or CHOICE_CHUNK):
            if self._cancelled:
                return
            for example, _ in chunk:
                queue.put_nowait(ExampleStarted(self.run_id, name, example.id, example.index))
            jobs = list(dict.fromkeys(r for _, plan in chunk for r in plan.requests))  # shared prompts once
            started = time.perf_counter()
            try:
                scored = dict(zip(jobs, await self.engine.score_choices(name, jobs)))
                error = None
            except Exception as exc:  # noqa: BLE001 - one chunk's failure must not end the run
                scored, error = {}, describe_error(exc)[0]
            if self._cancelled:
                return
            latency = (time.perf_counter() - started) / len(chunk)
            for example, plan in chunk:
                if error is not None:
                    self._fail(state, example, plan.prompt, error, queue)
                else:
                    self._finish(scenario, state, example, plan.prompt, None, plan.outcome(scored), queue, latency)
            if state.outcomes:
                queue.put_nowait(self._scores_event(name, state, total))

    def _fail(self, state: _ModelState, example: Example, prompt: str, error: str, queue: asyncio.Queue) -> None:
        name = state.info.name
        state.failed += 1
        state.first_error = state.first_error or error
        self.store.record_example(StoredExample(
            self.run_id, name, example.id, example.index, example.input, prompt, "", example.references,
            {}, None, 0.0, 0, error))
        queue.put_nowait(ExampleFinished(self.run_id, name, example, prompt, "", {}, 0.0, 0, error))

    def _finish(self, scenario: Scenario, state: _ModelState, example: Example, prompt: str, result,
                likelihood: PerplexityResult | ChoiceOutcome | None, queue: asyncio.Queue,
                latency: float = 0.0) -> None:
        name = state.info.name
        output = result.text if result else chosen_text(likelihood)
        outcome = Outcome(example.index, output, example.references, likelihood)
        latency = result.usage.total_time_s if result else latency
        new_tokens = result.usage.new_tokens if result else 0
        warnings = tuple(result.warnings) if result else ()
        # The output is committed before it is scored: a scoring failure loses nothing.
        self.store.record_example(StoredExample(
            self.run_id, name, example.id, example.index, example.input, prompt, outcome.output,
            example.references, {}, dataclasses.asdict(likelihood) if likelihood else None,
            latency, new_tokens, None, warnings))
        try:
            scores, score_warnings = self._score(scenario, state, outcome)
        except Exception as exc:  # noqa: BLE001 - e.g. a metric's missing dependency
            message = f"scoring failed: {describe_error(exc)[0]}"
            state.failed += 1
            state.first_error = state.first_error or message
            self.store.set_example_scores(self.run_id, name, example.id, {}, warnings, error=message)
            queue.put_nowait(ExampleFinished(self.run_id, name, example, prompt, outcome.output, {}, latency,
                                             new_tokens, message, warnings))
            return
        state.outcomes[example.id] = outcome
        warnings += score_warnings
        self.store.set_example_scores(self.run_id, name, example.id, scores, warnings)
        queue.put_nowait(ExampleFinished(self.run_id, name, example, prompt, outcome.output, scores,
                                         latency, new_tokens, None, warnings))

    # -------------------------------------------------------------------------- scoring
    @staticmethod
    def _score(scenario: Scenario, state: _ModelState, outcome: Outcome) -> tuple[dict[str, float], tuple[str, ...]]:
        scores, warnings = {}, []
        for spec, metric in zip(scenario.metrics, state.metrics):
            scored = score_one(spec, metric, outcome)
            scores[spec.name] = scored.score
            warnings += [f"{scored.name}: {w.message}" for w in scored.warnings if w.scope == "corpus"]
        return scores, tuple(warnings)

    def _scores_event(self, name: str, state: _ModelState, total: int) -> ScoresUpdated:
        """Live corpus scores, without intervals: those come with the final results, computed in
        data order as every other view computes them."""
        results = {spec.name: metric.corpus(ci=False) for spec, metric in zip(self._scenario.metrics, state.metrics)
                   if len(metric)}
        return ScoresUpdated(self.run_id, name, len(state.outcomes) + state.failed, total, results)

    def _final_scores(self, scenario: Scenario, states: dict[str, _ModelState]
                      ) -> tuple[dict[str, dict[str, evaluators.MetricResult]], tuple[Comparison, ...]]:
        """Corpus results and paired tests exactly as ``show`` and the exports recompute them."""
        results = {name: corpus_results(fill_metrics(scenario, self.language, s.outcomes.values()), self.n_bootstrap)
                   for name, s in states.items() if s.outcomes}
        comparisons = []
        for (a, sa), (b, sb) in itertools.combinations(states.items(), 2):
            if len(set(sa.outcomes) & set(sb.outcomes)) < 2:
                continue
            tests = paired_tests(scenario, self.language, list(sa.outcomes.values()), list(sb.outcomes.values()))
            comparisons += [Comparison(metric, a, b, result) for metric, result in tests.items()]
        return results, tuple(comparisons)


def _failed_model(spec: str, error: str) -> dict:
    """The run record of a model that could not be loaded."""
    return {"name": spec, "source": spec, "kind": "unknown", "device": "-", "dtype": "-", "context_length": None,
            "num_parameters": 0, "memory_bytes": 0, "has_chat_template": False, "load_time_s": 0.0,
            "error": error}


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _prompt_length(request) -> int:
    if hasattr(request, "messages"):
        return sum(len(m.content) for m in request.messages)
    return len(getattr(request, "prompt", None) or getattr(request, "text", ""))


def _prompt_text(request, result) -> str:
    if result is not None:
        return result.prompt_text
    return getattr(request, "prompt", None) or getattr(request, "text", None) or \
        "\n".join(f"{m.role}: {m.content}" for m in getattr(request, "messages", ()))
