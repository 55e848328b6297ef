"""The loaders on the real public data in ../shared/data, through scenario files a user writes."""

from __future__ import annotations

import pytest

from scenarios.examples import load_examples
from scenarios.scenario import parse_scenario
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"no shared data at {SHARED_DATA}")


def scenario(text: str):
    return parse_scenario(text, SHARED_DATA / "scenario.yaml")


@pytest.mark.parametrize("lang", ["en", "de", "zh"])
def test_xquad_one_example_per_question_with_every_answer(lang):
    s = scenario(f"name: xquad-{lang}\ntask: qa\nsource_lang: {lang}\ntarget_lang: {lang}\n"
                 f"data: {{path: xquad/xquad.{lang}.json}}\n")
    examples = load_examples(s)
    assert len(examples) == 1190 and len({e.id for e in examples}) == 1190
    assert all(e.references and e.context and e.input for e in examples)
    assert all(ref in e.context for e in examples[:200] for ref in e.references)  # extractive answers


def test_scitldr_sentence_lists_and_several_references():
    s = scenario("name: scitldr\ntask: summarization\ndata: {path: scitldr/SciTLDR-A.test.jsonl}\n"
                 "fields: {id: paper_id, input: source, references: target}\nlimit: 100\n")
    examples = load_examples(s)
    assert len(examples) == 100
    assert all(". " in e.input or e.input.endswith(".") for e in examples[:10])  # sentences joined
    assert max(len(e.references) for e in examples) > 1


def test_nq_open_answers_are_references():
    s = scenario("name: nq\ntask: qa\ndata: {path: nq_open/NQ-open.efficientqa.dev.1.1.sample.jsonl}\n"
                 "fields: {input: question, references: answer}\n")
    examples = load_examples(s)
    assert len(examples) == 100 and examples[0].id == "1" and examples[0].references


def test_wmt21_en_de_with_two_reference_files():
    s = scenario("name: wmt21-en-de\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
                 "data:\n  source: wmt21/newstest2021.en-de.src.en\n"
                 "  references: [wmt21/newstest2021.en-de.ref.A.de, wmt21/newstest2021.en-de.ref.C.de]\n")
    examples = load_examples(s)
    assert len(examples) == 1002 and all(len(e.references) == 2 for e in examples)
    src = (SHARED_DATA / "wmt21/newstest2021.en-de.src.en").read_text(encoding="utf-8").splitlines()
    assert [e.input for e in examples] == src
    assert s.prompts["seq2seq"].render(s.template_values() | examples[0].template_values()).startswith(
        "translate English to German: ")


@pytest.mark.parametrize("pair", ["zh-en", "en-zh"])
def test_wmt21_chinese_pairs(pair):
    src, tgt = pair.split("-")
    s = scenario(f"name: wmt21-{pair}\ntask: translation\nsource_lang: {src}\ntarget_lang: {tgt}\nlimit: 50\n"
                 f"data: {{source: wmt21/newstest2021.{pair}.src.{src}, references: wmt21/newstest2021.{pair}.ref.A.{tgt}}}\n")
    examples = load_examples(s)
    assert len(examples) == 50 and all(e.references for e in examples)
    bleu = s.metrics[0].build(s.target_lang)
    assert "tok:zh" in bleu.signature if tgt == "zh" else "tok:13a" in bleu.signature
