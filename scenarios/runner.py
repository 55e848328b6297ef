"""The scenario runner: examples → engine (batched) → evaluators → events and the store.

``ScenarioRun`` is an async iterator of :mod:`scenarios.events`. Every model gets every
example; models run concurrently; each model's examples go to the engine in batches while
token deltas stream; each finished example is scored, committed to the store and announced,
then the model's corpus scores (with bootstrap intervals) are re-announced.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import itertools
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Sequence

import evaluators
from engine import Engine, LmscopeError, ModelInfo, PerplexityResult
from scenarios.errors import ScenarioError
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
from scenarios.prompting import build_request
from scenarios.rescoring import stored_scenario
from scenarios.scenario import Scenario
from scenarios.store import Store, StoredExample

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


@dataclass
class _Outcome:
    """What one model produced for one example, enough to rescore it."""

    output: str
    references: tuple[str, ...]
    likelihood: PerplexityResult | None


@dataclass
class _ModelState:
    info: ModelInfo
    metrics: list[evaluators.Metric]
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    failed: int = 0


class ScenarioRun:
    """One run of a scenario over one or more models. Iterate it for events; ``cancel()`` stops
    it at the next decoding step and leaves a resumable run in the store.

    ``resume`` continues a stored run: its examples already finished are restored (scores
    included) and only the rest are generated.
    """

    def __init__(self, scenario: Scenario | None, models: Sequence[str], engine: Engine, store: Store, *,
                 limit: int | None = None, resume: str | None = None, batch_size: int | None = None,
                 n_bootstrap: int = 1000) -> None:
        self.scenario = scenario
        self.models = list(models)
        self.engine = engine
        self.store = store
        self.limit = limit
        self.resume = resume
        self.batch_size = batch_size
        self.n_bootstrap = n_bootstrap
        self.run_id: str | None = resume
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
    async def _prepare(self) -> tuple[Scenario, list[Example], list[Example], dict[str, _ModelState], dict[str, set[str]]]:
        done: dict[str, set[str]] = {}
        if self.resume:
            stored = self.store.run(self.resume)
            self.run_id = stored.id
            scenario = stored_scenario(stored)
            self.models = self.models or stored.model_names
            if self.models != stored.model_names:
                raise ScenarioError(f"run {stored.id} was started with models {stored.model_names}; "
                                    f"cannot resume it with {self.models}", hint="resume without --model")
            self.limit = stored.limit
        else:
            scenario = self.scenario
        if not self.models:
            raise ScenarioError("no model to run", hint="give at least one --model")
        examples = await asyncio.to_thread(load_examples, scenario, self.limit)
        pool = await asyncio.to_thread(few_shot_pool, scenario, examples)
        infos = [await self.engine.load(m) for m in self.models]
        states = {info.name: _ModelState(info, [scenario.make_metric(s) for s in scenario.metrics]) for info in infos}
        if self.resume:
            by_id = {e.id: e for e in examples}
            for row in self.store.examples(self.run_id, include_failed=False):
                if row.model in states and row.example_id in by_id:
                    likelihood = PerplexityResult(**row.likelihood) if row.likelihood else None
                    states[row.model].outcomes[row.example_id] = _Outcome(row.output, row.references, likelihood)
            for name, state in states.items():
                for example in examples:  # restore the corpus statistics in example order
                    if example.id in state.outcomes:
                        self._score(scenario, state, example, state.outcomes[example.id])
                done[name] = set(state.outcomes)
            self.store.set_status(self.run_id, "running")
        else:
            self.run_id = self.store.create_run(
                scenario_name=scenario.name, scenario_path=str(scenario.path) if scenario.path else None,
                scenario_hash=scenario.content_hash, scenario_text=scenario.text,
                models=[dataclasses.asdict(i) for i in infos],
                generation=dataclasses.asdict(scenario.generation), seed=scenario.seed, limit=self.limit,
                total=len(examples), versions=package_versions(),
                signatures={n: {s.name: m.signature for s, m in zip(scenario.metrics, st.metrics)}
                            for n, st in states.items()})
        return scenario, examples, pool, states, done

    # ------------------------------------------------------------------------------ run
    async def _events(self) -> AsyncIterator[RunEvent]:
        started = time.perf_counter()
        try:
            scenario, examples, pool, states, done = await self._prepare()
        except LmscopeError as exc:
            yield RunFailed(self.run_id, exc.message, exc.hint)
            return
        yield RunStarted(self.run_id, scenario.name, tuple(s.info for s in states.values()), len(examples),
                         {n: len(d) for n, d in done.items()},
                         {n: {s.name: m.signature for s, m in zip(scenario.metrics, st.metrics)}
                          for n, st in states.items()})
        for name, state in states.items():
            if state.outcomes:
                yield self._scores_event(scenario, name, state, len(examples))
        queue: asyncio.Queue = asyncio.Queue()
        tasks = [asyncio.create_task(self._run_model(scenario, state, [e for e in examples if e.id not in done.get(name, set())],
                                                      pool, queue, len(examples)))
                 for name, state in states.items()]
        everything = asyncio.gather(*tasks, return_exceptions=True)
        everything.add_done_callback(lambda _f: queue.put_nowait(_END))
        completed = False
        try:
            while (event := await queue.get()) is not _END:
                yield event
            completed = True
        finally:
            if not completed:  # the consumer went away: stop, and leave a resumable run
                self.cancel()
                for task in tasks:
                    task.cancel()
                self.store.set_status(self.run_id, "cancelled")
        errors = [r for r in everything.result() if isinstance(r, BaseException)]
        if self._cancelled:
            self.store.set_status(self.run_id, "cancelled")
            yield RunCancelled(self.run_id, {n: len(s.outcomes) for n, s in states.items()})
            return
        if errors:
            self.store.set_status(self.run_id, "failed")
            error = errors[0]
            yield RunFailed(self.run_id, getattr(error, "message", f"{type(error).__name__}: {error}"),
                            getattr(error, "hint", None))
            return
        comparisons = await asyncio.to_thread(self._comparisons, scenario, examples, states)
        results = {n: self._corpus(scenario, s) for n, s in states.items()}
        self.store.set_status(self.run_id, "finished" if not any(s.failed for s in states.values()) else "incomplete")
        yield RunFinished(self.run_id, results, comparisons, {n: s.failed for n, s in states.items()},
                          time.perf_counter() - started)

    async def _run_model(self, scenario: Scenario, state: _ModelState, pending: list[Example], pool: list[Example],
                         queue: asyncio.Queue, total: int) -> None:
        name = state.info.name
        size = self.batch_size or getattr(await self.engine.backend(name), "batch_size", 8)
        # Batches of similar prompt length waste less compute on padding, as the engine's own
        # batching does; the order examples finish in does not matter (they carry their index).
        planned = sorted(((build_request(scenario, state.info, e, draw_shots(scenario, pool, e)), e) for e in pending),
                         key=lambda pair: -_prompt_length(pair[0]))
        for chunk in _chunks(planned, size):
            if self._cancelled:
                return
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
            except LmscopeError as exc:
                error = exc.message
            finally:
                self._inflight.difference_update(by_request)
            if self._cancelled:
                return  # partial outputs of cancelled requests are not results
            for example, request, result, likelihood in zip(batch, requests, results, likelihoods):
                prompt = _prompt_text(request, result)
                if error is not None:
                    state.failed += 1
                    self.store.record_example(StoredExample(
                        self.run_id, name, example.id, example.index, example.input, prompt, "", example.references,
                        {}, None, 0.0, 0, error))
                    queue.put_nowait(ExampleFinished(self.run_id, name, example, prompt, "", {}, 0.0, 0, error))
                    continue
                outcome = _Outcome(result.text if result else "", example.references, likelihood)
                scores = self._score(scenario, state, example, outcome)
                state.outcomes[example.id] = outcome
                latency = result.usage.total_time_s if result else 0.0
                new_tokens = result.usage.new_tokens if result else 0
                self.store.record_example(StoredExample(
                    self.run_id, name, example.id, example.index, example.input, prompt, outcome.output,
                    example.references, scores, dataclasses.asdict(likelihood) if likelihood else None,
                    latency, new_tokens, None))
                queue.put_nowait(ExampleFinished(self.run_id, name, example, prompt, outcome.output, scores,
                                                 latency, new_tokens))
            if state.outcomes:
                queue.put_nowait(self._scores_event(scenario, name, state, total))

    # -------------------------------------------------------------------------- scoring
    @staticmethod
    def _score(scenario: Scenario, state: _ModelState, example: Example, outcome: _Outcome) -> dict[str, float]:
        scores = {}
        for spec, metric in zip(scenario.metrics, state.metrics):
            if spec.is_likelihood:
                scored = metric.add(outcome.likelihood)
            else:
                scored = metric.add(outcome.output, outcome.references)
            scores[spec.name] = scored.score
        return scores

    def _corpus(self, scenario: Scenario, state: _ModelState) -> dict[str, evaluators.MetricResult]:
        results = {}
        for spec, metric in zip(scenario.metrics, state.metrics):
            metric.n_bootstrap = self.n_bootstrap
            results[spec.name] = metric.corpus(ci=self.n_bootstrap > 0 and len(metric) > 1)
        return results

    def _scores_event(self, scenario: Scenario, name: str, state: _ModelState, total: int) -> ScoresUpdated:
        return ScoresUpdated(self.run_id, name, len(state.outcomes) + state.failed, total,
                             self._corpus(scenario, state))

    def _comparisons(self, scenario: Scenario, examples: list[Example],
                     states: dict[str, _ModelState]) -> tuple[Comparison, ...]:
        """Paired tests between every pair of models, on the examples both finished, in order."""
        comparisons = []
        for (a, sa), (b, sb) in itertools.combinations(states.items(), 2):
            common = [e for e in examples if e.id in sa.outcomes and e.id in sb.outcomes]
            if len(common) < 2:
                continue
            for spec in scenario.metrics:
                pair = []
                for state in (sa, sb):
                    metric = scenario.make_metric(spec)
                    for e in common:
                        o = state.outcomes[e.id]
                        metric.add(o.likelihood) if spec.is_likelihood else metric.add(o.output, o.references)
                    pair.append(metric)
                comparisons.append(Comparison(spec.name, a, b, evaluators.paired_test(pair[0], pair[1])))
        return tuple(comparisons)


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
