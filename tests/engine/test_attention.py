"""Attention weights through the engine on the tiny models, checked against plain transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoTokenizer

from engine import AttentionResult, Engine, EngineConfig, InvalidRequestError, ModelSpec, UnsupportedModelError
from engine.attention import TWIN_NOTE, _configs, eager_attention
from engine.spec import llama_cpp_available

TEXT = "The quick brown fox jumps over the lazy dog."


def _implementations(model) -> list[str]:
    return [config._attn_implementation for config in _configs(model)]


def _tolerance(result: AttentionResult) -> float:
    """How far the weights may be from exact: float32 on a CPU, or bfloat16 / float16 on a GPU."""
    return 1e-5 if result.dtype == "float32" else 2e-2


def _reference(engine_backend, cls, text: str, **kwargs):
    """Attention weights from a plain eager transformers forward pass (same device and dtype as
    the engine's copy), with the tokenizer and the encoded text."""
    loaded = engine_backend.loaded
    folder = loaded.info.source
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = cls.from_pretrained(folder, attn_implementation="eager", dtype=loaded.dtype).to(loaded.device).eval()
    encoded = tokenizer(text, return_tensors="pt")
    kwargs = {k: v.to(loaded.device) for k, v in kwargs.items()}
    with torch.inference_mode():
        out = model(**{k: v.to(loaded.device) for k, v in encoded.items()}, output_attentions=True, **kwargs)
    return out, tokenizer, encoded


def _stacked(attentions) -> np.ndarray:
    return torch.stack([a[0] for a in attentions]).float().cpu().numpy()


def _check_probabilities(result: AttentionResult) -> None:
    assert result.weights.dtype == np.float32
    assert result.weights.shape[2:] == (len(result.query_tokens), len(result.key_tokens))
    assert (result.weights >= 0).all()
    np.testing.assert_allclose(result.weights.sum(-1), 1.0, atol=_tolerance(result))


async def test_causal_self_attention_is_masked_probabilities_equal_to_transformers(engine, tiny_causal):
    backend = await engine.backend(tiny_causal)
    before = _implementations(backend.loaded.model)
    assert before[0] != "eager"  # the model runs SDPA: the request must switch and switch back

    result = await engine.attention(tiny_causal, TEXT)

    assert _implementations(backend.loaded.model) == before
    assert result.kind == "self" and result.causal and result.model == tiny_causal and not result.notes
    _check_probabilities(result)
    n = len(result.key_tokens)
    assert result.query_tokens == result.key_tokens and n > 5
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    assert (result.weights[..., upper] == 0).all()  # no query sees a later token
    assert (result.weights[..., 0, 0] == 1).all()  # the first token can only attend to itself

    out, tokenizer, encoded = _reference(backend, AutoModelForCausalLM, TEXT)
    ids = encoded["input_ids"][0].tolist()
    assert result.key_tokens == tuple(tokenizer.decode([i]) for i in ids)
    assert result.weights.shape == (len(out.attentions), out.attentions[0].shape[1], n, n)
    np.testing.assert_allclose(result.weights, _stacked(out.attentions), atol=_tolerance(result))


async def test_masked_model_attends_both_ways(engine, tiny_masked):
    result = await engine.attention(tiny_masked, TEXT)
    assert result.kind == "self" and not result.causal
    _check_probabilities(result)
    assert result.key_tokens[0] == "[CLS]" and result.key_tokens[-1] == "[SEP]"
    n = len(result.key_tokens)
    assert (result.weights[..., np.triu(np.ones((n, n), dtype=bool), k=1)] > 0).any()
    out, _, _ = _reference(await engine.backend(tiny_masked), AutoModelForMaskedLM, TEXT)
    np.testing.assert_allclose(result.weights, _stacked(out.attentions), atol=_tolerance(result))


async def test_seq2seq_encoder_self_and_decoder_cross_attention(engine, tiny_seq2seq):
    target = "Der schnelle Fuchs."
    encoder = await engine.attention(tiny_seq2seq, TEXT)
    cross = await engine.attention(tiny_seq2seq, TEXT, cross=True, target=target)
    answer = await engine.attention(tiny_seq2seq, TEXT, cross=True)

    assert encoder.kind == "encoder-self" and not encoder.causal
    _check_probabilities(encoder)
    assert cross.kind == answer.kind == "decoder-cross"
    for result in (cross, answer):
        _check_probabilities(result)
        assert result.key_tokens == encoder.key_tokens
    assert any("greedy answer" in note for note in answer.notes)

    tokenizer = AutoTokenizer.from_pretrained(tiny_seq2seq)
    labels = tokenizer(text_target=target)["input_ids"]
    decoder_ids = torch.tensor([[tokenizer.pad_token_id, *labels]])  # T5 starts decoding from the pad token
    assert cross.query_tokens == tuple(tokenizer.decode([i]) for i in decoder_ids[0].tolist())
    out, _, _ = _reference(await engine.backend(tiny_seq2seq), AutoModelForSeq2SeqLM, TEXT,
                           decoder_input_ids=decoder_ids)
    np.testing.assert_allclose(cross.weights, _stacked(out.cross_attentions), atol=_tolerance(cross))
    np.testing.assert_allclose(encoder.weights, _stacked(out.encoder_attentions), atol=_tolerance(encoder))
    assert cross.weights.shape == (2, 4, len(labels) + 1, len(encoder.key_tokens))


async def test_a_long_prompt_is_cut_with_a_note(engine, tiny_causal):
    text = " ".join([TEXT] * 20)
    result = await engine.attention(tiny_causal, text, max_tokens=24)
    assert len(result.key_tokens) == 24 and result.weights.shape[-2:] == (24, 24)
    assert len(result.notes) == 1 and "cut to its first 24 of" in result.notes[0]
    _check_probabilities(result)
    capped = await engine.attention(tiny_causal, text, max_tokens=100_000)  # the context (128) caps it
    assert len(capped.key_tokens) == 128 and "128 of" in capped.notes[0]


async def test_the_attention_implementation_is_restored_even_when_the_body_fails(engine, tiny_seq2seq):
    backend = await engine.backend(tiny_seq2seq)
    model = backend.loaded.model
    before = _implementations(model)
    assert len(before) > 1 and "eager" not in before  # encoder and decoder configs too
    with pytest.raises(RuntimeError, match="boom"):
        with eager_attention(model):
            assert set(_implementations(model)) == {"eager"}
            raise RuntimeError("boom")
    assert _implementations(model) == before
    await engine.attention(tiny_seq2seq, TEXT, cross=True, target="x")
    assert _implementations(model) == before


async def test_bad_requests_are_one_line_errors(engine, tiny_causal):
    with pytest.raises(UnsupportedModelError, match="no decoder cross-attention"):
        await engine.attention(tiny_causal, TEXT, cross=True)
    with pytest.raises(InvalidRequestError, match="empty"):
        await engine.attention(tiny_causal, "   ")
    with pytest.raises(InvalidRequestError, match="cross-attention"):
        await engine.attention(tiny_causal, TEXT, target="a target without cross")
    backend = await engine.backend(tiny_causal)
    assert backend.loaded.model.config._attn_implementation != "eager"


async def test_an_isolated_model_returns_the_same_weights(engine, tiny_causal):
    isolated = Engine(EngineConfig(threads=1, isolate=True))
    try:
        remote = await isolated.attention(tiny_causal, TEXT)
    finally:
        await isolated.aclose()
    local = await engine.attention(tiny_causal, TEXT)
    assert remote.key_tokens == local.key_tokens and remote.notes == local.notes
    np.testing.assert_array_equal(remote.weights, local.weights)


@pytest.mark.slow
@pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed")
async def test_a_gguf_model_on_llama_cpp_answers_through_transformers_and_says_so():
    eng = Engine(EngineConfig(threads=1))
    try:
        info = await eng.load(ModelSpec("default", backend="llamacpp"))
        assert info.backend == "llamacpp"
        result = await eng.attention("default", "The capital of France is Paris.")
        assert result.notes[0] == TWIN_NOTE and result.causal and result.model == "default"
        _check_probabilities(result)
        assert result.weights.shape[:2] == (30, 9)  # SmolLM2-135M: 30 layers, 9 heads
    finally:
        await eng.aclose()
