"""Log-likelihoods and perplexity from forward passes (blocking; run on a model's worker thread)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from engine.errors import InvalidRequestError, UnsupportedModelError
from engine.loading import LoadedModel
from engine.types import LoglikelihoodResult, PerplexityResult
from evaluators.perplexity import count_words


def _require_kind(loaded: LoadedModel, what: str, kinds: tuple[str, ...]) -> None:
    if loaded.kind not in kinds:
        raise UnsupportedModelError(
            f"{what} needs a {' or '.join(kinds)} model; {loaded.info.name!r} is a {loaded.kind} model",
            hint="pick a causal language model for log-likelihoods and perplexity",
        )


def prefix_token_id(loaded: LoadedModel) -> int:
    """The token every scored text is conditioned on, so its first real token is scored too
    (BOS when the tokenizer has one, else EOS — as lm-evaluation-harness does)."""
    tok = loaded.tokenizer
    token = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if token is None:
        raise UnsupportedModelError(f"{loaded.info.name!r} has neither a BOS nor an EOS token to condition on")
    return token


def _forward_logprobs(loaded: LoadedModel, sequences: Sequence[list[int]], greedy: bool = True) -> list[torch.Tensor]:
    """For each sequence, a (2, len-1) tensor: log P(token[i+1] | tokens[:i+1]) and whether
    token[i+1] was the model's greedy choice (all zeros unless ``greedy``). Sequences are
    right-padded into one batch."""
    width = max(len(s) for s in sequences)
    pad = loaded.tokenizer.pad_token_id or 0
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    ids, mask = ids.to(loaded.device), mask.to(loaded.device)
    out = []
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids, attention_mask=mask).logits
        for row, seq in enumerate(sequences):
            # Only the row's real positions: padding would cost a full-vocabulary softmax each.
            row_logits = logits[row, : len(seq) - 1].float()
            targets = ids[row, 1: len(seq)]
            picked = row_logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(row_logits, dim=-1)
            is_greedy = row_logits.argmax(-1) == targets if greedy else torch.zeros_like(picked)
            out.append(torch.stack((picked.double().cpu(), is_greedy.double().cpu())))
    return out


def token_batches(lengths: Sequence[int], max_batch: int, max_tokens: int) -> list[list[int]]:
    """Indices grouped into batches, longest first, each under ``max_tokens`` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < max_batch and lengths[batches[-1][0]] * (len(batches[-1]) + 1) <= max_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _max_tokens(loaded: LoadedModel) -> int:
    # Logits take batch x length x vocabulary floats; on a CPU large batches only add memory traffic.
    return 32768 if loaded.device.type == "cuda" else 512


