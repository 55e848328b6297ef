"""How many CPU threads each backend decodes with when the user does not say."""

from __future__ import annotations

import os

import pytest

from engine import Engine, EngineConfig
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
