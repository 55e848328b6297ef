"""Running one batch of generation requests through ``model.generate`` (blocking).

``generate`` does the decoding; three small hooks make it do what lmscope needs:

* :class:`LogprobCapture` (first logits processor) keeps the log-softmax of the model's raw
  logits for the step, when log-probabilities were asked for;
* :class:`SeededSampler` (last logits processor) samples each row with that request's own
  ``torch.Generator`` and returns a one-hot score, so ``generate`` runs in greedy mode and the
  global RNG is never touched: the same seed gives the same text whatever else runs, batched
  or not;
* :class:`RowMonitor` (a stopping criterion, called once per step with the new tokens)
  detokenises, matches stop strings, streams :class:`TokenDelta` events and stops a row on
  cancellation within one decoding step.
"""

from __future__ import annotations

import copy
import random
import time
from typing import Callable, Sequence

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from engine.cancel import CancelToken
from engine.detokenize import IncrementalDetokenizer, StopStringMatcher
from engine.device import dtype_name
from engine.loading import LoadedModel
from engine.prompts import PreparedRequest
from engine.types import FinishReason, GenerationParams, GenerationResult, TokenDelta, TokenLogprob, Usage

Emit = Callable[[TokenDelta], None]


class _Row:
    """Everything one request accumulates while its batch decodes."""

    def __init__(self, loaded: LoadedModel, prepared: PreparedRequest, cancel: CancelToken, seed: int | None):
        self.prepared = prepared
        self.params: GenerationParams = prepared.params
        self.cancel = cancel
        self.seed = seed
        self.detok = IncrementalDetokenizer(loaded.tokenizer)
        self.stops = StopStringMatcher(self.params.stop)
        self.token_ids: list[int] = []
        self.steps = 0
        self.logprobs: list[TokenLogprob] = []
        self.top_logprobs: list[tuple[TokenLogprob, ...]] = []
        self.finish_reason: FinishReason | None = None
        self.first_token_at: float | None = None
        self.finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def finish(self, reason: FinishReason) -> None:
        self.finish_reason = reason
        self.finished_at = time.perf_counter()


class LogprobCapture(LogitsProcessor):
    """Keeps log-softmax of the unmodified logits of the current step."""

    def __init__(self) -> None:
        self.last: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.last = torch.log_softmax(scores.float(), dim=-1)
        return scores


class SeededSampler(LogitsProcessor):
    """Samples each row from the processed distribution with the row's own generator."""

    def __init__(self, generators: list[torch.Generator]) -> None:
        self.generators = generators

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float(), dim=-1)
        chosen = torch.empty(scores.shape[0], dtype=torch.long, device=scores.device)
        for row, generator in enumerate(self.generators):
            chosen[row] = torch.multinomial(probs[row], 1, generator=generator)[0]
        one_hot = torch.full_like(scores, float("-inf"))
        one_hot.scatter_(1, chosen[:, None], 0.0)
        return one_hot


class RowMonitor(StoppingCriteria):
    """Per-step bookkeeping for every row: text, stop strings, logprobs, cancellation."""

    def __init__(self, loaded: LoadedModel, rows: list[_Row], capture: LogprobCapture | None,
                 eos_ids: set[int], emit: Emit | None) -> None:
        self.loaded = loaded
        self.rows = rows
        self.capture = capture
        self.eos_ids = eos_ids
        self.emit = emit

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        now = time.perf_counter()
        new_tokens = input_ids[:, -1].tolist()
        for index, (row, token) in enumerate(zip(self.rows, new_tokens)):
            if row.done:
                continue
            if row.first_token_at is None:
                row.first_token_at = now
            row.steps += 1
            if row.cancel.is_set():
                row.finish("cancelled")
                self._flush(row)
                continue
            if token in self.eos_ids:
                row.finish("stop")
                self._flush(row)
                continue
            self._accept(index, row, token)
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool, device=input_ids.device)

    def _accept(self, index: int, row: _Row, token: int) -> None:
        row.token_ids.append(token)
        logprobs: tuple[TokenLogprob, ...] = ()
        alternatives: tuple[tuple[TokenLogprob, ...], ...] = ()
        if row.params.logprobs and self.capture is not None and self.capture.last is not None:
            step = self.capture.last[index]
            decode = self.loaded.tokenizer.decode
            logprobs = (TokenLogprob(token, decode([token]), float(step[token])),)
            if row.params.top_logprobs:
                values, ids = torch.topk(step, row.params.top_logprobs)
                alternatives = (tuple(TokenLogprob(int(i), decode([int(i)]), float(v))
                                      for v, i in zip(values.tolist(), ids.tolist())),)
            row.logprobs.extend(logprobs)
            row.top_logprobs.extend(alternatives)
        released, stopped = row.stops.feed(row.detok.push(token))
        if stopped:
            row.finish("stop_string")
        elif len(row.token_ids) >= row.params.max_new_tokens:
            row.finish("length")
            released += row.stops.flush()
        if self.emit is not None:
            self.emit(TokenDelta(row.prepared.request.request_id, released, (token,), logprobs, alternatives))

    def _flush(self, row: _Row) -> None:
        rest = row.stops.flush()
        if rest and self.emit is not None:
            self.emit(TokenDelta(row.prepared.request.request_id, rest, ()))


