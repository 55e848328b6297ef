"""Appending chat turns to a user scenario: files are created, cases load back, bad targets are refused."""

from __future__ import annotations

import json

import pytest

from scenarios.errors import ScenarioError
from scenarios.examples import load_examples
from scenarios.scenario import load_scenario
from scenarios.user_cases import append_case, default_cases_path


def test_first_case_creates_the_scenario_and_its_data(tmp_path):
    path = tmp_path / "cases" / "mine.yaml"
    case_id = append_case(path, "What is 2+2?", "4")
    assert case_id == "case-1"
    assert path.exists() and (tmp_path / "cases" / "mine.jsonl").exists()
    scenario = load_scenario(path)
    assert scenario.task == "chat" and scenario.name == "mine"
    assert [m.name for m in scenario.metrics] == ["chrf", "rougeL"]
    assert all(t.source == "{input}" for t in scenario.prompts.values())
    [example] = load_examples(scenario)
    assert (example.id, example.input, example.references) == ("case-1", "What is 2+2?", ("4",))


def test_cases_append_with_fresh_ids_and_given_ids(tmp_path):
    path = tmp_path / "s.yaml"
    assert append_case(path, "first", "one") == "case-1"
    assert append_case(path, "second ✓ 中文", "two\nlines") == "case-2"
    assert append_case(path, "third", "three", case_id="mine") == "mine"
    examples = load_examples(load_scenario(path))
    assert [(e.id, e.input, e.references) for e in examples] == [
        ("case-1", "first", ("one",)), ("case-2", "second ✓ 中文", ("two\nlines",)), ("mine", "third", ("three",))]
    with pytest.raises(ScenarioError, match="already exists"):
        append_case(path, "again", "x", case_id="mine")


def test_appends_to_an_existing_user_scenario_with_its_own_field_names(tmp_path):
    (tmp_path / "d.jsonl").write_text(json.dumps({"key": "a", "question": "q?", "answers": ["x"]}), encoding="utf-8")
    path = tmp_path / "own.yaml"
    path.write_text("name: own\ntask: qa\ndata:\n  path: d.jsonl\n"
                    "fields:\n  id: key\n  input: question\n  references: answers\n", encoding="utf-8")
    assert append_case(path, "new question", "new answer") == "case-2"  # the file had no trailing newline
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[1]) == {"key": "case-2", "question": "new question", "answers": ["new answer"]}
    assert [e.id for e in load_examples(load_scenario(path))] == ["a", "case-2"]


def test_refuses_a_scenario_whose_data_is_not_jsonl(tmp_path):
    (tmp_path / "d.csv").write_text("id,input,references\n1,a,b\n", encoding="utf-8")
    path = tmp_path / "csv.yaml"
    path.write_text("name: c\ntask: chat\ndata:\n  path: d.csv\nfields:\n  id: id\n  input: input\n"
                    "  references: references\nmetrics: [chrf]\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="JSONL"):
        append_case(path, "p", "a")
    assert (tmp_path / "d.csv").read_text(encoding="utf-8") == "id,input,references\n1,a,b\n"


def test_refuses_fields_a_chat_turn_cannot_fill(tmp_path):
    path = tmp_path / "qa.yaml"
    path.write_text("name: q\ntask: qa\ndata:\n  path: d.jsonl\nfields:\n  id: id\n  input: q\n  context: c\n"
                    "  references: a\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="context"):
        append_case(path, "p", "a")
    assert not (tmp_path / "d.jsonl").exists()


def test_refuses_invalid_yaml_empty_answers_and_non_yaml_targets(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="malformed YAML"):
        append_case(bad, "p", "a")
    code = tmp_path / "code.yaml"
    code.write_text("!!python/object/apply:os.system ['echo hacked']\n", encoding="utf-8")
    with pytest.raises(ScenarioError):
        append_case(code, "p", "a")
    with pytest.raises(ScenarioError, match="gold answer is empty"):
        append_case(tmp_path / "new.yaml", "p", "   ")
    with pytest.raises(ScenarioError, match="yaml"):
        append_case(tmp_path / "cases.jsonl", "p", "a")
    assert not (tmp_path / "new.yaml").exists()


def test_default_location_is_in_the_user_data_dir():
    path = default_cases_path()
    assert path.name == "my_cases.yaml" and path.parent.name == "cases" and "lmscope" in str(path)


def test_a_case_keeps_the_chats_system_prompt_and_earlier_turns(tmp_path):
    from scenarios.prompting import chat_history

    path = tmp_path / "mine.yaml"
    append_case(path, "And Germany?", "Berlin.", system="Be terse.",
                history=[("user", "Capital of France?"), ("assistant", "Paris.")])
    [example] = load_examples(load_scenario(path))
    assert example.extra["system"] == "Be terse."
    assert [(m.role, m.content) for m in chat_history(example)] == [("user", "Capital of France?"),
                                                                    ("assistant", "Paris.")]


def test_an_old_three_field_scenario_refuses_a_case_it_would_cut(tmp_path):
    path = tmp_path / "old.yaml"
    (tmp_path / "old.jsonl").write_text("", encoding="utf-8")
    path.write_text("name: old\ntask: chat\ndata: {path: old.jsonl}\nfields: {id: id, input: input, "
                    "references: references}\nprompt: '{input}'\nmetrics: [chrf]\n", encoding="utf-8")
    assert append_case(path, "Hi", "Hello") == "case-1"  # no context: fine
    with pytest.raises(ScenarioError, match="system prompt and earlier turns would be lost"):
        append_case(path, "Hi", "Hello", system="Be terse.")
