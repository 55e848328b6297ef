"""The in-process backend: a Hugging Face model on this machine, with its own worker thread."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import torch

from engine import attention as attention_ops
from engine import fill_mask as fill_mask_ops
from engine import scoring
from engine.backend import Emit, ModelBackend
from engine.choice_scoring import ChoiceRequest, ChoiceScores
from engine.cancel import CancelToken
from engine.errors import OutOfMemoryError
from engine.generation import generate_batch
from engine.loading import LoadedModel
from engine.prompts import PreparedRequest, prepare
from engine.types import (
    AttentionRequest,
    AttentionResult,
    FillMaskRequest,
    FillMaskResult,
    GenerationRequest,
    GenerationResult,
    LoglikelihoodResult,
    PerplexityResult,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch (or the allocator) running out of memory."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class HFBackend(ModelBackend):
    """A loaded Hugging Face model. All torch work runs on one worker thread per model, so the
    event loop never waits on torch, two models compute concurrently, and one model's requests
    run in order."""

    def __init__(self, loaded: LoadedModel, threads: int, batch_size: int | None = None) -> None:
        """``batch_size``: the largest batch tried (default 64 on CUDA and for bfloat16 CPU batches, else 16)."""
        super().__init__()
        self.loaded = loaded
        self.info = loaded.info
        # 64 where batches are cheap per row: on a GPU, and on a CPU decoding batches in bfloat16
        # (measured, SmolLM2 on 1 thread with AMX: 154 tok/s at batch 16, 248 at 64).
        wide = str(loaded.device).startswith("cuda") or loaded.batch_dtype == torch.bfloat16
        self.batch_size = batch_size or (64 if wide else 16)
        self.executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"lmscope-{loaded.info.name[-24:]}",
            initializer=torch.set_num_threads,
            initargs=(threads,),
        )

    async def call(self, fn: Callable[..., T], *args) -> T:
        """Run ``fn(*args)`` on this model's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))

    async def generate(self, requests: Sequence[GenerationRequest], cancels: Sequence[CancelToken],
                       emit: Emit | None) -> list[GenerationResult]:
        """Group by decoding settings (seeds may differ), sort by prompt length, run in batches
        (left padding for causal models, right for seq2seq); a batch that runs out of memory is
        retried at half its size."""
        loaded = self.loaded
        if len(requests) == 1:  # a chat turn: one trip to the worker thread
            try:
                return await self.call(lambda: generate_batch(loaded, [prepare(loaded, requests[0])], cancels, emit))
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise OutOfMemoryError(f"{self.info.name!r} ran out of memory on {self.info.device}",
                                           hint="lower max_new_tokens or shorten the prompt") from exc
                raise
        prepared = await self.call(lambda: [prepare(loaded, r) for r in requests])
        groups: dict[object, list[int]] = {}
        for i, p in enumerate(prepared):
            groups.setdefault(dataclasses.replace(p.params, seed=None), []).append(i)
        results: list[GenerationResult | None] = [None] * len(requests)
        for members in groups.values():
            members.sort(key=lambda i: -len(prepared[i].input_ids))
            out = await self._run_batches([prepared[i] for i in members], [cancels[i] for i in members], emit)
            for i, result in zip(members, out):
                results[i] = result
        return results  # type: ignore[return-value]

    async def _run_batches(self, prepared: list[PreparedRequest], cancels: list[CancelToken],
                           emit: Emit | None) -> list[GenerationResult]:
        out: list[GenerationResult] = []
        start = 0
        while start < len(prepared):
            chunk = prepared[start:start + self.batch_size]
            try:
                out += await self.call(generate_batch, self.loaded, chunk, cancels[start:start + len(chunk)], emit,
                                       True)  # a batched call: LoadedModel.for_generation picks its dtype
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                if len(chunk) == 1:
                    raise OutOfMemoryError(
                        f"{self.info.name!r} ran out of memory on {self.info.device} at batch size 1",
                        hint="lower max_new_tokens, shorten the prompt, or use a smaller dtype") from exc
                self.batch_size = (len(chunk) + 1) // 2
                log.warning("out of memory at batch size %d; retrying at %d", len(chunk), self.batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            start += len(chunk)
        return out

    async def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        return await self.call(scoring.loglikelihood, self.loaded, list(pairs), self.batch_size)

    async def perplexity(self, texts: Sequence[str], max_length: int | None,
                         stride: int | None) -> list[PerplexityResult]:
        return await self.call(scoring.perplexity, self.loaded, list(texts), max_length, stride, self.batch_size)

    async def fill_mask(self, request: FillMaskRequest) -> FillMaskResult:
        return await self.call(fill_mask_ops.fill_mask, self.loaded, request)

    async def attention(self, request: AttentionRequest) -> AttentionResult:
        """See :func:`engine.attention.attention` (eager attention for this request only)."""
        try:
            return await self.call(attention_ops.attention, self.loaded, request)
        except Exception as exc:
            if is_out_of_memory(exc):
                raise OutOfMemoryError(f"{self.info.name!r} ran out of memory computing attention weights",
                                       hint="shorten the text or lower max_tokens") from exc
            raise

    async def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceScores]:
        """Every option of every request scored on the worker thread (:mod:`engine.choice_models`)."""
        from engine.choice_models import score_choices

        return await self.call(score_choices, self.loaded, list(requests), self.batch_size)

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, lambda: None)  # let queued work end
        self.executor.shutdown(wait=False)
        self.loaded = None  # type: ignore[assignment]
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
