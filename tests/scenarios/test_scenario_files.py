"""Scenario files and data: every kind of bad input gives a clear error naming file, line and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios.errors import DataError, ScenarioError
from scenarios.examples import draw_shots, few_shot_pool, load_examples
from scenarios.scenario import load_scenario

QA_DATA = [{"id": f"q{i}", "question": f"Question {i}?", "context": f"Context {i}.", "answers": [f"answer {i}"]}
           for i in range(6)]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def qa_scenario(folder: Path, extra: str = "", data: list | None = None, fields: str | None = None) -> Path:
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (data or QA_DATA)), encoding="utf-8")
    fields = fields or "  id: id\n  input: question\n  context: context\n  references: answers\n"
    return write(folder, "s.yaml", f"name: t\ntask: qa\ndata:\n  path: qa.jsonl\nfields:\n{fields}{extra}")


def test_a_valid_scenario_loads_with_task_defaults(tmp_path):
    scenario = load_scenario(qa_scenario(tmp_path, "few_shot: {k: 2, pool: data}\n"))
    examples = load_examples(scenario)
    assert [m.name for m in scenario.metrics] == ["exact_match", "f1"]
    assert scenario.generation.max_new_tokens == 32
    assert examples[0].references == ("answer 0",) and examples[0].context == "Context 0."
    shots = draw_shots(scenario, few_shot_pool(scenario, examples), examples[0])
    assert len(shots) == 2 and examples[0] not in shots
    assert shots == draw_shots(scenario, few_shot_pool(scenario, examples), examples[0])  # deterministic


def test_malformed_yaml_reports_the_line(tmp_path):
    path = write(tmp_path, "s.yaml", "name: t\ntask: qa\ndata:\n  path: [unclosed\nmetrics: [bleu]\n")
    with pytest.raises(ScenarioError, match=r"s\.yaml:\d+: malformed YAML") as err:
        load_scenario(path)
    assert err.value.line is not None


def test_unknown_key_suggests_the_right_one(tmp_path):
    with pytest.raises(ScenarioError, match=r"s\.yaml:10: metric: unknown key") as err:
        load_scenario(qa_scenario(tmp_path, "metric: [bleu]\n"))
    assert "did you mean 'metrics'" in err.value.hint


def test_wrong_types_say_expected_and_found(tmp_path):
    with pytest.raises(ScenarioError, match=r"s\.yaml:10: limit: expected an integer, found a string 'ten'"):
        load_scenario(qa_scenario(tmp_path, "limit: ten\n"))
    with pytest.raises(ScenarioError, match=r"task: expected one of qa, summarization"):
        load_scenario(write(tmp_path, "t.yaml", "name: t\ntask: quiz\ndata: {path: qa.jsonl}\n"))


def test_invalid_generation_settings_point_at_the_key(tmp_path):
    with pytest.raises(ScenarioError, match=r"s\.yaml:11: generation.top_p: top_p must be in \(0, 1\]"):
        load_scenario(qa_scenario(tmp_path, "generation:\n  top_p: 1.5\n"))


def test_unknown_metric_gets_did_you_mean(tmp_path):
    with pytest.raises(ScenarioError, match=r"metrics: metrics\[1\]: .*blue") as err:
        load_scenario(qa_scenario(tmp_path, "metrics: [f1, blue]\n"))
    assert "bleu" in str(err.value)


@pytest.mark.parametrize(("template", "message"), [
    ("{question}", r"unknown field \{question\}"),
    ("{0.__class__}", "only plain field names"),
    ("{input.__class__.__mro__}", "only plain field names"),
    ("{input[0]}", "only plain field names"),
    ("{input!r}", "conversions and format specs are not allowed"),
    ("{input:>10}", "conversions and format specs are not allowed"),
    ("{input", "malformed template"),
])
def test_templates_allow_plain_fields_only(tmp_path, template, message):
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(qa_scenario(tmp_path, f"prompt:\n  chat: {json.dumps(template)}\n"))
    assert err.value.key == "prompt.chat" and err.value.line == 11


def test_template_values_are_inserted_verbatim(tmp_path):
    data = [dict(QA_DATA[0], question="What is {context} and {{x}}?")]
    scenario = load_scenario(qa_scenario(tmp_path, 'prompt: "Q: {input} C: {context}"\n', data=data))
    example = load_examples(scenario)[0]
    from scenarios.prompting import render

    assert render(scenario, "chat", example) == "Q: What is {context} and {{x}}? C: Context 0."


def test_missing_data_file(tmp_path):
    path = write(tmp_path, "s.yaml", "name: t\ntask: qa\ndata: {path: nope.jsonl}\nfields: {input: q, references: a}\n")
    with pytest.raises(DataError, match=r"nope\.jsonl: data file not found"):
        load_examples(load_scenario(path))


def test_jsonl_line_that_is_not_json_stops_the_run_with_its_line_number(tmp_path):
    path = qa_scenario(tmp_path)
    lines = (tmp_path / "qa.jsonl").read_text().splitlines()
    lines[3] = '{"id": "q3", "question": oops}'
    (tmp_path / "qa.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"qa\.jsonl:4: line is not valid JSON"):
        load_examples(load_scenario(path))


def test_missing_reference_field_and_empty_references(tmp_path):
    data = [dict(r) for r in QA_DATA]
    del data[2]["answers"]
    with pytest.raises(DataError, match=r"qa\.jsonl:3: missing field 'answers' \(mapped to references\)"):
        load_examples(load_scenario(qa_scenario(tmp_path, data=data)))
    data = [dict(r) for r in QA_DATA]
    data[4]["answers"] = ["", "  "]
    with pytest.raises(DataError, match=r"qa\.jsonl:5: example has no references"):
        load_examples(load_scenario(qa_scenario(tmp_path, data=data)))


def test_duplicate_ids(tmp_path):
    data = [dict(r) for r in QA_DATA]
    data[5]["id"] = "q1"
    with pytest.raises(DataError, match=r"qa\.jsonl:6: duplicate example id 'q1' \(first at qa\.jsonl:2\)"):
        load_examples(load_scenario(qa_scenario(tmp_path, data=data)))


def test_invalid_utf8(tmp_path):
    path = qa_scenario(tmp_path)
    raw = (tmp_path / "qa.jsonl").read_bytes().splitlines(keepends=True)
    raw[1] = raw[1].replace(b"Question 1", b"Question \xff\xfe")
    (tmp_path / "qa.jsonl").write_bytes(b"".join(raw))
    with pytest.raises(DataError, match=r"qa\.jsonl:2: invalid UTF-8"):
        load_examples(load_scenario(path))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_bytes(b"name: \xff\n")
    with pytest.raises(ScenarioError, match="invalid UTF-8"):
        load_scenario(bad_yaml)


def test_parallel_files_with_different_line_counts(tmp_path):
    write(tmp_path, "src.en", "one\ntwo\nthree\n")
    write(tmp_path, "ref.de", "eins\nzwei\n")
    path = write(tmp_path, "s.yaml", "name: t\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
                                     "data: {source: src.en, references: [ref.de]}\n")
    with pytest.raises(DataError, match=r"ref\.de:2: line counts differ: ref\.de ended after 2 lines but src\.en go on"):
        load_examples(load_scenario(path))


def test_limit_stops_reading_before_bad_lines_further_on(tmp_path):
    """Streaming: with limit 50, line 51 onwards is never read (here it is garbage)."""
    good = "".join(json.dumps({"id": i, "question": "q", "context": "c", "answers": ["a"]}) + "\n" for i in range(50))
    (tmp_path / "qa.jsonl").write_text(good + "this is not json\n" * 1000)
    path = write(tmp_path, "s.yaml", "name: t\ntask: qa\ndata: {path: qa.jsonl}\nlimit: 50\n"
                                     "fields: {id: id, input: question, context: context, references: answers}\n")
    assert len(load_examples(load_scenario(path))) == 50
    with pytest.raises(DataError, match=r"qa\.jsonl:51"):
        load_examples(load_scenario(path), limit=51)


def test_squad_files_are_read_article_by_article(tmp_path):
    article = {"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": f"a{i}", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12},
                                                                     {"text": "in France", "answer_start": 9}]}
        for i in range(3)]}]}
    text = json.dumps({"data": [article]})[:-2] + ", {\"title\": \"cut off"  # truncated after article 1
    write(tmp_path, "squad.json", text)
    path = write(tmp_path, "s.yaml", "name: t\ntask: qa\ndata: {path: squad.json}\nlimit: 3\n")
    examples = load_examples(load_scenario(path))
    assert [e.id for e in examples] == ["a0", "a1", "a2"]
    assert examples[0].references == ("France", "in France") and examples[0].context == "Paris is in France."
    with pytest.raises(DataError, match="squad.json"):
        load_examples(load_scenario(path), limit=4)
