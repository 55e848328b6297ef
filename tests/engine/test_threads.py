"""How many CPU threads each backend decodes with when the user does not say."""

from __future__ import annotations

import asyncio
import os

import pytest

from engine import ChatMessage, ChatRequest, CompletionRequest, Engine, EngineConfig, GenerationParams
from engine.device import default_threads, llama_threads, physical_cores


def test_llama_cpp_gets_every_physical_core_and_torch_all_cores_but_one(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LMSCOPE_THREADS", raising=False)
    allowed = len(os.sched_getaffinity(0))
    assert 1 <= physical_cores() <= allowed
    assert llama_threads() == physical_cores()
    assert default_threads() == max(1, (os.cpu_count() or 2) - 1)
    engine = Engine(EngineConfig())
    assert (engine.llama_threads, engine.threads) == (physical_cores(), default_threads())


def test_the_user_s_thread_count_wins_for_both_backends(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LMSCOPE_THREADS", "3")
    assert llama_threads() == default_threads() == 3
    engine = Engine(EngineConfig(threads=5))
    assert (engine.llama_threads, engine.threads) == (5, 5)


async def test_the_default_model_on_llama_cpp_decodes_with_the_default_thread_count(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("llama_cpp")
    monkeypatch.delenv("LMSCOPE_THREADS", raising=False)
    async with Engine(EngineConfig()) as engine:
        await engine.load("default")
        backend = await engine.backend("default")
        assert backend.runtime.threads == physical_cores()


async def test_a_llama_cpp_model_gives_a_core_to_each_other_busy_model(monkeypatch: pytest.MonkeyPatch,
                                                                        tiny_causal_long):
    """On every core, llama.cpp fell from 79 to 23 tok/s while a compare pane's other model
    decoded (its threads wait for each other after every operation); it now steps aside."""
    pytest.importorskip("llama_cpp")
    cores = physical_cores()
    if cores < 2:
        pytest.skip("one core: nothing to share")
    monkeypatch.delenv("LMSCOPE_THREADS", raising=False)
    question = ChatRequest("default", (ChatMessage("user", "Hi"),), GenerationParams(max_new_tokens=3))
    async with Engine(EngineConfig()) as engine:
        await engine.load(tiny_causal_long)
        await engine.generate([question])
        runtime = (await engine.backend("default")).runtime
        assert runtime.threads == engine.llama_threads_now("default") == cores
        busy = asyncio.create_task(engine.generate([CompletionRequest(tiny_causal_long, "Once upon a time",
                                                                      GenerationParams(max_new_tokens=400))]))
        while not engine.in_flight(tiny_causal_long):
            await asyncio.sleep(0.01)
        await engine.generate([question])
        assert runtime.threads == engine.llama_threads_now("default") == cores - 1
        assert not busy.done()
        await busy
        await engine.generate([question])
        assert runtime.threads == cores
