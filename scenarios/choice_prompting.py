"""Turning a choice-task example into the :class:`~engine.choice_scoring.ChoiceRequest` a model gets.

- causal models (with or without a chat template, as lm-evaluation-harness scores them by
  default): the ``completion`` prompt as plain text, few-shot examples first (each followed by
  the delimiter and its gold option, separated by blank lines); every option is scored as
  ``target_delimiter + option``;
- seq2seq models: the ``seq2seq`` prompt (task prefix) as the input and each option as the
  target, no shots;
- masked models: the ``masked`` prompt with the option in its ``{answer}`` slot, no shots.

The content-free variant (for calibration) is the same prompt with every example field replaced
by ``N/A`` (Zhao et al. 2021), the same shots included.
"""

from __future__ import annotations

import dataclasses

from engine import ModelInfo
from engine.choice_scoring import ChoiceRequest
from scenarios.choice_scenario import SLOT
from scenarios.examples import Example
from scenarios.scenario import Scenario

CONTENT_FREE = "N/A"


def choice_kind(info: ModelInfo) -> str:
    """Which prompt a model gets: ``seq2seq``, ``masked`` or ``completion``."""
    return info.kind if info.kind in ("seq2seq", "masked") else "completion"


def content_free(example: Example) -> Example:
    """``example`` with its content replaced by ``N/A``, options and gold kept."""
    return dataclasses.replace(example, input=CONTENT_FREE, context=CONTENT_FREE if example.context is not None else None,
                               extra={k: CONTENT_FREE for k in example.extra})


def build_choice_request(scenario: Scenario, info: ModelInfo, example: Example, shots: list[Example]) -> ChoiceRequest:
    """The request scoring ``example``'s options on the model described by ``info``."""
    kind = choice_kind(info)
    values = scenario.template_values()
    template = scenario.prompts[kind]
    if kind == "masked":
        slot = next(i for i, (_, f) in enumerate(template.parts) if f == SLOT)
        before = dataclasses.replace(template, parts=template.parts[:slot] + ((template.parts[slot][0], None),))
        after = dataclasses.replace(template, parts=template.parts[slot + 1:])
        merged = values | example.template_values()
        return ChoiceRequest(before.render(merged), example.options, suffix=after.render(merged))
    if kind == "seq2seq":
        return ChoiceRequest(template.render(values | example.template_values()), example.options)
    parts = [scenario.system] if scenario.system else []
    parts += [template.render(values | s.template_values()) + scenario.target_delimiter + s.options[s.gold]
              for s in shots]
    parts.append(template.render(values | example.template_values()))
    return ChoiceRequest("\n\n".join(parts), tuple(scenario.target_delimiter + o for o in example.options))


def prompt_text(request: ChoiceRequest) -> str:
    """The stored prompt: the context, with ``{answer}`` where a masked model's option goes."""
    return request.context + ("{answer}" + request.suffix if request.suffix else "")
