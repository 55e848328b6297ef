"""Scores against numbers published by the reference implementations' own test suites."""

from __future__ import annotations

import pytest

import evaluators

# sacrebleu's test suite (test/test_bleu.py, test/test_api.py): three hypotheses against
# two reference sets.
HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REF_SETS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
PER_EXAMPLE_REFS = [list(refs) for refs in zip(*REF_SETS)]


@pytest.mark.parametrize(
    ("tokenize", "expected"),
    [("13a", 48.530827), ("none", 49.1919566), ("intl", 43.91623493)],
)
def test_bleu_matches_sacrebleu_published(tokenize: str, expected: float) -> None:
    metric = evaluators.get("bleu", tokenize=tokenize)
    result = metric.score_corpus(HYPS, PER_EXAMPLE_REFS)
    assert result.score == pytest.approx(expected, abs=1e-6)
    assert f"tok:{tokenize}" in result.signature and "nrefs:2" in result.signature


def test_bleu_incremental_reaches_published_value() -> None:
    metric = evaluators.get("bleu", tokenize="13a")
    for hyp, refs in zip(HYPS, PER_EXAMPLE_REFS):
        metric.add(hyp, refs)
    assert metric.corpus().score == pytest.approx(48.530827, abs=1e-6)


# sacrebleu test/test_chrf.py (v2.x): corpus chrF, char order 6, beta 3, eps smoothing;
# sacrebleu's own tolerance there is EPSILON = 1e-4.
CHRF_CASES = [
    (["abcdefg"], ["hijklmnop"], 0.0),
    ([""], ["reference"], 0.0),
    (["aa"], ["ab"], 8.3333),
    (["a", "b"], ["a", "c"], 8.3333),
    (["a"], ["a"], 16.6667),
    (["a b c"], ["abc"], 50.0),
    ([" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ."],
     ["risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ."], 63.361730),
    ([" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "],
     ["Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."], 64.1302698),
    (["Niemand hat die Absicht, eine Mauer zu errichten"], ["Niemand hat die Absicht, eine Mauer zu errichten"], 100.0),
]


@pytest.mark.parametrize(("hyps", "refs", "expected"), CHRF_CASES)
def test_chrf_matches_sacrebleu_published(hyps: list[str], refs: list[str], expected: float) -> None:
    metric = evaluators.get("chrf", char_order=6, word_order=0, beta=3, eps_smoothing=True)
    result = metric.score_corpus(hyps, refs)
    assert abs(result.score - expected) < 1e-4
    assert "nc:6" in result.signature


# sacrebleu test/test_chrf.py test_sentence_level_chrf: sentence chrF (beta 2, eps smoothing).
@pytest.mark.parametrize(
    ("hyp", "ref", "expected"),
    [
        ("Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
         "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", 39.14078509),
        ("Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
         "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", 57.15704367),
    ],
)
def test_sentence_chrf_matches_sacrebleu_published(hyp: str, ref: str, expected: float) -> None:
    metric = evaluators.get("chrf", eps_smoothing=True)
    assert abs(metric.score_example(hyp, [ref]).score - expected) < 1e-4


def test_ter_matches_sacrebleu_published() -> None:
    # sacrebleu test/test_ter.py: one block shift of 3 words over 8 reference words -> 0.125.
    metric = evaluators.get("ter")
    result = metric.score_corpus(["d e f g h a b c"], ["a b c d e f g h"])
    assert result.score == pytest.approx(12.5)
    assert metric.higher_is_better is False


# rouge-score's own test data (google-research/rouge, rouge/testdata/{target,prediction}.txt,
# Apache-2.0, first line of each file) and the values its test suite asserts, which were
# computed by the original ROUGE-1.5.5 Perl script (rouge/rouge_scorer_test.py,
# testRouge1AgainstRouge155, testRouge2AgainstRouge155, testRougeLAgainstRouge155).
ROUGE_TARGET_0 = (
    "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM "
    "EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L"
)
ROUGE_PREDICTION_0 = (
    "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi"
)


@pytest.mark.parametrize(
    ("variant", "precision", "recall", "fmeasure"),
    [
        ("rouge1", 0.68750, 0.40741, 0.51163),
        ("rouge2", 0.53333, 0.30769, 0.39024),
        ("rougeL", 0.68750, 0.40741, 0.51163),
    ],
)
@pytest.mark.parametrize("tokenizer", ["unicode", "rouge-score"])
def test_rouge_against_rouge155(variant: str, precision: float, recall: float, fmeasure: float, tokenizer: str) -> None:
    metric = evaluators.get(variant, tokenizer=tokenizer)
    example = metric.score_example(ROUGE_PREDICTION_0, ROUGE_TARGET_0)
    assert example.details["precision"] == pytest.approx(100 * precision, abs=1e-3)
    assert example.details["recall"] == pytest.approx(100 * recall, abs=1e-3)
    assert example.score == pytest.approx(100 * fmeasure, abs=1e-3)


def test_rouge_lsum_sentence_order_from_rouge_score_suite() -> None:
    # rouge_scorer_test.testRougeLSumSentenceSplitting: swapped sentences score 1.0 with
    # newline-separated summaries, and 0.5 when treated as one sentence.
    lsum = evaluators.get("rougeLsum", use_stemmer=True)
    assert lsum.score_example("Second sentence.\nFirst Sentence.", "First sentence.\nSecond Sentence.").score == pytest.approx(100.0)
    one_sentence = evaluators.get("rougeLsum", use_stemmer=True, split_sentences="newline")
    result = one_sentence.score_example("Second sentence. First Sentence.", "First sentence. Second Sentence.")
    assert result.score == pytest.approx(50.0)
    assert any(w.code == "lsum_no_newlines" for w in result.warnings)


def test_rouge_multi_reference_from_rouge_score_suite() -> None:
    # rouge_scorer_test.testRougeAllMulti: max over references.
    example = "text first"
    refs = ["first text", "first something"]
    assert evaluators.get("rouge1").score_example(example, refs).score == pytest.approx(100.0)
    assert evaluators.get("rouge2").score_example(example, refs).score == pytest.approx(0.0)
    assert evaluators.get("rougeL").score_example(example, refs).score == pytest.approx(50.0)
