"""The async engine: loaded models, each with its own worker thread, behind an asyncio API.

No torch call ever runs on the caller's event loop: each loaded model owns a single-thread
executor, so two models compute concurrently while requests to one model run in order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Callable, Sequence, TypeVar

import torch

from engine import fill_mask as fill_mask_ops
from engine import scoring
from engine.device import default_threads, pick_device
from engine.errors import (
    EngineClosedError,
    GenerationStalledError,
    LmscopeError,
    OutOfMemoryError,
)
from engine.generation import generate_batch
from engine.loading import LoadedModel, Progress, load_model
from engine.prompts import PreparedRequest, prepare
from engine.spec import ModelSpec
from engine.types import (
    FillMaskRequest,
    FillMaskResult,
    GenerationRequest,
    GenerationResult,
    LoglikelihoodResult,
    ModelInfo,
    PerplexityResult,
    StreamEvent,
    TokenDelta,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
_DONE = object()


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Engine-wide settings; ``None`` means choose automatically.

    ``threads``: torch CPU threads per model worker (default: all cores but one).
    ``device`` / ``dtype``: defaults for models whose spec does not set them.
    ``max_batch_size``: largest batch tried (16 on CPU, 64 on GPU); halves on out-of-memory.
    ``memory_budget_bytes``: loaded models' total weight size before the least recently used
    idle model is unloaded (default: half the RAM, or 80% of GPU memory).
    ``stall_timeout_s``: a stream that produces nothing for this long fails.
    """

    threads: int | None = None
    device: str | None = None
    dtype: str | None = None
    max_batch_size: int | None = None
    memory_budget_bytes: int | None = None
    stall_timeout_s: float = 600.0


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _default_budget(device: str) -> int:
    if device.startswith("cuda"):
        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory * 0.8)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class _Slot:
    """One loaded model, its worker thread and its adaptive batch size."""

    def __init__(self, loaded: LoadedModel, threads: int, batch_size: int) -> None:
        self.loaded = loaded
        self.batch_size = batch_size
        self.active = 0
        self.last_used = time.monotonic()
        self.executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"lmscope-{loaded.info.name[:24]}",
            initializer=torch.set_num_threads,
            initargs=(threads,),
        )

    async def call(self, fn: Callable[..., T], *args) -> T:
        """Run ``fn(*args)`` on this model's worker thread."""
        self.active += 1
        self.last_used = time.monotonic()
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))
        finally:
            self.active -= 1
            self.last_used = time.monotonic()


