"""Scoring answer options by log-likelihood, per model kind (blocking; runs on a model's worker thread).

A :class:`ChoiceRequest` is one example: a context and its options. Every option gets the
summed log-probability of its tokens, computed the way its model kind allows:

- causal: log P(option | context) as lm-evaluation-harness 0.4 computes it (``HFLM._encode_pair``):
  trailing whitespace of the context moves to the front of the option, context + option is
  tokenised as one text and split at the context's own token count; no BOS token, except that
  an empty context is replaced by the prefix token (BOS, else EOS); over-long inputs keep their
  last ``context_length + 1`` tokens. The context is encoded once per example: its key/value
  cache is shared by all the options (prefix reuse), which changes no number.
- seq2seq (T5): log P(target | input) with the input (task prefix included) on the encoder and
  the target, tokenised with its end-of-sequence token, on the decoder, as lm-evaluation-harness
  scores seq2seq models; the encoder runs once per example.
- masked (BERT): the option fills a slot between ``context`` and ``suffix``; its score is the
  pseudo-log-likelihood of its tokens (each masked in turn, the others present). For a
  one-token option that is the verbaliser's log-probability at a single ``[MASK]`` (PET-style
  pattern-verbaliser scoring); identical masked inputs are computed once.

The method string on every result states which of these produced the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from engine.errors import InvalidRequestError, UnsupportedModelError

if TYPE_CHECKING:
    from engine.backend import ModelBackend


@dataclass(frozen=True)
class ChoiceRequest:
    """One example's options to score. ``suffix`` (text after the option) is for masked models
    only: they see ``context + option + suffix`` with the option's tokens masked."""

    context: str
    options: tuple[str, ...]
    suffix: str = ""

    def __post_init__(self) -> None:
        if not self.options:
            raise InvalidRequestError("a choice request needs at least one option")
        if any(not isinstance(o, str) or not o for o in self.options):
            raise InvalidRequestError("every option must be a non-empty string")


@dataclass(frozen=True)
class ChoiceScores:
    """Summed log-probability (nats) of each option, its token count, whether it was the greedy
    continuation (causal and seq2seq), and how the numbers were computed."""

    logprobs: tuple[float, ...]
    num_tokens: tuple[int, ...]
    is_greedy: tuple[bool, ...]
    method: str


def causal_method(prefix_token: int) -> str:
    return f"causal-sum-logprob(lm-eval-0.4 encode_pair; empty context -> token {prefix_token}; no BOS)"


SEQ2SEQ_METHOD = "seq2seq-target-logprob(encoder: input with special tokens; decoder: target + EOS)"
MASKED_METHOD = "masked-pll(each option token masked in turn; one token = verbaliser log-prob at [MASK])"


async def score_choices_on(backend: "ModelBackend", requests: Sequence[ChoiceRequest]) -> list[ChoiceScores]:
    """Score ``requests`` on ``backend`` as one job: a backend with its own ``score_choices``
    (the in-process and model-process transformers backends) computes every model kind there;
    any other backend scores causal models through its ``loglikelihood``."""
    own = getattr(backend, "score_choices", None)
    if own is not None:
        return await own(list(requests))
    return await score_choices_with_loglikelihood(backend, requests)


async def score_choices_with_loglikelihood(backend: "ModelBackend", requests: Sequence[ChoiceRequest]
                                           ) -> list[ChoiceScores]:
    """For backends without :func:`score_choices` (llama.cpp, remote servers): every (context,
    option) pair through the backend's own ``loglikelihood`` in one call, causal models only."""
    if backend.info.kind != "causal":
        raise UnsupportedModelError(f"option scoring on {backend.info.name!r} needs a causal model")
    pairs = [(r.context, o) for r in requests for o in r.options]
    flat = await backend.loglikelihood(pairs)
    # llama.cpp tokenises with engine.scoring.encode_pair, as the transformers path does; a
    # server splits its own tokens of context + option at the context's last character.
    rule = "lm-eval-0.4 encode_pair; no BOS" if backend.info.backend == "llamacpp" else "server echo logprobs"
    out, start = [], 0
    for r in requests:
        part = flat[start:start + len(r.options)]
        start += len(r.options)
        out.append(ChoiceScores(tuple(p.logprob for p in part), tuple(p.num_tokens for p in part),
                                tuple(p.is_greedy for p in part),
                                f"causal-sum-logprob({rule}; {backend.info.backend} backend)"))
    return out


