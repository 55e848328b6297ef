"""Seeded bootstrap intervals and paired tests between two systems."""

from __future__ import annotations

import random

import pytest

import evaluators
from evaluators.significance import paired_bootstrap_rows

WORDS = "the a cat dog sat ran on under mat house red blue quickly slowly".split()


def _systems(n: int = 120) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(7)
    refs = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(n)]
    good = [" ".join(w if rng.random() < 0.8 else rng.choice(WORDS) for w in r.split()) for r in refs]
    bad = [" ".join(w if rng.random() < 0.5 else rng.choice(WORDS) for w in r.split()) for r in refs]
    return refs, good, bad


def test_ci_is_seeded_and_seed_is_in_signature() -> None:
    refs, good, _ = _systems()
    a = evaluators.get("bleu", seed=1, n_bootstrap=200).score_corpus(good, refs, ci=True)
    b = evaluators.get("bleu", seed=1, n_bootstrap=200).score_corpus(good, refs, ci=True)
    c = evaluators.get("bleu", seed=2, n_bootstrap=200).score_corpus(good, refs, ci=True)
    assert a.ci == b.ci and a.ci != c.ci
    assert a.ci[0] < a.score < a.ci[1]
    assert "bs:200" in a.signature and "seed:1" in a.signature
    rouge = evaluators.get("rougeL", seed=3, n_bootstrap=200).score_corpus(good, refs, ci=True)
    assert rouge.ci[0] < rouge.score < rouge.ci[1] and "rs:3" in rouge.signature


@pytest.mark.parametrize("name", ["bleu", "chrf", "rougeL", "f1"])
def test_paired_test_detects_the_better_system(name: str) -> None:
    refs, good, bad = _systems()
    a, b = evaluators.get(name), evaluators.get(name)
    a.add_many(bad, refs)
    b.add_many(good, refs)
    result = evaluators.paired_test(a, b, n_resamples=300, seed=5)
    assert result.system_better and result.significant(0.05)
    same = evaluators.paired_test(a, a, n_resamples=300, seed=5)
    assert same.delta == 0 and not same.significant()


def test_our_paired_bootstrap_reproduces_sacrebleus_on_bleu() -> None:
    # Same resamples (same seed and draw), same statistic: the p-value must be identical,
    # which checks the procedure we use for non-sacrebleu metrics against sacrebleu's.
    refs, good, bad = _systems(60)
    a, b = evaluators.get("bleu"), evaluators.get("bleu")
    a.add_many(bad, refs)
    b.add_many(good[:30] + bad[30:], refs)
    theirs = evaluators.paired_test(a, b, n_resamples=200, seed=11)
    ours = paired_bootstrap_rows(a, b, n_resamples=200, seed=11)
    assert theirs.method.startswith("sacrebleu")
    assert ours.p_value == theirs.p_value
    assert ours.system_score == pytest.approx(theirs.system_score)


def test_paired_test_refuses_different_examples() -> None:
    a, b = evaluators.get("rougeL"), evaluators.get("rougeL")
    a.add("x y", ["x y"])
    b.add("x y", ["x z"])
    with pytest.raises(evaluators.IncomparableSystemsError):
        evaluators.paired_test(a, b)
    b.add("q", ["q"])
    with pytest.raises(evaluators.CountMismatchError):
        evaluators.paired_test(a, b)