class Engine:
    """Loads models and runs requests on them, never blocking the event loop.

    Requests name their model (``request.model``); a model not yet loaded is loaded on first
    use with this engine's default device and dtype. Call :meth:`aclose` when done.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.threads = self.config.threads or default_threads()
        self._slots: OrderedDict[str, _Slot] = OrderedDict()
        self._loading: dict[str, asyncio.Future[_Slot]] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._closed = False

    # ----------------------------------------------------------------------------- models
    async def load(self, spec: str | ModelSpec, progress: Progress | None = None) -> ModelInfo:
        """Load a model (or return the already loaded one) and make it most recently used.

        ``progress`` receives short status lines from the loading thread.

        Raises:
            ModelNotFoundError, HubUnreachableError, InvalidModelError, UnsupportedModelError.
        """
        return (await self._slot(spec, progress)).loaded.info

    def loaded_models(self) -> list[ModelInfo]:
        """Loaded models, least recently used first."""
        return [slot.loaded.info for slot in self._slots.values()]

    async def unload(self, name: str) -> bool:
        """Free a model's memory once its running requests end. Returns whether it was loaded."""
        slot = self._slots.pop(name, None)
        if slot is None:
            return False
        await asyncio.get_running_loop().run_in_executor(slot.executor, lambda: None)  # drain queued work
        slot.executor.shutdown(wait=False)
        del slot
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True

    async def _slot(self, spec: str | ModelSpec, progress: Progress | None = None) -> _Slot:
        self._check_open()
        if isinstance(spec, str):
            spec = ModelSpec(spec)
        spec = dataclasses.replace(
            spec, device=spec.device or self.config.device, dtype=spec.dtype or self.config.dtype)
        name = spec.name
        if name in self._slots:
            self._slots.move_to_end(name)
            return self._slots[name]
        if name not in self._loading:
            self._loading[name] = asyncio.ensure_future(self._load_slot(spec, progress))
            self._loading[name].add_done_callback(lambda _f: self._loading.pop(name, None))
        return await asyncio.shield(self._loading[name])

    async def _load_slot(self, spec: ModelSpec, progress: Progress | None) -> _Slot:
        loaded = await asyncio.to_thread(self._load_blocking, spec, progress)
        device = str(loaded.device)
        batch = self.config.max_batch_size or (64 if device.startswith("cuda") else 16)
        slot = _Slot(loaded, self.threads, batch)
        self._slots[spec.name] = slot
        await self._evict(keep=spec.name, device=device)
        return slot

    def _load_blocking(self, spec: ModelSpec, progress: Progress | None) -> LoadedModel:
        torch.set_num_threads(self.threads)
        return load_model(spec, progress)

    async def _evict(self, keep: str, device: str) -> None:
        budget = self.config.memory_budget_bytes or _default_budget(device)
        while sum(s.loaded.info.memory_bytes for s in self._slots.values()) > budget:
            idle = [n for n, s in self._slots.items() if n != keep and s.active == 0]
            if not idle:
                log.warning("models exceed the memory budget of %d bytes but all are busy", budget)
                return
            log.info("unloading %s (least recently used) to stay within the memory budget", idle[0])
            await self.unload(idle[0])

    # ---------------------------------------------------------------------- generation
    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Stream ``request``: :class:`TokenDelta` events, then one :class:`GenerationResult`.

        Closing the iterator or cancelling the consuming task stops generation on the device
        within one decoding step; so does :meth:`cancel` with the request's id.

        Raises:
            InvalidRequestError, ContextLengthError, UnsupportedModelError, OutOfMemoryError,
            GenerationStalledError (nothing arrived for ``stall_timeout_s``), and load errors.
        """
        slot = await self._slot(request.model)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = self._cancels.setdefault(request.request_id, threading.Event())

        def emit(event: TokenDelta) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def prepare_and_generate() -> list[GenerationResult]:
            # Tokenising on the model's own thread keeps its tokenizer single-threaded.
            return generate_batch(slot.loaded, [prepare(slot.loaded, request)], [cancel], emit)

        job = asyncio.ensure_future(slot.call(prepare_and_generate))
        job.add_done_callback(lambda _f: queue.put_nowait(_DONE))
        finished = False
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.config.stall_timeout_s)
                except asyncio.TimeoutError:
                    raise GenerationStalledError(
                        f"{request.model!r} produced nothing for {self.config.stall_timeout_s:g} s",
                        hint="the device may be overloaded; the request was cancelled") from None
                if item is _DONE:
                    finished = True
                    yield self._job_result(job)[0]
                    return
                yield item
        finally:
            if not finished:
                cancel.set()
                job.add_done_callback(lambda f: f.cancelled() or f.exception())  # consume, don't warn
            self._cancels.pop(request.request_id, None)

    async def generate(self, requests: Sequence[GenerationRequest],
                       on_delta: Callable[[TokenDelta], None] | None = None) -> list[GenerationResult]:
        """Generate for many requests, batched; results come back in request order.

        Requests are grouped by model and decoding settings (seeds may differ), sorted by prompt
        length, and run in batches (left padding for causal models, right for seq2seq). A batch
        that runs out of memory is retried at half the size. ``on_delta`` is called on the event
        loop with every token delta, tagged with its request id. Models run concurrently.
        """
        if not requests:
            return []
        loop = asyncio.get_running_loop()
        emit = None if on_delta is None else (lambda ev: loop.call_soon_threadsafe(on_delta, ev))
        by_model: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            by_model.setdefault(request.model, []).append(index)
        results: list[GenerationResult | None] = [None] * len(requests)

        async def run_model(model: str, indices: list[int]) -> None:
            slot = await self._slot(model)
            prepared = await slot.call(lambda: [prepare(slot.loaded, requests[i]) for i in indices])
            groups: dict[object, list[tuple[int, PreparedRequest]]] = {}
            for i, p in zip(indices, prepared):
                groups.setdefault(dataclasses.replace(p.params, seed=None), []).append((i, p))
            for members in groups.values():
                members.sort(key=lambda m: -len(m[1].input_ids))
                for i, result in zip([m[0] for m in members], await self._run_batches(slot, [m[1] for m in members], emit)):
                    results[i] = result

        await asyncio.gather(*(run_model(m, idx) for m, idx in by_model.items()))
        return results  # type: ignore[return-value]

    async def _run_batches(self, slot: _Slot, prepared: list[PreparedRequest], emit) -> list[GenerationResult]:
        out: list[GenerationResult] = []
        start = 0
        while start < len(prepared):
            chunk = prepared[start:start + slot.batch_size]
            cancels = [self._cancels.setdefault(p.request.request_id, threading.Event()) for p in chunk]
            try:
                out += await slot.call(generate_batch, slot.loaded, chunk, cancels, emit)
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                if len(chunk) == 1:
                    raise OutOfMemoryError(
                        f"{slot.loaded.info.name!r} ran out of memory on {slot.loaded.info.device} at batch size 1",
                        hint="lower max_new_tokens, shorten the prompt, or use a smaller dtype") from exc
                slot.batch_size = (len(chunk) + 1) // 2
                log.warning("out of memory at batch size %d; retrying at %d", len(chunk), slot.batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            finally:
                for p in chunk:
                    self._cancels.pop(p.request.request_id, None)
            start += len(chunk)
        return out

    def cancel(self, request_id: str) -> bool:
        """Stop a running or queued request; returns whether it was known."""
        event = self._cancels.get(request_id)
        if event is not None:
            event.set()
        return event is not None

    @staticmethod
    def _job_result(job: asyncio.Future) -> list[GenerationResult]:
        try:
            return job.result()
        except LmscopeError:
            raise
        except Exception as exc:
            if _is_oom(exc):
                raise OutOfMemoryError("the device ran out of memory while generating",
                                       hint="lower max_new_tokens or shorten the prompt") from exc
            raise

    # -------------------------------------------------------------------------- scoring
    async def loglikelihood(self, model: str, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        """log P(continuation | context) for each (context, continuation) pair, batched."""
        slot = await self._slot(model)
        return await slot.call(scoring.loglikelihood, slot.loaded, list(pairs), slot.batch_size)

    async def perplexity(self, model: str, texts: str | Sequence[str], *, max_length: int | None = None,
                         stride: int | None = None) -> list[PerplexityResult]:
        """Perplexity of each text (sliding window of ``max_length`` tokens advancing by
        ``stride``; defaults: the model's context and half of it). Windows are batched."""
        slot = await self._slot(model)
        texts = [texts] if isinstance(texts, str) else list(texts)
        return await slot.call(scoring.perplexity, slot.loaded, texts, max_length, stride, slot.batch_size)

    async def fill_mask(self, request: FillMaskRequest) -> FillMaskResult:
        """Top-k predictions for each mask token (masked language models)."""
        slot = await self._slot(request.model)
        return await slot.call(fill_mask_ops.fill_mask, slot.loaded, request)

    # ------------------------------------------------------------------------ lifecycle
    def _check_open(self) -> None:
        if self._closed:
            raise EngineClosedError("the engine was closed", hint="create a new Engine")

    async def aclose(self) -> None:
        """Cancel running requests and unload every model."""
        for event in self._cancels.values():
            event.set()
        for name in list(self._slots):
            await self.unload(name)
        self._closed = True

    async def __aenter__(self) -> "Engine":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


def auto_device() -> str:
    """The device models load on when nothing is asked for."""
    return pick_device(None)
