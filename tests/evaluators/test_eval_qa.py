"""Exact match and F1 on hand-worked SQuAD / CMRC cases."""

from __future__ import annotations

import pytest

import evaluators


@pytest.mark.parametrize(
    ("prediction", "golds", "em", "f1"),
    [
        # Articles, case and punctuation are normalised away (SQuAD v1.1 normalize_answer).
        ("The Eiffel Tower!", ["Eiffel Tower"], 100.0, 100.0),
        # 1 common token; P = 1/2, R = 1/1 -> F1 = 2/3.
        ("Denver Broncos", ["Broncos"], 0.0, 100 * 2 / 3),
        # Max over gold answers: the second one matches exactly.
        ("Santa Clara", ["Levi's Stadium", "Santa Clara, California", "Santa Clara"], 100.0, 100.0),
        # "in 1990s" vs "the 1990s": tokens {in, 1990s} vs {1990s}: P = 1/2, R = 1 -> 2/3.
        ("in the 1990s", ["the 1990s"], 0.0, 100 * 2 / 3),
        # Repeated tokens match once per occurrence: common = {new:1, york:1} = 2,
        # P = 2/3, R = 2/2 -> F1 = 0.8.
        ("new new york", ["New York"], 0.0, 80.0),
        ("", ["Paris"], 0.0, 0.0),
    ],
)
@pytest.mark.parametrize("language", [None, "en", "de", "ko"])
def test_squad_cases(prediction: str, golds: list[str], em: float, f1: float, language: str | None) -> None:
    assert evaluators.build("em", language=language).score_example(prediction, golds).score == pytest.approx(em)
    assert evaluators.build("f1", language=language).score_example(prediction, golds).score == pytest.approx(f1)


@pytest.mark.parametrize(
    ("prediction", "golds", "em", "f1"),
    [
        # CMRC: listed punctuation removed, characters compared.
        ("北京大学。", ["北京大学"], 100.0, 100.0),
        # Longest common substring 北京 (2 chars): P = 2/4, R = 2/2 -> 2/3.
        ("北京大学", ["北京"], 0.0, 100 * 2 / 3),
        # LCS is contiguous: 上海 vs 上x海 share only 1-char runs: P = 1/2, R = 1/3 -> 0.4.
        ("上海", ["上的海"], 0.0, 40.0),
        # '.' and '%' are not in CMRC's punctuation list: "35" is not "3.5%" (was EM 100).
        # Segments [35] vs [3.5, %]: no common segment.
        ("35", ["3.5%"], 0.0, 0.0),
    ],
)
@pytest.mark.parametrize("language", ["zh", "zh-Hans", "cmn", "yue"])
def test_chinese_character_level(prediction: str, golds: list[str], em: float, f1: float, language: str) -> None:
    assert evaluators.build("em", language=language).score_example(prediction, golds).score == pytest.approx(em)
    assert evaluators.build("f1", language=language).score_example(prediction, golds).score == pytest.approx(f1)


def test_style_is_decided_by_the_language_not_by_the_example() -> None:
    # No language: SQuAD style for every example, even an all-Chinese hypothesis; the old
    # "auto" switched to CMRC per example.
    f1 = evaluators.build("f1")
    example = f1.add("北京大学", ["Peking University"])
    assert example.score == 0.0 and any(w.code == "hypothesis_script" for w in example.warnings)
    assert f1.signature.startswith("norm:squad")
    with pytest.raises(evaluators.InvalidOptionError):
        evaluators.build("f1", language="auto")


def test_english_settings_refuse_chinese_references() -> None:
    with pytest.raises(evaluators.UnsupportedScriptError):
        evaluators.get("f1", language="en").score_example("北京大学", ["北京"])


def test_signature_records_normalisation_and_language() -> None:
    assert evaluators.get("f1", language="en").signature.startswith("norm:squad(lower,punct,articles,ws)")
    assert evaluators.get("f1").signature == evaluators.get("f1", language="de").signature
    zh = evaluators.get("em", language="zh").signature
    assert zh.startswith("norm:cmrc2018") and "lang:zh" in zh


def test_corpus_is_mean_of_examples() -> None:
    metric = evaluators.get("em")
    metric.add_many(["a", "b", "c", "d"], [["a"], ["x"], ["c"], ["y"]])
    assert metric.corpus().score == pytest.approx(50.0)
