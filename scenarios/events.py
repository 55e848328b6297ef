"""What a scenario run tells its consumers (the TUI, the CLI, tests): typed, past-tense events."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import ModelInfo
from evaluators import MetricResult, PairedResult
from scenarios.examples import Example


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    scenario: str
    models: tuple[ModelInfo, ...]
    total: int  # examples per model
    already_done: dict[str, int]  # per model, examples restored from the store on resume
    signatures: dict[str, dict[str, str]]  # model -> metric -> signature


@dataclass(frozen=True)
class ExampleStarted:
    run_id: str
    model: str
    example_id: str
    index: int


@dataclass(frozen=True)
class ExampleDelta:
    """Streamed text of one example's output (never coalesced)."""

    run_id: str
    model: str
    example_id: str
    text: str


@dataclass(frozen=True)
class ExampleFinished:
    run_id: str
    model: str
    example: Example
    prompt: str
    output: str
    scores: dict[str, float]
    latency_s: float
    new_tokens: int
    error: str | None = None
    warnings: tuple[str, ...] = ()  # truncated input, scoring warnings


@dataclass(frozen=True)
class ScoresUpdated:
    """Corpus scores of one model after ``done`` examples (with bootstrap CIs)."""

    run_id: str
    model: str
    done: int
    total: int
    results: dict[str, MetricResult]


@dataclass(frozen=True)
class Comparison:
    """Paired significance test of ``system`` against ``baseline`` on one metric."""

    metric: str
    baseline: str
    system: str
    result: PairedResult


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    results: dict[str, dict[str, MetricResult]]  # model -> metric -> corpus result
    comparisons: tuple[Comparison, ...] = ()
    failed: dict[str, int] = field(default_factory=dict)  # model -> examples that errored
    elapsed_s: float = 0.0
    model_errors: dict[str, str] = field(default_factory=dict)  # model -> why it failed as a whole


@dataclass(frozen=True)
class RunCancelled:
    run_id: str
    done: dict[str, int]


@dataclass(frozen=True)
class RunFailed:
    run_id: str | None
    message: str
    hint: str | None = None
    error: Exception | None = None  # the error itself, for a caller that re-raises it


RunEvent = (RunStarted | ExampleStarted | ExampleDelta | ExampleFinished | ScoresUpdated | RunFinished
            | RunCancelled | RunFailed)
