"""Messages screens and widgets post upwards. Past tense: they say what happened."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from engine import ModelInfo


@dataclass
class ModelLoaded(Message):
    """A model finished loading and is ready."""

    info: ModelInfo


@dataclass
class ModelSelected(Message):
    """The user picked a model (in the picker) to make current."""

    name: str


@dataclass
class CaseSaved(Message):
    """A chat turn was saved as a scenario case (see the probing tools)."""

    scenario_path: str
    example_id: str


@dataclass
class PromoteRequested(Message):
    """The user asked to save a chat turn (prompt + answer) as a scenario case."""

    prompt: str
    answer: str
    model: str
    system: str = ""  # the chat's system prompt
    history: tuple = ()  # the earlier turns (engine.ChatMessage), oldest first


@dataclass
class ProbeRequested(Message):
    """The user asked to inspect an answer token by token (surprisal, alternatives)."""

    result: object  # engine.GenerationResult with logprobs and top_logprobs


@dataclass
class RunRequested(Message):
    """The user asked the run screen to act on a stored run: ``open``, ``resume`` or ``rerun``."""

    run_id: str
    action: str
