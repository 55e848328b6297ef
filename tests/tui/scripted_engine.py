"""A scripted stand-in for the engine, for deterministic snapshot tests only.

Feature tests drive the real engine on tiny models; this exists so screenshots do not change
with timing or weights. It answers every request with the same scripted text.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Sequence

from engine import (
    FillMaskRequest,
    FillMaskResult,
    GenerationResult,
    LoglikelihoodResult,
    MaskPrediction,
    ModelInfo,
    PerplexityResult,
    TokenDelta,
    TokenLogprob,
    Usage,
)

SCRIPT = ["The", " capital", " of", " France", " is", " **Paris**", "."]


def info(name: str = "default") -> ModelInfo:
    return ModelInfo(name=name, source=f"/models/{name}", kind="causal", device="cpu", dtype="float32",
                     context_length=2048, num_parameters=134_515_008, memory_bytes=538_060_288,
                     has_chat_template=True, load_time_s=0.5)


class ScriptedEngine:
    """Same public methods as :class:`engine.Engine`; answers from a script, instantly."""

    def __init__(self, script: list[str] | None = None) -> None:
        self.script = script or SCRIPT
        self.cancelled: list[str] = []
        self.requests: list = []  # every request streamed or generated, in order

    async def load(self, spec, progress=None) -> ModelInfo:
        return info(str(getattr(spec, "text", spec)))

    def loaded_models(self) -> list[ModelInfo]:
        return [info()]

    async def backend(self, spec, progress=None):
        return None

    def _result(self, request) -> GenerationResult:
        ids = tuple(range(100, 100 + len(self.script)))
        logprobs = tuple(TokenLogprob(i, t, -0.5 * (k % 4)) for k, (i, t) in enumerate(zip(ids, self.script)))
        tops = tuple((lp, TokenLogprob(lp.token_id + 1, " other", lp.logprob - 1.0)) for lp in logprobs)
        usage = Usage(prompt_tokens=12, new_tokens=len(ids), time_to_first_token_s=0.05, total_time_s=0.35,
                      device="cpu", dtype="float32", seed=None)
        return GenerationResult(request.request_id, request.model, "".join(self.script), ids, "stop", usage,
                                "<|user|>scripted prompt<|assistant|>", logprobs, tops)

    async def stream(self, request) -> AsyncIterator:
        self.requests.append(request)
        result = self._result(request)
        for k, piece in enumerate(self.script):
            await asyncio.sleep(0)
            yield TokenDelta(request.request_id, piece, (result.token_ids[k],), result.logprobs[k:k + 1],
                             result.top_logprobs[k:k + 1])
        yield result

    async def generate(self, requests: Sequence, on_delta=None) -> list[GenerationResult]:
        self.requests.extend(requests)
        return [self._result(r) for r in requests]

    def cancel(self, request_id: str) -> bool:
        self.cancelled.append(request_id)
        return True

    async def loglikelihood(self, model: str, pairs) -> list[LoglikelihoodResult]:
        return [LoglikelihoodResult(-2.0, 2, True, (-1.0, -1.0)) for _ in pairs]

    async def perplexity(self, model: str, texts, *, max_length=None, stride=None) -> list[PerplexityResult]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        return [PerplexityResult(nll=2.0 * len(t.split()), num_tokens=len(t.split()), num_words=len(t.split()),
                                 num_bytes=len(t.encode()), method="sliding-window(max_length=2048, stride=1024, prefix_token=1)")
                for t in texts]

    async def fill_mask(self, request: FillMaskRequest) -> FillMaskResult:
        preds = tuple(MaskPrediction(i, w, p, request.text.replace("[MASK]", w))
                      for i, (w, p) in enumerate([("paris", 0.6), ("lyon", 0.2), ("nice", 0.1)]))
        return FillMaskResult(request.request_id, request.model, (preds,))

    async def aclose(self) -> None:
        pass


