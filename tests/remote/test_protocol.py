"""Request bodies and result assembly for the OpenAI wire format, and prompt log-prob parsing
(vLLM-shaped answers, which the test server cannot produce: transformers serve ignores logprobs)."""

from __future__ import annotations

import math

import pytest

from engine.errors import InvalidRequestError, MalformedStreamError
from engine.openai_protocol import Assembler, build_payload
from engine.remote_scoring import loglikelihood_result, perplexity_result, prompt_tokens
from engine.types import ChatRequest, CompletionRequest, GenerationParams


def chat(**params) -> ChatRequest:
    return ChatRequest("openai:m@http://h/v1", ({"role": "user", "content": "hi"},), GenerationParams(**params))


def chunk(text: str = "", finish: str | None = None, **extra) -> dict:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish, **extra}
    return {"choices": [choice]}


def test_payloads_send_only_what_was_asked():
    body = build_payload(chat(max_new_tokens=5), "m", stream=True, seed=None)
    assert body == {"model": "m", "max_tokens": 5, "temperature": 0.0, "stream": True,
                    "messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": True}}
    body = build_payload(CompletionRequest("x", "Once", GenerationParams(temperature=0.7, top_p=0.9, stop=("\n",),
                                                                         logprobs=True, top_logprobs=3)),
                         "m", stream=False, seed=11)
    assert body["prompt"] == "Once" and body["seed"] == 11 and body["stop"] == ["\n"] and body["logprobs"] == 3
    assert "top_k" not in body and "repetition_penalty" not in body


def test_stream_assembly_usage_and_finish_reasons():
    asm = Assembler(chat(), "m", "remote:h", None)
    deltas = [asm.add_chunk(c) for c in (
        {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        chunk("Hel"), chunk("lo"), chunk("", "length"),
        {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}},  # vLLM's usage-only chunk
    )]
    assert [d.text for d in deltas if d] == ["Hel", "lo"]
    result = asm.result()
    assert (result.text, result.finish_reason) == ("Hello", "length")
    assert (result.usage.prompt_tokens, result.usage.new_tokens, result.warnings) == (4, 2, ())

    stop = Assembler(chat(), "m", "d", None)
    stop.add_chunk(chunk("Hi", "stop", stop_reason="###"))
    assert stop.result().finish_reason == "stop_string"  # vLLM names the stop string it matched


def test_stop_strings_are_matched_client_side_too():
    asm = Assembler(chat(stop=("END",)), "m", "d", None)
    released = [asm.add_chunk(chunk(t)) for t in ("one E", "N", "D two")]
    assert [d.text if d else "" for d in released] == ["one ", "", ""]  # "E", "EN" held back
    assert asm.finish_reason == "stop_string" and asm.result().text == "one "


def test_missing_usage_and_logprobs_are_reported_not_invented():
    asm = Assembler(chat(logprobs=True), "m", "d", None)
    asm.add_chunk(chunk("a"))
    asm.add_chunk(chunk("b", "stop"))
    result = asm.result()
    assert result.logprobs == () and result.usage.new_tokens == 2 and result.usage.prompt_tokens == 0
    assert len(result.warnings) == 2


def test_chat_logprobs_are_kept_when_given():
    asm = Assembler(chat(logprobs=True, top_logprobs=1), "m", "d", None)
    delta = asm.add_chunk(chunk("Hi", logprobs={"content": [
        {"token": "Hi", "logprob": -0.5, "top_logprobs": [{"token": "Hi", "logprob": -0.5}]}]}))
    assert delta.logprobs[0].logprob == -0.5 and delta.logprobs[0].token_id == -1
    assert asm.result().top_logprobs[0][0].token == "Hi"


def test_chunks_without_choices_are_malformed():
    with pytest.raises(MalformedStreamError, match="without 'choices'"):
        Assembler(chat(), "m", "d", None).add_chunk({"object": "chat.completion.chunk"})
    with pytest.raises(MalformedStreamError, match="no 'choices'"):
        Assembler(chat(), "m", "d", None).add_response({"choices": []})


# A vLLM /v1/completions answer to prompt="The capital is Paris", echo=True, logprobs=1, max_tokens=1.
ECHO = {"choices": [{"text": "The capital is Paris.", "logprobs": {
    "tokens": ["The", " capital", " is", " Paris", "."],
    "token_logprobs": [None, -5.0, -1.0, -2.0, -0.3],
    "top_logprobs": [None, {" capital": -5.0, " first": -3.0}, {" is": -1.0}, {" Paris": -2.0, " London": -2.5},
                     {".": -0.3}],
    "text_offset": [0, 3, 11, 14, 20]}}], "usage": {"prompt_tokens": 4, "completion_tokens": 1}}

# The same with vLLM's prompt_logprobs (token id -> logprob, rank, decoded token).
PROMPT_LOGPROBS = {"choices": [{"text": ".", "logprobs": None, "prompt_logprobs": [
    None,
    {"1": {"logprob": -5.0, "rank": 4, "decoded_token": " capital"}, "9": {"logprob": -3.0, "rank": 1,
                                                                            "decoded_token": " first"}},
    {"2": {"logprob": -1.0, "rank": 1, "decoded_token": " is"}},
    {"3": {"logprob": -2.0, "rank": 1, "decoded_token": " Paris"}}]}]}


@pytest.mark.parametrize("answer", [ECHO, PROMPT_LOGPROBS])
def test_loglikelihood_from_prompt_logprobs(answer):
    prompt = "The capital is Paris"
    tokens = prompt_tokens(answer, prompt)
    assert len(tokens) == 4  # the generated "." is not part of the prompt
    result = loglikelihood_result(tokens, prompt, len("The capital is"))
    assert result.token_logprobs == (-2.0,) and result.is_greedy
    both = loglikelihood_result(tokens, prompt, len("The"))
    assert both.logprob == -8.0 and both.num_tokens == 3 and not both.is_greedy  # " capital" was not top-1
    with pytest.raises(InvalidRequestError, match="non-empty context"):
        loglikelihood_result(tokens, prompt, 0)
    ppl = perplexity_result(tokens, prompt, "h:1")
    assert ppl.num_tokens == 3 and math.isclose(ppl.token_perplexity, math.exp(8.0 / 3))


def test_answers_without_prompt_logprobs_give_none():
    no_logprobs = {"choices": [{"text": " x", "finish_reason": "length"}], "usage": {"prompt_tokens": 4}}
    no_echo = {"choices": [{"text": ".", "logprobs": {"tokens": ["."], "token_logprobs": [-0.3],
                                                     "top_logprobs": [{".": -0.3}]}}], "usage": {"prompt_tokens": 4}}
    assert prompt_tokens(no_logprobs, "The capital is Paris") is None
    assert prompt_tokens(no_echo, "The capital is Paris") is None
    assert prompt_tokens({"error": "x"}, "p") is None
