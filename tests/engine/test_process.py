"""Models in their own process (``EngineConfig(isolate=True)``): same answers, cancellation,
clear errors when loading fails or the process dies, and a new process after it died."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal

import pytest

from engine import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Engine,
    EngineConfig,
    FillMaskRequest,
    GenerationParams,
    GenerationResult,
    ModelNotFoundError,
    ModelSpec,
)
from engine.cancel import CancelToken
from engine.process import ModelProcessError, ProcessBackend

GREEDY = GenerationParams(max_new_tokens=12, logprobs=True, top_logprobs=3)


async def stream(engine: Engine, request) -> tuple[list, GenerationResult]:
    deltas, result = [], None
    async for event in engine.stream(request):
        if isinstance(event, GenerationResult):
            result = event
        else:
            deltas.append(event)
    assert result is not None
    return deltas, result


def same_answer(a: GenerationResult, b: GenerationResult) -> bool:
    return (a.text, a.token_ids, a.logprobs, a.top_logprobs, a.prompt_text, a.finish_reason) == (
        b.text, b.token_ids, b.logprobs, b.top_logprobs, b.prompt_text, b.finish_reason)


async def test_an_isolated_model_answers_exactly_as_in_process(engine, tiny_causal, tiny_causal_long, tiny_masked):
    isolated = Engine(EngineConfig(threads=1, isolate=True))
    try:
        lines: list[str] = []
        info = await isolated.load(tiny_causal, progress=lines.append)
        backend = await isolated.backend(tiny_causal)
        assert isinstance(backend, ProcessBackend) and backend.process.pid != os.getpid()
        in_process = await engine.load(tiny_causal)
        assert dataclasses.replace(info, load_time_s=0) == dataclasses.replace(in_process, load_time_s=0)
        assert lines  # progress lines crossed over

        chat = ChatRequest(tiny_causal, (ChatMessage("user", "What is the capital of France?"),), GREEDY)
        deltas, result = await stream(isolated, chat)
        _, expected = await stream(engine, ChatRequest(tiny_causal, chat.messages, GREEDY))
        assert same_answer(result, expected)
        assert "".join(d.text for d in deltas) == result.text and len(deltas) == 12

        prompts = ["The quick brown", "A", "Numbers like 1, 2"]
        seen: list[str] = []
        batch = await isolated.generate([CompletionRequest(tiny_causal, p, GREEDY) for p in prompts],
                                        on_delta=lambda d: seen.append(d.request_id))
        expected_batch = await engine.generate([CompletionRequest(tiny_causal, p, GREEDY) for p in prompts])
        assert all(same_answer(a, b) for a, b in zip(batch, expected_batch))
        assert set(seen) == {r.request_id for r in batch}

        texts = ["The lighthouse keeper climbed the stairs.", "Numbers like 1, 2, 3"]
        assert await isolated.perplexity(tiny_causal, texts) == await engine.perplexity(tiny_causal, texts)
        pairs = [("The capital of France is", " Paris")]
        assert await isolated.loglikelihood(tiny_causal, pairs) == await engine.loglikelihood(tiny_causal, pairs)
        mask = FillMaskRequest(tiny_masked, "The capital of France is [MASK].", top_k=3)
        assert await isolated.fill_mask(mask) == await engine.fill_mask(mask)

        # Cancelling by request id reaches the child within a few decoding steps.
        long = CompletionRequest(tiny_causal_long, "A", GenerationParams(max_new_tokens=3000))
        partial = None
        async for event in isolated.stream(long):
            if isinstance(event, GenerationResult):
                partial = event
            else:
                isolated.cancel(long.request_id)
        assert partial is not None and partial.finish_reason == "cancelled" and len(partial.token_ids) < 3000
    finally:
        await isolated.aclose()
    assert not backend.process.is_alive()


async def test_load_errors_cross_over(tmp_path):
    isolated = Engine(EngineConfig(threads=1, isolate=True))
    try:
        with pytest.raises(ModelNotFoundError, match="missing.gguf"):
            await isolated.load(str(tmp_path / "missing.gguf"))
    finally:
        await isolated.aclose()


async def test_a_killed_process_fails_its_call_and_the_next_call_starts_a_new_one(tiny_causal_long):
    isolated = Engine(EngineConfig(threads=1, isolate=True))
    try:
        await isolated.load(ModelSpec(tiny_causal_long, kind="causal"))
        first = await isolated.backend(tiny_causal_long)
        assert isinstance(first, ProcessBackend)

        # Killed mid-answer: that call fails clearly.
        killed = False
        with pytest.raises(ModelProcessError, match=r"was killed \(SIGKILL\)") as raised:
            async for _event in isolated.stream(CompletionRequest(tiny_causal_long, "A",
                                                                  GenerationParams(max_new_tokens=3000))):
                if not killed:
                    os.kill(first.process.pid, signal.SIGKILL)
                    killed = True
        assert raised.value.hint and "next request starts it again" in raised.value.hint
        assert first.exited

        # The next call starts a fresh process with the same spec, transparently.
        _, answer = await stream(isolated, CompletionRequest(tiny_causal_long, "A", GREEDY))
        second = await isolated.backend(tiny_causal_long)
        assert isinstance(second, ProcessBackend) and second is not first
        assert second.process.pid != first.process.pid and second.spec == first.spec and second.spec.kind == "causal"
        assert answer.finish_reason == "length" and len(answer.token_ids) == 12

        # Killed while idle: concurrent next calls share one new process, and answer as before.
        os.kill(second.process.pid, signal.SIGKILL)
        await asyncio.to_thread(second.process.join, 10)
        results = await asyncio.gather(*(stream(isolated, CompletionRequest(tiny_causal_long, "A", GREEDY))
                                         for _ in range(2)))
        assert all(same_answer(result, answer) for _, result in results)
        third = await isolated.backend(tiny_causal_long)
        assert third.process.pid not in (first.process.pid, second.process.pid)
        assert [info.name for info in isolated.loaded_models()] == [tiny_causal_long]
    finally:
        await isolated.aclose()
    assert not third.process.is_alive()


async def test_a_cancel_token_reaches_the_child_as_soon_as_it_is_set(tiny_causal_long):
    """Set on any thread (here the reader thread, from a delta), the token's callback sends the
    cancel to the child at once; cancelling the caller's task does the same."""
    isolated = Engine(EngineConfig(threads=1, isolate=True))
    try:
        backend = await isolated.backend(tiny_causal_long)
        assert isinstance(backend, ProcessBackend)
        token = CancelToken()
        seen: list = []

        def emit(delta) -> None:
            seen.append(delta)
            if len(seen) == 2:
                token.set()

        long = CompletionRequest(tiny_causal_long, "A", GenerationParams(max_new_tokens=3000))
        [result] = await backend.generate([long], [token], emit)
        assert result.finish_reason == "cancelled" and len(result.token_ids) < 3000

        task = asyncio.ensure_future(isolated.generate([CompletionRequest(tiny_causal_long, "A", long.params)],
                                                       on_delta=seen.append))
        while len(seen) < 3 + len(result.token_ids):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert isolated.in_flight(tiny_causal_long) == 0
        # The child stopped that answer too: the next request is answered, not queued behind 3,000 tokens.
        _, answer = await asyncio.wait_for(stream(isolated, CompletionRequest(tiny_causal_long, "A", GREEDY)), 60)
        assert answer.finish_reason == "length"
    finally:
        await isolated.aclose()



