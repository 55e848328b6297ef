"""Semantic similarity: cosine of sentence embeddings, max over references.

The embedder is injected (``Callable[[list[str]], list[list[float]]]``), so this module
knows no model and imports no torch: scenarios pass ``engine.embeddings.embed``
(MiniLM). A metric built without one still constructs (a scenario can be validated
without loading a model) and raises :class:`MetricUnavailableError` when first used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .base import Metric, Number, Row
from .errors import EvaluatorError, InvalidOptionError, LmscopeError, MetricUnavailableError
from .options import text
from .registry import register

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is all zeros)."""
    if len(a) != len(b):
        raise InvalidOptionError(f"embedding sizes differ: {len(a)} and {len(b)}")
    dot = math.fsum(x * y for x, y in zip(a, b))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0


class SemanticSimilarity(Metric):
    """Mean over examples of the best cosine similarity between the hypothesis embedding
    and each reference embedding (range -1..1).

    Args:
        embedder: maps a list of texts to a list of vectors. Required to score; without
            one the metric constructs but raises MetricUnavailableError on first use.
        embedder_name: the model, recorded in the signature since the number depends on
            it; defaults to the embedder's ``embedder_name`` attribute, and one of the two
            is required with an embedder.
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
        embedder_name = embedder_name or getattr(embedder, "embedder_name", None)
        if embedder is not None and not embedder_name:
            raise InvalidOptionError(
                "an embedder needs a name", "pass embedder_name=... or give the function an embedder_name attribute; "
                "it goes in the signature")
        self._embedder = embedder
        self.embedder_name = embedder_name or "none"
        super().__init__(n_bootstrap=n_bootstrap, seed=seed)

    def _embed(self, texts: list[str]) -> Sequence[Sequence[float]]:
        if self._embedder is None:
            raise MetricUnavailableError(
                "semantic similarity needs an embedding model, and none was given",
                "build it with embedder=... (scenarios pass engine.embeddings.embed, MiniLM)",
            )
        try:
            vectors = self._embedder(texts)
        except EvaluatorError:
            raise
        except LmscopeError as exc:  # e.g. the engine's "MiniLM is not installed"
            raise MetricUnavailableError(f"semantic similarity: {exc.message}", exc.hint or "") from exc
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
    "semantic_similarity", SemanticSimilarity, "Cosine of sentence embeddings (embedder injected, e.g. MiniLM)",
    aliases=("semsim", "cosine", "embedding_similarity"), takes_embedder=True, options={"embedder_name": text()},
)
