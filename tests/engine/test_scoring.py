"""Log-likelihood, perplexity and fill-mask against direct computations on the same weights."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from engine import FillMaskRequest, InvalidRequestError, UnsupportedModelError
from engine.scoring import perplexity_windows

TEXT = ("The quick brown fox jumps over the lazy dog. A language model predicts the next token. " * 6).strip()


def _reference(folder: str):
    return (AutoTokenizer.from_pretrained(folder),
            AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval())


def _lm_eval_pair(tok, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness 0.4's HFLM._encode_pair, written out (no BOS for a real context)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    if not context:
        return [tok.bos_token_id], tok(continuation, add_special_tokens=False)["input_ids"]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


async def test_loglikelihood_equals_direct_forward_pass(engine, tiny_causal):
    pairs = [("The quick brown", " fox jumps"), ("What is the capital of France? ", "Paris."), ("", "Hello world")]
    results = await engine.loglikelihood(tiny_causal, pairs)
    tok, model = _reference(tiny_causal)
    for (context, continuation), result in zip(pairs, results):
        ctx, cont = _lm_eval_pair(tok, context, continuation)
        ids = ctx + cont
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
        expected = [float(logprobs[i - 1, ids[i]]) for i in range(len(ids) - len(cont), len(ids))]
        greedy = all(int(logprobs[i - 1].argmax()) == ids[i] for i in range(len(ids) - len(cont), len(ids)))
        assert result.num_tokens == len(cont)
        assert result.logprob == pytest.approx(sum(expected), abs=1e-3)
        assert list(result.token_logprobs) == pytest.approx(expected, abs=1e-4)
        assert result.is_greedy == greedy


def _hf_reference_perplexity_nll(model, ids: list[int], max_length: int, stride: int) -> tuple[float, int]:
    """The loop from the Hugging Face 'Perplexity of fixed-length models' guide (labels = -100).

    The guide multiplies the mean loss by ``trg_len - 1``, which under-counts one token per
    window after the first; here the same windows and labels are summed exactly instead.
    """
    encodings = torch.tensor([ids])
    seq_len = encodings.size(1)
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = encodings[:, begin_loc:end_loc]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            logits = model(input_ids).logits
        shift_logits, shift_labels = logits[0, :-1], target_ids[0, 1:]
        nll_sum += torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum").item()
        n_tokens += int((shift_labels != -100).sum())
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return nll_sum, n_tokens


@pytest.mark.parametrize(("max_length", "stride"), [(32, 16), (32, 31), (128, 64)])
async def test_perplexity_with_stride_equals_reference_loop(engine, tiny_causal, max_length, stride):
    result = (await engine.perplexity(tiny_causal, TEXT, max_length=max_length, stride=stride))[0]
    tok, model = _reference(tiny_causal)
    ids = [tok.bos_token_id] + tok(TEXT, add_special_tokens=False)["input_ids"]
    nll, n = _hf_reference_perplexity_nll(model, ids, max_length, stride)
    assert result.num_tokens == n == len(ids) - 1
    assert result.nll == pytest.approx(nll, rel=1e-4)
    assert result.token_perplexity == pytest.approx(math.exp(nll / n), rel=1e-4)
    assert result.word_perplexity == pytest.approx(math.exp(nll / len(TEXT.split())), rel=1e-4)
    assert result.bits_per_byte == pytest.approx(nll / (len(TEXT.encode()) * math.log(2)), rel=1e-4)
    assert f"max_length={max_length}, stride={stride}" in result.method


async def test_perplexity_batches_many_texts_like_one_at_a_time(engine, tiny_causal):
    texts = [TEXT, "A short one.", "Der schnelle braune Fuchs. 你好，世界。"]
    together = await engine.perplexity(tiny_causal, texts, max_length=32, stride=16)
    alone = [(await engine.perplexity(tiny_causal, t, max_length=32, stride=16))[0] for t in texts]
    assert [r.nll for r in together] == pytest.approx([r.nll for r in alone], rel=1e-5)


def test_windows_score_every_token_once():
    for n, length, stride in [(10, 4, 1), (100, 16, 8), (5, 16, 8), (33, 8, 7)]:
        windows = perplexity_windows(list(range(n)), length, stride)
        assert sum(scored for _, _, scored in windows) == n - 1
        assert all(0 < scored <= end - begin - 1 and end - begin <= length for begin, end, scored in windows)


async def test_perplexity_rejects_bad_windows_and_masked_models(engine, tiny_causal, tiny_masked):
    with pytest.raises(InvalidRequestError, match="stride"):
        await engine.perplexity(tiny_causal, TEXT, max_length=16, stride=16)
    with pytest.raises(InvalidRequestError, match="empty"):
        await engine.perplexity(tiny_causal, "   ")
    with pytest.raises(UnsupportedModelError, match="masked"):
        await engine.perplexity(tiny_masked, TEXT)


async def test_fill_mask_matches_a_direct_forward_pass(engine, tiny_masked):
    result = await engine.fill_mask(FillMaskRequest(tiny_masked, "The capital of [MASK] is Paris.", top_k=4))
    tok = AutoTokenizer.from_pretrained(tiny_masked)
    model = AutoModelForMaskedLM.from_pretrained(tiny_masked).eval()
    enc = tok("The capital of [MASK] is Paris.", return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(model(**enc).logits[0], dim=-1)
    position = enc["input_ids"][0].tolist().index(tok.mask_token_id)
    top = torch.topk(probs[position], 4)
    (predictions,) = result.predictions
    assert [p.token_id for p in predictions] == top.indices.tolist()
    assert [p.probability for p in predictions] == pytest.approx(top.values.tolist(), abs=1e-5)
    assert all("[MASK]" not in p.sequence and p.sequence.startswith("the capital of") for p in predictions)


async def test_fill_mask_needs_a_mask_and_a_masked_model(engine, tiny_masked, tiny_causal):
    with pytest.raises(InvalidRequestError, match="no mask"):
        await engine.fill_mask(FillMaskRequest(tiny_masked, "No mask here."))
    with pytest.raises(UnsupportedModelError):
        await engine.fill_mask(FillMaskRequest(tiny_causal, "The [MASK] sat."))


def test_token_batches_respect_both_limits_and_cover_everything():
    from engine.scoring import token_batches

    lengths = [5, 300, 40, 40, 41, 1000, 2, 7]
    batches = token_batches(lengths, max_batch=3, max_tokens=100)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 100
