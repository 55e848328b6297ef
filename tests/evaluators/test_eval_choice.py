"""acc / acc_norm / acc_bytes against lm-evaluation-harness's multiple_choice process_results,
macro-F1 and MCC against their textbook definitions, intervals, paired tests and calibration."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import evaluators
from evaluators import ChoiceOutcome
from evaluators.errors import InconsistentInputError, InvalidOptionError


def lm_eval_process_results(choices: list[str], lls: list[float], gold: int) -> dict[str, float]:
    """lm-evaluation-harness 0.4 ``ConfigurableTask.process_results`` for ``multiple_choice``."""
    completion_len = np.array([float(len(i)) for i in choices])
    byte_length = np.array([float(len(i.encode("utf-8"))) for i in choices])
    pred = np.argmax(lls)
    pred_norm = np.argmax(np.array(lls) / completion_len)
    pred_byte = np.argmax(np.array(lls) / byte_length)
    return {"acc": 1.0 if pred == gold else 0.0, "acc_norm": 1.0 if pred_norm == gold else 0.0,
            "acc_bytes": 1.0 if pred_byte == gold else 0.0}


def random_outcomes(n: int, seed: int = 0, k: int = 4, ties: bool = True) -> list[ChoiceOutcome]:
    rng = random.Random(seed)
    words = ["a", "bb", "ccc dd", "Paris", " Berlin", "长江", "東京タワー", "ok then"]
    out = []
    for _ in range(n):
        options = tuple(rng.sample(words, k))
        lls = [round(-rng.uniform(0.1, 12.0), 1) for _ in range(k)]
        if ties and rng.random() < 0.3:
            lls[1] = lls[0]  # exact ties: numpy.argmax takes the first
        out.append(ChoiceOutcome(options, tuple(lls), rng.randrange(k), method="m"))
    return out


@pytest.mark.parametrize("name", ["acc", "acc_norm", "acc_bytes"])
def test_accuracies_equal_lm_eval_process_results(name):
    outcomes = random_outcomes(300)
    metric = evaluators.build(name)
    expected = []
    for o in outcomes:
        scored = metric.add(o)
        reference = lm_eval_process_results(list(o.options), list(o.logprobs), o.gold)[name]
        assert scored.score == 100 * reference
        expected.append(reference)
    assert metric.corpus().score == pytest.approx(100 * sum(expected) / len(expected), abs=1e-12)


def test_acc_norm_counts_characters_and_acc_bytes_utf8_bytes():
    # "长江" is 2 characters but 6 bytes: the two normalisations choose different options.
    outcome = ChoiceOutcome(("长江", "abcd"), (-5.0, -7.0), gold=0)
    assert outcome.predicted("chars") == 1   # -2.5 vs -1.75
    assert outcome.predicted("bytes") == 0   # -0.83 vs -1.75
    assert lm_eval_process_results(["长江", "abcd"], [-5.0, -7.0], 0) == {"acc": 1.0, "acc_norm": 0.0, "acc_bytes": 1.0}


def test_ties_pick_the_first_option_and_are_warned_about():
    metric = evaluators.build("acc")
    scored = metric.add(ChoiceOutcome(("x", "y"), (-1.5, -1.5), gold=1))
    assert scored.score == 0.0 and scored.details["chosen"] == 0
    assert any(w.code == "tie" for w in scored.warnings)


def sklearn_like_macro_f1(gold: list[int], pred: list[int]) -> float:
    labels = sorted(set(gold) | set(pred))
    f1s = []
    for c in labels:
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1s) / len(f1s)


def gorodkin_mcc(gold: list[int], pred: list[int], k: int) -> float:
    """R_K as the correlation of one-hot matrices (Gorodkin 2004), written independently."""
    x, y = np.eye(k)[gold], np.eye(k)[pred]
    xc, yc = x - x.mean(0), y - y.mean(0)
    cov_xy, cov_xx, cov_yy = (xc * yc).sum(), (xc * xc).sum(), (yc * yc).sum()
    return 0.0 if cov_xx * cov_yy == 0 else cov_xy / math.sqrt(cov_xx * cov_yy)


def outcomes_for(gold: list[int], pred: list[int], k: int) -> list[ChoiceOutcome]:
    labels = tuple(f"label{i}" for i in range(k))
    return [ChoiceOutcome(labels, tuple(0.0 - (0 if i == p else 1) for i in range(k)), g, labels=labels)
            for g, p in zip(gold, pred)]


def test_binary_macro_f1_and_mcc_by_hand():
    gold, pred = [1, 1, 1, 0, 0], [1, 0, 1, 0, 1]  # TP 2, FN 1, FP 1, TN 1
    f1 = evaluators.build("macro_f1")
    mcc = evaluators.build("mcc")
    for o in outcomes_for(gold, pred, 2):
        f1.add(o)
        mcc.add(o)
    assert f1.corpus().score == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    assert mcc.corpus().score == pytest.approx(100 * (2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2))
    assert f1.corpus().details["confusion"] == [[1, 1], [1, 2]]


@pytest.mark.parametrize("seed", range(5))
def test_three_class_macro_f1_and_mcc_equal_independent_formulas(seed):
    rng = random.Random(seed)
    gold = [rng.randrange(3) for _ in range(60)]
    pred = [g if rng.random() < 0.5 else rng.randrange(2) for g in gold]  # label 2 rarely predicted
    f1, mcc = evaluators.build("macro_f1"), evaluators.build("mcc")
    for o in outcomes_for(gold, pred, 3):
        f1.add(o)
        mcc.add(o)
    assert f1.corpus().score == pytest.approx(100 * sklearn_like_macro_f1(gold, pred), abs=1e-9)
    assert mcc.corpus().score == pytest.approx(100 * gorodkin_mcc(gold, pred, 3), abs=1e-9)


def test_mcc_is_zero_when_one_label_is_always_predicted():
    mcc = evaluators.build("mcc")
    for o in outcomes_for([0, 1, 1, 0], [0, 0, 0, 0], 2):
        mcc.add(o)
    assert mcc.corpus().score == 0.0


def test_intervals_and_paired_tests_follow_the_shared_convention():
    a, b = evaluators.build("acc"), evaluators.build("acc")
    outcomes = random_outcomes(80, seed=3, ties=False)
    for o in outcomes:
        a.add(o)
        # a "better" system: the gold option gets the highest log-likelihood 3 times in 4
        lls = list(o.logprobs)
        if random.Random(o.logprobs[0]).random() < 0.75:
            lls[o.gold] = 0.0
        b.add(ChoiceOutcome(o.options, tuple(lls), o.gold, method="other kind"))
    result = a.corpus(ci=True)
    assert result.ci is not None and result.ci[0] < result.score < result.ci[1]
    assert "bs:1000|rs:12345|ci:mean±hw" in result.signature and result.signature.endswith("method:m")
    paired = evaluators.paired_test(a, b)  # models of different kinds compare: the method is per model
    assert paired.system_score > paired.baseline_score and paired.significant()


def test_paired_tests_refuse_different_gold_labels():
    a, b = evaluators.build("acc"), evaluators.build("acc")
    a.add(ChoiceOutcome(("x", "y"), (-1.0, -2.0), gold=0))
    b.add(ChoiceOutcome(("x", "y"), (-1.0, -2.0), gold=1))
    with pytest.raises(evaluators.IncomparableSystemsError):
        evaluators.paired_test(a, b)


def test_calibration_subtracts_the_content_free_log_likelihoods():
    # Without calibration the model always prefers "positive"; the content-free prompt shows that bias.
    outcome = ChoiceOutcome(("positive", "negative"), (-1.0, -1.5), gold=1, content_free=(-0.5, -2.5))
    plain, calibrated = evaluators.build("acc"), evaluators.build("acc", calibrate=True)
    assert plain.add(outcome).score == 0.0
    assert calibrated.add(outcome).score == 100.0  # -0.5 vs +1.0
    assert "calib:content-free(N/A)" in calibrated.signature
    with pytest.raises(InvalidOptionError, match="content-free"):
        calibrated.add(ChoiceOutcome(("a", "b"), (-1.0, -2.0), gold=0))


@pytest.mark.parametrize("bad", [
    "text",
    ChoiceOutcome(("a", "b"), (-1.0,), gold=0),
    ChoiceOutcome(("a", "b"), (-1.0, -2.0), gold=2),
    ChoiceOutcome(("a", ""), (-1.0, -2.0), gold=0),
    ChoiceOutcome(("a", "b"), (float("nan"), -2.0), gold=0),
])
def test_bad_outcomes_are_refused(bad):
    with pytest.raises(InvalidOptionError):
        evaluators.build("acc").add(bad)


def test_label_set_metrics_need_one_label_set():
    metric = evaluators.build("macro_f1")
    metric.add(ChoiceOutcome(("a", "b"), (-1.0, -2.0), gold=0))
    with pytest.raises(InconsistentInputError):
        metric.add(ChoiceOutcome(("a", "b", "c"), (-1.0, -2.0, -3.0), gold=0))


def test_registry_lists_choice_metrics_with_their_input():
    for name in ("acc", "acc_norm", "acc_bytes", "macro_f1", "mcc"):
        assert evaluators.entry(name).input == "choices"
    assert evaluators.entry("accuracy").name == "acc"
    with pytest.raises(InvalidOptionError):
        evaluators.build("acc", calibrate="yes")
