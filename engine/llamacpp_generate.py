"""The decode loop of the llama.cpp backend (blocking; the model's worker thread).

Events and results follow the Hugging Face path (:mod:`engine.generation`) field for field:
the same :class:`TokenDelta` per accepted token (text held back while it may be the start of a
stop string), the same finish reasons, and ``new_tokens`` counting every decoding step,
including the end-of-generation token and the step on which a cancel was seen.
"""

from __future__ import annotations

import codecs
import random
import threading
import time
from typing import Callable, Sequence

import numpy as np

from engine.detokenize import StopStringMatcher
from engine.llamacpp_runtime import LlamaRuntime, log_softmax
from engine.llamacpp_sampling import Sampler
from engine.prompts import PreparedRequest
from engine.types import FinishReason, GenerationResult, TokenDelta, TokenLogprob, Usage

Emit = Callable[[TokenDelta], None]


class _Answer:
    """What one request accumulates while it decodes."""

    def __init__(self, runtime: LlamaRuntime, prepared: PreparedRequest, emit: Emit | None) -> None:
        self.runtime = runtime
        self.prepared = prepared
        self.params = prepared.params
        self.emit = emit
        self.text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stops = StopStringMatcher(self.params.stop)
        self.token_ids: list[int] = []
        self.logprobs: list[TokenLogprob] = []
        self.top_logprobs: list[tuple[TokenLogprob, ...]] = []
        self.steps = 0
        self.finish_reason: FinishReason | None = None
        self.first_token_at: float | None = None
        self.finished_at: float | None = None

    def finish(self, reason: FinishReason) -> None:
        self.finish_reason = reason
        self.finished_at = time.perf_counter()
        rest = self.stops.flush() if reason != "stop_string" else ""
        if rest and self.emit is not None:
            self.emit(TokenDelta(self.prepared.request.request_id, rest, ()))

    def _token(self, token: int, logprob: float) -> TokenLogprob:
        return TokenLogprob(token, self.runtime.piece(token, special=True).decode("utf-8", "replace"), logprob)

    def accept(self, token: int, logits: np.ndarray) -> None:
        """Add a generated token: log-probabilities, text, stop strings, length, one delta."""
        self.token_ids.append(token)
        logprobs: tuple[TokenLogprob, ...] = ()
        alternatives: tuple[tuple[TokenLogprob, ...], ...] = ()
        if self.params.logprobs:
            step = log_softmax(logits)
            logprobs = (self._token(token, float(step[token])),)
            k = self.params.top_logprobs
            if k:
                best = np.argpartition(step, -k)[-k:]
                best = best[np.argsort(-step[best], kind="stable")]
                alternatives = (tuple(self._token(int(i), float(step[i])) for i in best),)
            self.logprobs.extend(logprobs)
            self.top_logprobs.extend(alternatives)
        piece = self.text.decode(self.runtime.piece(token, special=False))
        released, stopped = self.stops.feed(piece)
        if stopped:
            self.finish("stop_string")
        elif len(self.token_ids) >= self.params.max_new_tokens:
            released += self.stops.flush()
            self.finish("length")
        if self.emit is not None:
            self.emit(TokenDelta(self.prepared.request.request_id, released, (token,), logprobs, alternatives))


