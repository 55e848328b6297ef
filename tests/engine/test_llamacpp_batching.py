"""Batched decoding on llama.cpp (continuous batching, one KV stream per sequence, the shared
prompt prefix computed once): every request gets the tokens and log-probabilities it gets alone,
whatever it was batched with and whichever stream it landed in."""

from __future__ import annotations

import pytest

from engine import ChatMessage, ChatRequest, CompletionRequest, Engine, EngineConfig, GenerationParams, ModelSpec
from engine.cancel import CancelToken
from engine.llamacpp_generate import _prefill, _shared_prefix, generate_all
from engine.prompts import prepare
from engine.spec import llama_cpp_available

pytestmark = pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed")
LLAMA = ModelSpec("default", backend="llamacpp")
QUESTIONS = ["What is the capital of France?", "Name three primary colours.", "What is 12 times 7?",
             "Write a haiku about the sea.", "Who wrote Romeo and Juliet?", "Why is the sky blue?",
             "Give me a synonym for 'happy'.", "What does a CPU do?", "Suggest a name for a pet cat."]
LONG = "Count on: " + ", ".join(str(i) for i in range(1, 260))  # over 512 tokens: chunks of its own


def _requests() -> list:
    """Chats of different lengths and settings, a completion sharing no prefix with them, a
    prompt longer than one decode chunk, a seeded sample and a stop string."""
    requests = [ChatRequest("default", (ChatMessage("user", q),),
                            GenerationParams(max_new_tokens=4 + 3 * (i % 4), logprobs=True, top_logprobs=2))
                for i, q in enumerate(QUESTIONS)]
    requests.append(ChatRequest("default", (ChatMessage("user", QUESTIONS[0]),),
                                GenerationParams(max_new_tokens=12, temperature=0.8, seed=5, logprobs=True)))
    requests.append(CompletionRequest("default", "1, 2, 3, 4, 5,", GenerationParams(max_new_tokens=20, stop=(" 9",),
                                                                                      logprobs=True)))
    requests.append(CompletionRequest("default", LONG, GenerationParams(max_new_tokens=5, logprobs=True)))
    return requests


def _same(batch, alone) -> None:
    assert [r.request_id for r in batch] == [r.request_id for r in alone]
    assert [r.token_ids for r in batch] == [r.token_ids for r in alone]
    assert [r.logprobs for r in batch] == [r.logprobs for r in alone]  # bit-identical logits
    assert [r.top_logprobs for r in batch] == [r.top_logprobs for r in alone]
    assert [(r.text, r.finish_reason) for r in batch] == [(r.text, r.finish_reason) for r in alone]


async def test_each_request_of_a_batch_decodes_as_it_does_alone():
    # Four sequences for 12 requests: most start in a stream another request finished with.
    async with Engine(EngineConfig(threads=1, max_batch_size=4)) as eng:
        await eng.load(LLAMA)
        requests = _requests()
        batch = await eng.generate(requests)
        alone = [(await eng.generate([r]))[0] for r in requests]
        chats_only = await eng.generate(requests[:9])  # a long shared prefix: the chat template's
    _same(batch, alone)
    _same(chats_only, alone[:9])
    assert batch[10].finish_reason == "stop_string" and batch[9].usage.seed == 5
    assert {r.usage.backend for r in batch} == {"llamacpp"}


async def test_the_shared_prefix_leaves_each_prompt_a_token_and_is_computed_once():
    async with Engine(EngineConfig(threads=1, max_batch_size=4)) as eng:
        backend = await eng.backend(LLAMA)
        view, runtime = backend.view, backend.runtime
        chats = [prepare(view, r) for r in _requests()[:3]]
        prefix = _shared_prefix_of(chats)
        assert 10 < len(prefix) < min(len(c.input_ids) for c in chats)
        assert _shared_prefix_of([chats[0], chats[0]]) == list(chats[0].input_ids[:-1])
        # Pieces end where decoding alone cuts a prompt (multiples of 512), one piece per call.
        streams = runtime.streams(3, 1024)
        calls = []
        real = streams.decode
        streams.decode = lambda items: calls.append([(pos, seq) for _, pos, seq, _ in items]) or real(items)
        try:
            _prefill(streams, [(0, list(range(100, 700)), 0), (1, list(range(100, 130)), 0)], logits=True)
        finally:
            del streams.decode
        assert [(c[0], c[-1], len(c)) for c in calls] == [((0, 0), (511, 0), 512), ((512, 0), (29, 1), 118)]

        # A request cancelled before its turn is not computed at all; the others go on.
        cancelled = CancelToken()
        cancelled.set()
        first, second = generate_all(runtime, chats[:2], [cancelled, CancelToken()], None, "cpu", "Q4_1", "default")
        assert first.finish_reason == "cancelled" and first.token_ids == () and first.usage.new_tokens == 0
        assert second.finish_reason in ("length", "stop") and second.token_ids


def _shared_prefix_of(prepared) -> list[int]:
    class Run:  # what _shared_prefix reads of a running request
        def __init__(self, p):
            self.prepared = p
    return _shared_prefix([Run(p) for p in prepared])
