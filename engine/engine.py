"""The async engine: models by name, each behind a backend, exposed as an asyncio API.

The engine never runs torch on the caller's event loop: the in-process backend gives each
model its own worker thread, so two models compute concurrently while one model's requests
run in order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import logging
import os
from collections import Counter, OrderedDict
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Callable, Sequence

import torch

from engine.backend import ModelBackend
from engine.cancel import CancelToken
from engine.choice_scoring import ChoiceRequest, ChoiceScores, score_choices_on
from engine.device import default_threads, llama_threads, threads_from_environment
from engine.errors import EngineClosedError, GenerationStalledError, InvalidModelError, UnsupportedModelError
from engine.loading import Progress, load_model
from engine.local import HFBackend
from engine.process import ProcessBackend
from engine.spec import ModelSpec, ResolvedSource, resolve_source, select_backend
from engine.types import (
    ATTENTION_MAX_TOKENS,
    AttentionRequest,
    AttentionResult,
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
_DONE = object()


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Engine-wide settings; ``None`` means choose automatically.

    ``threads``: CPU threads per model (default: for torch all cores but one, for llama.cpp
    every physical core; see :mod:`engine.device`).
    ``device`` / ``dtype``: defaults for models whose spec does not set them.
    ``max_batch_size``: largest batch tried (16 on CPU, 64 on GPU); halves on out-of-memory.
    ``memory_budget_bytes``: loaded models' total weight size before the least recently used
    idle model is unloaded (default: half the RAM, or 80% of GPU memory).
    ``stall_timeout_s``: a stream that produces nothing for this long fails.
    ``freeze_gc``: after a model loads, move every object alive into the garbage collector's
    permanent generation (``gc.freeze``). With torch and transformers loaded the heap is so
    large that one full collection paused the event loop for ~250 ms (measured while
    streaming into the chat view); frozen, those pauses went away. Unloading unfreezes first
    so the model's memory is still reclaimed.
    ``isolate``: run each local model in a process of its own (:mod:`engine.process`), so its
    decode loop never competes with this process's threads (a UI) for the interpreter lock.
    Costs a process start (imports torch) per model; results are the same.
    ``backend``: default for local models whose spec does not set one: ``auto``, ``hf`` or
    ``llamacpp`` (see :func:`engine.spec.select_backend`).
    """

    threads: int | None = None
    device: str | None = None
    dtype: str | None = None
    max_batch_size: int | None = None
    memory_budget_bytes: int | None = None
    stall_timeout_s: float = 600.0
    freeze_gc: bool = True
    isolate: bool = False
    backend: str | None = None


def _default_budget(device: str) -> int:
    if device.startswith("cuda"):
        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory * 0.8)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


