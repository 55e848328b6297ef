"""Attention weights of a Hugging Face model over a prompt (blocking; runs on a model's worker thread).

SDPA and flash attention compute no weights, so each request switches the model to eager
attention for its own forward pass and puts every config's setting back afterwards, error or
not (:func:`eager_attention`); requests of one model run one at a time on its worker thread, so
no other request sees the switch. Causal and masked models give their self-attention; seq2seq
models their encoder self-attention or their decoder's cross-attention over the encoded prompt
(the decoder reads a given target, or the model's own greedy answer).

llama.cpp exposes no attention weights: :class:`TransformersTwin` loads the same GGUF file
through transformers on the first attention request and answers from that copy, saying so in
the result's notes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from engine.errors import InvalidRequestError, UnsupportedModelError
from engine.loading import LoadedModel
from engine.types import AttentionRequest, AttentionResult, ModelInfo

# Longest answer the decoder writes when cross-attention is asked for without a target.
ANSWER_TOKENS = 48
TWIN_NOTE = "llama.cpp returns no attention weights: computed by transformers from the same GGUF file"


def _configs(model: Any) -> list[Any]:
    """Every config object the model and its sub-models read their attention implementation from."""
    from transformers import PretrainedConfig

    found: dict[int, Any] = {}
    stack = [m.config for m in model.modules() if isinstance(getattr(m, "config", None), PretrainedConfig)]
    while stack:
        config = stack.pop()
        if id(config) in found:
            continue
        found[id(config)] = config
        for key in getattr(config, "sub_configs", None) or {}:
            sub = getattr(config, key, None)
            if isinstance(sub, PretrainedConfig):
                stack.append(sub)
    return list(found.values())


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Run the body with eager attention (the only implementation that returns weights), then
    restore exactly the implementation every config had before, even when the body raises."""
    saved = [(config, config._attn_implementation_internal) for config in _configs(model)]
    try:
        if model.config._attn_implementation != "eager":
            try:
                model.set_attn_implementation("eager")
            except (ValueError, ImportError) as exc:
                raise UnsupportedModelError(
                    f"{type(model).__name__} cannot switch to eager attention: {exc}",
                    hint="attention weights need a model that supports eager attention") from exc
        yield
    finally:
        for config, value in saved:
            config._attn_implementation_internal = value


def _encode(tokenizer: Any, text: str, limit: int) -> tuple[list[int], int]:
    """The first ``limit`` tokens of ``text`` (special tokens kept) and how many it has in all."""
    total = len(tokenizer(text, verbose=False)["input_ids"])
    ids = tokenizer(text, truncation=True, max_length=limit, verbose=False)["input_ids"]
    return list(ids), total


def _token_texts(tokenizer: Any, ids: list[int]) -> tuple[str, ...]:
    return tuple(tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False) for i in ids)


def _stack(attentions: Any, name: str) -> Any:
    """Per-layer ``(1, heads, query, key)`` tensors as one float32 array ``[layers, heads, query, key]``."""
    if not attentions or any(a is None for a in attentions):
        raise UnsupportedModelError(f"{name!r} returned no attention weights",
                                    hint="its attention implementation may not support returning them")
    return torch.stack([a[0] for a in attentions]).float().cpu().numpy()


