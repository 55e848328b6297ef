"""Turning an example into the request a given model gets.

Instruct models (a chat template) get the ``chat`` prompt as messages, with few-shot examples
as earlier user/assistant turns; causal models without a template get the ``completion``
prompt as plain text, shots first; seq2seq models get the ``seq2seq`` prompt (T5-style task
prefixes) without shots.
"""

from __future__ import annotations

import json

from engine import ChatMessage, ChatRequest, CompletionRequest, GenerationRequest, ModelInfo, Text2TextRequest
from scenarios.examples import Example
from scenarios.scenario import Scenario


def prompt_kind(info: ModelInfo) -> str:
    if info.kind == "seq2seq":
        return "seq2seq"
    return "chat" if info.has_chat_template else "completion"


def render(scenario: Scenario, kind: str, example: Example) -> str:
    values = scenario.template_values() | example.template_values()
    return scenario.prompts[kind].render(values)


def chat_history(example: Example) -> list[ChatMessage]:
    """The earlier turns of a case saved from a chat (its ``history`` field: a JSON list of
    ``{"role", "content"}``); none for other examples or a malformed field."""
    try:
        turns = json.loads(example.extra.get("history") or "[]")
        return [ChatMessage(t["role"], t["content"]) for t in turns if t.get("role") in ("user", "assistant")]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def build_request(scenario: Scenario, info: ModelInfo, example: Example, shots: list[Example]) -> GenerationRequest:
    """The request for ``example`` on the model described by ``info``."""
    kind = prompt_kind(info)
    params = scenario.generation
    if kind == "seq2seq":
        return Text2TextRequest(info.name, render(scenario, kind, example), params=params,
                                truncatable=example.input)
    system = example.extra.get("system") or scenario.system  # a case saved from a chat keeps its own
    history = chat_history(example)
    if kind == "chat":
        messages = [ChatMessage("system", system)] if system else []
        for shot in shots:
            messages += [ChatMessage("user", render(scenario, kind, shot)),
                         ChatMessage("assistant", shot.references[0])]
        messages += history
        messages.append(ChatMessage("user", render(scenario, kind, example)))
        return ChatRequest(info.name, tuple(messages), params, truncatable=example.input)
    parts = [system] if system else []
    parts += [f"{render(scenario, kind, shot)} {shot.references[0]}" for shot in shots]
    parts += [message.content for message in history]
    parts.append(render(scenario, kind, example))
    return CompletionRequest(info.name, "\n\n".join(parts), params, truncatable=example.input)
