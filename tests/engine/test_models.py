"""Model sources, kinds, errors, several models at once, memory budget, out-of-memory recovery."""

from __future__ import annotations

import asyncio
import shutil
import pytest
import torch

from engine import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    ContextLengthError,
    Engine,
    EngineConfig,
    GenerationParams,
    HubUnreachableError,
    InvalidModelError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelSpec,
    OutOfMemoryError,
    Text2TextRequest,
    UnsupportedModelError,
)
from engine.spec import default_model_path

GREEDY = GenerationParams(max_new_tokens=8)


async def test_kinds_are_detected_from_the_config(engine, tiny_causal, tiny_seq2seq, tiny_masked):
    assert (await engine.load(tiny_causal)).kind == "causal"
    assert (await engine.load(tiny_seq2seq)).kind == "seq2seq"
    assert (await engine.load(tiny_masked)).kind == "masked"
    info = await engine.load(tiny_causal)
    assert info.has_chat_template and info.context_length == 128 and info.num_parameters > 0


async def test_kind_can_be_overridden(engine, tiny_masked, tiny_causal):
    assert (await engine.load(ModelSpec(tiny_causal, kind="causal"))).kind == "causal"
    with pytest.raises(UnsupportedModelError, match="cannot be loaded as a seq2seq model"):
        await engine.load(ModelSpec(tiny_masked, kind="seq2seq"))
    assert [m.name for m in engine.loaded_models()] == [tiny_causal]  # nothing half-loaded remains


@pytest.mark.parametrize("params", [
    dict(temperature=-0.5), dict(top_p=1.5), dict(top_p=0), dict(max_new_tokens=0),
    dict(top_k=-1), dict(repetition_penalty=0), dict(seed=-3), dict(stop=("",)),
])
def test_invalid_sampling_values_are_rejected_with_the_field_named(params):
    with pytest.raises(InvalidRequestError, match=next(iter(params))):
        GenerationParams(**params)


async def test_missing_paths_and_bad_folders(engine, tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such file"):
        await engine.load(str(tmp_path / "nothing-here.gguf"))
    with pytest.raises(ModelNotFoundError):
        await engine.load("./not/a/model")
    with pytest.raises(InvalidModelError, match="no config.json"):
        await engine.load(str(tmp_path))


async def test_corrupt_and_truncated_gguf_files(engine, tmp_path):
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"this is not a gguf file at all" * 100)
    with pytest.raises(InvalidModelError, match="cannot load GGUF file"):
        await engine.load(str(garbage))
    truncated = tmp_path / "truncated.gguf"
    with open(default_model_path(), "rb") as src:
        truncated.write_bytes(src.read(2_000_000))
    with pytest.raises(InvalidModelError, match="truncated.gguf"):
        await engine.load(str(truncated))