def _eos_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for value in (loaded.model.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    return ids


def _processors(params: GenerationParams, rows: list[_Row], device: torch.device,
                capture: LogprobCapture | None) -> LogitsProcessorList:
    procs: list[LogitsProcessor] = [capture] if capture is not None else []
    if params.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
    if params.do_sample:
        procs.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k:
            procs.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            procs.append(TopPLogitsWarper(params.top_p))
        generators = []
        for row in rows:
            generator = torch.Generator(device=device)
            generator.manual_seed(row.seed)
            generators.append(generator)
        procs.append(SeededSampler(generators))
    return LogitsProcessorList(procs)


def _pad(loaded: LoadedModel, prepared: Sequence[PreparedRequest]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to one tensor: left for causal models (generation continues at the right edge),
    right for encoder-decoder models."""
    pad_id = loaded.tokenizer.pad_token_id
    width = max(len(p.input_ids) for p in prepared)
    left = loaded.kind == "causal"
    ids = torch.full((len(prepared), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prepared), width), dtype=torch.long)
    for row, p in enumerate(prepared):
        n = len(p.input_ids)
        span = slice(width - n, width) if left else slice(0, n)
        ids[row, span] = torch.tensor(p.input_ids, dtype=torch.long)
        mask[row, span] = 1
    return ids.to(loaded.device), mask.to(loaded.device)


def generate_batch(loaded: LoadedModel, prepared: Sequence[PreparedRequest],
                   cancels: Sequence[CancelToken], emit: Emit | None = None,
                   batch: bool = False) -> list[GenerationResult]:
    """Generate for ``prepared`` (which must share their params except the seed) in one batch.

    Blocking; runs on the model's worker thread. ``emit`` receives every token delta from that
    thread. Raises torch's out-of-memory errors unchanged, so the caller can retry smaller.
    ``batch``: part of a batched call (``LoadedModel.for_generation`` picks the model and dtype).
    """
    model, dtype = loaded.for_generation(batch)  # the first batch may make a copy: a load cost, not decoding
    started = time.perf_counter()
    params = prepared[0].params
    rows = []
    for p, cancel in zip(prepared, cancels):
        seed = p.params.seed
        if params.do_sample and seed is None:
            seed = random.SystemRandom().randrange(2**31)
        rows.append(_Row(loaded, p, cancel, seed))
    capture = LogprobCapture() if params.logprobs else None
    input_ids, attention_mask = _pad(loaded, prepared)
    eos = _eos_ids(loaded)
    config = copy.deepcopy(model.generation_config)
    config.update(
        do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None, repetition_penalty=None,
        max_new_tokens=max(p.params.max_new_tokens for p in prepared), max_length=None, min_length=0,
        min_new_tokens=None, pad_token_id=loaded.tokenizer.pad_token_id, eos_token_id=sorted(eos) or None,
        stop_strings=None,
    )
    if not all(c.is_set() for c in cancels):
        with torch.inference_mode():
            model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=config,
                logits_processor=_processors(params, rows, loaded.device, capture),
                stopping_criteria=StoppingCriteriaList([RowMonitor(loaded, rows, capture, eos, emit)]),
            )
    ended = time.perf_counter()
    results = []
    for row in rows:
        if not row.done:  # generate ended before the row saw a stop (all rows cancelled up front)
            row.finish("cancelled" if row.cancel.is_set() else "length")
        first = row.first_token_at or ended
        usage = Usage(
            prompt_tokens=len(row.prepared.input_ids),
            new_tokens=row.steps,
            time_to_first_token_s=first - started,
            total_time_s=(row.finished_at or ended) - started,
            device=str(loaded.device),
            dtype=dtype_name(dtype),
            seed=row.seed,
            backend="hf",
            dtype_choice=loaded.dtype_choice,
        )
        results.append(GenerationResult(
            request_id=row.prepared.request.request_id,
            model=loaded.info.name,
            text=row.stops.text,
            token_ids=tuple(row.token_ids),
            finish_reason=row.finish_reason,
            usage=usage,
            prompt_text=row.prepared.prompt_text,
            logprobs=tuple(row.logprobs),
            top_logprobs=tuple(row.top_logprobs),
            warnings=tuple(row.prepared.warnings),
        ))
    return results
