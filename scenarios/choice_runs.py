"""What the runner needs for a choice task: the engine requests of each example and the
:class:`~evaluators.ChoiceOutcome` (every option's log-likelihood, the gold one) built from the
engine's scores, and that outcome back from the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine import ModelInfo
from engine.choice_scoring import ChoiceRequest, ChoiceScores
from evaluators import ChoiceOutcome
from scenarios.choice_prompting import build_choice_request, content_free, prompt_text
from scenarios.examples import Example
from scenarios.scenario import Scenario

CHOICE_CHUNK = 256  # examples per engine job: big enough to batch well, small enough for progress


@dataclass(frozen=True)
class ChoicePlan:
    """One example's scoring job: its request, and its content-free twin when calibrating."""

    example: Example
    request: ChoiceRequest
    calibration: ChoiceRequest | None
    labels: tuple[str, ...]

    @property
    def requests(self) -> tuple[ChoiceRequest, ...]:
        return (self.request,) if self.calibration is None else (self.request, self.calibration)

    @property
    def prompt(self) -> str:
        return prompt_text(self.request)

    def outcome(self, scored: dict[ChoiceRequest, ChoiceScores]) -> ChoiceOutcome:
        main = scored[self.request]
        return ChoiceOutcome(
            options=self.example.options, logprobs=main.logprobs, gold=self.example.gold,
            num_tokens=main.num_tokens, is_greedy=main.is_greedy,
            content_free=scored[self.calibration].logprobs if self.calibration is not None else None,
            method=main.method, labels=self.labels)


def plan_choice(scenario: Scenario, info: ModelInfo, example: Example, shots: list[Example],
                calibrate: bool) -> ChoicePlan:
    """The scoring job of ``example`` on the model ``info`` describes."""
    request = build_choice_request(scenario, info, example, shots)
    calibration = build_choice_request(scenario, info, content_free(example), shots) if calibrate else None
    return ChoicePlan(example, request, calibration, scenario.labels)


def chosen_text(outcome: Any) -> str:
    """The stored output of a choice example: the chosen option's label (or text); ``""`` otherwise."""
    if not isinstance(outcome, ChoiceOutcome):
        return ""
    chosen = outcome.predicted()
    return (outcome.labels or outcome.options)[chosen]


def outcome_from_json(data: dict[str, Any]) -> ChoiceOutcome:
    """A stored choice outcome (the store keeps it as JSON: lists for tuples)."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return ChoiceOutcome(**values)


def is_choice_json(data: dict[str, Any] | None) -> bool:
    return bool(data) and "logprobs" in data and "gold" in data
