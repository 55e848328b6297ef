"""Greedy answers from ``transformers serve`` equal the in-process backend's on the embedded model."""

from __future__ import annotations

from typing import Iterator

import pytest

from engine import ChatRequest, Engine, EngineConfig, GenerationParams, ModelSpec
from engine.gguf_cache import converted_dir
from engine.spec import default_model_path
from tests.remote.serve import TransformersServe

pytestmark = pytest.mark.slow
QUESTIONS = ["What is the capital of France?", "Name three colours."]


@pytest.fixture(scope="module")
def smol_local_dtype() -> str:
    """Load the default model once in-process (which writes its converted safetensors copy)."""
    import asyncio

    async def load() -> str:
        async with Engine(EngineConfig(threads=1)) as engine:
            return (await engine.load(ModelSpec("default", backend="hf"))).dtype

    return asyncio.run(load())


@pytest.fixture(scope="module")
def smol_server(smol_local_dtype: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransformersServe]:
    folder = converted_dir(default_model_path())
    assert (folder / "config.json").is_file(), "loading the default model should have converted it"
    server = TransformersServe(folder, tmp_path_factory.mktemp("serve-logs") / "smol.log",
                               extra_args=("--dtype", smol_local_dtype), threads=1)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_greedy_remote_answers_equal_local_answers(smol_server: TransformersServe):
    params = GenerationParams(max_new_tokens=24)
    async with Engine(EngineConfig(threads=1)) as engine:
        await engine.load(ModelSpec("default", backend="hf"))  # the served copy is the transformers one
        requests = [(ChatRequest("default", ({"role": "user", "content": q},), params),
                     ChatRequest(smol_server.spec, ({"role": "user", "content": q},), params)) for q in QUESTIONS]
        local = await engine.generate([pair[0] for pair in requests])
        remote = await engine.generate([pair[1] for pair in requests])
    for here, there in zip(local, remote):
        assert here.text and there.text == here.text
        assert there.usage.prompt_tokens == here.usage.prompt_tokens  # the same chat template, server-side
        assert there.usage.new_tokens == here.usage.new_tokens
        assert there.finish_reason == here.finish_reason
