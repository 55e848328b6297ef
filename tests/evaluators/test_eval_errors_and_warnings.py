"""Bad input gets specific errors; doubtful input gets warnings on the result."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

import evaluators


def test_unknown_metric_suggests_close_names() -> None:
    with pytest.raises(evaluators.UnknownMetricError) as info:
        evaluators.get("rouge-lsun")
    assert "did you mean 'rougeLsum'" in str(info.value)
    assert isinstance(info.value, evaluators.EvaluatorError) and info.value.hint


def test_registry_lists_and_aliases() -> None:
    names = evaluators.available()
    for name in ("bleu", "chrf", "chrf++", "ter", "rouge1", "rouge2", "rougeL", "rougeLsum",
                 "exact_match", "f1", "perplexity", "word_perplexity", "bits_per_byte"):
        assert name in names
    assert evaluators.get("ROUGE-L").name == "ROUGE-L"
    assert evaluators.get("chrF++").name == "chrF++"
    assert evaluators.get("EM").name == "EM"


def test_count_mismatch_names_both_counts() -> None:
    with pytest.raises(evaluators.CountMismatchError) as info:
        evaluators.get("bleu").score_corpus(["a", "b", "c"], [["a"], ["b"]])
    assert "3 hypotheses" in str(info.value) and "2 references" in str(info.value)


def test_invalid_options() -> None:
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.get("rougeL", tokenizer="spacy")
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.get("bleu", tokenize="moses")
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.get("bleu").score_example(42, ["x"])


def test_empty_corpus_is_an_error() -> None:
    with pytest.raises(evaluators.EmptyCorpusError):
        evaluators.get("chrf").corpus()


def test_short_sentence_bleu_suggests_chrf() -> None:
    bleu = evaluators.get("bleu", tokenize="13a")
    example = bleu.add("The cat sat.", ["The cat sat down."])
    assert any(w.code == "short_segment_bleu" and "chrF" in w.message for w in example.warnings)
    assert any(w.code == "short_segment_bleu" for w in bleu.corpus().warnings)  # one segment only
    long = "the quick brown fox jumps over the lazy dog near the river bank today"
    assert not bleu.score_example(long, [long]).warnings


def test_lsum_without_newlines_equals_rouge_score_and_warns() -> None:
    # rouge-score never splits text itself: one line is one sentence. The old default split
    # at ". " and scored this pair 100.
    hyp, ref = "Second sentence. First sentence.", "First sentence. Second sentence."
    expected = rouge_scorer.RougeScorer(["rougeLsum"]).score(ref, hyp)["rougeLsum"].fmeasure
    lsum = evaluators.get("rougeLsum")
    result = lsum.add(hyp, [ref])
    assert result.score == pytest.approx(100 * expected) and result.score == pytest.approx(50.0)
    assert any(w.code == "lsum_no_newlines" for w in result.warnings)
    assert "split:newline|" in lsum.signature
    assert any("1 of 1 examples" in w.message for w in lsum.corpus().warnings)
    # One sentence on one line is nothing to warn about.
    assert not evaluators.get("rougeLsum").score_example("One sentence only.", "One sentence.").warnings


def test_lsum_punctuation_splitting_is_explicit() -> None:
    lsum = evaluators.get("rougeLsum", split_sentences="punctuation")
    assert lsum.score_example("Second sentence. First sentence.", "First sentence. Second sentence.").score == 100.0
    assert "split:newline+punctuation" in lsum.signature
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.get("rougeL", split_sentences="punctuation")  # only ROUGE-Lsum has sentences


@pytest.mark.parametrize(
    ("hyp", "refs", "code"),
    [("", ["a reference"], "empty_hypothesis"), ("a hypothesis", [""], "empty_reference"),
     ("a hypothesis", [], "missing_reference"), ("a hypothesis", None, "missing_reference")],
)
def test_empty_inputs_warn(hyp: str, refs: list[str] | None, code: str) -> None:
    for name in ("bleu", "chrf", "rougeL", "f1"):
        metric = evaluators.get(name)
        example = metric.add(hyp, refs)
        assert any(w.code == code for w in example.warnings), name
        assert any(w.code == code for w in metric.corpus().warnings), name


def test_result_format_and_higher_is_better() -> None:
    ter = evaluators.get("ter")
    result = ter.score_corpus(["a b c"], [["a b d"]])
    assert result.higher_is_better is False
    assert result.format().startswith("TER = 33.33 (nrefs:1|")
