"""Adding examples one at a time must give exactly the one-shot corpus score.

The one-shot numbers come from the reference implementations, not from our code:
sacrebleu's ``corpus_score`` for BLEU/chrF/TER, and rouge-score's per-example scores
averaged with ``math.fsum`` for ROUGE.
"""

from __future__ import annotations

import math
import random

import sacrebleu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

import evaluators

VOCAB = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "fast", "red", "blue", "house", ".", ",", "Das", "über"]
N_EXAMPLES = 1000



def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(0, 12)))


def _corpus(seed: int, n: int = N_EXAMPLES) -> list[tuple[str, list[str]]]:
    # Hypothesis chooses the seed (and shrinks it); building 1,000 examples from it with
    # random.Random is much faster than drawing each example through a strategy.
    rng = random.Random(seed)
    return [(_sentence(rng), [_sentence(rng) for _ in range(rng.randint(1, 2))]) for _ in range(n)]


corpus = st.integers(min_value=0, max_value=2**32 - 1).map(_corpus)
FAST = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _streams(refs_per_example: list[list[str]]) -> list[list[str | None]]:
    width = max(len(r) for r in refs_per_example)
    return [[r[i] if i < len(r) else None for r in refs_per_example] for i in range(width)]


@FAST
@given(corpus)
def test_bleu_and_chrf_incremental_equal_sacrebleu_corpus(data: list[tuple[str, list[str]]]) -> None:
    hyps = [h for h, _ in data]
    refs = [r for _, r in data]
    for name, reference in (
        ("bleu", sacrebleu.BLEU(tokenize="13a")),
        ("chrf", sacrebleu.CHRF()),
        ("chrf++", sacrebleu.CHRF(word_order=2)),
    ):
        options = {"tokenize": "13a"} if name == "bleu" else {}
        metric = evaluators.get(name, **options)
        for hyp, ref in zip(hyps, refs):
            metric.add(hyp, ref)
        expected = reference.corpus_score(hyps, _streams(refs)).score
        assert metric.corpus().score == expected  # bit-for-bit, not approx
        assert "nrefs:var" in metric.signature or "nrefs:1" in metric.signature or "nrefs:2" in metric.signature


@FAST
@given(corpus)
def test_ter_incremental_equals_sacrebleu_corpus(data: list[tuple[str, list[str]]]) -> None:
    hyps = [h for h, _ in data]
    refs = [r for _, r in data]
    metric = evaluators.get("ter")
    for hyp, ref in data:
        metric.add(hyp, ref)
    assert metric.corpus().score == sacrebleu.TER().corpus_score(hyps, _streams(refs)).score


@FAST
@given(corpus)
def test_rouge_incremental_equals_rouge_score_mean(data: list[tuple[str, list[str]]]) -> None:
    ascii_data = [(h, r) for h, r in data if h.isascii() and all(x.isascii() for x in r)]
    for variant in ("rouge1", "rougeL"):
        metric = evaluators.get(variant, tokenizer="rouge-score")
        scorer = rouge_scorer.RougeScorer([variant])
        f_scores = []
        for hyp, refs in ascii_data:
            metric.add(hyp, refs)
            f_scores.append(scorer.score_multi(refs, hyp)[variant].fmeasure)
        assert metric.corpus().score == 100 * math.fsum(f_scores) / len(f_scores)


@FAST
@given(corpus)
def test_unicode_tokenizer_equals_rouge_score_on_ascii(data: list[tuple[str, list[str]]]) -> None:
    # Our default ROUGE tokenizer must not change a single English score.
    ours = evaluators.get("rouge2")
    theirs = evaluators.get("rouge2", tokenizer="rouge-score")
    for hyp, refs in data[:200]:
        if hyp.isascii() and all(r.isascii() for r in refs):
            assert ours.score_example(hyp, refs) == theirs.score_example(hyp, refs)


def test_order_of_examples_does_not_change_mean_metrics() -> None:
    pairs = [(f"answer {i % 7} x", [f"answer {i % 5} x"]) for i in range(1000)]
    forward, backward = evaluators.get("f1"), evaluators.get("f1")
    for hyp, refs in pairs:
        forward.add(hyp, refs)
    for hyp, refs in reversed(pairs):
        backward.add(hyp, refs)
    assert forward.corpus().score == backward.corpus().score


def test_per_example_bleu_is_sacrebleu_sentence_bleu() -> None:
    metric = evaluators.get("bleu", tokenize="13a")
    pairs = [
        ("The cat sat on the mat today.", ["The cat was sitting on the mat today."]),
        ("A quick brown fox jumps over the lazy dog.", ["The quick brown fox jumped over the lazy dog.", "A fast fox jumps."]),
    ]
    for hyp, refs in pairs:
        assert metric.add(hyp, refs).score == sacrebleu.sentence_bleu(hyp, refs).score


def test_reset_forgets_examples() -> None:
    metric = evaluators.get("chrf")
    metric.add("a b c", ["a b c"])
    metric.reset()
    metric.add("x y z", ["a b c"])
    assert len(metric) == 1
    assert metric.corpus().score == sacrebleu.corpus_chrf(["x y z"], [["a b c"]]).score
