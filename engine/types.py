"""Typed requests, events and results of the engine API.

All are frozen dataclasses so they can be passed between threads, hashed and logged safely.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.errors import InvalidRequestError

ModelKind = Literal["causal", "seq2seq", "masked"]
FinishReason = Literal["stop", "length", "stop_string", "cancelled"]
Truncation = Literal["left", "error"]


def new_request_id() -> str:
    """A short random id for a request (used to cancel it and to tag its events)."""
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. ``temperature == 0`` means greedy decoding (the default).

    ``seed`` makes sampling reproducible on the same device: the same seed gives the same output.
    When sampling without a seed, the engine draws one and reports it in :class:`Usage`.
    ``truncation`` decides what happens when prompt + ``max_new_tokens`` exceed the model's
    context: ``"left"`` drops the oldest prompt tokens (with a warning on the result),
    ``"error"`` raises :class:`~engine.errors.ContextLengthError`.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    truncation: Truncation = "left"

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        self.validate()

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0

    def validate(self) -> None:
        """Raise :class:`InvalidRequestError` naming the first invalid field."""
        checks: list[tuple[bool, str]] = [
            (isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1,
             f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}"),
            (math.isfinite(self.temperature) and self.temperature >= 0,
             f"temperature must be >= 0 (0 means greedy), got {self.temperature!r}"),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p!r}"),
            (isinstance(self.top_k, int) and self.top_k >= 0,
             f"top_k must be an integer >= 0 (0 disables it), got {self.top_k!r}"),
            (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0,
             f"repetition_penalty must be > 0 (1.0 disables it), got {self.repetition_penalty!r}"),
            (all(isinstance(s, str) and s for s in self.stop),
             f"stop strings must be non-empty strings, got {self.stop!r}"),
            (self.seed is None or (isinstance(self.seed, int) and self.seed >= 0),
             f"seed must be a non-negative integer or None, got {self.seed!r}"),
            (isinstance(self.top_logprobs, int) and 0 <= self.top_logprobs <= 20,
             f"top_logprobs must be an integer in [0, 20], got {self.top_logprobs!r}"),
            (self.truncation in ("left", "error"),
             f"truncation must be 'left' or 'error', got {self.truncation!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidRequestError(message)


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """A conversation for a causal LM, rendered with the tokenizer's chat template.

    Models without a chat template get a plain-text transcript instead (see ``prompt_text``
    on the result for exactly what was sent).
    """

    model: str
    messages: tuple[ChatMessage, ...]
    params: GenerationParams = GenerationParams()
    request_id: str = field(default_factory=new_request_id)
    # Text inside the prompt (e.g. a scenario's input document) that may be cut from its end when
    # the prompt does not fit the context; everything else (instructions, few-shot turns) is kept.
    truncatable: str | None = None

    def __post_init__(self) -> None:
        msgs = tuple(
            m if isinstance(m, ChatMessage) else ChatMessage(m["role"], m["content"])
            for m in self.messages
        )
        object.__setattr__(self, "messages", msgs)
        if not msgs:
            raise InvalidRequestError("a chat request needs at least one message")


@dataclass(frozen=True)
class CompletionRequest:
    """Plain text continued by a causal LM (or transformed by a seq2seq model)."""

    model: str
    prompt: str
    params: GenerationParams = GenerationParams()
    request_id: str = field(default_factory=new_request_id)
    # Text inside the prompt (e.g. a scenario's input document) that may be cut from its end when
    # the prompt does not fit the context; everything else (instructions, few-shot turns) is kept.
    truncatable: str | None = None


@dataclass(frozen=True)
class Text2TextRequest:
    """Input for a seq2seq model (T5, BART, Marian); ``task_prefix`` is prepended T5-style,
    e.g. ``"translate English to German: "``."""

    model: str
    text: str
    task_prefix: str = ""
    params: GenerationParams = GenerationParams()
    request_id: str = field(default_factory=new_request_id)
    # Text inside the prompt (e.g. a scenario's input document) that may be cut from its end when
    # the prompt does not fit the context; everything else (instructions, few-shot turns) is kept.
    truncatable: str | None = None


@dataclass(frozen=True)
class FillMaskRequest:
    """Text with one or more mask tokens (``[MASK]`` or the tokenizer's own) for a masked LM."""

    model: str
    text: str
    top_k: int = 5
    request_id: str = field(default_factory=new_request_id)


GenerationRequest = ChatRequest | CompletionRequest | Text2TextRequest


@dataclass(frozen=True)
class TokenLogprob:
    """Log-probability (natural log, under the model's unmodified distribution) of one token."""

    token_id: int
    token: str
    logprob: float


@dataclass(frozen=True)
class TokenDelta:
    """New text from one request; ``token_ids`` produced it (text may lag a token behind when
    a character spans several tokens). ``logprobs[i]`` / ``top_logprobs[i]`` belong to
    ``token_ids[i]`` when the request asked for them."""

    request_id: str
    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[TokenLogprob, ...] = ()
    top_logprobs: tuple[tuple[TokenLogprob, ...], ...] = ()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    new_tokens: int
    time_to_first_token_s: float
    total_time_s: float
    device: str
    dtype: str
    seed: int | None
    backend: str = "unknown"  # what ran the model: "hf", "llamacpp", "remote"
    # Why ``dtype``: "asked" (the spec or --dtype named it), "by workload" (chosen automatically
    # for generation, which differs from scoring's on this CPU: engine.device.workload_dtypes),
    # "auto" (the device's default), "gguf" (the GGUF file's own quantisation), "" (not known).
    dtype_choice: str = ""

    @property
    def tokens_per_s(self) -> float:
        """Decode rate after the first token (the rate a reader sees)."""
        decode_time = self.total_time_s - self.time_to_first_token_s
        if self.new_tokens <= 1 or decode_time <= 0:
            return 0.0
        return (self.new_tokens - 1) / decode_time


@dataclass(frozen=True)
class GenerationResult:
    """Final event of a stream, and the result of a batched generation."""

    request_id: str
    model: str
    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    usage: Usage
    prompt_text: str
    logprobs: tuple[TokenLogprob, ...] = ()
    top_logprobs: tuple[tuple[TokenLogprob, ...], ...] = ()
    warnings: tuple[str, ...] = ()


StreamEvent = TokenDelta | GenerationResult


@dataclass(frozen=True)
class MaskPrediction:
    token_id: int
    token: str
    probability: float
    sequence: str


@dataclass(frozen=True)
class FillMaskResult:
    request_id: str
    model: str
    predictions: tuple[tuple[MaskPrediction, ...], ...]  # one tuple of top-k per mask position


@dataclass(frozen=True)
class LoglikelihoodResult:
    """log P(continuation | context), summed over the continuation's tokens."""

    logprob: float
    num_tokens: int
    is_greedy: bool
    token_logprobs: tuple[float, ...]


@dataclass(frozen=True)
class PerplexityResult:
    """Negative log-likelihood of a text and the perplexities derived from it.

    ``nll`` is in nats, summed over ``num_tokens`` scored tokens; ``method`` records the window,
    stride and prefix token so the number can be reproduced.
    """

    nll: float
    num_tokens: int
    num_words: int
    num_bytes: int
    method: str

    @property
    def token_perplexity(self) -> float:
        return math.exp(self.nll / self.num_tokens) if self.num_tokens else float("nan")

    @property
    def word_perplexity(self) -> float:
        return math.exp(self.nll / self.num_words) if self.num_words else float("nan")

    @property
    def bits_per_byte(self) -> float:
        return self.nll / (self.num_bytes * math.log(2)) if self.num_bytes else float("nan")


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is and where it runs."""

    name: str
    source: str
    kind: ModelKind
    device: str
    dtype: str
    context_length: int | None
    num_parameters: int
    memory_bytes: int
    has_chat_template: bool
    load_time_s: float
    loaded_from_cache: bool = False
    backend: str = "unknown"  # what runs the model: "hf", "llamacpp", "remote"
    # What the model can serve, so callers ask before trying (a feature it lacks raises
    # UnsupportedModelError; no number is made up). A remote backend clears the first two
    # once it sees the server ignore them.
    supports_logprobs: bool = True  # token log-probabilities (and alternatives) while generating
    supports_loglikelihood: bool = True  # log-likelihood and perplexity
    supports_fill_mask: bool = False
    supports_generation: bool = True  # text out (every kind but a masked LM)

    @staticmethod
    def capabilities(kind: ModelKind) -> dict[str, bool]:
        """The ``supports_*`` flags of an in-process model of ``kind`` (a masked LM only fills
        masks; only a causal LM scores log-likelihoods), as keyword arguments."""
        return {"supports_logprobs": kind != "masked", "supports_loglikelihood": kind == "causal",
                "supports_fill_mask": kind == "masked", "supports_generation": kind != "masked"}


AttentionKind = Literal["self", "encoder-self", "decoder-cross"]
ATTENTION_MAX_TOKENS = 256


@dataclass(frozen=True)
class AttentionRequest:
    """Attention weights over ``text``'s tokens (eager attention for this request only).

    ``cross``: a seq2seq model's decoder cross-attention over the encoded text (queries: the
    tokens of ``target``, or the model's greedy answer when ``target`` is None) instead of its
    encoder self-attention. ``max_tokens``: longer texts are cut to their first tokens, with a
    note on the result (the weights grow with layers x heads x tokens²).
    """

    model: str
    text: str
    cross: bool = False
    target: str | None = None
    max_tokens: int = ATTENTION_MAX_TOKENS
    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True, eq=False)
class AttentionResult:
    """Attention weights: ``weights[layer, head, query, key]`` (float32 numpy array, each row a
    probability distribution over the keys), with the query and key tokens as text.

    ``kind``: ``self`` (causal or masked model), ``encoder-self`` or ``decoder-cross`` (seq2seq).
    ``causal``: queries see only keys up to themselves (the upper triangle is 0).
    ``notes``: what the caller should know (the prompt was cut, where the weights came from).
    ``dtype``: the precision the model ran in.
    """

    request_id: str
    model: str
    kind: AttentionKind
    query_tokens: tuple[str, ...]
    key_tokens: tuple[str, ...]
    weights: Any  # numpy.ndarray [layers, heads, query, key]; typed loosely so importing types needs no numpy
    causal: bool = False
    notes: tuple[str, ...] = ()
    dtype: str = "unknown"  # what the model computed in (bfloat16 weights are rounded before they became float32)

    @property
    def num_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.weights.shape[1])