async def test_unreachable_hub_gives_one_clear_error(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(HubUnreachableError) as err:
        await engine.load("some-org/some-model")
    assert "'some-org/some-model'" in err.value.message and "cannot be reached" in err.value.message
    assert "\n" not in err.value.message and err.value.hint


async def test_hub_id_loads_from_the_local_cache(engine, monkeypatch, tmp_path, tiny_causal):
    """A hub id found in the Hugging Face cache loads offline, without touching the network."""
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--lmscope-test--tiny-llama" / "snapshots" / "0123456789abcdef"
    shutil.copytree(tiny_causal, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123456789abcdef")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    info = await engine.load("lmscope-test/tiny-llama")
    assert info.kind == "causal" and info.source == "lmscope-test/tiny-llama"
    result = (await engine.generate([CompletionRequest("lmscope-test/tiny-llama", "The quick", GREEDY)]))[0]
    direct = (await engine.generate([CompletionRequest(tiny_causal, "The quick", GREEDY)]))[0]
    assert result.token_ids == direct.token_ids


async def test_too_long_prompt_truncates_left_or_errors(engine, tiny_causal):
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 40  # far beyond 128 positions
    result = (await engine.generate([CompletionRequest(tiny_causal, long_prompt, GREEDY)]))[0]
    assert result.usage.prompt_tokens == 128 - 8
    assert any("truncated from the left" in w for w in result.warnings)
    strict = GenerationParams(max_new_tokens=8, truncation="error")
    with pytest.raises(ContextLengthError, match="exceeds"):
        await engine.generate([CompletionRequest(tiny_causal, long_prompt, strict)])
    with pytest.raises(ContextLengthError, match="no room"):
        await engine.generate([CompletionRequest(tiny_causal, "A", GenerationParams(max_new_tokens=500))])
    assert (await engine.generate([CompletionRequest(tiny_causal, "A", GREEDY)]))[0].token_ids  # still usable


async def test_requests_that_do_not_fit_the_model_kind(engine, tiny_causal, tiny_masked):
    with pytest.raises(UnsupportedModelError, match="masked LM"):
        await engine.generate([CompletionRequest(tiny_masked, "Hello", GREEDY)])
    with pytest.raises(UnsupportedModelError, match="seq2seq"):
        await engine.generate([Text2TextRequest(tiny_causal, "Hello", "summarize: ", GREEDY)])


async def test_seq2seq_answers_chat_with_the_last_user_message(engine, tiny_seq2seq):
    chat = ChatRequest(tiny_seq2seq, (ChatMessage("user", "first"), ChatMessage("assistant", "x"),
                                      ChatMessage("user", "translate English to German: the house")), GREEDY)
    result = (await engine.generate([chat]))[0]
    direct = (await engine.generate([Text2TextRequest(tiny_seq2seq, "the house", "translate English to German: ", GREEDY)]))[0]
    assert result.prompt_text == "translate English to German: the house"
    assert result.token_ids == direct.token_ids


async def test_two_models_run_concurrently(engine, tiny_causal, tiny_causal_b):
    params = GenerationParams(max_new_tokens=40)
    await asyncio.gather(engine.load(tiny_causal), engine.load(tiny_causal_b))
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    async def run(model):
        async for event in engine.stream(CompletionRequest(model, "A", params)):
            started.setdefault(model, loop.time())
        finished[model] = loop.time()

    await asyncio.gather(run(tiny_causal), run(tiny_causal_b))
    # Each model streamed its first token before the other finished: they overlapped.
    assert started[tiny_causal] < finished[tiny_causal_b] and started[tiny_causal_b] < finished[tiny_causal]
    assert {m.name for m in engine.loaded_models()} == {tiny_causal, tiny_causal_b}


async def test_memory_budget_unloads_the_least_recently_used_model(tiny_causal, tiny_causal_b, tiny_seq2seq):
    probe = Engine(EngineConfig(threads=1))
    size = (await probe.load(tiny_causal)).memory_bytes
    await probe.aclose()
    async with Engine(EngineConfig(threads=1, memory_budget_bytes=int(size * 2.1))) as engine:
        await engine.load(tiny_causal)
        await engine.load(tiny_causal_b)
        await engine.load(tiny_causal)  # touch: tiny_causal_b is now least recently used
        await engine.load(tiny_seq2seq)
        names = [m.name for m in engine.loaded_models()]
        assert tiny_causal_b not in names and names[-1] == tiny_seq2seq and tiny_causal in names
        assert await engine.unload(tiny_causal) and not await engine.unload(tiny_causal)
        # an unloaded model is loaded again on demand
        assert (await engine.generate([CompletionRequest(tiny_causal_b, "A", GREEDY)]))[0].token_ids


async def test_batch_halves_on_out_of_memory(tiny_causal):
    """The real model raises torch's OOM error for batches above two, as a small GPU would."""
    # float32 asked for: batches then run on ``loaded.model`` itself (not on a bfloat16 copy, as
    # they do by default on CPUs with native bfloat16), which this test replaces.
    async with Engine(EngineConfig(threads=1, dtype="float32")) as engine:
        await _halves_on_out_of_memory(engine, tiny_causal)


async def _halves_on_out_of_memory(engine, tiny_causal):
    prompts = ["The quick brown", "A", "What is the capital", "Numbers like 1", "Der schnelle", "Summarize"]
    expected = [(await engine.generate([CompletionRequest(tiny_causal, p, GREEDY)]))[0].token_ids for p in prompts]
    slot = await engine.backend(tiny_causal)
    real_generate = slot.loaded.model.generate
    seen_sizes = []

    def limited_generate(*args, **kwargs):
        seen_sizes.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_generate(*args, **kwargs)

    slot.loaded.model.generate = limited_generate
    results = await engine.generate([CompletionRequest(tiny_causal, p, GREEDY) for p in prompts])
    assert [r.token_ids for r in results] == expected
    assert slot.batch_size == 2 and seen_sizes[:3] == [6, 3, 2]

    def always_oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    slot.loaded.model.generate = always_oom
    with pytest.raises(OutOfMemoryError, match="batch size 1"):
        await engine.generate([CompletionRequest(tiny_causal, p, GREEDY) for p in prompts])
    slot.loaded.model.generate = real_generate
    assert (await engine.generate([CompletionRequest(tiny_causal, "A", GREEDY)]))[0].token_ids == expected[1]


async def test_closed_engine_refuses_work(tiny_causal):
    from engine import EngineClosedError

    engine = Engine(EngineConfig(threads=1))
    await engine.load(tiny_causal)
    await engine.aclose()
    assert engine.loaded_models() == []
    with pytest.raises(EngineClosedError):
        await engine.load(tiny_causal)


async def test_a_missing_package_is_named_not_blamed_on_the_files(engine, monkeypatch, tmp_path):
    """As on a machine without accelerate: transformers refuses GGUF files without it."""
    import transformers.modeling_utils as modeling_utils

    from engine import MissingDependencyError

    monkeypatch.setenv("LMSCOPE_CACHE_DIR", str(tmp_path))  # no converted copy: the GGUF path runs
    monkeypatch.setattr(modeling_utils, "is_accelerate_available", lambda: False)
    with pytest.raises(MissingDependencyError, match="pip install accelerate"):
        await engine.load(ModelSpec("default", backend="hf"))  # auto would pick llama.cpp when installed
