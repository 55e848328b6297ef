"""Seeded bootstrap intervals and paired tests between two systems, with sacrebleu's
conventions and numbers."""

from __future__ import annotations

import random

import numpy as np
import pytest
import sacrebleu
from sacrebleu.significance import Result, _bootstrap_resample, _paired_bs_test

import evaluators
from evaluators.resampling import resample_indices, resampled_scores

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
    assert "bs:200" in a.signature and "seed:1" in a.signature and "ci:mean±hw" in a.signature
    rouge = evaluators.get("rougeL", seed=3, n_bootstrap=200).score_corpus(good, refs, ci=True)
    assert rouge.ci[0] < rouge.score < rouge.ci[1] and "rs:3" in rouge.signature and "ci:mean±hw" in rouge.signature


def test_ci_equals_sacrebleus_own_confidence_estimate_for_bleu() -> None:
    # sacrebleu's corpus_score(n_bootstrap=...) (as `sacrebleu --confidence`): same resamples
    # (seed 12345), reported as the bootstrap mean ± half the 95% percentile width.
    refs, good, _ = _systems()
    expected = sacrebleu.BLEU().corpus_score(good, [refs], n_bootstrap=1000)
    result = evaluators.build("bleu").score_corpus(good, refs, ci=True)
    assert result.score == expected.score
    assert result.ci_mean == expected._mean
    assert result.ci == (expected._mean - expected._ci, expected._mean + expected._ci)
    assert result.ci_half_width == pytest.approx(expected._ci, rel=1e-12)


@pytest.mark.parametrize(("name", "theirs"), [("bleu", sacrebleu.BLEU), ("chrf", sacrebleu.CHRF),
                                              ("ter", sacrebleu.TER)])
def test_resampled_scores_equal_sacrebleus(name: str, theirs: type) -> None:
    refs, good, _ = _systems()
    metric = theirs()
    _, their_scores = _bootstrap_resample(metric._extract_corpus_statistics(good, [refs]), metric, 1000)
    ours = evaluators.build(name)
    ours.add_many(good, refs)
    assert list(resampled_scores(ours, resample_indices(len(ours), 1000, 12345))) == [s.score for s in their_scores]
    # chrF/TER resampled scores are float32 numbers there, so sacrebleu's mean is rounded
    # to float32; ours is the float64 mean of the very same values.
    expected = metric.corpus_score(good, [refs], n_bootstrap=1000)
    result = ours.corpus(ci=True)
    assert result.ci_mean == pytest.approx(float(expected._mean), rel=1e-7)
    assert result.ci_half_width == pytest.approx(float(expected._ci), rel=1e-7)


def test_format_prints_mean_and_half_width_like_sacrebleu() -> None:
    refs, good, _ = _systems()
    expected = sacrebleu.BLEU().corpus_score(good, [refs], n_bootstrap=1000)
    result = evaluators.build("bleu").score_corpus(good, refs, ci=True)
    # sacrebleu: "BLEU|<signature> = 46.74 (μ = 46.74 ± 3.86) <verbose>"; ours puts the
    # signature last.
    assert result.format().startswith("BLEU = " + expected.format(score_only=True) + " (nrefs:1|bs:1000|seed:12345|")
    assert "μ = " in result.format() and " ± " in result.format()
    plain = evaluators.build("bleu").score_corpus(good, refs)
    assert plain.ci is None and plain.ci_mean is None and "μ" not in plain.format()


def test_non_sacrebleu_metrics_use_the_same_convention() -> None:
    refs, good, _ = _systems()
    metric = evaluators.build("rougeL", n_bootstrap=300, seed=4)
    result = metric.score_corpus(good, refs, ci=True)
    rows = np.asarray(metric.rows())
    idxs = np.random.default_rng(4).choice(len(rows), size=(300, len(rows)), replace=True)
    scores = sorted(100 * rows[i][:, 2].mean() for i in idxs)
    half_width = (scores[300 - 7 - 1] - scores[7]) / 2  # 300 // 40 = 7 from each end
    assert result.ci_mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert result.ci == pytest.approx((result.ci_mean - half_width, result.ci_mean + half_width), rel=1e-12)


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


@pytest.mark.parametrize(("name", "theirs"), [("bleu", sacrebleu.BLEU), ("chrf", sacrebleu.CHRF)])
def test_paired_test_equals_sacrebleus_paired_bs(name: str, theirs: type) -> None:
    # Every metric goes through the generic path over per-example rows; on BLEU/chrF its
    # p-value and the system's interval equal sacrebleu's own paired bootstrap
    # (`sacrebleu --paired-bs`), called here directly.
    refs, good, bad = _systems(60)
    a, b = evaluators.get(name), evaluators.get(name)
    a.add_many(bad, refs)
    b.add_many(good[:30] + bad[30:], refs)
    ours = evaluators.paired_test(a, b, n_resamples=200, seed=11)
    metric = theirs()
    baseline_stats = metric._extract_corpus_statistics(bad, [refs])
    baseline = Result(metric._aggregate_and_compute(baseline_stats).score)
    _, results = _paired_bs_test({name: (baseline_stats, baseline)}, "system", good[:30] + bad[30:], [refs],
                                 {name: metric}, n_samples=200, seed=11)
    assert ours.p_value == results[name].p_value
    assert ours.system_score == results[name].score
    # sacrebleu averages chrF's float32 resampled scores in float32: equal to float32 precision.
    mean, half_width = float(results[name].mean), float(results[name].ci)
    assert ours.system_ci_mean == pytest.approx(mean, rel=1e-7)
    assert ours.system_ci == pytest.approx((mean - half_width, mean + half_width), rel=1e-6)
    assert "test:paired-bs" in ours.signature and "bs:200" in ours.signature


def test_paired_test_refuses_different_examples() -> None:
    a, b = evaluators.get("rougeL"), evaluators.get("rougeL")
    a.add("x y", ["x y"])
    b.add("x y", ["x z"])
    with pytest.raises(evaluators.IncomparableSystemsError):
        evaluators.paired_test(a, b)
    b.add("q", ["q"])
    with pytest.raises(evaluators.CountMismatchError):
        evaluators.paired_test(a, b)


def test_no_import_circle_between_base_and_significance() -> None:
    # Both import the resampling helpers from their own module, at the top.
    import ast
    import inspect

    from evaluators import base, significance

    for module in (base, significance):
        tree = ast.parse(inspect.getsource(module))
        nested = [node for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
                  for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert not nested, f"{module.__name__} imports inside a function"
