"""The contract between the engine and whatever runs a model (in-process, or a remote server).

The :class:`~engine.engine.Engine` owns names, loading, eviction, streaming queues and
cancellation bookkeeping; a backend only runs requests for one model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

from engine.cancel import CancelToken
from engine.errors import UnsupportedModelError
from engine.types import (
    AttentionRequest,
    AttentionResult,
    FillMaskRequest,
    FillMaskResult,
    GenerationRequest,
    GenerationResult,
    LoglikelihoodResult,
    ModelInfo,
    PerplexityResult,
    TokenDelta,
)

Emit = Callable[[TokenDelta], None]


class ModelBackend(ABC):
    """One model, ready to serve requests.

    What it can do is in :attr:`info` (``ModelInfo.supports_*``), so callers can ask before
    trying (a metric that needs log-likelihoods says "not supported by this backend" instead of
    showing a wrong number). A backend that learns more while serving (a server that ignores
    log-probability requests) replaces :attr:`info`. Calls in flight are the engine's business:
    it counts them and never unloads a busy model.
    """

    info: ModelInfo

    @property
    def memory_bytes(self) -> int:
        """Memory this backend holds locally (0 for a remote server)."""
        return self.info.memory_bytes

    @abstractmethod
    async def generate(self, requests: Sequence[GenerationRequest], cancels: Sequence[CancelToken],
                       emit: Emit | None) -> list[GenerationResult]:
        """Generate for ``requests`` (all for this model), results in request order.

        ``cancels[i]`` set means request i must stop within one decoding step (or one
        server chunk) and return what it produced with ``finish_reason="cancelled"``. Decode
        loops check ``is_set()`` once per step; code with nothing else to do waits on the token
        (``wait_async()`` / ``add_callback()``) instead of polling it.
        ``emit`` may be called from any thread with each :class:`TokenDelta`.

        Raises:
            InvalidRequestError, ContextLengthError, UnsupportedModelError, OutOfMemoryError,
            or another :class:`~engine.errors.LmscopeError` describing a backend failure.
        """

    async def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        """log P(continuation | context) per pair. Raises UnsupportedModelError if unsupported."""
        raise self._unsupported("log-likelihoods")

    async def perplexity(self, texts: Sequence[str], max_length: int | None,
                         stride: int | None) -> list[PerplexityResult]:
        """Sliding-window perplexity per text. Raises UnsupportedModelError if unsupported."""
        raise self._unsupported("perplexity")

    async def fill_mask(self, request: FillMaskRequest) -> FillMaskResult:
        """Top-k predictions per mask. Raises UnsupportedModelError if unsupported."""
        raise self._unsupported("fill-mask")

    async def attention(self, request: AttentionRequest) -> AttentionResult:
        """Attention weights over the request's text. Raises UnsupportedModelError if unsupported."""
        raise UnsupportedModelError(f"attention weights are not available from this backend ({self.info.name!r})",
                                    hint="load the model locally (a folder, a .gguf file or a hub id)")

    @abstractmethod
    async def aclose(self) -> None:
        """Release the model (memory, threads, connections). Queued work may finish first."""

    def _unsupported(self, what: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{what} is not supported by this backend ({self.info.name!r})")
