"""Option log-likelihoods through the engine against the same numbers computed by hand with plain
transformers, one (context, option) at a time, for causal, seq2seq and masked tiny models."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM, AutoTokenizer

from engine import InvalidRequestError
from engine.choice_scoring import ChoiceRequest

ATOL = 1e-4


def lm_eval_causal(model, tok, context: str, continuation: str) -> tuple[float, int]:
    """lm-evaluation-harness 0.4 (HFLM._encode_pair + _loglikelihood_tokens), written out."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    if context == "":
        ctx, cont = [tok.bos_token_id], tok(continuation, add_special_tokens=False)["input_ids"]
    else:
        whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
        ctx = tok(context, add_special_tokens=False)["input_ids"]
        cont = whole[len(ctx):]
    inp = torch.tensor([(ctx + cont)[:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(inp).logits[0].double(), -1)[-len(cont):]
    return float(logprobs.gather(-1, torch.tensor(cont)[:, None]).sum()), len(cont)


CAUSAL_CASES = [
    ChoiceRequest("The capital of France is", (" Paris", " Berlin", " a small town in the north")),
    ChoiceRequest("The capital of France is ", ("Paris", "Berlin")),           # trailing space moves over
    ChoiceRequest("", ("The quick brown fox", "A language model")),             # empty context: BOS
    ChoiceRequest("Question: what jumps?\nAnswer:", (" the fox", " the fox", " dog")),  # a tie
    ChoiceRequest("你好", ("，世界。", "世界")),
]


async def test_causal_options_equal_lm_eval_by_hand(engine, tiny_causal):
    scored = await engine.score_choices(tiny_causal, CAUSAL_CASES)
    model = AutoModelForCausalLM.from_pretrained(tiny_causal).eval()
    tok = AutoTokenizer.from_pretrained(tiny_causal)
    for request, result in zip(CAUSAL_CASES, scored):
        assert result.method.startswith("causal-sum-logprob(lm-eval-0.4")
        for option, logprob, n in zip(request.options, result.logprobs, result.num_tokens):
            expected, expected_n = lm_eval_causal(model, tok, request.context, option)
            assert n == expected_n
            assert logprob == pytest.approx(expected, abs=ATOL), (request.context, option)
    tie = scored[3].logprobs
    assert tie[0] == tie[1]  # identical options score identically (the metric then picks the first)
    assert any(n > 1 for r in scored for n in r.num_tokens)  # multi-token options were covered


async def test_causal_prefix_reuse_equals_scoring_each_option_alone(engine, tiny_causal):
    together = await engine.score_choices(tiny_causal, CAUSAL_CASES)
    alone = [await engine.score_choices(tiny_causal, [ChoiceRequest(r.context, (o,))])
             for r in CAUSAL_CASES for o in r.options]
    flat = [lp for r in together for lp in r.logprobs]
    assert flat == pytest.approx([a[0].logprobs[0] for a in alone], abs=ATOL)


async def test_causal_over_long_inputs_keep_their_last_tokens(engine, tiny_causal):
    context = "The quick brown fox jumps over the lazy dog. " * 30  # well past 128 positions
    [result] = await engine.score_choices(tiny_causal, [ChoiceRequest(context, ("Paris", "A language model"))])
    model = AutoModelForCausalLM.from_pretrained(tiny_causal).eval()
    tok = AutoTokenizer.from_pretrained(tiny_causal)
    for option, logprob in zip(("Paris", "A language model"), result.logprobs):
        ctx_text, cont_text = context.rstrip(), " " + option
        whole = tok(ctx_text + cont_text, add_special_tokens=False)["input_ids"]
        ctx = tok(ctx_text, add_special_tokens=False)["input_ids"]
        cont = whole[len(ctx):]
        inp = (ctx + cont)[-129:][:-1]
        with torch.no_grad():
            lps = torch.log_softmax(model(torch.tensor([inp])).logits[0].double(), -1)[-len(cont):]
        assert logprob == pytest.approx(float(lps.gather(-1, torch.tensor(cont)[:, None]).sum()), abs=ATOL)


async def test_seq2seq_targets_equal_a_labels_forward_pass(engine, tiny_seq2seq):
    requests = [ChoiceRequest("sst2 sentence: the house is small", ("positive", "negative")),
                ChoiceRequest("translate English to German: the house", ("Das Haus", "Der Hund ist klein"))]
    scored = await engine.score_choices(tiny_seq2seq, requests)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_seq2seq).eval()
    tok = AutoTokenizer.from_pretrained(tiny_seq2seq)
    for request, result in zip(requests, scored):
        assert result.method.startswith("seq2seq-target-logprob")
        for option, logprob in zip(request.options, result.logprobs):
            labels = torch.tensor([tok(option)["input_ids"]])
            assert labels[0, -1] == tok.eos_token_id
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([tok(request.context)["input_ids"]]), labels=labels).logits
            expected = torch.log_softmax(logits[0].double(), -1).gather(-1, labels[0][:, None]).sum()
            assert logprob == pytest.approx(float(expected), abs=ATOL)