class Engine:
    """Loads models and runs requests on them, never blocking the event loop.

    Requests name their model (``request.model``); a model not yet loaded is loaded on first
    use with this engine's default device and dtype. Call :meth:`aclose` when done.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.threads = self.config.threads or default_threads()
        self.llama_threads = self.config.threads or llama_threads()
        # A thread count nobody chose is shared among the engine's busy models (llama_threads_now).
        self._share_llama_cores = self.config.threads is None and threads_from_environment() is None
        self._backends: OrderedDict[str, ModelBackend] = OrderedDict()
        self._loading: dict[str, asyncio.Future[ModelBackend]] = {}
        self._load_listeners: dict[str, list[Progress]] = {}
        self._cancels: dict[str, CancelToken] = {}
        self._in_flight: Counter[str] = Counter()  # calls per model name; busy models are never evicted
        self._closed = False

    # ----------------------------------------------------------------------------- models
    async def load(self, spec: str | ModelSpec, progress: Progress | None = None) -> ModelInfo:
        """Load a model (or return the already loaded one) and make it most recently used.

        ``progress`` receives short status lines from the loading thread.

        Raises:
            ModelNotFoundError, HubUnreachableError, InvalidModelError, UnsupportedModelError.
        """
        return (await self.backend(spec, progress)).info

    def loaded_models(self) -> list[ModelInfo]:
        """Loaded models, least recently used first."""
        return [backend.info for backend in self._backends.values()]

    def in_flight(self, name: str) -> int:
        """Calls on model ``name`` that have not ended (loading it counts); while there are any,
        the memory budget never unloads it."""
        return self._in_flight[name]

    def _hold(self, model: str) -> Callable[[], None]:
        """Count a call on ``model`` as in flight until the returned release is called (once)."""
        self._in_flight[model] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight[model] -= 1
                if self._in_flight[model] <= 0:
                    del self._in_flight[model]

        return release

    @asynccontextmanager
    async def _busy(self, model: str) -> AsyncIterator[ModelBackend]:
        """The backend serving ``model``, counted in flight from before it loads until the block ends."""
        release = self._hold(model)
        try:
            yield await self.backend(model)
        finally:
            release()

    async def unload(self, name: str) -> bool:
        """Free a model once its queued requests end. Returns whether it was loaded."""
        backend = self._backends.pop(name, None)
        if backend is None:
            return False
        if self.config.freeze_gc:
            gc.unfreeze()
        await backend.aclose()
        del backend
        if self.config.freeze_gc:
            gc.collect()
            gc.freeze()
        return True

    async def backend(self, spec: str | ModelSpec, progress: Progress | None = None) -> ModelBackend:
        """The backend serving ``spec``, loading it first if needed (or again, if its model
        process was killed: the new process loads the spec the old one was started with)."""
        if self._closed:
            raise EngineClosedError("the engine was closed", hint="create a new Engine")
        if isinstance(spec, str):
            spec = ModelSpec(spec)
        spec = dataclasses.replace(spec, device=spec.device or self.config.device, dtype=spec.dtype or self.config.dtype,
                                   backend=spec.backend or self.config.backend)
        name = spec.name
        dead = self._take_exited(name)
        if dead is not None:
            spec = dead.spec
        elif name in self._backends:
            self._backends.move_to_end(name)
            return self._backends[name]
        if name not in self._loading:
            # Every caller waiting on the same load hears its progress, not only the first.
            listeners = self._load_listeners[name] = []

            def fan_out(message: str) -> None:
                for listener in list(listeners):
                    listener(message)

            self._loading[name] = asyncio.ensure_future(self._open(spec, fan_out))
            self._loading[name].add_done_callback(lambda _f: (self._loading.pop(name, None),
                                                              self._load_listeners.pop(name, None)))
        if progress is not None and name in self._load_listeners:
            self._load_listeners[name].append(progress)
        if dead is not None:
            await dead.aclose()
        return await asyncio.shield(self._loading[name])

    def _take_exited(self, name: str) -> ProcessBackend | None:
        """Forget ``name``'s backend if its model process is gone (killed from outside); return it.

        Taken out before anything awaits, so concurrent callers start one replacement between them.
        """
        backend = self._backends.get(name)
        if not isinstance(backend, ProcessBackend) or not backend.exited:
            return None
        log.warning("the process serving %s exited; starting a new one", name)
        del self._backends[name]
        return backend

    async def _open(self, spec: ModelSpec, progress: Progress | None) -> ModelBackend:
        if spec.is_remote:
            from engine.remote import open_remote

            backend = await open_remote(spec)
            self._backends[spec.name] = backend
            return backend

        source = await asyncio.to_thread(resolve_source, spec)
        backend: ModelBackend | None = None
        if select_backend(spec, source) == "llamacpp":
            backend = await self._open_llamacpp(spec, source, progress)
        if backend is None:
            backend = await self._open_transformers(spec, progress)
        self._backends[spec.name] = backend
        await self._evict(keep=spec.name, device=backend.info.device)
        if self.config.freeze_gc:
            gc.freeze()
        return backend

    async def _open_transformers(self, spec: ModelSpec, progress: Progress | None) -> ModelBackend:
        if self.config.isolate:
            return await ProcessBackend.start(spec, self.threads, self.config.max_batch_size, progress)

        def load_blocking():
            torch.set_num_threads(self.threads)
            return load_model(spec, progress)

        loaded = await asyncio.to_thread(load_blocking)
        return HFBackend(loaded, self.threads, self.config.max_batch_size)

    async def _open_llamacpp(self, spec: ModelSpec, source: ResolvedSource,
                             progress: Progress | None) -> ModelBackend | None:
        """The model on llama.cpp; None when it was only chosen automatically and llama.cpp cannot
        run it (then transformers gets a try). Runs in this process even with ``isolate``: its
        decode loop spends its time in C, outside the interpreter lock that isolation is about."""
        from engine.llamacpp import LlamaCppBackend

        try:
            backend = await LlamaCppBackend.open(spec, Path(source.location), self.llama_threads,
                                                 self.config.max_batch_size, progress)
        except (InvalidModelError, UnsupportedModelError) as exc:
            if spec.backend == "llamacpp":
                raise
            log.info("llama.cpp cannot run %s (%s); trying transformers", spec.name, exc.message)
            return None
        if self._share_llama_cores:
            backend.runtime.threads_now = functools.partial(self.llama_threads_now, spec.name)
        return backend

    def llama_threads_now(self, name: str) -> int:
        """Threads for the next llama.cpp step of model ``name``: every physical core while it is
        the only model busy, one fewer for each other model with calls in flight. While a
        transformers model decoded on one of 2 cores, llama.cpp on both fell from 79 to 23 tok/s
        (its threads wait for each other after every operation); on one thread it kept 44. Safe to call from
        the model's worker thread (it reads one length)."""
        others = len(self._in_flight) - (name in self._in_flight)
        return max(1, self.llama_threads - others)

    async def _evict(self, keep: str, device: str) -> None:
        budget = self.config.memory_budget_bytes or _default_budget(device)
        while sum(b.memory_bytes for b in self._backends.values()) > budget:
            idle = [n for n in self._backends if n != keep and not self._in_flight[n]]
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
        release = self._hold(request.model)
        try:
            backend = await self.backend(request.model)
        except BaseException:
            release()
            raise
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = self._cancels.setdefault(request.request_id, CancelToken())

        def emit(event: TokenDelta) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        job = asyncio.ensure_future(backend.generate([request], [cancel], emit))
        # In flight until the backend returns, which may be a decoding step after the consumer left.
        job.add_done_callback(lambda _f: release())
        # Scheduled the same way as emit, so it lands in the queue after every delta.
        job.add_done_callback(lambda _f: loop.call_soon_threadsafe(queue.put_nowait, _DONE))
        finished = False
        try:
            while True:
                try:
                    # Not asyncio.wait_for: on Python 3.11 it can swallow the consumer's
                    # cancellation when an item arrives in the same loop step.
                    async with asyncio.timeout(self.config.stall_timeout_s):
                        item = await queue.get()
                except TimeoutError:
                    raise GenerationStalledError(
                        f"{request.model!r} produced nothing for {self.config.stall_timeout_s:g} s",
                        hint="the device may be overloaded; the request was cancelled") from None
                if item is _DONE:
                    finished = True
                    yield job.result()[0]
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

        Each model's requests go to its backend together (the in-process backend groups them
        by settings, sorts by length and batches, halving a batch that runs out of memory).
        ``on_delta`` is called on the event loop with every token delta, tagged with its
        request id. Different models run concurrently. :meth:`cancel` stops single requests.
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
            async with self._busy(model) as backend:
                ids = [requests[i].request_id for i in indices]
                cancels = [self._cancels.setdefault(rid, CancelToken()) for rid in ids]
                try:
                    out = await backend.generate([requests[i] for i in indices], cancels, emit)
                except BaseException:  # the caller was cancelled, or a request failed: stop the rest
                    for token in cancels:
                        token.set()
                    raise
                finally:
                    for rid in ids:
                        self._cancels.pop(rid, None)
            for i, result in zip(indices, out):
                results[i] = result

        await asyncio.gather(*(run_model(m, idx) for m, idx in by_model.items()))
        return results  # type: ignore[return-value]

    def cancel(self, request_id: str) -> bool:
        """Stop a running or queued request; returns whether it was known."""
        token = self._cancels.get(request_id)
        if token is not None:
            token.set()
        return token is not None

    # -------------------------------------------------------------------------- scoring
    async def loglikelihood(self, model: str, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        """log P(continuation | context) for each (context, continuation) pair, batched."""
        async with self._busy(model) as backend:
            return await backend.loglikelihood(list(pairs))

    async def perplexity(self, model: str, texts: str | Sequence[str], *, max_length: int | None = None,
                         stride: int | None = None) -> list[PerplexityResult]:
        """Perplexity of each text (sliding window of ``max_length`` tokens advancing by
        ``stride``; defaults: the model's context and half of it). Windows are batched."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        async with self._busy(model) as backend:
            return await backend.perplexity(texts, max_length, stride)

    async def fill_mask(self, request: FillMaskRequest) -> FillMaskResult:
        """Top-k predictions for each mask token (masked language models)."""
        async with self._busy(request.model) as backend:
            return await backend.fill_mask(request)

    async def attention(self, model: str, text: str, *, cross: bool = False, target: str | None = None,
                        max_tokens: int = ATTENTION_MAX_TOKENS) -> AttentionResult:
        """Attention weights over ``text``'s tokens (see :class:`~engine.types.AttentionRequest`),
        computed with eager attention for this request only; the model is left as it was."""
        request = AttentionRequest(model, text, cross=cross, target=target, max_tokens=max_tokens)
        async with self._busy(model) as backend:
            return await backend.attention(request)

    async def score_choices(self, model: str, requests: Sequence[ChoiceRequest]) -> list[ChoiceScores]:
        """Summed log-probability of every option of every request, as one batched job (a context
        shared by its options is encoded once; see :mod:`engine.choice_scoring`)."""
        async with self._busy(model) as backend:
            return await score_choices_on(backend, requests)

    # ------------------------------------------------------------------------ lifecycle
    async def aclose(self) -> None:
        """Cancel running requests and unload every model."""
        for token in list(self._cancels.values()):
            token.set()
        for name in list(self._backends):
            await self.unload(name)
        self._closed = True

    async def __aenter__(self) -> "Engine":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
