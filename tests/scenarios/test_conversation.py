"""The conversation shared by the chat screen and the compare panes, on the real engine."""

from __future__ import annotations

import asyncio

from engine import ChatMessage, ChatRequest, CompletionRequest, GenerationParams, Text2TextRequest
from scenarios.conversation import Conversation, Waiting, answer_tokens, build_request
from scenarios.store import Store


async def test_request_type_follows_the_model_kind(engine, tmp_path, tiny_causal, tiny_seq2seq, tiny_masked):
    store = Store(tmp_path / "r.sqlite")
    params = GenerationParams(max_new_tokens=4)
    causal = Conversation(engine, store, tiny_causal, system_prompt="Be brief.")
    answer = await causal.send("Hi", params)
    assert isinstance(causal.last_request, ChatRequest) and answer.ended == "done"
    assert causal.last_request.messages[0] == ChatMessage("system", "Be brief.")
    seq2seq = Conversation(engine, store, tiny_seq2seq)
    await seq2seq.send("translate English to German: Hello", params)
    assert isinstance(seq2seq.last_request, Text2TextRequest)
    masked = Conversation(engine, store, tiny_masked)
    failed = await masked.send("Hi", params)
    assert failed.ended == "error" and "masked language model" in failed.error.message
    assert masked.messages == [ChatMessage("user", "Hi")]  # kept for a retry on another model


async def test_the_probe_asks_by_the_same_rule_with_or_without_the_chat_template(engine, tiny_causal, tiny_seq2seq):
    params = GenerationParams(max_new_tokens=4)
    one = (ChatMessage("user", "Hello there"),)
    causal, seq2seq = await engine.load(tiny_causal), await engine.load(tiny_seq2seq)
    plain = build_request(tiny_causal, causal, one, params, chat=False)
    assert isinstance(plain, CompletionRequest) and plain.prompt == "Hello there"
    assert isinstance(build_request(tiny_causal, causal, one, params), ChatRequest)
    for chat in (True, False):  # seq2seq models have no chat template either way
        request = build_request(tiny_seq2seq, seq2seq, one, params, chat=chat)
        assert isinstance(request, Text2TextRequest) and request.text == "Hello there"


async def test_history_regenerate_and_typed_storage(engine, tmp_path, tiny_causal):
    store = Store(tmp_path / "r.sqlite")
    conversation = Conversation(engine, store, tiny_causal)
    params = GenerationParams(max_new_tokens=6, temperature=1.0)
    first = await conversation.send("Hello", params, {"temperature": "1.0"})
    second = await conversation.regenerate(params, {"temperature": "1.0"})
    assert conversation.messages == [ChatMessage("user", "Hello"), ChatMessage("assistant", second.text)]
    assert first.result.usage.seed != second.result.usage.seed
    chat = store.chat(conversation.chat_id)
    assert chat.model == tiny_causal and chat.comparison is None
    history = store.chat_history(chat.id)
    assert [m.role for m in history] == ["user", "assistant", "assistant"]
    assert history[-1].usage["answer_tokens"] == answer_tokens(second.result) == len(second.result.token_ids)
    reopened = Conversation(engine, store, tiny_causal)
    turns, sampling = reopened.restore(chat)
    assert reopened.messages == conversation.messages and sampling == {"temperature": "1.0"}
    assert [t.answer for t in turns] == [second.text]
    assert reopened.last_result.token_ids == second.result.token_ids and reopened.last_result.logprobs == second.result.logprobs


async def test_an_answer_behind_other_requests_says_so_and_times_the_queue(engine, tmp_path, tiny_causal_long):
    conversation = Conversation(engine, Store(tmp_path / "r.sqlite"), tiny_causal_long)
    await conversation.load()
    busy = asyncio.create_task(engine.generate([CompletionRequest(tiny_causal_long, "Once upon a time",
                                                                  GenerationParams(max_new_tokens=400))]))
    await asyncio.sleep(0.2)
    events: list[object] = []
    answer = await conversation.send("Hi", GenerationParams(max_new_tokens=4), on_event=events.append)
    await busy
    waits = [e.text for e in events if isinstance(e, Waiting)]
    assert any(w.startswith("queued: 1 request(s) ahead") for w in waits)
    t = answer.timings
    assert t.queue_s is not None and t.queue_s > 0 and t.prefill_s == answer.result.usage.time_to_first_token_s
    assert abs(t.first_token_s - (t.load_s + t.queue_s + t.prefill_s)) < 0.05


async def test_load_stages_reach_every_caller_of_a_load_in_flight(engine, tiny_causal):
    heard: list[str] = []
    first = Conversation(engine, None, tiny_causal)
    second = Conversation(engine, None, tiny_causal)
    await asyncio.gather(first.load(), second.load(heard.append))  # the second joins the first's load
    assert any(tiny_causal in line for line in heard)
