"""Non-Latin text: Chinese must get sensible, non-zero ROUGE and BLEU, or a clear error; the
language is decided once per run, never from a hypothesis."""

from __future__ import annotations

import string

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import tokenizers

import evaluators
from evaluators.scripts import detect_family
from evaluators.unicode_tokenizer import UnicodeTokenizer

# The pair from the issue: rouge-score's default tokenizer gives 0.0 for it.
HYP = "大规模语言模型用于构建问答系统"        # 15 characters
REF = "大规模语言模型可以用于构建智能问答系统"  # 19 characters; contains HYP as a subsequence
EN_REF = "Large language models are used to build question answering systems."


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


def test_rouge_score_default_tokenizer_refuses_chinese_references() -> None:
    with pytest.raises(evaluators.UnsupportedScriptError) as info:
        evaluators.get("rouge1", tokenizer="rouge-score").score_example(HYP, REF)
    assert "tokenizer='unicode'" in info.value.hint


def test_resolved_language_picks_zh_tokenizer_and_matches_sacrebleu() -> None:
    language = evaluators.resolve_language(None, [REF])
    assert language == "zh"
    metric = evaluators.build("bleu", language=language)
    score = metric.add(HYP, [REF]).score
    assert score == sacrebleu.sentence_bleu(HYP, [REF], tokenize="zh").score
    assert 30 < score < 90  # sensible: most characters and many n-grams match
    assert "tok:zh" in metric.signature
    assert metric.corpus().score == sacrebleu.corpus_bleu([HYP], [[REF]], tokenize="zh").score


def test_declared_language_picks_tokenizer() -> None:
    metric = evaluators.get("bleu", language="zh-Hans")
    assert "tok:zh" in metric.signature and "detected" not in metric.signature
    ter = evaluators.get("ter", language="zh")
    ter.add(HYP, [REF])
    assert "asian:yes" in ter.signature and ter.corpus().score == pytest.approx(100 * 4 / 19)


def test_no_language_means_space_delimited_defaults_never_detection_from_an_example() -> None:
    # The old metrics detected the tokenizer from the first example (hypothesis included):
    # a Chinese first hypothesis switched the whole corpus to tokenize='zh'.
    bleu = evaluators.build("bleu")
    assert "tok:13a" in bleu.signature  # known before any example
    bleu.add(HYP * 3, [EN_REF])
    bleu.add(EN_REF, [EN_REF])
    assert "tok:13a" in bleu.signature
    assert bleu.corpus().score == sacrebleu.corpus_bleu([HYP * 3, EN_REF], [[EN_REF, EN_REF]]).score


def test_references_in_a_script_the_settings_cannot_score_are_an_error() -> None:
    with pytest.raises(evaluators.UnsupportedScriptError) as info:
        evaluators.get("bleu", tokenize="13a").score_example(HYP, [REF])
    assert "tokenize='zh'" in info.value.hint
    for name in ("bleu", "ter", "f1", "em"):
        with pytest.raises(evaluators.UnsupportedScriptError):
            evaluators.build(name, language="de").score_example(HYP, [REF])
        with pytest.raises(evaluators.UnsupportedScriptError):
            evaluators.build(name).score_example("北京", [REF])


@pytest.mark.parametrize(
    ("name", "options"),
    [("bleu", {"tokenize": "13a"}), ("bleu", {}), ("ter", {}), ("rouge1", {"tokenizer": "rouge-score"}),
     ("em", {}), ("f1", {})],
)
def test_a_hypothesis_in_another_script_is_scored_and_warned_about(name: str, options: dict) -> None:
    metric = evaluators.build(name, language="en", **options)
    example = metric.add(HYP, [EN_REF])
    if metric.higher_is_better:
        assert example.score == pytest.approx(0.0, abs=1.0)
    else:  # TER: every reference word is an edit
        assert example.score >= 100
    assert any(w.code == "hypothesis_script" for w in example.warnings)
    metric.add(EN_REF, [EN_REF])
    warning = next(w for w in metric.corpus().warnings if w.code == "hypothesis_script")
    assert warning.message.startswith("1 of 2 examples")


