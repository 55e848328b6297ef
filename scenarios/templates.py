"""Declarative prompt templates: ``{field}`` substitution and nothing else.

No attribute or index access, no conversions or format specs, no code: a template is checked
when the scenario loads, so an unknown field fails before the first example runs.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A template uses something other than plain ``{field}`` substitution."""


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and field names, in order."""

    source: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, field or None)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(f for _, f in self.parts if f is not None)

    def render(self, values: dict[str, str]) -> str:
        """Substitute ``values``; values are inserted verbatim, never interpreted."""
        return "".join(literal + (values[field] if field is not None else "") for literal, field in self.parts)


def parse_template(text: str, allowed: frozenset[str] | set[str]) -> Template:
    """Parse ``text``; raise TemplateError for anything but ``{name}`` with ``name`` in ``allowed``.

    ``{{`` and ``}}`` stand for literal braces, as in Python format strings.
    """
    parts: list[tuple[str, str | None]] = []
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise TemplateError(f"malformed template ({exc}); write {{{{ and }}}} for literal braces") from None
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None))
            continue
        if conversion or spec:
            raise TemplateError(f"{{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}: "
                                "conversions and format specs are not allowed; write {field} only")
        if not field.isidentifier():
            raise TemplateError(f"{{{field}}}: only plain field names are allowed "
                                "(no attribute access, indexing or positional fields)")
        if field not in allowed:
            raise TemplateError(f"unknown field {{{field}}}; available: {', '.join(sorted(allowed))}")
        parts.append((literal, field))
    return Template(text, tuple(parts))
