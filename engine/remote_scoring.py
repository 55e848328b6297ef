"""Log-likelihoods from an OpenAI-compatible server's prompt log-probabilities (pure parsing).

Servers give them in one of two shapes, both asked for on ``/v1/completions`` with a one-token
completion: ``echo`` + ``logprobs`` (legacy OpenAI, vLLM, llama.cpp) puts the prompt's tokens in
``choices[0].logprobs``; vLLM's ``prompt_logprobs`` puts ``{token_id: {logprob, rank,
decoded_token}}`` per prompt token in ``choices[0].prompt_logprobs``. A server that returns
neither (``transformers serve`` ignores both) yields ``None`` here, never a made-up number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from engine.errors import InvalidRequestError
from engine.types import LoglikelihoodResult, PerplexityResult
from evaluators.perplexity import count_words

ScoreMode = Literal["echo", "prompt_logprobs"]


@dataclass(frozen=True)
class PromptToken:
    """One prompt token as the server scored it (``logprob`` is None for the first token)."""

    text: str
    logprob: float | None
    greedy: bool | None
    offset: int | None = None  # character offset in the prompt, when the server gives it


def scoring_payload(model: str, prompt: str, mode: ScoreMode) -> dict:
    """The ``/v1/completions`` body asking for the prompt's log-probabilities."""
    body: dict = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
    if mode == "prompt_logprobs":
        body["prompt_logprobs"] = 1
    return body


def prompt_tokens(response: dict, prompt: str) -> list[PromptToken] | None:
    """The prompt's tokens with their log-probabilities, or None if the response has none."""
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    n_prompt = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else None
    if isinstance(choice.get("prompt_logprobs"), list) and choice["prompt_logprobs"]:
        return _from_prompt_logprobs(choice["prompt_logprobs"])
    block = choice.get("logprobs")
    if not isinstance(block, dict) or not block.get("tokens") or not block.get("token_logprobs"):
        return None
    tokens, values = list(block["tokens"]), list(block["token_logprobs"])
    tops = list(block.get("top_logprobs") or [])
    offsets = list(block.get("text_offset") or [])
    if n_prompt is None and len(offsets) == len(tokens):
        n_prompt = sum(1 for o in offsets if o < len(prompt))
    if n_prompt is None or n_prompt < 1 or len(tokens) < n_prompt or len(values) < n_prompt:
        return None  # no echo: only the generated token came back
    out = []
    for i in range(n_prompt):
        value = values[i]
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        greedy = None if value is None or not top else value >= max(top.values()) - 1e-6
        out.append(PromptToken(str(tokens[i]), None if value is None else float(value), greedy,
                               offsets[i] if i < len(offsets) else None))
    return out


def _from_prompt_logprobs(entries: list) -> list[PromptToken]:
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry:
            out.append(PromptToken("", None, None))
            continue
        # The dict holds the prompt token and the top-k; the prompt token has the largest rank.
        actual = max(entry.values(), key=lambda v: v.get("rank") or 0)
        out.append(PromptToken(str(actual.get("decoded_token", "")), float(actual["logprob"]),
                               (actual.get("rank") or 1) == 1))
    return out


def continuation(tokens: Sequence[PromptToken], prompt: str, boundary: int) -> list[PromptToken]:
    """The tokens covering ``prompt[boundary:]`` (a token straddling the boundary counts)."""
    if tokens and all(t.offset is not None for t in tokens):
        ends = [t.offset for t in tokens[1:]] + [len(prompt)]  # type: ignore[list-item]
        return [t for t, end in zip(tokens, ends) if end > boundary]
    picked, covered, needed = [], 0, len(prompt) - boundary
    for token in reversed(tokens):
        if covered >= needed:
            break
        picked.append(token)
        covered += len(token.text)
    return picked[::-1]


def loglikelihood_result(tokens: Sequence[PromptToken], prompt: str, boundary: int) -> LoglikelihoodResult:
    """log P(prompt[boundary:] | prompt[:boundary]) from the scored prompt tokens.

    Raises:
        InvalidRequestError: the continuation starts the prompt, so its first token has no
            log-probability (give a non-empty context).
    """
    picked = continuation(tokens, prompt, boundary)
    if not picked or any(t.logprob is None for t in picked):
        raise InvalidRequestError("the server gave no log-probability for the continuation's first token",
                                  hint="give a non-empty context")
    values = tuple(float(t.logprob) for t in picked)  # type: ignore[arg-type]
    return LoglikelihoodResult(logprob=sum(values), num_tokens=len(values),
                               is_greedy=all(t.greedy is True for t in picked), token_logprobs=values)


def perplexity_result(tokens: Sequence[PromptToken], text: str, host: str) -> PerplexityResult:
    """Perplexity of ``text`` scored in one window by the server (its first token is unscored
    unless the server's tokenizer prepends BOS)."""
    values = [t.logprob for t in tokens if t.logprob is not None]
    return PerplexityResult(
        nll=-float(sum(values)), num_tokens=len(values), num_words=count_words(text),
        num_bytes=len(text.encode("utf-8")),
        method=f"remote prompt log-probabilities (one window, server-side tokens, {host})",
    )
