"""Non-Latin text: Chinese must get sensible, non-zero ROUGE and BLEU, or a clear error."""

from __future__ import annotations

import string

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import tokenizers

import evaluators
from evaluators.language import UnicodeTokenizer, detect_family, split_sentences

# The pair from the issue: rouge-score's default tokenizer gives 0.0 for it.
HYP = "大规模语言模型用于构建问答系统"        # 15 characters
REF = "大规模语言模型可以用于构建智能问答系统"  # 19 characters; contains HYP as a subsequence


def test_chinese_rouge_is_hand_computed_value() -> None:
    # Every hypothesis character occurs in the reference in order: ROUGE-1 and ROUGE-L
    # precision 15/15, recall 15/19, F = 2PR/(P+R) = 30/34.
    for variant in ("rouge1", "rougeL"):
        result = evaluators.get(variant).score_example(HYP, REF)
        assert result.details["precision"] == pytest.approx(100.0)
        assert result.details["recall"] == pytest.approx(100 * 15 / 19)
        assert result.score == pytest.approx(100 * 30 / 34)
    # Bigrams: the hypothesis has 14; 2 straddle the deleted words (型用, 建问) -> 12 match; the
    # reference has 18.
    rouge2 = evaluators.get("rouge2").score_example(HYP, REF)
    assert rouge2.details["precision"] == pytest.approx(100 * 12 / 14)
    assert rouge2.details["recall"] == pytest.approx(100 * 12 / 18)


def test_rouge_score_default_tokenizer_refuses_chinese() -> None:
    with pytest.raises(evaluators.UnsupportedScriptError) as info:
        evaluators.get("rouge1", tokenizer="rouge-score").score_example(HYP, REF)
    assert "tokenizer='unicode'" in info.value.hint


def test_chinese_bleu_detects_zh_tokenizer_and_matches_sacrebleu() -> None:
    metric = evaluators.get("bleu")
    score = metric.add(HYP, [REF]).score
    assert score == sacrebleu.sentence_bleu(HYP, [REF], tokenize="zh").score
    assert 30 < score < 90  # sensible: most characters and many n-grams match
    assert "tok:zh" in metric.signature and "lang:zh(detected)" in metric.signature
    assert metric.corpus().score == sacrebleu.corpus_bleu([HYP], [[REF]], tokenize="zh").score


def test_declared_language_picks_tokenizer() -> None:
    metric = evaluators.get("bleu", language="zh-Hans")
    assert "tok:zh" in metric.signature and "detected" not in metric.signature
    ter = evaluators.get("ter", language="zh")
    ter.add(HYP, [REF])
    assert "asian:yes" in ter.signature and ter.corpus().score == pytest.approx(100 * 4 / 19)


def test_13a_on_chinese_is_an_error_not_a_zero() -> None:
    with pytest.raises(evaluators.UnsupportedScriptError) as info:
        evaluators.get("bleu", tokenize="13a").score_example(HYP, [REF])
    assert "tokenize='zh'" in info.value.hint
    with pytest.raises(evaluators.UnsupportedScriptError):
        evaluators.get("ter", language="en").score_example(HYP, [REF])


def test_japanese_without_mecab_is_a_clear_error() -> None:
    from evaluators.language import mecab_available

    if mecab_available("ja"):
        pytest.skip("MeCab is installed here")
    with pytest.raises(evaluators.UnsupportedScriptError) as info:
        evaluators.get("bleu", language="ja")
    assert "sacrebleu[ja]" in info.value.hint


def test_detect_family() -> None:
    assert detect_family("今日はいい天気ですね") == "ja"
    assert detect_family("今天天气很好") == "zh"
    assert detect_family("오늘 날씨가 좋네요") == "ko"
    assert detect_family("Das Wetter ist heute schön") is None
    assert detect_family("Погода сегодня хорошая") is None


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable, max_size=80), st.booleans())
def test_unicode_tokenizer_is_rouge_score_tokenizer_on_ascii(text: str, stem: bool) -> None:
    assert UnicodeTokenizer(stem).tokenize(text) == tokenizers.DefaultTokenizer(stem).tokenize(text)


def test_unicode_tokenizer_keeps_scripts() -> None:
    assert UnicodeTokenizer().tokenize("GPT-4模型 über Straße") == ["gpt", "4", "模", "型", "über", "straße"]


def test_split_sentences() -> None:
    assert split_sentences("One. Two! Three?") == ["One.", "Two!", "Three?"]
    assert split_sentences("第一句。第二句！") == ["第一句。", "第二句！"]
    assert split_sentences("a\nb") == ["a", "b"]