class _Running:
    """A request decoding in one of the runtime's sequences."""

    def __init__(self, runtime: LlamaRuntime, prepared: PreparedRequest, cancel: threading.Event,
                 emit: Emit | None) -> None:
        self.prepared = prepared
        self.cancel = cancel
        self.answer = _Answer(runtime, prepared, emit)
        params = prepared.params
        self.seed = params.seed
        if params.do_sample and self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31)
        self.sampler = Sampler(params, self.seed)
        self.sampler.observe(prepared.input_ids)
        self.started = time.perf_counter()
        self.logits: np.ndarray | None = None

    def start(self, runtime: LlamaRuntime, seq: int) -> None:
        """Compute the prompt into sequence ``seq``."""
        self.started = time.perf_counter()
        self.logits = None if self.cancel.is_set() else runtime.prefill(self.prepared.input_ids, self.cancel, seq)
        if self.logits is None:
            self.answer.finish("cancelled")

    def advance(self, runtime: LlamaRuntime) -> int | None:
        """One decoding step: choose a token; return it if the sequence goes on, else None."""
        answer = self.answer
        token = self.sampler.pick(self.logits)
        answer.steps += 1
        if answer.first_token_at is None:
            answer.first_token_at = time.perf_counter()
        if self.cancel.is_set():
            answer.finish("cancelled")
        elif runtime.is_end_of_generation(token):
            answer.finish("stop")
        else:
            answer.accept(token, self.logits)
            self.sampler.observe((token,))
        return token if answer.finish_reason is None else None

    def result(self, device: str, dtype: str, model_name: str) -> GenerationResult:
        answer, prepared = self.answer, self.prepared
        ended = time.perf_counter()
        usage = Usage(
            prompt_tokens=len(prepared.input_ids),
            new_tokens=answer.steps,
            time_to_first_token_s=(answer.first_token_at or ended) - self.started,
            total_time_s=(answer.finished_at or ended) - self.started,
            device=device,
            dtype=dtype,
            seed=self.seed,
            backend="llamacpp",
        )
        return GenerationResult(
            request_id=prepared.request.request_id,
            model=model_name,
            text=answer.stops.text,
            token_ids=tuple(answer.token_ids),
            finish_reason=answer.finish_reason,
            usage=usage,
            prompt_text=prepared.prompt_text,
            logprobs=tuple(answer.logprobs),
            top_logprobs=tuple(answer.top_logprobs),
            warnings=tuple(prepared.warnings),
        )


def generate_all(runtime: LlamaRuntime, prepared: Sequence[PreparedRequest], cancels: Sequence[threading.Event],
                 emit: Emit | None, device: str, dtype: str, model_name: str) -> list[GenerationResult]:
    """Generate for every prepared request; results in request order. Blocking (the model's
    worker thread). Raises LlamaDecodeError if llama.cpp fails.

    One request decodes in sequence 0, reusing the cached prefix it shares with the previous
    one (a chat turn). Several decode in waves of up to ``runtime.sequences``: each prompt is
    computed alone in its own sequence, then every unfinished sequence advances by one token per
    llama_decode call, and the next wave starts on an empty cache once all have ended. A wave
    takes only requests whose prompts and ``max_new_tokens`` fit the cache together.

    Why waves and not continuous batching: llama.cpp's attention adds up a sequence's keys in
    the order of their cache cells. A request started in the cells a finished one left behind
    can find its tokens out of order and get slightly different logits (measured: 4 of 10 chat
    answers changed a token). In a wave on an empty cache each sequence's cells stay in order,
    and the logits were bit-identical to the same request decoded alone.
    """
    runs = [_Running(runtime, p, cancel, emit) for p, cancel in zip(prepared, cancels)]
    if len(runs) == 1:
        return _run_wave(runtime, runs, device, dtype, model_name)
    results: list[GenerationResult] = []
    try:
        while runs:
            size, cells = 1, _cells(runs[0])
            while size < min(runtime.sequences, len(runs)) and cells + _cells(runs[size]) <= runtime.n_ctx:
                cells += _cells(runs[size])
                size += 1
            runtime.reset()
            results += _run_wave(runtime, runs[:size], device, dtype, model_name)
            runs = runs[size:]
    finally:
        runtime.reset()  # the next single request finds sequence 0 alone in the cache
    return results


def _cells(run: _Running) -> int:
    """KV cells a request may fill: its prompt and every token it may add."""
    return len(run.prepared.input_ids) + run.prepared.params.max_new_tokens


def _run_wave(runtime: LlamaRuntime, wave: list[_Running], device: str, dtype: str,
              model_name: str) -> list[GenerationResult]:
    """Decode ``wave`` (its requests in sequences 0, 1, ...) until every request has ended."""
    running: dict[int, _Running] = {}
    for seq, run in enumerate(wave):
        run.start(runtime, seq)
        if run.answer.finish_reason is None:
            running[seq] = run
    while running:
        tokens = {}
        for seq, run in list(running.items()):
            token = run.advance(runtime)
            if token is None:
                del running[seq]
            else:
                tokens[seq] = token
        if tokens:
            for seq, logits in runtime.step(tokens).items():
                running[seq].logits = logits
    return [run.result(device, dtype, model_name) for run in wave]
