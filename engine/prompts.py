"""Turning a request into the exact token ids the model will see."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.errors import ContextLengthError, UnsupportedModelError
from engine.loading import LoadedModel
from engine.types import ChatMessage, ChatRequest, CompletionRequest, GenerationRequest, Text2TextRequest


@dataclass
class PreparedRequest:
    """A generation request with its prompt rendered and tokenised."""

    request: GenerationRequest
    prompt_text: str
    input_ids: list[int]
    warnings: list[str] = field(default_factory=list)

    @property
    def params(self):
        return self.request.params


def plain_transcript(messages: tuple[ChatMessage, ...]) -> str:
    """A chat as plain text, for models without a chat template."""
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    lines = [f"{m.role.capitalize()}: {m.content}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def render_prompt(loaded: LoadedModel, request: GenerationRequest) -> tuple[str, bool]:
    """The prompt text for ``request`` and whether it already contains special tokens."""
    kind = loaded.kind
    if kind == "masked":
        raise UnsupportedModelError(
            f"model {loaded.info.name!r} is a masked LM: it fills masks but does not generate text",
            hint="send it a fill-mask request, or pick a causal or seq2seq model",
        )
    if isinstance(request, ChatRequest):
        if kind == "causal" and loaded.info.has_chat_template:
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            text = loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return text, True
        if kind == "seq2seq":
            system = [m.content for m in request.messages if m.role == "system"]
            users = [m.content for m in request.messages if m.role == "user"]
            return " ".join(system + users[-1:]), False
        return plain_transcript(request.messages), False
    if isinstance(request, CompletionRequest):
        return request.prompt, False
    if isinstance(request, Text2TextRequest):
        if kind != "seq2seq":
            raise UnsupportedModelError(
                f"model {loaded.info.name!r} is a {kind} model; text-to-text requests need a seq2seq model",
                hint="send a completion or chat request instead",
            )
        return request.task_prefix + request.text, False
    raise TypeError(f"not a generation request: {type(request).__name__}")


def prepare(loaded: LoadedModel, request: GenerationRequest) -> PreparedRequest:
    """Render and tokenise ``request``, fitting it into the model's context.

    Raises:
        ContextLengthError: the prompt does not fit and ``params.truncation == "error"``, or
            ``max_new_tokens`` alone exceeds the context.
        UnsupportedModelError: the request does not fit the model's kind.
    """
    text, has_special = render_prompt(loaded, request)
    ids = loaded.tokenizer(text, add_special_tokens=not has_special)["input_ids"]
    prepared = PreparedRequest(request, text, list(ids))
    limit = loaded.info.context_length
    params = request.params
    if limit is None:
        return prepared
    budget = limit if loaded.kind == "seq2seq" else limit - params.max_new_tokens
    if budget < 1:
        raise ContextLengthError(
            f"max_new_tokens={params.max_new_tokens} leaves no room for a prompt in "
            f"{loaded.info.name!r}'s context of {limit} tokens",
            hint=f"ask for at most {limit - 1} new tokens",
        )
    if len(ids) > budget and request.truncatable and params.truncation == "left":
        return _cut_truncatable(loaded, prepared, has_special, budget)
    if len(ids) > budget:
        if params.truncation == "error":
            raise ContextLengthError(
                f"prompt of {len(ids)} tokens + {params.max_new_tokens} new tokens exceeds "
                f"{loaded.info.name!r}'s context of {limit} tokens",
                hint="shorten the prompt, lower max_new_tokens, or allow truncation='left'",
            )
        dropped = len(ids) - budget
        prepared.input_ids = list(ids[dropped:])
        prepared.warnings.append(
            f"prompt truncated from the left: dropped the oldest {dropped} of {len(ids)} tokens "
            f"to fit the context of {limit} tokens"
        )
    return prepared


def _cut_truncatable(loaded: LoadedModel, prepared: PreparedRequest, has_special: bool, budget: int
                     ) -> PreparedRequest:
    """Fit the prompt by cutting the end of its truncatable span, keeping every other part intact.

    The span is cut at a token boundary and the prompt re-tokenised, until it fits; the prompt
    text on the result is exactly what the model sees.

    Raises:
        ContextLengthError: the prompt does not fit even with the span removed entirely.
    """
    span = prepared.request.truncatable
    text = prepared.prompt_text
    start = text.rfind(span)
    if start < 0:  # the template changed the span's text: fall back to cutting from the left
        return prepare(loaded, replace(prepared.request, truncatable=None))
    prefix, suffix = text[:start], text[start + len(span):]
    span_ids = loaded.tokenizer(span, add_special_tokens=False)["input_ids"]
    tokenize = lambda t: list(loaded.tokenizer(t, add_special_tokens=not has_special)["input_ids"])  # noqa: E731
    total = len(prepared.input_ids)
    keep = len(span_ids) - (total - budget)
    while keep >= 0:
        cut = loaded.tokenizer.decode(span_ids[:keep], skip_special_tokens=True)
        ids = tokenize(prefix + cut + suffix)
        if len(ids) <= budget:
            prepared.prompt_text, prepared.input_ids = prefix + cut + suffix, ids
            prepared.warnings.append(
                f"input truncated to fit the context of {loaded.info.context_length} tokens: kept {keep} of "
                f"{len(span_ids)} input tokens ({len(cut)} of {len(span)} characters); instructions and "
                "examples kept whole")
            return prepared
        keep -= max(1, len(ids) - budget)
    raise ContextLengthError(
        f"the prompt's fixed parts (instructions, system prompt, few-shot examples) need "
        f"{len(tokenize(prefix + suffix))} tokens, more than the {budget} left in "
        f"{loaded.info.name!r}'s context of {loaded.info.context_length} after {prepared.params.max_new_tokens} new tokens",
        hint="use fewer few-shot examples, a shorter prompt, or lower max_new_tokens")