async def test_masked_single_token_is_the_verbaliser_probability_and_longer_is_pll(engine, tiny_masked):
    request = ChoiceRequest("the quick brown fox jumps over the ", ("dog", "lazy dog"), suffix=".")
    [result] = await engine.score_choices(tiny_masked, [request])
    model = AutoModelForMaskedLM.from_pretrained(tiny_masked).eval()
    tok = AutoTokenizer.from_pretrained(tiny_masked)
    assert result.method.startswith("masked-pll")
    head = tok("the quick brown fox jumps over the", add_special_tokens=False)["input_ids"]
    tail = tok(".", add_special_tokens=False)["input_ids"]
    for option, logprob, n in zip(request.options, result.logprobs, result.num_tokens):
        slot = tok(" " + option, add_special_tokens=False)["input_ids"]
        assert n == len(slot)
        expected = 0.0
        for k, token in enumerate(slot):
            ids = [tok.cls_token_id] + head + slot + tail + [tok.sep_token_id]
            position = 1 + len(head) + k
            ids[position] = tok.mask_token_id
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0, position].double()
            expected += float(torch.log_softmax(logits, -1)[token])
        assert logprob == pytest.approx(expected, abs=ATOL)
    assert result.num_tokens[0] == 1 and result.num_tokens[1] > 1


async def test_empty_options_are_refused():
    with pytest.raises(InvalidRequestError):
        ChoiceRequest("context", ())
    with pytest.raises(InvalidRequestError):
        ChoiceRequest("context", ("a", ""))


async def test_a_model_in_its_own_process_scores_the_same(tiny_causal):
    from engine import Engine, EngineConfig

    isolated = Engine(EngineConfig(threads=1, isolate=True))
    local = Engine(EngineConfig(threads=1))
    try:
        assert await isolated.score_choices(tiny_causal, CAUSAL_CASES) == await local.score_choices(tiny_causal,
                                                                                                  CAUSAL_CASES)
    finally:
        await isolated.aclose()
        await local.aclose()


async def test_masked_inputs_too_long_lose_the_beginning_of_their_context(engine, tiny_masked):
    long_context = "the quick brown fox jumps over the lazy dog " * 40  # well past 128 positions
    [cut] = await engine.score_choices(tiny_masked, [ChoiceRequest(long_context, ("dog", "house"), suffix=".")])
    model = AutoModelForMaskedLM.from_pretrained(tiny_masked).eval()
    tok = AutoTokenizer.from_pretrained(tiny_masked)
    head = tok(long_context.rstrip(), add_special_tokens=False)["input_ids"]
    tail = tok(".", add_special_tokens=False)["input_ids"]
    for option, logprob in zip(("dog", "house"), cut.logprobs):
        [token] = tok(" " + option, add_special_tokens=False)["input_ids"]
        kept = head[len(head) + 1 + 2 + len(tail) - 128:]  # [CLS] kept + option + tail [SEP] = 128
        ids = [tok.cls_token_id] + kept + [tok.mask_token_id] + tail + [tok.sep_token_id]
        assert len(ids) == 128
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, 1 + len(kept)].double()
        assert logprob == pytest.approx(float(torch.log_softmax(logits, -1)[token]), abs=ATOL)


async def test_llama_cpp_scores_options_through_its_own_loglikelihood():
    from engine import Engine, EngineConfig, ModelSpec
    from engine.spec import llama_cpp_available

    if not llama_cpp_available():
        pytest.skip("llama-cpp-python is not installed: no llama.cpp backend")
    spec = ModelSpec("default", backend="llamacpp")
    eng = Engine(EngineConfig(threads=1))
    try:
        await eng.load(spec)
        requests = [ChoiceRequest("The capital of France is", (" Paris", " a big river"))]
        [scored] = await eng.score_choices(spec.name, requests)
        pairs = await eng.loglikelihood(spec.name, [("The capital of France is", " Paris"),
                                                    ("The capital of France is", " a big river")])
        assert scored.logprobs == tuple(p.logprob for p in pairs)
        # One tokenisation rule for every local backend: lm-eval's, as on the transformers path.
        assert scored.method == "causal-sum-logprob(lm-eval-0.4 encode_pair; no BOS; llamacpp backend)"
    finally:
        await eng.aclose()