QUIT_MID_ANSWER = """
import asyncio, sys
from engine import ChatMessage, ChatRequest, Engine, EngineConfig, GenerationParams

async def main():
    engine = Engine(EngineConfig(threads=1, isolate=True, backend="hf"))
    request = ChatRequest("default", (ChatMessage("user", "Tell me a long story."),), GenerationParams(max_new_tokens=500))
    async for _ in engine.stream(request):
        break  # the user quits mid-answer: the app stops listening and closes the engine
    await engine.aclose()
    print("closed", flush=True)

if __name__ == "__main__":  # model processes start by spawning, which imports this file again
    asyncio.run(main())
"""


@pytest.mark.slow
def test_quitting_mid_answer_leaves_nothing_for_the_resource_tracker_to_report(tmp_path):
    """Issue 11, finding 11: quitting mid-answer printed "leaked semaphore" warnings to the
    terminal. The default GGUF on transformers, first load: the model process dequantised it
    under a tqdm bar, whose multiprocessing lock that process never released (it ends with
    ``os._exit``), so multiprocessing's resource tracker reported it when the app exited."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "quit.py"
    script.write_text(QUIT_MID_ANSWER, encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "LMSCOPE_CACHE_DIR": str(tmp_path / "cache")}  # a cold load
    done = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0 and "closed" in done.stdout, done.stderr[-2000:]
    assert "leaked" not in done.stderr and "resource_tracker" not in done.stderr, done.stderr[-2000:]
