"""Metric options as a scenario file or a caller gives them: what each metric accepts, and
a check of every value's type and range before any library sees it.

YAML and JSON types are taken at their word: ``true``/``false`` only for flags (never
``"yes"`` or ``1``), integers only for counts (``true`` is not an integer here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidOptionError


@dataclass(frozen=True)
class Option:
    """One option a metric takes: its kind (``flag``, ``integer``, ``number``, ``choice``,
    ``text``), bounds or choices, and whether ``None`` (use the library default) is allowed."""

    kind: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def describe(self) -> str:
        """What a valid value looks like, e.g. ``an integer >= 1``."""
        if self.kind == "flag":
            text = "true/false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "text":
            text = "a non-empty string"
        else:
            text = "an integer" if self.kind == "integer" else "a number"
            if self.minimum is not None and self.maximum is not None:
                text += f" from {self.minimum:g} to {self.maximum:g}"
            elif self.minimum is not None:
                text += f" >= {self.minimum:g}"
            elif self.maximum is not None:
                text += f" <= {self.maximum:g}"
        return text + (" or null" if self.nullable else "")

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has the right type and lies in range."""
        if value is None:
            return self.nullable
        if self.kind == "flag":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if self.kind == "text":
            return isinstance(value, str) and bool(value.strip())
        if isinstance(value, bool) or not isinstance(value, int if self.kind == "integer" else (int, float)):
            return False
        if not math.isfinite(value):
            return False
        return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)


def flag() -> Option:
    """A true/false option."""
    return Option("flag")


def integer(minimum: int | None = None, maximum: int | None = None) -> Option:
    """An integer option (booleans refused) within the given bounds."""
    return Option("integer", minimum, maximum)


def number(minimum: float | None = None, *, nullable: bool = False) -> Option:
    """A finite int or float option (booleans refused)."""
    return Option("number", minimum, nullable=nullable)


def choice(*values: str) -> Option:
    """One of a fixed set of strings."""
    return Option("choice", choices=tuple(values))


def text() -> Option:
    """A non-empty string."""
    return Option("text")


# Options every metric takes: the bootstrap behind confidence intervals and paired tests.
COMMON_OPTIONS: dict[str, Option] = {"n_bootstrap": integer(1), "seed": integer(0, 2**63 - 1)}


def check_options(metric: str, accepted: Mapping[str, Option], given: Mapping[str, Any]) -> None:
    """Refuse an option ``metric`` does not take, or a value of the wrong type or range.

    Raises:
        InvalidOptionError: naming the option, with the accepted ones (or the expected
            value) as the hint.
    """
    for name, value in given.items():
        option = accepted.get(name)
        if option is None:
            raise InvalidOptionError(
                f"{metric} takes no option {name!r}",
                f"{metric} takes: " + ", ".join(sorted(accepted)),
            )
        if not option.accepts(value):
            raise InvalidOptionError(
                f"{metric}: option {name} = {value!r}: expected {option.describe()}",
                f"for example {name}: {_example(option)}",
            )


def _example(option: Option) -> str:
    if option.kind == "flag":
        return "true"
    if option.kind == "choice":
        return option.choices[0]
    if option.kind == "text":
        return "name"
    low = option.minimum if option.minimum is not None else 0
    return str(int(low)) if option.kind == "integer" else f"{low:g}"
