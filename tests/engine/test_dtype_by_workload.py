"""The Hugging Face path picks its dtype by workload on CPUs with native bfloat16: batches decode
in bfloat16, single streams and scoring run in float32; ``Usage`` and the chat footer say so."""

from __future__ import annotations

import torch

import engine.device as device_module
from engine import CompletionRequest, Engine, EngineConfig, GenerationParams
from engine.device import workload_dtypes
from scenarios.conversation import Answer, format_usage, usage_record

PARAMS = GenerationParams(max_new_tokens=6)
TEXT = "The quick brown fox jumps over the lazy dog. Numbers like 1, 2 and 3 follow."


def test_the_rule_for_each_device_and_request():
    native = device_module.cpu_has_native_bf16()
    assert workload_dtypes("cpu") == ((torch.bfloat16, torch.float32, "by workload") if native
                                      else (torch.float32, torch.float32, "auto"))
    assert workload_dtypes("cpu", "float32") == (torch.float32, torch.float32, "asked")
    assert workload_dtypes("cpu", "bf16") == (torch.bfloat16, torch.bfloat16, "asked")


async def _run(model: str, dtype: str | None) -> tuple[list, list, list]:
    """(single result, batch results, perplexity results) from a fresh engine."""
    async with Engine(EngineConfig(threads=1, device="cpu", dtype=dtype)) as eng:
        single = await eng.generate([CompletionRequest(model, "The quick", PARAMS)])
        batch = await eng.generate([CompletionRequest(model, p, PARAMS) for p in ("The quick", "A", "Numbers")])
        ppl = await eng.perplexity(model, [TEXT])
    return single, batch, ppl


async def test_batches_decode_in_bfloat16_and_the_rest_in_float32_where_the_cpu_has_native_bf16(
        tiny_causal, monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)  # what this CPU would answer
    [single], batch, [ppl] = await _run(tiny_causal, None)
    assert (single.usage.dtype, single.usage.dtype_choice) == ("float32", "by workload")
    assert {(r.usage.dtype, r.usage.dtype_choice) for r in batch} == {("bfloat16", "by workload")}

    [single32], batch32, [ppl32] = await _run(tiny_causal, "float32")
    assert single32.usage.dtype_choice == "asked" and {r.usage.dtype for r in batch32} == {"float32"}
    # Single streams and scoring are float32's exactly; bfloat16 would have moved the score.
    assert single.token_ids == single32.token_ids and single.logprobs == single32.logprobs
    assert ppl.nll == ppl32.nll
    _, batch16, [ppl16] = await _run(tiny_causal, "bfloat16")
    assert ppl16.nll != ppl32.nll
    assert [r.token_ids for r in batch] == [r.token_ids for r in batch16]  # the batch ran in bfloat16

    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    [single], batch, _ = await _run(tiny_causal, None)
    assert {(r.usage.dtype, r.usage.dtype_choice) for r in [single, *batch]} == {("float32", "auto")}


async def test_the_chat_footer_shows_the_dtype_and_why(tiny_causal, monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    [single], batch, _ = await _run(tiny_causal, None)
    assert "cpu float32 (by workload)" in format_usage(usage_record(Answer(text=single.text, result=single)))
    assert "cpu bfloat16 (by workload)" in format_usage(usage_record(Answer(text=batch[0].text, result=batch[0])))
    [asked], _, _ = await _run(tiny_causal, "float32")
    assert "cpu float32 (asked)" in format_usage(usage_record(Answer(text=asked.text, result=asked)))


def test_a_stored_answer_without_the_field_keeps_its_old_footer():
    record = {"new_tokens": 3, "tokens_per_s": 9.0, "device": "cpu", "dtype": "float32"}
    assert format_usage(record).endswith("cpu float32")