def test_japanese_without_mecab_is_a_clear_error() -> None:
    from evaluators.sacrebleu_metrics import mecab_available

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


def test_resolve_language_decides_once_over_all_references() -> None:
    # The first reference alone is English; all of them together are Chinese.
    refs = ["OK", *[REF] * 5]
    assert evaluators.resolve_language(None, iter(refs)) == "zh"
    assert evaluators.resolve_language(None, ["Das Wetter ist schön", "It is nice"]) is None
    assert evaluators.resolve_language(None, []) is None
    assert evaluators.resolve_language("de", [REF]) == "de"  # declared wins
    assert evaluators.resolve_language("ZH_hans", ()) == "zh-Hans"
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.resolve_language("klingon", [REF])


@pytest.mark.parametrize(
    ("code", "canonical"),
    [("de", "de"), ("DE", "de"), ("deu", "deu"), ("ger", "ger"), ("cmn", "cmn"), ("yue", "yue"),
     ("zh-Hans", "zh-Hans"), ("zh-hant-tw", "zh-Hant-TW"), ("pt_BR", "pt-BR"), ("es-419", "es-419"),
     ("zho_Hans", "zho-Hans"), (" en ", "en")],
)
def test_accepted_language_codes(code: str, canonical: str) -> None:
    assert evaluators.validate_language(code) == canonical


@pytest.mark.parametrize("code", ["klingon", "xx-nope", "", "en-!!", "english", "auto", "tlh"])
def test_unknown_language_codes(code: str) -> None:
    with pytest.raises(evaluators.InvalidOptionError) as info:
        evaluators.validate_language(code)
    assert info.value.message == f"unknown language {code!r}" and info.value.hint


def test_language_name_hint_for_a_name() -> None:
    with pytest.raises(evaluators.InvalidOptionError) as info:
        evaluators.validate_language("German")
    assert "'de'" in info.value.hint


def test_language_names() -> None:
    assert len(evaluators.LANGUAGE_NAMES) == 184  # every ISO 639-1 code
    assert evaluators.LANGUAGE_NAMES["de"] == "German"
    for code, name in [("de", "German"), ("deu", "German"), ("ger", "German"), ("zh-Hans", "Chinese"),
                       ("pt-BR", "Portuguese"), ("el", "Greek"), ("es", "Spanish"), ("yue", "Cantonese"),
                       ("cmn", "Mandarin Chinese"), ("nb", "Norwegian Bokmål")]:
        assert evaluators.language_name(code) == name
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.language_name("klingon")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable, max_size=80), st.booleans())
def test_unicode_tokenizer_is_rouge_score_tokenizer_on_ascii(text: str, stem: bool) -> None:
    assert UnicodeTokenizer(stem).tokenize(text) == tokenizers.DefaultTokenizer(stem).tokenize(text)


def test_unicode_tokenizer_keeps_scripts() -> None:
    assert UnicodeTokenizer().tokenize("GPT-4模型 über Straße") == ["gpt", "4", "模", "型", "über", "straße"]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40), st.sampled_from([None, "en", "zh", "th", "ko"]))
def test_no_hypothesis_content_raises(hypothesis: str, language: str | None) -> None:
    reference = "北京大学在北京" if language == "zh" else "The answer is here."
    for name in ("bleu", "chrf", "ter", "rouge1", "rougeLsum", "em", "f1"):
        if name == "bleu" and language == "ko":
            continue  # Korean BLEU needs MeCab: a setting, not content
        metric = evaluators.build(name, language=language)
        metric.add(hypothesis, [reference])
        metric.corpus()
    evaluators.build("rouge1", tokenizer="rouge-score").add(hypothesis, ["The answer is here."])
