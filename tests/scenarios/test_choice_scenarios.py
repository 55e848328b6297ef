"""Choice-task scenario files (multiple_choice, classification): validation, data mapping, prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import ModelInfo
from scenarios.catalog import find_scenario
from scenarios.choice_prompting import build_choice_request, content_free
from scenarios.errors import DataError, ScenarioError
from scenarios.examples import draw_shots, load_examples
from scenarios.scenario import load_scenario


def info(kind: str) -> ModelInfo:
    return ModelInfo(name="m", source="m", kind=kind, device="cpu", dtype="float32", context_length=128,
                     num_parameters=1, memory_bytes=1, has_chat_template=kind == "causal", load_time_s=0.0)


def write(folder: Path, yaml_text: str, rows: list[dict] | str, data_name: str = "data.jsonl") -> Path:
    data = rows if isinstance(rows, str) else "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (folder / data_name).write_text(data, encoding="utf-8")
    path = folder / "s.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    return path


CLASSIFY = """name: c
task: classification
data: {path: data.jsonl}
fields: {id: id, input: text, label: label}
labels: {positive: great, negative: awful}
"""
ROWS = [{"id": "a", "text": "nice", "label": "positive"}, {"id": "b", "text": "bad", "label": 1},
        {"id": "c", "text": "meh", "label": "awful"}, {"id": "d", "text": "ok", "label": "0"}]


@pytest.mark.parametrize("name", ["sentiment", "nli", "commonsense_mc", "sentiment_zh"])
def test_builtin_choice_scenarios_load_with_golds_in_range(name):
    scenario = find_scenario(name)
    examples = load_examples(scenario)
    assert 20 <= len(examples) <= 40
    assert all(0 <= e.gold < len(e.options) for e in examples)
    assert len({e.gold for e in examples}) > 1  # not every answer is the same option
    assert not scenario.needs_generation and not scenario.needs_references


def test_chinese_verbalisers_are_picked_by_language():
    scenario = find_scenario("sentiment_zh")
    assert scenario.labels == ("positive", "negative") and scenario.verbalisers == ("正面", "负面")
    request = build_choice_request(scenario, info("causal"), load_examples(scenario)[0], [])
    assert request.options == ("正面", "负面") and request.context.endswith("情感：")


def test_labels_map_by_name_verbaliser_or_index(tmp_path):
    scenario = load_scenario(write(tmp_path, CLASSIFY, ROWS))
    assert [e.gold for e in load_examples(scenario)] == [0, 1, 1, 0]
    assert load_examples(scenario)[0].options == ("great", "awful")


def test_multiple_choice_reads_a_list_or_csv_columns_with_text_labels(tmp_path):
    text = ("name: mc\ntask: multiple_choice\ndata: {path: data.csv}\n"
            "fields: {input: q, choices: [A, B, C], label: answer}\n")
    csv_rows = "q,A,B,C,answer\nWhat is red?,grass,blood,sky,blood\nWhat is blue?,sky,coal,snow,0\n"
    scenario = load_scenario(write(tmp_path, text, csv_rows, "data.csv"))
    examples = load_examples(scenario)
    assert [(e.options, e.gold) for e in examples] == [(("grass", "blood", "sky"), 1), (("sky", "coal", "snow"), 0)]
    assert [m.name for m in scenario.metrics] == ["acc", "acc_norm"]


def test_causal_requests_put_shots_first_and_the_delimiter_before_each_option(tmp_path):
    text = CLASSIFY + "few_shot: {k: 2}\nprompt: {completion: \"Text: {input}\\nSentiment:\"}\nsystem: Be brief.\n"
    scenario = load_scenario(write(tmp_path, text, ROWS))
    examples = load_examples(scenario)
    shots = draw_shots(scenario, examples, examples[0])
    request = build_choice_request(scenario, info("causal"), examples[0], shots)
    blocks = request.context.split("\n\n")
    assert blocks[0] == "Be brief." and blocks[-1] == "Text: nice\nSentiment:"
    assert blocks[1] == f"Text: {shots[0].input}\nSentiment: {shots[0].options[shots[0].gold]}"
    assert request.options == (" great", " awful")
    free = build_choice_request(scenario, info("causal"), content_free(examples[0]), shots)
    assert free.context.endswith("Text: N/A\nSentiment:") and free.options == request.options


def test_seq2seq_and_masked_requests(tmp_path):
    text = CLASSIFY + "prompt: {seq2seq: 'sst2 sentence: {input}', masked: '{input} It was {answer}.'}\n"
    scenario = load_scenario(write(tmp_path, text, ROWS))
    example = load_examples(scenario)[0]
    t5 = build_choice_request(scenario, info("seq2seq"), example, [])
    assert (t5.context, t5.options) == ("sst2 sentence: nice", ("great", "awful"))
    bert = build_choice_request(scenario, info("masked"), example, [])
    assert (bert.context, bert.options, bert.suffix) == ("nice It was ", ("great", "awful"), ".")


BAD_FILES = [
    ("fields: {id: id, input: text, label: label}", "fields: {id: id, input: text}", "fields.label"),
    ("labels: {positive: great, negative: awful}", "labels: [great]", "at least two labels"),
    ("labels: {positive: great, negative: awful}", "labels: {positive: {en: great}, negative: {en: bad}}",
     "need the scenario's language"),
    ("labels: {positive: great, negative: awful}", "labels: {positive: great, negative: great}", "must differ"),
    ("task: classification", "task: classification\nmetrics: [bleu]", "does not score answer options"),
    ("task: classification", "task: classification\nmetrics: [acc, {name: accuracy, calibrate: true}]",
     "listed twice"),
    ("task: classification", "task: classification\nprompt: {masked: '{input} [MASK]'}", "exactly one {answer}"),
    ("task: classification", "task: classification\nprompt: {chat: '{input}'}", "unknown key"),
    ("task: classification", "task: classification\nprompt: {completion: '{input} {label}'}", "unknown field {label}"),
]


@pytest.mark.parametrize("old,new,message", BAD_FILES)
def test_bad_choice_scenarios_name_file_key_and_expectation(tmp_path, old, new, message):
    path = write(tmp_path, CLASSIFY.replace(old, new), ROWS)
    with pytest.raises(ScenarioError) as info_:
        load_scenario(path)
    assert message in str(info_.value) and "s.yaml" in str(info_.value)


def test_label_set_metrics_and_labels_need_classification(tmp_path):
    text = "name: mc\ntask: multiple_choice\ndata: {path: data.jsonl}\nfields: {input: q, choices: c, label: a}\n"
    with pytest.raises(ScenarioError, match="needs a fixed label set"):
        load_scenario(write(tmp_path, text + "metrics: [acc, mcc]\n", []))
    with pytest.raises(ScenarioError, match="needs task: multiple_choice or classification"):
        load_scenario(write(tmp_path, "name: q\ntask: qa\ndata: {path: data.jsonl}\nfields: {input: q, references: a}\n"
                            "metrics: [acc]\n", []))


@pytest.mark.parametrize("row,message", [
    ({"id": "x", "text": "t", "label": "meh"}, "label 'meh' is none of the options"),
    ({"id": "x", "text": "t", "label": 5}, "label 5 is not an option index"),
    ({"id": "x", "text": "t", "label": True}, "should be an option index or text"),
    ({"id": "x", "text": "t"}, "missing field 'label'"),
])
def test_bad_labels_name_the_file_and_line(tmp_path, row, message):
    scenario = load_scenario(write(tmp_path, CLASSIFY, [ROWS[0], row]))
    with pytest.raises(DataError) as info_:
        load_examples(scenario)
    assert message in str(info_.value) and "data.jsonl" in str(info_.value) and ":2" in str(info_.value)


def test_choices_must_be_a_list_of_text(tmp_path):
    text = "name: mc\ntask: multiple_choice\ndata: {path: data.jsonl}\nfields: {input: q, choices: c, label: a}\n"
    scenario = load_scenario(write(tmp_path, text, [{"q": "?", "c": "not a list", "a": 0}]))
    with pytest.raises(DataError, match="should be a list of option texts"):
        load_examples(scenario)


def test_cli_reports_a_bad_choice_scenario_in_one_line(tmp_path, monkeypatch, capsys):
    from tui import cli

    monkeypatch.setenv("LMSCOPE_DB", str(tmp_path / "r.sqlite"))
    path = write(tmp_path, CLASSIFY.replace("labels: {positive: great, negative: awful}", "labels: [great]"), ROWS)
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "s.yaml" in err and "labels" in err and "at least two labels" in err
