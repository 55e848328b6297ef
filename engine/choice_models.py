"""The computations behind :mod:`engine.choice_scoring` for transformers models (blocking; runs
on a model's worker thread). See that module for what each model kind's numbers mean."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Sequence

import torch

from engine.choice_scoring import MASKED_METHOD, SEQ2SEQ_METHOD, ChoiceRequest, ChoiceScores, causal_method
from engine.errors import InvalidRequestError, UnsupportedModelError
from engine.loading import LoadedModel
from engine.scoring import _max_tokens, encode_pair, prefix_token_id, token_batches


def score_choices(loaded: LoadedModel, requests: Sequence[ChoiceRequest], batch_size: int) -> list[ChoiceScores]:
    """Scores for every request's options, by the model's kind (see the module docstring).

    Raises:
        UnsupportedModelError: a model kind with no log-likelihood (or a masked model without a
            mask token, a causal one without BOS/EOS).
        InvalidRequestError: an option that tokenises to nothing.
    """
    if not requests:
        return []
    if loaded.kind == "causal":
        return _causal(loaded, requests, batch_size)
    if loaded.kind == "seq2seq":
        return _seq2seq(loaded, requests, batch_size)
    if loaded.kind == "masked":
        return _masked(loaded, requests, batch_size)
    raise UnsupportedModelError(f"{loaded.info.name!r} is a {loaded.kind} model: it cannot score answer options")


# ------------------------------------------------------------------------------------ causal
@dataclass
class _Group:
    """A context with the options that share it (one request, or one truncated option)."""

    request: int
    options: list[int]  # option indices within the request
    ctx: list[int]
    conts: list[list[int]]


def _causal_groups(loaded: LoadedModel, requests: Sequence[ChoiceRequest]) -> list[_Group]:
    limit = loaded.info.context_length or 10**9
    groups: list[_Group] = []
    for r_index, request in enumerate(requests):
        encoded = [encode_pair(loaded, request.context, option) for option in request.options]
        for o_index, (_, cont) in enumerate(encoded):
            if not cont:
                raise InvalidRequestError(f"option {request.options[o_index]!r} tokenises to nothing after the context")
        ctx = encoded[0][0]
        if all(len(ctx) + len(c) <= limit + 1 for _, c in encoded):
            groups.append(_Group(r_index, list(range(len(encoded))), ctx, [c for _, c in encoded]))
            continue
        for o_index, (c_ids, cont) in enumerate(encoded):  # lm-eval keeps the last limit+1 tokens
            whole = (c_ids + cont)[-(limit + 1):]
            n = min(len(cont), len(whole) - 1)
            groups.append(_Group(r_index, [o_index], whole[:-n], [whole[-n:]]))
    return groups


def _forward_options(model) -> tuple[bool, str]:
    """Whether ``model`` can return only the last position's logits, and its cache argument's name
    (``cache`` in newer transformers, ``past_key_values`` before)."""
    parameters = inspect.signature(model.forward).parameters
    return "logits_to_keep" in parameters, "cache" if "cache" in parameters else "past_key_values"


def _causal(loaded: LoadedModel, requests: Sequence[ChoiceRequest], batch_size: int) -> list[ChoiceScores]:
    groups = _causal_groups(loaded, requests)
    # Padded tokens per group: the context once (only its last logits are kept), then the options.
    sizes = [len(g.ctx) + len(g.conts) * max(map(len, g.conts)) for g in groups]
    logprobs: list[list[float]] = [[0.0] * len(r.options) for r in requests]
    counts: list[list[int]] = [[0] * len(r.options) for r in requests]
    greedy: list[list[bool]] = [[False] * len(r.options) for r in requests]
    for chunk in token_batches(sizes, batch_size, max(_max_tokens(loaded), max(sizes))):
        batch = [groups[i] for i in chunk]
        for group, scored in zip(batch, _causal_batch(loaded, batch)):
            for o_index, (lp, is_greedy, n) in zip(group.options, scored):
                logprobs[group.request][o_index] = lp
                greedy[group.request][o_index] = is_greedy
                counts[group.request][o_index] = n
    method = causal_method(prefix_token_id(loaded))
    return [ChoiceScores(tuple(lp), tuple(n), tuple(g), method) for lp, n, g in zip(logprobs, counts, greedy)]


def _causal_batch(loaded: LoadedModel, groups: list[_Group]) -> list[list[tuple[float, bool, int]]]:
    """Contexts left-padded and run once with a cache; the cache is repeated for each option,
    whose tokens then run right-padded after it (explicit positions, so padding changes nothing)."""
    model, device = loaded.model, loaded.device
    pad = loaded.tokenizer.pad_token_id or 0
    width = max(len(g.ctx) for g in groups)
    ids = torch.full((len(groups), width), pad, dtype=torch.long)
    mask = torch.zeros((len(groups), width), dtype=torch.long)
    for row, g in enumerate(groups):
        ids[row, width - len(g.ctx):] = torch.tensor(g.ctx)
        mask[row, width - len(g.ctx):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    rows = [(gi, oi) for gi, g in enumerate(groups) for oi in range(len(g.conts))]
    keeps_logits, cache_arg = _forward_options(model)
    extra = {"logits_to_keep": 1} if keeps_logits else {}
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **extra)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # predicts each option's first token
        results: list[list[tuple[float, bool, int]]] = [[] for _ in groups]
        longer = [(gi, oi) for gi, oi in rows if len(groups[gi].conts[oi]) > 1]
        rest: dict[tuple[int, int], torch.Tensor] = {}  # log-probabilities after an option's first token
        if longer:
            cache = out.get("cache") if "cache" in out else out.past_key_values
            cache.reorder_cache(torch.tensor([gi for gi, _ in longer], device=device))
            o_width = max(len(groups[gi].conts[oi]) - 1 for gi, oi in longer)
            o_ids = torch.full((len(longer), o_width), pad, dtype=torch.long)
            o_mask = torch.zeros((len(longer), o_width), dtype=torch.long)
            for row, (gi, oi) in enumerate(longer):
                cont = groups[gi].conts[oi][:-1]
                o_ids[row, :len(cont)] = torch.tensor(cont)
                o_mask[row, :len(cont)] = 1
            o_ids, o_mask = o_ids.to(device), o_mask.to(device)
            index = torch.tensor([gi for gi, _ in longer], device=device)
            full_mask = torch.cat((mask[index], o_mask), dim=1)
            o_pos = mask[index].sum(-1, keepdim=True) + torch.arange(o_width, device=device)[None]
            logits = model(input_ids=o_ids, attention_mask=full_mask, position_ids=o_pos,
                           use_cache=True, **{cache_arg: cache}).logits
            for row, (gi, oi) in enumerate(longer):
                n = len(groups[gi].conts[oi]) - 1
                rest[(gi, oi)] = torch.log_softmax(logits[row, :n].float(), dim=-1)
        for gi, oi in rows:
            cont = torch.tensor(groups[gi].conts[oi], device=device)
            step = first[gi][None]
            if (gi, oi) in rest:
                step = torch.cat((step, rest[(gi, oi)]), dim=0)
            picked = step.gather(-1, cont[:, None]).squeeze(-1)
            is_greedy = bool((step.argmax(-1) == cont).all())
            results[gi].append((float(picked.double().sum()), is_greedy, len(cont)))
    return results


# ----------------------------------------------------------------------------------- seq2seq
def _seq2seq(loaded: LoadedModel, requests: Sequence[ChoiceRequest], batch_size: int) -> list[ChoiceScores]:
    tok, model, device = loaded.tokenizer, loaded.model, loaded.device
    limit = loaded.info.context_length or 10**9
    pad = tok.pad_token_id or 0
    inputs, targets = [], []
    for request in requests:
        context, moved = request.context, ""
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            context, moved = context[:-n_spaces], context[-n_spaces:]
        ctx = tok(context)["input_ids"] if context else [prefix_token_id(loaded)]
        inputs.append(ctx[-limit:])
        conts = [tok(moved + option)["input_ids"][-limit:] for option in request.options]
        if any(not c for c in conts):
            raise InvalidRequestError("an option tokenises to nothing")
        targets.append(conts)
    sizes = [len(c) + sum(map(len, t)) for c, t in zip(inputs, targets)]
    out: list[ChoiceScores | None] = [None] * len(requests)
    for chunk in token_batches(sizes, batch_size, max(_max_tokens(loaded), 2 * max(sizes))):
        width = max(len(inputs[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(chunk):
            ids[row, :len(inputs[i])] = torch.tensor(inputs[i])
            mask[row, :len(inputs[i])] = 1
        ids, mask = ids.to(device), mask.to(device)
        rows = [(row, i, k) for row, i in enumerate(chunk) for k in range(len(targets[i]))]
        t_width = max(len(targets[i][k]) for _, i, k in rows)
        labels = torch.full((len(rows), t_width), -100, dtype=torch.long)
        for r, (_, i, k) in enumerate(rows):
            labels[r, :len(targets[i][k])] = torch.tensor(targets[i][k])
        labels = labels.to(device)
        index = torch.tensor([row for row, _, _ in rows], device=device)
        with torch.inference_mode():
            encoded = model.get_encoder()(input_ids=ids, attention_mask=mask)
            hidden = encoded.last_hidden_state[index]
            decoder_input = model._shift_right(labels) if hasattr(model, "_shift_right") else \
                model.prepare_decoder_input_ids_from_labels(labels=labels)
            logits = model(encoder_outputs=(hidden,), attention_mask=mask[index],
                           decoder_input_ids=decoder_input).logits
            per_request: dict[int, list[tuple[float, bool, int]]] = {}
            for r, (_, i, k) in enumerate(rows):
                n = len(targets[i][k])
                step = torch.log_softmax(logits[r, :n].float(), dim=-1)
                target = labels[r, :n]
                picked = step.gather(-1, target[:, None]).squeeze(-1)
                per_request.setdefault(i, []).append(
                    (float(picked.double().sum()), bool((step.argmax(-1) == target).all()), n))
        for i, scored in per_request.items():
            out[i] = ChoiceScores(tuple(s[0] for s in scored), tuple(s[2] for s in scored),
                                  tuple(s[1] for s in scored), SEQ2SEQ_METHOD)
    return out  # type: ignore[return-value]


# ------------------------------------------------------------------------------------ masked
def _masked(loaded: LoadedModel, requests: Sequence[ChoiceRequest], batch_size: int) -> list[ChoiceScores]:
    tok, model, device = loaded.tokenizer, loaded.model, loaded.device
    if tok.mask_token_id is None:
        raise UnsupportedModelError(f"{loaded.info.name!r} has no mask token")
    limit = loaded.info.context_length or 512
    lead, trail = _special_wrapping(tok)
    unique: dict[tuple[int, ...], int] = {}  # masked input -> row
    wanted: list[list[list[tuple[int, int]]]] = []  # request -> option -> [(row, token id)]
    for request in requests:
        before, moved = request.context, ""
        n_spaces = len(before) - len(before.rstrip())
        if n_spaces:
            before, moved = before[:-n_spaces], before[-n_spaces:]
        head = tok(before, add_special_tokens=False)["input_ids"] if before else []
        tail = tok(request.suffix, add_special_tokens=False)["input_ids"] if request.suffix else []
        per_option = []
        for option in request.options:
            slot = tok(moved + option, add_special_tokens=False)["input_ids"]
            if not slot:
                raise InvalidRequestError(f"option {option!r} tokenises to nothing")
            excess = len(lead) + len(head) + len(slot) + len(tail) + len(trail) - limit
            kept = head[max(0, excess):]  # too long: the text before the slot loses its beginning
            body = lead + kept + slot + tail + trail
            if len(body) > limit:
                raise InvalidRequestError(f"the masked input is {len(body)} tokens even without the text before "
                                          f"the slot; the model takes {limit}")
            start = len(lead) + len(kept)
            cells = []
            for k, token in enumerate(slot):
                masked = list(body)
                masked[start + k] = tok.mask_token_id
                row = unique.setdefault(tuple(masked), len(unique))
                cells.append((row, start + k, token))
            per_option.append(cells)
        wanted.append(per_option)
    inputs = list(unique)
    scores: dict[tuple[int, int, int], float] = {}
    needed: dict[int, set[tuple[int, int]]] = {}
    for per_option in wanted:
        for cells in per_option:
            for row, pos, token in cells:
                needed.setdefault(row, set()).add((pos, token))
    pad = tok.pad_token_id or 0
    for chunk in token_batches([len(x) for x in inputs], batch_size, max(_max_tokens(loaded), max(map(len, inputs)))):
        width = max(len(inputs[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(chunk):
            ids[r, :len(inputs[i])] = torch.tensor(inputs[i])
            mask[r, :len(inputs[i])] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for r, i in enumerate(chunk):
                for pos, token in needed[i]:
                    scores[(i, pos, token)] = float(torch.log_softmax(logits[r, pos].float(), dim=-1)[token].double())
    return [ChoiceScores(tuple(sum(scores[c] for c in cells) for cells in per_option),
                         tuple(len(cells) for cells in per_option), tuple(False for _ in per_option), MASKED_METHOD)
            for per_option in wanted]


def _special_wrapping(tok) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text ([CLS] ... [SEP] for BERT)."""
    inner = tok("a", add_special_tokens=False)["input_ids"]
    wrapped = tok("a")["input_ids"]
    for lead in range(len(wrapped) - len(inner) + 1):
        if wrapped[lead:lead + len(inner)] == inner:
            return wrapped[:lead], wrapped[lead + len(inner):]
    raise UnsupportedModelError("the tokenizer's special tokens do not wrap the text; cannot place the mask")
