"""Choosing the next token from llama.cpp's logits, in numpy.

The steps and their order are those of the Hugging Face path (``engine.generation``):
repetition penalty (also for greedy decoding), then temperature, top-k and top-p, then one draw
from the request's own seeded generator. Each request owns its generator, so the same seed gives
the same text whatever ran before.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from engine.llamacpp_runtime import log_softmax
from engine.types import GenerationParams


class Sampler:
    """Picks tokens for one request."""

    def __init__(self, params: GenerationParams, seed: int | None) -> None:
        self.params = params
        self.rng = np.random.Generator(np.random.PCG64(seed)) if params.do_sample else None
        self._seen: set[int] = set()

    def observe(self, tokens: Iterable[int]) -> None:
        """Tokens the repetition penalty applies to (prompt and answer so far)."""
        if self.params.repetition_penalty != 1.0:
            self._seen.update(int(t) for t in tokens)

    def pick(self, logits: np.ndarray) -> int:
        """The next token for raw ``logits`` (float32, one row)."""
        scores = self._penalised(logits)
        if self.rng is None:
            return int(np.argmax(scores))
        cumulative = np.cumsum(self.probabilities(scores))
        draw = self.rng.random() * cumulative[-1]
        return int(min(np.searchsorted(cumulative, draw, side="right"), len(cumulative) - 1))

    def _penalised(self, logits: np.ndarray) -> np.ndarray:
        penalty = self.params.repetition_penalty
        if penalty == 1.0 or not self._seen:
            return logits
        scores = logits.copy()
        seen = np.fromiter(self._seen, dtype=np.int64)
        values = scores[seen]
        scores[seen] = np.where(values < 0, values * penalty, values / penalty)
        return scores

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """The distribution a sampled token is drawn from: temperature, top-k and top-p applied
        to ``scores`` (float64)."""
        params = self.params
        scores = scores / np.float32(params.temperature)
        if params.top_k and params.top_k < scores.shape[0]:
            kth = np.partition(scores, -params.top_k)[-params.top_k]
            scores = np.where(scores < kth, -np.inf, scores)
        if params.top_p < 1.0:
            order = np.argsort(scores, kind="stable")  # ascending, as TopPLogitsWarper sorts
            cumulative = np.cumsum(np.exp(log_softmax(scores[order]).astype(np.float64)))
            remove = cumulative <= 1 - params.top_p
            remove[-1] = False  # keep at least one token
            scores = scores.copy()
            scores[order[remove]] = -np.inf
        return np.exp(log_softmax(scores).astype(np.float64))
