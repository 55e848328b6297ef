"""User scenarios grown one case at a time: a chat turn (prompt + gold answer) appended to a JSONL.

A user scenario is an ordinary scenario file (``task: chat``, data in a JSONL beside it, fields
``id`` / ``input`` / ``references``, plus ``system`` and ``history`` for the chat's system prompt
and earlier turns, metrics chrF and ROUGE-L, prompt ``{input}``), so it runs like any other and a
case asks the model exactly what the chat did (see :func:`scenarios.prompting.build_request`).
Cases go next to the results store (``LMSCOPE_DB``'s folder) unless the user names another file. Nothing here evaluates text as code: YAML is read with the safe loader (through
:func:`scenarios.scenario.load_scenario`) and data is plain JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml

from scenarios.errors import ScenarioError
from scenarios.loaders import read_jsonl
from scenarios.scenario import load_scenario
from scenarios.store import default_store_path

CASE_FIELDS = ("id", "input", "references")
CONTEXT_FIELDS = ("system", "history")  # optional: the chat's system prompt, earlier turns (JSON)
DEFAULT_METRICS = ("chrf", "rougeL")


def default_cases_path(store_path: str | Path | None = None) -> Path:
    """Where cases go unless the user names another file: ``cases/my_cases.yaml`` beside the
    results store (``store_path``, else ``LMSCOPE_DB`` or the default store), so a store moved
    with ``--db`` or ``LMSCOPE_DB`` takes its cases along."""
    return Path(store_path or default_store_path()).parent / "cases" / "my_cases.yaml"


def new_scenario_text(name: str, data_file: str) -> str:
    """The YAML of a fresh user scenario whose examples live in ``data_file`` (relative to it)."""
    doc = {
        "name": name,
        "description": "Cases saved from lmscope chats (prompt and gold answer).",
        "task": "chat",
        "data": {"path": data_file},
        "fields": {name_: name_ for name_ in CASE_FIELDS + CONTEXT_FIELDS},
        "prompt": "{input}",
        "metrics": list(DEFAULT_METRICS),
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def append_case(scenario_path: str | Path, prompt: str, answer: str, *, case_id: str | None = None,
                system: str = "", history: Sequence[tuple[str, str]] = ()) -> str:
    """Append ``{"id", "input", "references": [answer]}`` to the data of a user scenario, with
    the chat's ``system`` prompt and its earlier turns (``history``: (role, content) pairs).

    Creates the scenario YAML (and its JSONL, named after it) when missing. Returns the case id:
    ``case_id`` when given, else the first free ``case-N``.

    Raises:
        ScenarioError: empty prompt or answer; an existing scenario that is invalid, whose data is
            not a JSONL file, or whose fields are not exactly id/input/references (other fields
            could not be filled from a chat turn); ``case_id`` already taken; unreadable data.
    """
    path = Path(scenario_path).expanduser()
    if not prompt.strip():
        raise ScenarioError("the prompt is empty; nothing to save", path=path)
    if not answer.strip():
        raise ScenarioError("the gold answer is empty", path=path, hint="type the answer the model should give")
    if case_id is not None and not case_id.strip():
        raise ScenarioError("a case id cannot be blank", path=path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ScenarioError("a user scenario is a .yaml file", path=path, hint="e.g. my_cases.yaml")
    if not path.exists():
        _create(path)
    scenario = load_scenario(path)
    fields = scenario.fields
    if scenario.data.format != "jsonl" or scenario.data.path is None:
        raise ScenarioError(f"cases can only be appended to JSONL data; this scenario's data is {scenario.data.format}",
                            path=path, key="data", hint="pick another scenario file, or a new file name")
    extra = sorted(set(fields) - set(CASE_FIELDS) - set(CONTEXT_FIELDS))
    missing = [name for name in CASE_FIELDS if name not in fields]
    if extra or missing:
        problem = (f"has fields a chat turn cannot fill ({', '.join(extra)})" if extra
                   else f"lacks the field(s) {', '.join(missing)}")
        raise ScenarioError(f"this scenario {problem}; cases need id, input and references (system and history "
                            "are optional)",
                            path=path, key="fields", hint="pick another scenario file, or a new file name")
    data_path = scenario.data.path
    taken = _existing_ids(data_path, fields["id"])
    if case_id is None:
        case_id = _free_id(taken)
    elif case_id in taken:
        raise ScenarioError(f"case id {case_id!r} already exists", path=data_path)
    record = {fields["id"]: case_id, fields["input"]: prompt, fields["references"]: [answer]}
    if (system or history) and not all(name in fields for name in CONTEXT_FIELDS):
        raise ScenarioError("this scenario has no system and history fields, so the chat's system prompt and "
                            "earlier turns would be lost", path=path, key="fields",
                            hint="add `system: system` and `history: history` under fields, or pick a new file")
    if "system" in fields:
        record[fields["system"]] = system
    if "history" in fields:
        record[fields["history"]] = json.dumps([{"role": r, "content": c} for r, c in history], ensure_ascii=False)
    _append_line(data_path, json.dumps(record, ensure_ascii=False))
    return case_id


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_scenario_text(path.stem, f"{path.stem}.jsonl"), encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot create the scenario file: {exc.strerror}", path=path) from None


def _existing_ids(data_path: Path, id_key: str) -> set[str]:
    if not data_path.exists():
        return set()
    return {str(record.fields.get(id_key)) for record in read_jsonl(data_path)}


def _free_id(taken: set[str]) -> str:
    n = len(taken) + 1
    while f"case-{n}" in taken:
        n += 1
    return f"case-{n}"


def _append_line(data_path: Path, line: str) -> None:
    try:
        data_path.parent.mkdir(parents=True, exist_ok=True)
        needs_newline = data_path.exists() and data_path.stat().st_size > 0 and not _ends_with_newline(data_path)
        with open(data_path, "a", encoding="utf-8") as fh:
            fh.write(("\n" if needs_newline else "") + line + "\n")
    except OSError as exc:
        raise ScenarioError(f"cannot write the data file: {exc.strerror}", path=data_path) from None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"
