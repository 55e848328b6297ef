"""Perplexity against a direct computation on a tiny random model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

import evaluators

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXTS = ["the cat sat on the mat", "a dog ran quickly home", "colourless green ideas sleep furiously today"]


@dataclass(frozen=True)
class Scored:
    """Stands in for the engine's result: the raw fields evaluators needs."""

    nll: float
    num_tokens: int
    num_words: int
    num_bytes: int
    method: str = "full-text, no windowing"


@pytest.fixture(scope="module")
def scored() -> list[Scored]:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    out = []
    for text in TEXTS:
        ids = torch.tensor([[1] + [3 + (b % 60) for b in text.encode()]])  # BOS + byte ids
        with torch.no_grad():
            logits = model(ids).logits[0, :-1]
        logprobs = torch.log_softmax(logits.double(), dim=-1)
        targets = ids[0, 1:]
        nll = -float(logprobs[torch.arange(len(targets)), targets].sum())
        out.append(Scored(nll, len(targets), evaluators.count_words(text), len(text.encode())))
    return out


def test_token_perplexity_is_exp_of_mean_nll(scored: list[Scored]) -> None:
    metric = evaluators.get("perplexity")
    for s in scored:
        example = metric.add(s)
        assert example.score == pytest.approx(math.exp(s.nll / s.num_tokens), rel=1e-12)
    total_nll = math.fsum(s.nll for s in scored)
    total_tokens = sum(s.num_tokens for s in scored)
    result = metric.corpus()
    assert result.score == math.exp(total_nll / total_tokens)
    # A random model over a 64-token vocabulary is close to uniform.
    assert 30 < result.score < 130
    assert result.higher_is_better is False
    assert "method:full-text, no windowing" in result.signature


def test_word_perplexity_and_bits_per_byte(scored: list[Scored]) -> None:
    total_nll = math.fsum(s.nll for s in scored)
    words = sum(s.num_words for s in scored)
    nbytes = sum(s.num_bytes for s in scored)
    word = evaluators.get("word_perplexity")
    bpb = evaluators.get("bits_per_byte")
    for s in scored:
        word.add(s)
        bpb.add(s)
    assert word.corpus().score == pytest.approx(math.exp(total_nll / words), rel=1e-12)
    assert bpb.corpus().score == pytest.approx(total_nll / (nbytes * math.log(2)), rel=1e-12)
    details = word.corpus().details
    assert details["bits_per_byte"] == pytest.approx(bpb.corpus().score)
    assert isinstance(scored[0], evaluators.LogLikelihoodStats)


def test_mixed_methods_are_refused(scored: list[Scored]) -> None:
    metric = evaluators.get("perplexity")
    metric.add(scored[0])
    with pytest.raises(evaluators.InconsistentInputError):
        metric.add(Scored(1.0, 2, 1, 3, method="window 512, stride 256"))


def test_bad_inputs(scored: list[Scored]) -> None:
    metric = evaluators.get("ppl")
    with pytest.raises(evaluators.InvalidOptionError):
        metric.add("not a result")
    with pytest.raises(evaluators.InvalidOptionError):
        metric.add(Scored(float("nan"), 2, 1, 3))
    assert metric.add(Scored(0.0, 0, 1, 1)).warnings[0].code == "no_tokens"


def test_bootstrap_interval_on_pooled_perplexity(scored: list[Scored]) -> None:
    metric = evaluators.get("perplexity", n_bootstrap=100)
    for s in scored * 10:
        metric.add(s)
    result = metric.corpus(ci=True)
    assert result.ci[0] <= result.score <= result.ci[1]


def test_local_backend_counts_words_as_lm_eval() -> None:
    from engine.scoring import num_words

    for text in ("the cat sat", " padded text \n", ""):
        assert num_words(text) == evaluators.count_words(text)
    assert num_words(" padded text \n") == 4  # str.split() said 2
