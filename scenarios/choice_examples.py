"""The options and the gold option of a choice-task record, read through the scenario's fields.

``multiple_choice``: ``fields.choices`` names a data key holding a list of option texts, or a list
of data keys (one per option, e.g. CSV columns). ``classification``: the options are the label
set's verbalisers. ``fields.label`` gives the gold option as an index (``1`` or ``"1"``), as the
option's text, or, for classification, as the label's name.
"""

from __future__ import annotations

from typing import Any, Callable

from scenarios.errors import DataError
from scenarios.loaders import Record
from scenarios.scenario import DataSpec, Scenario


def choice_fields(scenario: Scenario, spec: DataSpec, record: Record,
                  lookup: Callable[[str], Any]) -> tuple[tuple[str, ...], int]:
    """(options, gold index) of ``record``. Raises DataError naming the file, line and field."""

    def fail(message: str) -> DataError:
        return DataError(message, path=spec.path, line=record.line, key=None if record.line else record.location)

    if scenario.task == "classification":
        options = scenario.verbalisers
    else:
        keys = scenario.fields["choices"]
        if isinstance(keys, tuple):
            raw = []
            for key in keys:
                if key not in record.fields:
                    raise fail(f"missing field '{key}' (an option column of fields.choices)")
                raw.append(record.fields[key])
        else:
            raw = lookup("choices")
            if not isinstance(raw, list):
                raise fail(f"field '{keys}' (choices) should be a list of option texts, found {type(raw).__name__}")
        if len(raw) < 2:
            raise fail(f"expected at least two options in fields.choices, found {len(raw)}")
        if not all(isinstance(o, str) and o for o in raw):
            raise fail(f"every option should be non-empty text, found {raw!r}")
        options = tuple(raw)
    return options, _gold(scenario, lookup("label"), options, fail)


def _gold(scenario: Scenario, label: Any, options: tuple[str, ...], fail) -> int:
    data_key = scenario.fields["label"]
    if isinstance(label, bool):
        raise fail(f"field '{data_key}' (label) should be an option index or text, found {label!r}")
    if isinstance(label, str) and label.strip().isdigit() and label not in options and label not in scenario.labels:
        label = int(label.strip())
    if isinstance(label, int):
        if not 0 <= label < len(options):
            raise fail(f"label {label} is not an option index (0 to {len(options) - 1})")
        return label
    if isinstance(label, str):
        if label in scenario.labels:
            return scenario.labels.index(label)
        if label in options:
            return options.index(label)
        known = scenario.labels or options
        raise fail(f"label {label!r} is none of the options: {', '.join(map(repr, known))}")
    raise fail(f"field '{data_key}' (label) should be an option index or text, found {type(label).__name__}")