def attention(loaded: LoadedModel, request: AttentionRequest) -> AttentionResult:
    """Attention weights of ``loaded`` over ``request.text`` (see the module docstring).

    Raises:
        InvalidRequestError: empty text, ``max_tokens`` below 2, or a target without ``cross``.
        UnsupportedModelError: cross-attention asked of a model without a decoder reading an
            encoder, or a model that cannot return attention weights.
    """
    name = loaded.info.name
    if not request.text.strip():
        raise InvalidRequestError("the text is empty", hint="type the text whose attention to show")
    if request.max_tokens < 2:
        raise InvalidRequestError(f"max_tokens must be at least 2, got {request.max_tokens}")
    if request.target is not None and not request.cross:
        raise InvalidRequestError("a target text is read by a decoder's cross-attention",
                                  hint="set cross=True (seq2seq models), or leave the target out")
    if request.cross and loaded.kind != "seq2seq":
        raise UnsupportedModelError(f"{name!r} is a {loaded.kind} model: it has no decoder cross-attention",
                                    hint="cross-attention needs a seq2seq model such as T5; ask for self-attention")
    tokenizer, model, device = loaded.tokenizer, loaded.model, loaded.device
    limit = min(request.max_tokens, loaded.info.context_length or request.max_tokens)
    ids, total = _encode(tokenizer, request.text, limit)
    notes: list[str] = []
    if total > len(ids):
        notes.append(f"the prompt was cut to its first {len(ids)} of {total} tokens")
    inputs = torch.tensor([ids], device=device)
    mask = torch.ones_like(inputs)
    with torch.inference_mode(), eager_attention(model):
        if loaded.kind != "seq2seq":
            out = model(input_ids=inputs, attention_mask=mask, output_attentions=True, use_cache=False)
            weights = _stack(out.attentions, name)
            kind, queries = "self", ids
        elif not request.cross:
            out = model.get_encoder()(input_ids=inputs, attention_mask=mask, output_attentions=True)
            weights = _stack(out.attentions, name)
            kind, queries = "encoder-self", ids
        else:
            queries = _decoder_ids(loaded, inputs, mask, request.target, limit, notes)
            out = model(input_ids=inputs, attention_mask=mask, decoder_input_ids=torch.tensor([queries], device=device),
                        output_attentions=True, use_cache=False)
            weights = _stack(out.cross_attentions, name)
            kind = "decoder-cross"
    return AttentionResult(
        request_id=request.request_id, model=name, kind=kind, query_tokens=_token_texts(tokenizer, queries),
        key_tokens=_token_texts(tokenizer, ids), weights=weights, causal=kind == "self" and loaded.kind == "causal",
        notes=tuple(notes), dtype=loaded.info.dtype)


def _decoder_ids(loaded: LoadedModel, inputs: torch.Tensor, mask: torch.Tensor, target: str | None, limit: int,
                 notes: list[str]) -> list[int]:
    """What the decoder reads: the start token, then ``target``'s tokens or the greedy answer."""
    model, tokenizer = loaded.model, loaded.tokenizer
    start = model.config.decoder_start_token_id
    if start is None:
        start = tokenizer.pad_token_id
    if target is None:
        out = model.generate(input_ids=inputs, attention_mask=mask, do_sample=False,
                             max_new_tokens=min(ANSWER_TOKENS, limit - 1))
        answer = [int(i) for i in out[0].tolist()]
        notes.append(f"queries: the model's greedy answer ({len(answer) - 1} tokens)")
        return answer
    labels = tokenizer(text_target=target, verbose=False)["input_ids"]
    if len(labels) > limit - 1:
        notes.append(f"the target was cut to its first {limit - 1} of {len(labels)} tokens")
    return [int(start), *labels[:limit - 1]]


class TransformersTwin:
    """The transformers copy of a GGUF model that llama.cpp serves, for requests llama.cpp cannot
    answer (attention weights). Loaded on first use, released by :meth:`aclose`; its memory is
    not counted in the engine's budget."""

    def __init__(self, info: ModelInfo, threads: int | None = None) -> None:
        from engine.device import default_threads

        self.info = info
        self.threads = threads or default_threads()
        self._backend: Any = None
        self._lock = asyncio.Lock()

    async def attention(self, request: AttentionRequest) -> AttentionResult:
        """As :meth:`engine.local.HFBackend.attention`, with :data:`TWIN_NOTE` first among the notes."""
        from engine.loading import load_model
        from engine.local import HFBackend
        from engine.spec import ModelSpec

        async with self._lock:
            if self._backend is None:
                spec = ModelSpec(self.info.source, kind="causal", backend="hf")
                self._backend = HFBackend(await asyncio.to_thread(load_model, spec), self.threads)
        result = await self._backend.attention(request)
        return dataclasses.replace(result, model=self.info.name, notes=(TWIN_NOTE, *result.notes))

    async def aclose(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            await backend.aclose()
