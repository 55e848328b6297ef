"""QA in Chinese equals the CMRC 2018 evaluation script (ymcui/cmrc2018,
squad-style-data/cmrc2018_evaluate.py), checked against a transcription of its functions.

The transcription below is the script's code ported to Python 3 line by line (``str(x)
.decode('utf-8')`` -> ``str(x)``, ``ur''`` -> ``r''``). Its one change is the documented one:
``nltk.word_tokenize(temp_str)`` needs punkt's data, which cannot be downloaded here, so it
calls ``nltk.word_tokenize(temp_str, preserve_line=True)``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nltk
import pytest
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktSentenceTokenizer

import evaluators
from evaluators.cmrc import mixed_segmentation as our_segmentation
from evaluators.cmrc import remove_punctuation as our_remove_punctuation


# ----------------------------------------------------------------- the script, transcribed
def mixed_segmentation(in_str, rm_punc=False):
    in_str = str(in_str).lower().strip()
    segs_out = []
    temp_str = ""
    sp_char = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
               '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
               '「', '」', '（', '）', '－', '～', '『', '』']
    for char in in_str:
        if rm_punc and char in sp_char:
            continue
        if re.search(r'[\u4e00-\u9fa5]', char) or char in sp_char:
            if temp_str != "":
                ss = nltk.word_tokenize(temp_str, preserve_line=True)
                segs_out.extend(ss)
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char
    if temp_str != "":
        ss = nltk.word_tokenize(temp_str, preserve_line=True)
        segs_out.extend(ss)
    return segs_out


def remove_punctuation(in_str):
    in_str = str(in_str).lower().strip()
    sp_char = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
               '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
               '「', '」', '（', '）', '－', '～', '『', '』']
    out_segs = []
    for char in in_str:
        if char in sp_char:
            continue
        else:
            out_segs.append(char)
    return ''.join(out_segs)


def find_lcs(s1, s2):
    m = [[0 for i in range(len(s2) + 1)] for j in range(len(s1) + 1)]
    mmax = 0
    p = 0
    for i in range(len(s1)):
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                m[i + 1][j + 1] = m[i][j] + 1
                if m[i + 1][j + 1] > mmax:
                    mmax = m[i + 1][j + 1]
                    p = i + 1
    return s1[p - mmax:p], mmax


def calc_f1_score(answers, prediction):
    f1_scores = []
    for ans in answers:
        ans_segs = mixed_segmentation(ans, rm_punc=True)
        prediction_segs = mixed_segmentation(prediction, rm_punc=True)
        lcs, lcs_len = find_lcs(ans_segs, prediction_segs)
        if lcs_len == 0:
            f1_scores.append(0)
            continue
        precision = 1.0 * lcs_len / len(prediction_segs)
        recall = 1.0 * lcs_len / len(ans_segs)
        f1 = (2 * precision * recall) / (precision + recall)
        f1_scores.append(f1)
    return max(f1_scores)


def calc_em_score(answers, prediction):
    em = 0
    for ans in answers:
        ans_ = remove_punctuation(ans)
        prediction_ = remove_punctuation(prediction)
        if ans_ == prediction_:
            em = 1
            break
    return em


# ----------------------------------------------------------------- hand-made cases
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("北京大学。", "北京大学"),          # '。' is in the list
        ("3.5%", "3.5%"),                  # '.' and '%' are not
        ("北京,", "北京,"),                  # nor the ASCII comma
        ("“北京”", "北京"), ("‘北京’", "‘北京"),  # only the right single quote is listed
        ("好……", "好……"),                  # '……' is one two-character entry: '…' never matches
        ("GDP-增长", "gdp增长"), (" 北京 大学 ", "北京 大学"), ("", ""),
    ],
)
def test_remove_punctuation(text: str, expected: str) -> None:
    assert remove_punctuation(text) == expected
    assert our_remove_punctuation(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iPhone 6s手机", ["iphone", "6s", "手", "机"]),
        ("2018年", ["2018", "年"]),
        ("3.5%", ["3.5", "%"]),
        ("GDP-增长", ["gdp", "增", "长"]),  # a listed mark is dropped without ending the run
        ("约3.5%。", ["约", "3.5", "%"]),
        ("", []),
    ],
)
def test_mixed_segmentation(text: str, expected: list[str]) -> None:
    assert mixed_segmentation(text, rm_punc=True) == expected
    assert our_segmentation(text) == expected


@pytest.mark.parametrize(
    ("prediction", "answers"),
    [
        ("35", ["3.5%"]),                    # EM 0 (the old normalisation said 100)
        ("3.5%", ["3.5%"]),
        ("约3.5%", ["3.5%"]),                # F1 from LCS [3.5, %]: P 2/3, R 1
        ("iPhone 6s手机", ["iPhone手机"]),   # mixed Latin / Chinese
        ("北京大学", ["北京", "北京大学。"]),  # max over answers
        ("北京 大学", ["北京大学"]),          # spaces are kept: EM 0, F1 from segments
        ("北京大学,", ["北京大学"]),           # ASCII comma kept: EM 0
        ("", ["北京"]), ("", [""]), ("北京", [""]),
        ("上海", ["上的海"]), ("二〇一八年", ["2018年"]),
    ],
)
def test_em_and_f1_equal_the_script(prediction: str, answers: list[str]) -> None:
    em, f1 = evaluators.build("em", language="zh"), evaluators.build("f1", language="zh")
    assert em.score_example(prediction, answers).score == 100 * calc_em_score(answers, prediction)
    assert f1.score_example(prediction, answers).score == 100 * calc_f1_score(answers, prediction)


def test_named_values() -> None:
    em, f1 = evaluators.build("em", language="zh"), evaluators.build("f1", language="zh")
    assert em.score_example("35", ["3.5%"]).score == 0
    assert f1.score_example("约3.5%", ["3.5%"]).score == pytest.approx(100 * 0.8)
    assert f1.score_example("iPhone 6s手机", ["iPhone手机"]).score == pytest.approx(100 * 4 / 7)


def test_word_tokenizer_without_sentence_splitting() -> None:
    # Sentence splitting can only break after '.', '?' or '!' followed by whitespace, so on
    # runs without one our tokens are the script's whatever punkt's model says. An
    # untrained punkt (no data needed) stands in for it.
    splitter, words = PunktSentenceTokenizer(), NLTKWordTokenizer()
    for run in ["iphone 6s", "3.5%", "u.s.", "hello world.", "version 2.0 beta", 'a "quoted" word', "it's"]:
        assert our_segmentation(run) == [t for s in splitter.tokenize(run) for t in words.tokenize(s)]
    # Where punkt ends a sentence inside a run, the script would split off the period.
    assert [t for s in splitter.tokenize("dr. smith") for t in words.tokenize(s)] == ["dr", ".", "smith"]
    assert our_segmentation("dr. smith") == ["dr.", "smith"]


# ----------------------------------------------------------------- XQuAD zh, whole corpus
def _xquad_predictions(path: Path) -> tuple[list[str], list[list[str]]]:
    """Gold answers with realistic model-like predictions: exact, a few characters of
    context around the answer, half the answer, another question's answer, the answer
    with punctuation or spaces added."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    qas = [(p["context"], qa) for a in data for p in a["paragraphs"] for qa in p["qas"]]
    predictions, golds = [], []
    for i, (context, qa) in enumerate(qas):
        answers = [a["text"] for a in qa["answers"]]
        first = qa["answers"][0]
        start, end = first["answer_start"], first["answer_start"] + len(first["text"])
        variants = [
            first["text"], context[max(0, start - 3):end + 2], first["text"][: max(1, len(first["text"]) // 2)],
            qas[(i + 1) % len(qas)][1]["answers"][0]["text"], first["text"] + "。", " ".join(first["text"]),
            first["text"] + ".", "“" + first["text"] + "”",
        ]
        predictions.append(variants[i % len(variants)])
        golds.append(answers)
    return predictions, golds


def test_xquad_zh_equals_the_script(data_dir: Path) -> None:
    predictions, golds = _xquad_predictions(data_dir / "xquad" / "xquad.zh.json")
    assert len(predictions) == 1190
    language = evaluators.resolve_language(None, (a for answers in golds for a in answers))
    assert language == "zh"
    em, f1 = evaluators.build("em", language=language), evaluators.build("f1", language=language)
    for prediction, answers in zip(predictions, golds):
        assert em.add(prediction, answers).score == 100 * calc_em_score(answers, prediction), prediction
        assert f1.add(prediction, answers).score == 100 * calc_f1_score(answers, prediction), prediction
    # The script's corpus numbers: 100 * sum / total.
    expected_em = 100.0 * sum(calc_em_score(a, p) for p, a in zip(predictions, golds)) / len(golds)
    expected_f1 = 100.0 * sum(calc_f1_score(a, p) for p, a in zip(predictions, golds)) / len(golds)
    assert em.corpus().score == pytest.approx(expected_em, rel=1e-12)
    assert f1.corpus().score == pytest.approx(expected_f1, rel=1e-12)
    assert 30 < em.corpus().score < 80 and 50 < f1.corpus().score < 95  # a mix, not all 0 or 100
