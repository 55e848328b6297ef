"""The OpenAI-compatible wire format: request bodies out, results in (pure; no HTTP here).

Token ids are not part of the OpenAI API, so results from a server carry no ``token_ids`` and
their :class:`TokenLogprob` entries have ``token_id == -1``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

from engine.detokenize import StopStringMatcher
from engine.errors import MalformedStreamError
from engine.sse import excerpt
from engine.types import (
    ChatRequest,
    FinishReason,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    Text2TextRequest,
    TokenDelta,
    TokenLogprob,
    Usage,
)

NO_LOGPROBS_WARNING = "log-probabilities were requested but the server returned none"
UNKNOWN_TOKEN_ID = -1


def route(request: GenerationRequest) -> str:
    """The API path (relative to the base URL) that serves ``request``."""
    return "chat/completions" if isinstance(request, ChatRequest) else "completions"


def prompt_of(request: GenerationRequest) -> str:
    """What is sent as the prompt: the text, or for a chat the messages as JSON (the server
    applies its own chat template, which the client never sees)."""
    if isinstance(request, ChatRequest):
        return json.dumps([{"role": m.role, "content": m.content} for m in request.messages], ensure_ascii=False)
    if isinstance(request, Text2TextRequest):
        return request.task_prefix + request.text
    return request.prompt


def build_payload(request: GenerationRequest, model: str, stream: bool, seed: int | None) -> dict:
    """The JSON body for ``request``. ``top_k`` and ``repetition_penalty`` are not OpenAI fields;
    they are sent only when set (vLLM accepts them, stricter servers reject them with a 4xx)."""
    p: GenerationParams = request.params
    body: dict = {"model": model, "max_tokens": p.max_new_tokens, "temperature": p.temperature, "stream": stream}
    if isinstance(request, ChatRequest):
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    else:
        body["prompt"] = prompt_of(request)
    if p.top_p < 1.0:
        body["top_p"] = p.top_p
    if p.stop:
        body["stop"] = list(p.stop)
    if p.do_sample and seed is not None:
        body["seed"] = seed
    if p.top_k:
        body["top_k"] = p.top_k
    if p.repetition_penalty != 1.0:
        body["repetition_penalty"] = p.repetition_penalty
    if p.logprobs:
        if isinstance(request, ChatRequest):
            body["logprobs"] = True
            body["top_logprobs"] = p.top_logprobs
        else:
            body["logprobs"] = p.top_logprobs
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _finish(reason: object, stop_reason: object) -> FinishReason:
    if reason == "length":
        return "length"
    if isinstance(stop_reason, str) and stop_reason:  # vLLM names the stop string that matched
        return "stop_string"
    return "stop"  # "stop", "eos", "tool_calls", "content_filter", ...


def _chat_logprobs(block: object) -> tuple[list[TokenLogprob], list[tuple[TokenLogprob, ...]]]:
    """Chat format: ``{"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}``."""
    lps, tops = [], []
    items = block.get("content") if isinstance(block, dict) else None
    for item in items or []:
        lps.append(TokenLogprob(UNKNOWN_TOKEN_ID, str(item.get("token", "")), float(item.get("logprob", -math.inf))))
        tops.append(tuple(TokenLogprob(UNKNOWN_TOKEN_ID, str(t.get("token", "")), float(t.get("logprob", -math.inf)))
                          for t in item.get("top_logprobs") or []))
    return lps, tops


def _completion_logprobs(block: object) -> tuple[list[TokenLogprob], list[tuple[TokenLogprob, ...]]]:
    """Legacy format: ``{"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: lp}]}``."""
    if not isinstance(block, dict):
        return [], []
    tokens, values = block.get("tokens") or [], block.get("token_logprobs") or []
    top = block.get("top_logprobs") or []
    lps = [TokenLogprob(UNKNOWN_TOKEN_ID, str(t), float(v)) for t, v in zip(tokens, values) if v is not None]
    tops = [tuple(TokenLogprob(UNKNOWN_TOKEN_ID, str(t), float(v)) for t, v in (d or {}).items()) for d in top]
    return lps, tops[:len(lps)]


@dataclass
class Assembler:
    """Builds one :class:`GenerationResult` from streamed chunks or a whole response.

    Stop strings are also matched here, so a server that ignores ``stop`` (or returns the stop
    string) gives the same text as the local backend; text that may be the start of a stop
    string is held back from the stream until it is known not to be. ``secret`` (the API key)
    is redacted from server text quoted in errors.
    """

    request: GenerationRequest
    name: str
    device: str
    seed: int | None
    started: float = field(default_factory=time.perf_counter)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    top_logprobs: list[tuple[TokenLogprob, ...]] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: dict | None = None
    chunks: int = 0
    first_token_at: float | None = None
    finished_at: float | None = None
    secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._stops = StopStringMatcher(self.request.params.stop)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def progress(self) -> tuple[int, bool]:
        """Changes only when content arrives (text, log-probabilities or the finish); empty
        chunks leave it as it was. What a stall timer watches."""
        return self.chunks, self.done

    def add_chunk(self, obj: dict) -> TokenDelta | None:
        """Absorb one streamed chunk; return the delta to emit, if it released text.

        Raises:
            MalformedStreamError: the chunk has no ``choices`` list (and is not a usage chunk).
        """
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]
        choices = obj.get("choices")
        if not isinstance(choices, list):
            raise MalformedStreamError(f"the server sent a stream chunk without 'choices': "
                                       f"{excerpt(obj, self.secret, 200)!r}")
        if not choices:
            return None  # the usage-only chunk of stream_options.include_usage
        choice = choices[0] if isinstance(choices[0], dict) else {}
        if "delta" in choice:
            delta = choice.get("delta") or {}
            piece = delta.get("content") or ""
            lps, tops = _chat_logprobs(choice.get("logprobs"))
        else:
            piece = choice.get("text") or ""
            lps, tops = _completion_logprobs(choice.get("logprobs"))
        out = self._add(piece, lps, tops)
        if choice.get("finish_reason") and not self.done:
            self._end(_finish(choice["finish_reason"], choice.get("stop_reason")))
            out = self._merge(out, self._stops.flush())
        return out

    def add_response(self, obj: dict) -> None:
        """Absorb a whole non-streamed response.

        Raises:
            MalformedStreamError: the response has no choice.
        """
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedStreamError(f"the server's answer has no 'choices': {excerpt(obj, self.secret, 200)!r}")
        choice = choices[0]
        if isinstance(choice.get("message"), dict):
            piece = choice["message"].get("content") or ""
            lps, tops = _chat_logprobs(choice.get("logprobs"))
        else:
            piece = choice.get("text") or ""
            lps, tops = _completion_logprobs(choice.get("logprobs"))
        self.usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else None
        self._add(piece, lps, tops)
        if not self.done:
            self._end(_finish(choice.get("finish_reason"), choice.get("stop_reason")))
            self._stops.flush()

    def cancel(self) -> None:
        """Mark the request cancelled (what arrived so far is kept)."""
        if not self.done:
            self._end("cancelled")

    def _add(self, piece: str, lps: list[TokenLogprob], tops: list[tuple[TokenLogprob, ...]]) -> TokenDelta | None:
        if self.done:
            return None
        if piece or lps:
            self.chunks += 1
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
        self.logprobs += lps
        self.top_logprobs += tops
        released, hit = self._stops.feed(piece)
        if hit:
            self._end("stop_string")
        if not released and not lps:
            return None
        return TokenDelta(self.request.request_id, released, (), tuple(lps), tuple(tops))

    def _merge(self, delta: TokenDelta | None, extra: str) -> TokenDelta | None:
        if not extra:
            return delta
        if delta is None:
            return TokenDelta(self.request.request_id, extra, ())
        return TokenDelta(delta.request_id, delta.text + extra, (), delta.logprobs, delta.top_logprobs)

    def _end(self, reason: FinishReason) -> None:
        self.finish_reason = reason
        self.finished_at = time.perf_counter()

    def result(self) -> GenerationResult:
        """The final result (call once the stream ended, or after :meth:`cancel`)."""
        end = self.finished_at or time.perf_counter()
        warnings = []
        usage = self.usage or {}
        new_tokens = usage.get("completion_tokens")
        if not isinstance(new_tokens, int) or self.finish_reason in ("cancelled", "stop_string"):
            new_tokens = len(self.logprobs) or self.chunks
            if self.usage is None and self.finish_reason != "cancelled":
                warnings.append("the server reported no token usage; new_tokens counts streamed chunks")
        if self.request.params.logprobs and not self.logprobs and self.chunks:
            warnings.append(NO_LOGPROBS_WARNING)
        first = self.first_token_at or end
        return GenerationResult(
            request_id=self.request.request_id,
            model=self.name,
            text=self._stops.text,
            token_ids=(),
            finish_reason=self.finish_reason or "stop",
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                new_tokens=int(new_tokens),
                time_to_first_token_s=first - self.started,
                total_time_s=end - self.started,
                device=self.device,
                dtype="unknown",
                seed=self.seed,
                backend="remote",
            ),
            prompt_text=prompt_of(self.request),
            logprobs=tuple(self.logprobs),
            top_logprobs=tuple(self.top_logprobs[:len(self.logprobs)]),
            warnings=tuple(warnings),
        )