def encode_pair(loaded: LoadedModel, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness 0.4's (context tokens, continuation tokens) for a causal model
    (``HFLM._encode_pair``): trailing spaces of the context move to the continuation; context and
    continuation are tokenised as one text and split after the context's tokens; no BOS, except
    that an empty context becomes the prefix token."""
    tok = loaded.tokenizer
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    if not context:
        return [prefix_token_id(loaded)], tok(continuation, add_special_tokens=False)["input_ids"]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


def loglikelihood_inputs(loaded: LoadedModel, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], int]]:
    """For each (context, continuation) pair, the token ids to score and how many of the last
    ones are the continuation (see :func:`loglikelihood`; shared by every local backend).

    Raises InvalidRequestError for an empty continuation, or one that tokenises to nothing.
    """
    limit = loaded.info.context_length or 10**9
    jobs: list[tuple[list[int], int]] = []
    for context, continuation in pairs:
        if not continuation:
            raise InvalidRequestError("log-likelihood needs a non-empty continuation")
        ctx_ids, cont_ids = encode_pair(loaded, context, continuation)
        if not cont_ids:
            raise InvalidRequestError(f"continuation {continuation!r} tokenises to nothing after its context")
        whole = (ctx_ids + cont_ids)[-(limit + 1):]  # lm-eval keeps the last limit+1 tokens
        jobs.append((whole, min(len(cont_ids), len(whole) - 1)))
    return jobs


def loglikelihood(loaded: LoadedModel, pairs: Sequence[tuple[str, str]], batch_size: int) -> list[LoglikelihoodResult]:
    """log P(continuation | context) for each pair, as lm-evaluation-harness 0.4 computes it
    (tokens from :func:`encode_pair`). Sequences longer than the model's context keep their
    last tokens.
    """
    _require_kind(loaded, "log-likelihood", ("causal",))
    jobs = loglikelihood_inputs(loaded, pairs)
    results: list[LoglikelihoodResult | None] = [None] * len(jobs)
    for chunk in token_batches([len(j[0]) for j in jobs], batch_size, _max_tokens(loaded)):
        scored = _forward_logprobs(loaded, [jobs[i][0] for i in chunk])
        for i, stacked in zip(chunk, scored):
            n = jobs[i][1]
            token_lps, greedy = stacked[0][-n:], stacked[1][-n:]
            results[i] = LoglikelihoodResult(
                logprob=float(token_lps.sum()), num_tokens=n,
                is_greedy=bool(greedy.all()), token_logprobs=tuple(token_lps.tolist()),
            )
    return results  # type: ignore[return-value]


def num_words(text: str) -> int:
    """Words counted for word perplexity (every backend counts them the same way: as
    lm-evaluation-harness does, see :func:`evaluators.perplexity.count_words`)."""
    return count_words(text)


@dataclass
class _Window:
    text_index: int
    ids: list[int]
    scored: int  # how many of the window's last targets are new (scored) tokens


def perplexity_windows(ids: list[int], max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, scored) windows over ``ids`` (ids[0] is the prefix token, never a target).

    The Hugging Face sliding-window method: each window holds up to ``max_length`` tokens and
    advances by ``stride``; only tokens not scored by an earlier window count, so every token
    after the prefix is scored exactly once, with up to ``max_length - stride`` tokens of context.
    """
    windows = []
    prev_end = 1
    for begin in range(0, len(ids) - 1, stride):
        end = min(begin + max_length, len(ids))
        windows.append((begin, end, end - prev_end))
        prev_end = end
        if end == len(ids):
            break
    return windows


def perplexity_inputs(loaded: LoadedModel, texts: Sequence[str], max_length: int | None, stride: int | None
                      ) -> tuple[int, int, int, list[list[int]]]:
    """(max_length, stride, prefix token, token ids of each text after the prefix token) for
    :func:`perplexity`: the window defaults to the model's context, the stride to half of it.
    Shared by every local backend.

    Raises InvalidRequestError for impossible windows or an empty text.
    """
    context = loaded.info.context_length or 1024
    max_length = min(max_length or context, context)
    stride = stride or max(1, max_length // 2)
    if max_length < 2 or not 1 <= stride < max_length:
        raise InvalidRequestError(
            f"perplexity needs max_length >= 2 and 1 <= stride < max_length; got max_length={max_length}, stride={stride}")
    prefix = prefix_token_id(loaded)
    texts_ids = []
    for index, text in enumerate(texts):
        if not text.strip():
            raise InvalidRequestError(f"text {index} is empty; perplexity needs at least one token")
        texts_ids.append([prefix] + loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
    return max_length, stride, prefix, texts_ids


def perplexity_method(max_length: int, stride: int, prefix: int) -> str:
    """How a perplexity was computed, recorded on every :class:`PerplexityResult`."""
    return f"sliding-window(max_length={max_length}, stride={stride}, prefix_token={prefix})"


def perplexity(loaded: LoadedModel, texts: Sequence[str], max_length: int | None, stride: int | None,
               batch_size: int) -> list[PerplexityResult]:
    """Perplexity of each text with a sliding window; windows of all texts are batched."""
    _require_kind(loaded, "perplexity", ("causal",))
    max_length, stride, prefix, texts_ids = perplexity_inputs(loaded, texts, max_length, stride)
    windows: list[_Window] = []
    for index, ids in enumerate(texts_ids):
        windows += [_Window(index, ids[b:e], scored) for b, e, scored in perplexity_windows(ids, max_length, stride)]
    nll = [0.0] * len(texts)
    count = [0] * len(texts)
    for indices in token_batches([len(w.ids) for w in windows], batch_size, _max_tokens(loaded)):
        chunk = [windows[i] for i in indices]
        for window, stacked in zip(chunk, _forward_logprobs(loaded, [w.ids for w in chunk], greedy=False)):
            nll[window.text_index] -= float(stacked[0][-window.scored:].sum())
            count[window.text_index] += window.scored
    method = perplexity_method(max_length, stride, prefix)
    return [
        PerplexityResult(nll=nll[i], num_tokens=count[i], num_words=num_words(text),
                         num_bytes=len(text.encode("utf-8")), method=method)
        for i, text in enumerate(texts)
    ]
