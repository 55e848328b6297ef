"""Bad scenario files and data: each case is one clear error naming the file, the line where
there is one, and the key or field at fault — before any model runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from scenarios.errors import DataError, ScenarioError
from scenarios.examples import load_examples
from scenarios.scenario import load_scenario

ROWS = [{"id": f"s{i}", "en": f"Sentence {i}.", "de": f"Satz {i}."} for i in range(3)]
JSONL = "".join(json.dumps(r) + "\n" for r in ROWS)
BASE = ("name: t\ntask: translation\nsource_lang: en\ntarget_lang: de\n"
        "data: {path: data.jsonl}\nfields: {id: id, input: en, references: de}\n")
QA_BASE = "name: q\ntask: qa\ndata: {path: data.json}\n"


@dataclass(frozen=True)
class Case:
    name: str
    yaml: str
    error: type[ScenarioError]
    fragment: str
    line: int | None = None
    files: dict[str, str] = field(default_factory=lambda: {"data.jsonl": JSONL})


def squad(paragraphs) -> str:
    return json.dumps({"version": "1.1", "data": [{"title": "x", "paragraphs": paragraphs}]})


def deep(n: int) -> str:
    return "[" * n + "]" * n


CASES = [
    # --------------------------------------------------------------------- generation settings
    Case("max_new_tokens: true", BASE + "generation:\n  max_new_tokens: true\n", ScenarioError,
         "generation.max_new_tokens: expected an integer, found true/false", 8),
    Case("logprobs: 'no'", BASE + "generation:\n  logprobs: \"no\"\n", ScenarioError,
         "generation.logprobs: expected true/false, found a string", 8),
    Case("temperature: hot", BASE + "generation: {temperature: hot}\n", ScenarioError,
         "generation.temperature: expected an integer or a number", 7),
    Case("temperature: -1", BASE + "generation: {temperature: -1}\n", ScenarioError, "temperature must be >= 0"),
    Case("top_p: 2", BASE + "generation: {top_p: 2}\n", ScenarioError, "top_p must be in (0, 1]"),
    Case("top_k: 1.5", BASE + "generation: {top_k: 1.5}\n", ScenarioError, "generation.top_k: expected an integer"),
    Case("stop: [1, 2]", BASE + "generation: {stop: [1, 2]}\n", ScenarioError, "expected a list of strings"),
    Case("generation seed -1", BASE + "generation: {seed: -1}\n", ScenarioError,
         "expected an integer from 0 to 2**63-1, found -1"),
    Case("generation seed 10**23", BASE + f"generation: {{seed: {10**23}}}\n", ScenarioError,
         "expected an integer from 0 to 2**63-1"),
    Case("unknown generation key", BASE + "generation: {max_tokens: 5}\n", ScenarioError, "unknown key"),
    Case("truncation: middle", BASE + "generation: {truncation: middle}\n", ScenarioError,
         "truncation must be 'left' or 'error'"),
    # ------------------------------------------------------------------------- top-level keys
    Case("seed: 1e23", BASE + "seed: 1e23\n", ScenarioError, "seed: expected an integer", 7),
    Case("seed: 1.0e+23", BASE + "seed: 1.0e+23\n", ScenarioError, "seed: expected an integer", 7),
    Case("seed: 10**23", BASE + f"seed: {10**23}\n", ScenarioError, "expected an integer from 0 to 2**63-1", 7),
    Case("limit: 0", BASE + "limit: 0\n", ScenarioError, "limit: expected an integer >= 1, found 0", 7),
    Case("duplicate top-level key", BASE + "name: again\n", ScenarioError, "duplicate key 'name' (first given on line 1)",
         7),
    Case("duplicate nested key", BASE + "generation:\n  max_new_tokens: 5\n  max_new_tokens: 6\n", ScenarioError,
         "duplicate key 'max_new_tokens'", 9),
    Case("target_lang: klingon", BASE.replace("target_lang: de", "target_lang: klingon"), ScenarioError,
         "unknown language 'klingon'", 4),
    Case("source_lang: 5", BASE.replace("source_lang: en", "source_lang: 5"), ScenarioError,
         "source_lang: expected a string, found an integer", 3),
    Case("task: quiz", BASE.replace("task: translation", "task: quiz"), ScenarioError, "expected one of qa"),
    Case("malformed YAML", "name: t\ntask: [\n", ScenarioError, "malformed YAML"),
    Case("YAML nested 100,000 deep", "name: " + deep(100_000) + "\n", ScenarioError, "nested too deeply"),
    Case("not a mapping", "- a\n- b\n", ScenarioError, "expected a mapping of scenario keys", 1),
    # ---------------------------------------------------------------------------- metrics
    Case("unknown metric", BASE + "metrics: [blue]\n", ScenarioError, "unknown metric 'blue'", 7),
    Case("option the metric does not take", BASE + "metrics: [{name: bleu, foo: 1}]\n", ScenarioError, "foo", 7),
    Case("use_stemmer: yes please", BASE + "metrics: [{name: rougeL, use_stemmer: yes please}]\n", ScenarioError,
         "use_stemmer", 7),
    Case("chrF char_order: -1", BASE + "metrics: [{name: chrf, char_order: -1}]\n", ScenarioError, "char_order", 7),
    Case("bleu tokenize unknown", BASE + "metrics: [{name: bleu, tokenize: nope}]\n", ScenarioError, "tokenize", 7),
    Case("metric item is a number", BASE + "metrics: [5]\n", ScenarioError, "expected a metric name", 7),
    Case("perplexity language option", BASE + "metrics: [{name: bleu, language: klingon}]\n", ScenarioError,
         "klingon", 7),
    # ------------------------------------------------------------------------------- data
    Case("SQuAD paragraphs that are not objects", QA_BASE, DataError, "paragraphs",
         files={"data.json": squad(["just a string", 5])}),
    Case("SQuAD qas that are not objects", QA_BASE, DataError, "qas",
         files={"data.json": squad([{"context": "c", "qas": ["q"]}])}),
    Case("SQuAD article that is a list", QA_BASE, DataError, "article",
         files={"data.json": json.dumps({"data": [[1, 2]]})}),
    Case("SQuAD JSON nested 100,000 deep", QA_BASE, DataError, "nested too deeply",
         files={"data.json": '{"data": [' + deep(100_000) + "]}"}),
    Case("JSONL line nested 100,000 deep", BASE, DataError, "nested too deeply",
         files={"data.jsonl": JSONL + '{"id": "x", "en": ' + deep(100_000) + "}\n"}),
    Case("JSONL line not an object", BASE, DataError, "expected a JSON object", files={"data.jsonl": "[1]\n"}),
    Case("JSONL invalid JSON", BASE, DataError, "not valid JSON", files={"data.jsonl": "{oops\n"}),
    Case("missing field", BASE, DataError, "missing field 'de'", files={"data.jsonl": '{"id": "a", "en": "x"}\n'}),
    Case("empty references", BASE, DataError, "no references", files={"data.jsonl": '{"id": "a", "en": "x", "de": ""}\n'}),
    Case("duplicate ids", BASE, DataError, "duplicate example id 's0'", files={"data.jsonl": JSONL + JSONL}),
    Case("input is an object", BASE, DataError, "should be text",
         files={"data.jsonl": '{"id": "a", "en": {"x": 1}, "de": "y"}\n'}),
    Case("missing data file", BASE, DataError, "data file not found", files={}),
    Case("empty data file", BASE, DataError, "holds no examples", files={"data.jsonl": ""}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_scenario_bad_input(case: Case, tmp_path):
    for name, content in case.files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    path = tmp_path / "s.yaml"
    path.write_text(case.yaml, encoding="utf-8")
    with pytest.raises(case.error) as err:
        load_examples(load_scenario(path))
    text = str(err.value)
    assert case.fragment in text, text
    assert text.startswith(str(path)) or str(path) in text or str(tmp_path) in text, text
    if case.line is not None:
        assert err.value.line == case.line, text
    assert "\n" not in err.value.message
