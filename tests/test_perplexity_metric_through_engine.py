"""The perplexity metric fed by the real engine: corpus values pool the engine's sums."""

from __future__ import annotations

import math

import pytest

import evaluators

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A language model predicts the next token from the tokens before it.",
    "What is the capital of France? The capital of France is Paris.",
]


async def test_perplexity_metric_pools_engine_results(engine, tiny_causal):
    results = await engine.perplexity(tiny_causal, TEXTS, max_length=32, stride=16)
    metrics = {unit: evaluators.get(name) for unit, name in
               [("token", "perplexity"), ("word", "word_perplexity"), ("byte", "bits_per_byte")]}
    for metric in metrics.values():
        for result in results:
            metric.add(result)
        assert len(metric) == len(TEXTS)
    nll = sum(r.nll for r in results)
    assert metrics["token"].corpus().score == pytest.approx(math.exp(nll / sum(r.num_tokens for r in results)))
    assert metrics["word"].corpus().score == pytest.approx(math.exp(nll / sum(r.num_words for r in results)))
    assert metrics["byte"].corpus().score == pytest.approx(nll / (sum(r.num_bytes for r in results) * math.log(2)))
    assert "stride=16" in metrics["token"].signature
    assert metrics["token"].score_example(results[0]).score == pytest.approx(results[0].token_perplexity)
