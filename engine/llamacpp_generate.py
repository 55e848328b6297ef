"""The decode loop of the llama.cpp backend (blocking; the model's worker thread).

Events and results follow the Hugging Face path (:mod:`engine.generation`) field for field:
the same :class:`TokenDelta` per accepted token (text held back while it may be the start of a
stop string), the same finish reasons, and ``new_tokens`` counting every decoding step,
including the end-of-generation token and the step on which a cancel was seen.
"""

from __future__ import annotations

import codecs
import collections
import random
import time
from typing import Callable, Sequence

import numpy as np

from engine.cancel import CancelToken
from engine.detokenize import StopStringMatcher
from engine.llamacpp_runtime import MAX_CONTEXT, LlamaDecodeError, LlamaRuntime, log_softmax
from engine.llamacpp_streams import CELL_STEP, LlamaStreams
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

    def __init__(self, runtime: LlamaRuntime, prepared: PreparedRequest, cancel: CancelToken,
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
            dtype_choice="gguf",
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


def generate_all(runtime: LlamaRuntime, prepared: Sequence[PreparedRequest], cancels: Sequence[CancelToken],
                 emit: Emit | None, device: str, dtype: str, model_name: str) -> list[GenerationResult]:
    """Generate for every prepared request; results in request order. Blocking (the model's
    worker thread). Raises LlamaDecodeError if llama.cpp fails.

    One request decodes in sequence 0 of the main context, reusing the cached prefix it shares
    with the previous one (a chat turn). Several decode together in the batch context, one KV
    stream each (:mod:`engine.llamacpp_streams`), up to ``runtime.sequences`` at once: the
    prefix they all share is computed once and copied into each stream, the rest of the
    prompts of the requests that start are computed together, every running request advances by
    one token per llama_decode call, and a request that ends hands its stream to the next one
    waiting (continuous batching). Each request's logits are those of decoding it alone.
    """
    runs = [_Running(runtime, p, cancel, emit) for p, cancel in zip(prepared, cancels)]
    cells = _round_up(max(_cells(run) for run in runs), CELL_STEP)
    slots = min(runtime.sequences, len(runs), MAX_CONTEXT // cells - 1)
    if slots < 2:  # one request, or requests too long to hold several at once: one at a time
        for run in runs:
            _run_alone(runtime, run)
    else:
        try:
            _run_together(runtime.streams(slots + 1, cells), runtime, runs, slots)
        except RuntimeError as exc:
            raise LlamaDecodeError(str(exc)) from exc
    return [run.result(device, dtype, model_name) for run in runs]


def _cells(run: _Running) -> int:
    """KV cells a request may fill: its prompt and every token it may add."""
    return len(run.prepared.input_ids) + run.prepared.params.max_new_tokens


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def _run_alone(runtime: LlamaRuntime, run: _Running) -> None:
    """Decode ``run`` in sequence 0 of the main context until it ends."""
    run.start(runtime, 0)
    while run.answer.finish_reason is None:
        token = run.advance(runtime)
        if token is not None:
            run.logits = runtime.step({0: token})[0]


def _shared_prefix(runs: list[_Running]) -> list[int]:
    """The prompt tokens every request starts with, leaving each at least one of its own."""
    prompts = [run.prepared.input_ids for run in runs]
    first, limit = prompts[0], min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return list(first[:n])


def _prefill(streams: LlamaStreams, jobs: list[tuple[int, Sequence[int], int]], logits: bool) -> list[np.ndarray]:
    """Compute ``tokens[start:]`` into stream ``seq`` for each job ``(seq, tokens, start)``, as few
    llama_decode calls as fit; return the logits after each job's last token (if ``logits``).

    A call never holds two pieces of one prompt, and pieces end at multiples of BATCH_TOKENS, so
    each prompt is cut where decoding it alone cuts it."""
    size = streams.batch_tokens
    out: list[np.ndarray] = [None] * len(jobs)  # type: ignore[list-item]
    items: list[tuple[int, int, int, bool]] = []
    owners: list[int] = []
    members: set[int] = set()

    def flush() -> None:
        for job, row in zip(owners, streams.decode(items)):
            out[job] = row
        items.clear(), owners.clear(), members.clear()

    for job, (seq, tokens, start) in enumerate(jobs):
        begin = start
        while begin < len(tokens):
            end = min(len(tokens), (begin // size + 1) * size)
            if job in members or len(items) + end - begin > size:
                flush()
            last = logits and end == len(tokens)
            items += [(tokens[p], p, seq, last and p == end - 1) for p in range(begin, end)]
            members.add(job)
            if last:
                owners.append(job)
            begin = end
    if items:
        flush()
    return out


def _run_together(streams: LlamaStreams, runtime: LlamaRuntime, runs: list[_Running], slots: int) -> None:
    """Decode ``runs`` in streams 0 .. slots-1 (continuous batching); stream ``slots`` holds the
    shared prefix."""
    prefix, prefix_seq = _shared_prefix(runs), slots
    if prefix:
        streams.clear(prefix_seq)
        _prefill(streams, [(prefix_seq, prefix, 0)], logits=False)
    waiting = collections.deque(runs)
    free = list(range(slots))
    running: dict[int, _Running] = {}
    position: dict[int, int] = {}
    while waiting or running:
        starting: list[tuple[int, _Running]] = []
        while free and waiting:
            run = waiting.popleft()
            run.started = time.perf_counter()
            if run.cancel.is_set():
                run.answer.finish("cancelled")
                continue
            seq = free.pop(0)
            streams.clear(seq)
            if prefix:
                streams.copy(prefix_seq, seq)
            starting.append((seq, run))
        if starting:
            rows = _prefill(streams, [(seq, run.prepared.input_ids, len(prefix)) for seq, run in starting], logits=True)
            for (seq, run), row in zip(starting, rows):
                run.logits, running[seq], position[seq] = row, run, len(run.prepared.input_ids)
        step: list[tuple[int, int, int, bool]] = []
        for seq, run in list(running.items()):
            token = run.advance(runtime)
            if token is None:
                del running[seq]
                free.append(seq)
            else:
                step.append((token, position[seq], seq, True))
                position[seq] += 1
        if step:
            for (_, _, seq, _), row in zip(step, streams.decode(step)):
                running[seq].logits = row
