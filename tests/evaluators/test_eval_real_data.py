"""Scoring real public data from ../shared/data (WMT21, XQuAD)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sacrebleu
from rouge_score import rouge_scorer

import evaluators



def read_lines(path: Path, limit: int | None = None) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[:limit] if limit else lines


def test_wmt21_en_de_reference_against_itself_and_second_reference(data_dir: Path) -> None:
    ref_a = read_lines(data_dir / "wmt21" / "newstest2021.en-de.ref.A.de")
    ref_c = read_lines(data_dir / "wmt21" / "newstest2021.en-de.ref.C.de")
    assert len(ref_a) == len(ref_c) == 1002
    bleu = evaluators.get("bleu")
    assert bleu.score_corpus(ref_a, ref_a).score == pytest.approx(100.0)
    a_vs_c = bleu.score_corpus(ref_c, ref_a)
    # Same number as sacrebleu's own corpus BLEU; two human translations differ a lot.
    assert a_vs_c.score == sacrebleu.corpus_bleu(ref_c, [ref_a]).score
    assert 15 < a_vs_c.score < 60
    chrf = evaluators.get("chrf").score_corpus(ref_c, ref_a)
    assert chrf.score == sacrebleu.corpus_chrf(ref_c, [ref_a]).score and 40 < chrf.score < 85
    # Two references in one call: ref A scored against {A, C} is still 100.
    assert bleu.score_corpus(ref_a, list(zip(ref_a, ref_c))).score == pytest.approx(100.0)


def test_wmt21_ter_on_a_slice(data_dir: Path) -> None:
    ref_a = read_lines(data_dir / "wmt21" / "newstest2021.en-de.ref.A.de", 80)
    ref_c = read_lines(data_dir / "wmt21" / "newstest2021.en-de.ref.C.de", 80)
    ter = evaluators.get("ter")
    assert ter.score_corpus(ref_a, ref_a).score == 0.0
    assert ter.score_corpus(ref_c, ref_a).score == sacrebleu.corpus_ter(ref_c, [ref_a]).score


def test_wmt21_zh_en_and_en_zh_references_against_themselves(data_dir: Path) -> None:
    en = read_lines(data_dir / "wmt21" / "newstest2021.zh-en.ref.A.en", 400)
    zh = read_lines(data_dir / "wmt21" / "newstest2021.en-zh.ref.A.zh", 400)
    assert evaluators.resolve_language(None, en) is None
    assert evaluators.get("bleu").score_corpus(en, en).score == pytest.approx(100.0)
    language = evaluators.resolve_language(None, zh)  # decided once, over every reference
    assert language == "zh"
    zh_bleu = evaluators.build("bleu", language=language)
    assert zh_bleu.score_corpus(zh, zh).score == pytest.approx(100.0)
    assert "tok:zh" in zh_bleu.signature
    with pytest.raises(evaluators.UnsupportedScriptError):  # no language: 13a, which cannot
        evaluators.build("bleu").score_corpus(zh[:5], zh[:5])
    rouge = evaluators.get("rougeL").score_corpus(zh[:100], zh[:100])
    assert rouge.score == pytest.approx(100.0)
    # A Chinese reference scored against a different Chinese sentence: low but not zero.
    shifted = evaluators.get("rouge1").score_corpus(zh[1:101], zh[:100])
    assert 1 < shifted.score < 50


def test_wmt21_rouge_matches_rouge_score(data_dir: Path) -> None:
    ref_a = read_lines(data_dir / "wmt21" / "newstest2021.de-en.ref.A.en", 200)
    src_like = read_lines(data_dir / "wmt21" / "newstest2021.zh-en.ref.A.en", 200)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(src_like, ref_a)]
    result = evaluators.get("rougeL", tokenizer="rouge-score").score_corpus(src_like, ref_a)
    assert result.score == pytest.approx(100 * sum(expected) / len(expected), rel=1e-12)


def _xquad_answers(path: Path) -> list[list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return [
        [a["text"] for a in qa["answers"]]
        for article in data for paragraph in article["paragraphs"] for qa in paragraph["qas"]
    ]


@pytest.mark.parametrize("language", ["en", "de", "zh"])
def test_xquad_gold_answers_against_themselves(data_dir: Path, language: str) -> None:
    golds = _xquad_answers(data_dir / "xquad" / f"xquad.{language}.json")
    assert len(golds) == 1190
    hyps = [answers[0] for answers in golds]
    resolved = evaluators.resolve_language(None, (a for answers in golds for a in answers))
    assert resolved == ("zh" if language == "zh" else None)
    for name in ("em", "f1"):
        result = evaluators.build(name, language=resolved).score_corpus(hyps, golds)
        assert result.score == pytest.approx(100.0)
        assert result.n == 1190


def test_nq_open_answers_against_themselves(data_dir: Path) -> None:
    rows = [json.loads(line) for line in read_lines(data_dir / "nq_open" / "NQ-open.efficientqa.dev.1.1.sample.jsonl")]
    golds = [row["answer"] for row in rows]
    assert evaluators.get("em").score_corpus([g[-1] for g in golds], golds).score == pytest.approx(100.0)
