"""Streaming, batching, sampling, stop strings, log-probabilities: through the real engine."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Engine,
    EngineConfig,
    GenerationParams,
    GenerationResult,
    Text2TextRequest,
    TokenDelta,
)
from engine.generation import generate_batch
from engine.loading import load_model
from engine.prompts import prepare
from engine.spec import ModelSpec

PROMPTS = ["The quick brown", "A", "What is the capital of France? The capital", "Numbers like 1, 2"]
GREEDY = GenerationParams(max_new_tokens=12)


@pytest.fixture
async def float32_engine():
    """Batch invariance is a float32 property: bfloat16 batches, the default for batches on CPUs
    with native bfloat16 (engine.device.workload_dtypes), can depend on what else is in them."""
    eng = Engine(EngineConfig(threads=1, dtype="float32"))
    yield eng
    await eng.aclose()


async def collect(engine, request):
    deltas, result = [], None
    async for event in engine.stream(request):
        if isinstance(event, GenerationResult):
            result = event
        else:
            assert isinstance(event, TokenDelta) and event.request_id == request.request_id
            deltas.append(event)
    return deltas, result


async def test_stream_deltas_add_up_to_the_result(engine, tiny_causal):
    request = ChatRequest(tiny_causal, (ChatMessage("user", "What is the capital of France?"),), GREEDY)
    deltas, result = await collect(engine, request)
    assert result is not None and result.finish_reason in ("length", "stop")
    assert "".join(d.text for d in deltas) == result.text
    assert tuple(t for d in deltas for t in d.token_ids) == result.token_ids
    assert result.prompt_text.startswith("<|user|>What is the capital of France?<|end|><|assistant|>")
    usage = result.usage
    assert usage.prompt_tokens > 5 and usage.new_tokens == len(result.token_ids) == 12
    assert 0 < usage.time_to_first_token_s <= usage.total_time_s
    assert usage.device == "cpu" and usage.dtype == "float32"


async def test_chat_without_template_falls_back_to_plain_transcript(engine, tiny_causal_b):
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "Hello"))
    _, result = await collect(engine, ChatRequest(tiny_causal_b, messages, GREEDY))
    assert result.prompt_text == "System: Be brief.\nUser: Hello\nAssistant:"


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
async def test_batched_equals_unbatched_under_greedy(float32_engine, tiny_causal, tiny_seq2seq, kind):
    engine = float32_engine
    if kind == "causal":
        requests = [CompletionRequest(tiny_causal, p, GREEDY) for p in PROMPTS]
    else:
        requests = [Text2TextRequest(tiny_seq2seq, p, "summarize: ", GREEDY) for p in PROMPTS]
    batched = await engine.generate(requests)
    one_by_one = [(await engine.generate([r]))[0] for r in requests]
    assert [r.request_id for r in batched] == [r.request_id for r in requests]
    assert [r.token_ids for r in batched] == [r.token_ids for r in one_by_one]
    assert [r.text for r in batched] == [r.text for r in one_by_one]
    assert len({r.token_ids for r in batched}) > 1  # different prompts, different answers


async def test_generate_streams_deltas_for_every_request(engine, tiny_causal):
    requests = [CompletionRequest(tiny_causal, p, GREEDY) for p in PROMPTS]
    seen: dict[str, str] = {}
    results = await engine.generate(requests, on_delta=lambda d: seen.__setitem__(d.request_id, seen.get(d.request_id, "") + d.text))
    assert seen == {r.request_id: r.text for r in results}


async def test_same_seed_same_sample_and_batching_keeps_it(float32_engine, tiny_causal):
    engine = float32_engine
    params = GenerationParams(max_new_tokens=16, temperature=1.0, top_p=0.9, top_k=50, seed=1234)
    first = (await engine.generate([CompletionRequest(tiny_causal, "The quick", params)]))[0]
    again = (await engine.generate([CompletionRequest(tiny_causal, "The quick", params)]))[0]
    other = (await engine.generate([CompletionRequest(tiny_causal, "The quick", GenerationParams(
        max_new_tokens=16, temperature=1.0, top_p=0.9, top_k=50, seed=99))]))[0]
    greedy = (await engine.generate([CompletionRequest(tiny_causal, "The quick", GREEDY)]))[0]
    batch = await engine.generate([CompletionRequest(tiny_causal, p, params) for p in ("A", "The quick")])
    assert first.token_ids == again.token_ids == batch[1].token_ids
    assert first.usage.seed == 1234
    assert other.token_ids != first.token_ids
    assert greedy.token_ids[:12] != first.token_ids[:12]


async def test_unseeded_sampling_reports_the_seed_it_drew(engine, tiny_causal):
    params = GenerationParams(max_new_tokens=10, temperature=0.8)
    result = (await engine.generate([CompletionRequest(tiny_causal, "A", params)]))[0]
    assert result.usage.seed is not None
    replay = GenerationParams(max_new_tokens=10, temperature=0.8, seed=result.usage.seed)
    assert (await engine.generate([CompletionRequest(tiny_causal, "A", replay)]))[0].token_ids == result.token_ids


async def test_stop_string_ends_the_answer_before_it(engine, tiny_causal):
    free = (await engine.generate([CompletionRequest(tiny_causal, "The quick brown", GenerationParams(max_new_tokens=20))]))[0]
    stop = free.text[5:8]
    assert stop and stop.strip(), free.text
    request = CompletionRequest(tiny_causal, "The quick brown", GenerationParams(max_new_tokens=20, stop=(stop,)))
    deltas, result = await collect(engine, request)
    assert result.finish_reason == "stop_string"
    assert result.text == free.text[: free.text.index(stop)]
    assert "".join(d.text for d in deltas) == result.text


async def test_logprobs_equal_a_direct_forward_pass(engine, tiny_causal):
    params = GenerationParams(max_new_tokens=8, logprobs=True, top_logprobs=3)
    _, result = await collect(engine, CompletionRequest(tiny_causal, "The quick brown", params))
    tok = AutoTokenizer.from_pretrained(tiny_causal)
    model = AutoModelForCausalLM.from_pretrained(tiny_causal, dtype=torch.float32).eval()
    prompt = tok("The quick brown")["input_ids"]
    ids = torch.tensor([prompt + list(result.token_ids)])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    for step, (chosen, alternatives) in enumerate(zip(result.logprobs, result.top_logprobs)):
        row = logprobs[len(prompt) - 1 + step]
        assert chosen.token_id == result.token_ids[step]
        assert chosen.logprob == pytest.approx(float(row[chosen.token_id]), abs=1e-4)
        top = torch.topk(row, 3)
        assert [a.token_id for a in alternatives] == top.indices.tolist()
        assert [a.logprob for a in alternatives] == pytest.approx(top.values.tolist(), abs=1e-4)
        assert alternatives[0].token_id == chosen.token_id  # greedy picks the most likely token


async def test_cancel_stops_within_one_decoding_step(tiny_causal):
    loaded = load_model(ModelSpec(tiny_causal))
    prepared = prepare(loaded, CompletionRequest(tiny_causal, "A", GenerationParams(max_new_tokens=100)))
    cancel = threading.Event()
    deltas = []

    def emit(delta):
        deltas.append(delta)
        if len(deltas) == 3:
            cancel.set()

    result = generate_batch(loaded, [prepared], [cancel], emit)[0]
    assert result.finish_reason == "cancelled"
    assert len(result.token_ids) == 3 and result.usage.new_tokens == 4  # the step after the cancel ends it


async def test_cancelling_the_consumer_frees_the_model(engine, tiny_causal_long):
    long = CompletionRequest(tiny_causal_long, "A", GenerationParams(max_new_tokens=3000))
    first_delta = asyncio.Event()

    async def consume():
        async for event in engine.stream(long):
            first_delta.set()

    task = asyncio.create_task(consume())
    await first_delta.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker stopped the 3,000-token answer and takes the next request.
    _, result = await collect(engine, CompletionRequest(tiny_causal_long, "The quick", GREEDY))
    assert result.finish_reason == "length" and len(result.token_ids) == 12
    assert engine.cancel(long.request_id) is False  # nothing left registered under the old id


async def test_cancel_by_request_id_returns_partial_answer(engine, tiny_causal):
    request = CompletionRequest(tiny_causal, "A", GenerationParams(max_new_tokens=100))
    got = []
    async for event in engine.stream(request):
        if isinstance(event, GenerationResult):
            got.append(event)
        elif len(event.token_ids) and engine.cancel(request.request_id):
            pass
    assert got[0].finish_reason == "cancelled" and len(got[0].token_ids) < 100


async def test_event_loop_keeps_running_while_the_model_works(engine, tiny_causal):
    ticks = 0
    stop = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await engine.generate([CompletionRequest(tiny_causal, p, GenerationParams(max_new_tokens=64)) for p in PROMPTS])
    stop.set()
    await task
    assert ticks > 10


async def test_a_stream_that_stalls_fails_clearly_and_the_engine_recovers(tiny_causal_long):
    from engine import Engine, EngineConfig, GenerationStalledError

    async with Engine(EngineConfig(threads=1, stall_timeout_s=0.3)) as engine:
        await engine.load(tiny_causal_long)
        # A long batch occupies the model's only worker thread, so the stream gets no token in time.
        busy = asyncio.create_task(engine.generate(
            [CompletionRequest(tiny_causal_long, "A", GenerationParams(max_new_tokens=1500))]))
        await asyncio.sleep(0.05)
        with pytest.raises(GenerationStalledError, match="produced nothing for 0.3 s"):
            await collect(engine, CompletionRequest(tiny_causal_long, "The quick", GREEDY))
        (long_result,) = await busy
        assert long_result.finish_reason == "length"
        _, result = await collect(engine, CompletionRequest(tiny_causal_long, "The quick", GREEDY))
        assert len(result.token_ids) == 12
