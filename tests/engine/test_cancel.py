"""Cancellation tokens (threads and asyncio wait on them, no polling), cancellation within one
decoding step on every in-process decode loop, the engine's count of calls in flight (a busy
model is never unloaded), and capability flags in ModelInfo."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from engine import (
    CompletionRequest,
    Engine,
    EngineConfig,
    FillMaskRequest,
    GenerationParams,
    GenerationResult,
    TokenDelta,
    UnsupportedModelError,
)
from engine.cancel import CancelToken
from engine.generation import generate_batch
from engine.loading import load_model
from engine.prompts import prepare
from engine.spec import ModelSpec

LONG = GenerationParams(max_new_tokens=3000)


# ------------------------------------------------------------------------------ the token
def test_a_thread_blocked_on_the_token_wakes_when_another_sets_it():
    token = CancelToken()
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: token.wait() and woke.set())
    waiter.start()
    assert not token.is_set() and not token.wait(0.01)
    token.set()
    waiter.join(10)
    assert woke.is_set() and token.is_set() and token.wait(0)


async def test_a_task_awaiting_the_token_resumes_on_its_loop_when_a_thread_sets_it():
    token = CancelToken()
    loop_thread: list[int] = []

    async def wait() -> None:
        await token.wait_async()
        loop_thread.append(threading.get_ident())

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    assert not task.done()
    setter = threading.Thread(target=token.set)
    setter.start()
    await asyncio.wait_for(task, 10)
    setter.join()
    assert loop_thread == [threading.get_ident()]  # resumed on the loop, not on the setter's thread
    await asyncio.wait_for(token.wait_async(), 1)  # a set token resolves at once


async def test_a_cancelled_wait_leaves_no_callback_behind():
    token = CancelToken()
    task = asyncio.create_task(token.wait_async())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    calls: list[str] = []
    token.add_callback(lambda: calls.append("still registered"))
    token.set()
    assert calls == ["still registered"]  # only the one added after; the cancelled wait's is gone


def test_callbacks_run_once_at_once_if_already_set_and_can_be_removed(caplog):
    token = CancelToken()
    calls: list[str] = []
    token.add_callback(lambda: calls.append("a"))
    remove_b = token.add_callback(lambda: calls.append("b"))
    token.add_callback(lambda: 1 / 0)  # a failing listener must not stop the others, nor the setter
    remove_b()
    with caplog.at_level(logging.ERROR, logger="engine.cancel"):
        token.set()
        token.set()
    assert calls == ["a"] and "callback failed" in caplog.text
    token.add_callback(lambda: calls.append("late"))
    assert calls == ["a", "late"]


# ---------------------------------------------------------------- decode loops, one step
async def test_the_hf_decode_loop_stops_the_step_after_a_token_is_set(tiny_causal):
    loaded = load_model(ModelSpec(tiny_causal))
    token = CancelToken()
    seen: list[TokenDelta] = []

    def emit(delta: TokenDelta) -> None:
        seen.append(delta)
        if len(seen) == 3:
            token.set()

    prepared = prepare(loaded, CompletionRequest(tiny_causal, "A", GenerationParams(max_new_tokens=100)))
    [result] = await asyncio.to_thread(generate_batch, loaded, [prepared], [token], emit)
    assert result.finish_reason == "cancelled"
    assert len(result.token_ids) == 3 and result.usage.new_tokens == 4  # the step that saw it ends the row


async def test_the_llamacpp_decode_loop_stops_the_step_after_a_token_is_set():
    pytest.importorskip("llama_cpp")
    async with Engine(EngineConfig(threads=1)) as engine:
        backend = await engine.backend("default")
        token = CancelToken()
        seen: list[int] = []

        def emit(delta: TokenDelta) -> None:
            seen.extend(delta.token_ids)
            if len(seen) == 4:
                token.set()

        request = CompletionRequest("default", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", GenerationParams(max_new_tokens=500))
        [result] = await backend.generate([request], [token], emit)
    assert result.usage.backend == "llamacpp"
    assert result.finish_reason == "cancelled" and len(result.token_ids) == 4 and result.usage.new_tokens == 5


async def test_a_token_set_before_the_call_runs_nothing(engine, tiny_causal):
    backend = await engine.backend(tiny_causal)
    token = CancelToken()
    token.set()
    [result] = await backend.generate([CompletionRequest(tiny_causal, "A", GenerationParams(max_new_tokens=50))],
                                      [token], None)
    assert result.finish_reason == "cancelled" and result.token_ids == ()


# --------------------------------------------------------------------------- in flight
async def test_the_engine_counts_calls_in_flight_and_never_evicts_a_busy_model(tiny_causal_long, tiny_causal,
                                                                               tiny_causal_b, caplog):
    async with Engine(EngineConfig(threads=1, memory_budget_bytes=1)) as engine:  # room for no idle model
        stream = engine.stream(CompletionRequest(tiny_causal_long, "A", LONG))
        assert isinstance(await stream.__anext__(), TokenDelta)
        assert engine.in_flight(tiny_causal_long) == 1

        with caplog.at_level(logging.WARNING, logger="engine.engine"):
            await engine.load(tiny_causal)  # over budget, but the streaming model is busy
        assert {m.name for m in engine.loaded_models()} == {tiny_causal_long, tiny_causal}
        assert "all are busy" in caplog.text

        await stream.aclose()  # the consumer leaves; the backend ends at its next step
        for _ in range(1000):
            if engine.in_flight(tiny_causal_long) == 0:
                break
            await asyncio.sleep(0.01)
        assert engine.in_flight(tiny_causal_long) == 0

        results = await engine.generate([CompletionRequest(tiny_causal_b, "A", GenerationParams(max_new_tokens=2))])
        assert results[0].finish_reason == "length" and engine.in_flight(tiny_causal_b) == 0
        # Loading tiny_causal_b unloaded both idle models; it stays, being the one just loaded.
        assert [m.name for m in engine.loaded_models()] == [tiny_causal_b]


async def test_cancelling_a_batch_consumer_sets_its_tokens(engine, tiny_causal_long):
    """engine.generate cancelled mid-batch: its requests stop on the device, the model is free."""
    seen: list[TokenDelta] = []
    task = asyncio.create_task(engine.generate([CompletionRequest(tiny_causal_long, "A", LONG)],
                                               on_delta=seen.append))
    while not seen:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker thread stopped the 3,000-token answer: the next request gets the model.
    result = await asyncio.wait_for(engine.generate([CompletionRequest(tiny_causal_long, "A",
                                                                       GenerationParams(max_new_tokens=2))]), 60)
    assert result[0].finish_reason == "length"


# ------------------------------------------------------------------------ capabilities
async def test_capabilities_are_in_model_info(engine, tiny_causal, tiny_seq2seq, tiny_masked):
    causal, seq2seq, masked = [await engine.load(m) for m in (tiny_causal, tiny_seq2seq, tiny_masked)]
    flags = lambda i: (i.supports_generation, i.supports_logprobs, i.supports_loglikelihood,  # noqa: E731
                       i.supports_fill_mask)
    assert flags(causal) == (True, True, True, False)
    assert flags(seq2seq) == (True, True, False, False)
    assert flags(masked) == (False, False, False, True)
    # What the flags say is what the backends do.
    with pytest.raises(UnsupportedModelError):
        await engine.loglikelihood(tiny_seq2seq, [("a", " b")])
    with pytest.raises(UnsupportedModelError):
        await engine.fill_mask(FillMaskRequest(tiny_causal, "The [MASK]."))
    assert isinstance((await engine.generate([CompletionRequest(tiny_causal, "A",
                                                                GenerationParams(max_new_tokens=1))]))[0],
                      GenerationResult)
