"""Examples: data records mapped through a scenario's ``fields`` and checked."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Iterator

from scenarios.choice_examples import choice_fields
from scenarios.errors import DataError
from scenarios.loaders import Record, read_csv, read_jsonl, read_parallel, read_squad
from scenarios.scenario import DataSpec, Scenario


@dataclass(frozen=True)
class Example:
    """One evaluation item: what the model sees and what it is scored against."""

    id: str
    index: int
    input: str
    references: tuple[str, ...] = ()
    context: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    location: str = ""
    options: tuple[str, ...] = ()  # choice tasks: the answer options
    gold: int | None = None        # choice tasks: the index of the right one

    def template_values(self) -> dict[str, str]:
        values = {"input": self.input, "context": self.context or "",
                  "reference": self.references[0] if self.references else ""}
        values.update(self.extra)
        return values


def read_records(spec: DataSpec) -> Iterator[Record]:
    if spec.format == "jsonl":
        return read_jsonl(spec.path)
    if spec.format == "csv":
        return read_csv(spec.path)
    if spec.format == "squad":
        return read_squad(spec.path)
    return read_parallel(spec.path, list(spec.references))


def _text(value: Any, record: Record, spec: DataSpec, key: str, data_key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)  # e.g. SciTLDR's source: a list of sentences
    raise DataError(f"field '{data_key}' (for {key}) should be text, found {type(value).__name__}",
                    path=spec.path, line=record.line, key=record.location if record.line is None else None)


def to_example(scenario: Scenario, spec: DataSpec, record: Record, index: int, needs_references: bool) -> Example:
    """Map ``record`` through the scenario's fields. Raises DataError naming file, line and field."""
    values = record.fields

    def lookup(name: str) -> Any:
        data_key = scenario.fields[name]
        if data_key not in values:
            raise DataError(f"missing field '{data_key}' (mapped to {name}); the record has: "
                            f"{', '.join(map(str, values)) or 'nothing'}", path=spec.path, line=record.line,
                            key=None if record.line else record.location)
        return values[data_key]

    references: tuple[str, ...] = ()
    if "references" in scenario.fields and (needs_references or scenario.fields["references"] in values):
        raw = lookup("references")
        items = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(r, str) for r in items):
            raise DataError(f"references in '{scenario.fields['references']}' must be text or a list of text",
                            path=spec.path, line=record.line)
        references = tuple(r for r in items if r.strip())
        if needs_references and not references:
            raise DataError(f"example has no references (field '{scenario.fields['references']}' is empty)",
                            path=spec.path, line=record.line, key=None if record.line else record.location)
    example_id = str(lookup("id")) if "id" in scenario.fields else str(index + 1)
    extra = {name: _text(lookup(name), record, spec, name, key) for name, key in scenario.fields.items()
             if name not in ("id", "input", "context", "references", "label", "choices")}
    options, gold = choice_fields(scenario, spec, record, lookup) if scenario.is_choice else ((), None)
    if scenario.is_choice:  # the gold answer is what every view shows as the reference
        references = ((scenario.labels or options)[gold],)
    context = _text(lookup("context"), record, spec, "context", scenario.fields["context"]) \
        if "context" in scenario.fields else None
    return Example(id=example_id, index=index,
                   input=_text(lookup("input"), record, spec, "input", scenario.fields["input"]),
                   references=references, context=context, extra=extra, location=record.location,
                   options=options, gold=gold)


def load_examples(scenario: Scenario, limit: int | None = None) -> list[Example]:
    """The scenario's examples, up to ``limit`` (else the scenario's own ``limit``), all validated
    before any runs; reading stops at the limit.

    Raises:
        DataError: missing or unreadable file, invalid JSON/UTF-8, missing fields, empty references,
            duplicate ids, mismatched parallel files.
    """
    limit = limit or scenario.limit
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for index, record in enumerate(islice(read_records(scenario.data), limit)):
        example = to_example(scenario, scenario.data, record, index, scenario.needs_references)
        if example.id in seen:
            raise DataError(f"duplicate example id {example.id!r} (first at {seen[example.id]})",
                            path=scenario.data.path, line=record.line)
        seen[example.id] = record.location
        examples.append(example)
    if not examples:
        raise DataError("the data file holds no examples", path=scenario.data.path)
    return examples


def few_shot_pool(scenario: Scenario, examples: list[Example]) -> list[Example]:
    """Candidates for in-context examples: the declared pool, else the scenario's own examples."""
    if scenario.few_shot is None:
        return []
    if scenario.few_shot.pool is None:
        return examples
    spec = scenario.few_shot.pool
    return [to_example(scenario, spec, record, i, True) for i, record in enumerate(read_records(spec))]


def draw_shots(scenario: Scenario, pool: list[Example], example: Example) -> list[Example]:
    """k pool items for ``example``, the same on every run and for every model (seeded by the
    scenario seed and the example id), never the example itself."""
    if scenario.few_shot is None:
        return []
    candidates = [p for p in pool if p.id != example.id]
    rng = random.Random(f"{scenario.seed}:{example.id}")
    return rng.sample(candidates, min(scenario.few_shot.k, len(candidates)))
