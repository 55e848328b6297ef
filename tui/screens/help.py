"""A modal listing every key binding in force: the screen's and the app's first, generic keys last.

Bindings are read from the live DOM (each node's bindings map), so what is listed is what the
keys do on the screen the help was opened over, including widgets that are not focused.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Static


@dataclass(frozen=True)
class BindingGroup:
    """The bindings one node defines: (keys as displayed, description) rows."""

    title: str
    rows: tuple[tuple[str, str], ...]


def _rows(app, bindings: BindingsMap) -> tuple[tuple[str, str], ...]:
    """One row per action, its keys joined (``esc, q  Close``), in definition order."""
    merged: dict[tuple[str, str], list[str]] = {}
    for _key, binding in bindings:
        description = binding.description or binding.action.replace("_", " ")
        keys = merged.setdefault((binding.action, description), [])
        shown = app.get_key_display(binding)
        if shown not in keys:
            keys.append(shown)
    return tuple((", ".join(keys), description) for (_action, description), keys in merged.items())


def _node_title(node: DOMNode) -> str:
    return type(node).__name__


def _is_ours(node: DOMNode) -> bool:
    return type(node).__module__.startswith("tui.")


def gather_bindings(screen: Screen) -> list[BindingGroup]:
    """Bindings in the order a user needs them: the screen's, the app's, this project's widgets'
    (the focused one first), and last the generic keys of built-in widgets in the focus chain
    (an Input or TextArea lists dozens of editing keys). Each node once, empty ones left out."""
    app = screen.app
    groups: list[BindingGroup] = []
    seen: set[int] = set()
    seen_types: set[type] = set()

    def add(node: DOMNode, title: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        rows = _rows(app, node._bindings)
        if rows:
            groups.append(BindingGroup(title, rows))

    add(screen, f"{screen.title or _node_title(screen)} screen" if screen.title else _node_title(screen))
    add(app, "App")
    focused = screen.focused
    chain = [node for node in (focused.ancestors_with_self if focused is not None else ())
             if isinstance(node, Widget) and not isinstance(node, Screen)]
    for depth, node in enumerate(chain):
        seen_types.add(type(node))
        if _is_ours(node):
            add(node, f"{_node_title(node)} (focused)" if node is focused else _node_title(node))
    for widget in screen.walk_children(Widget):
        # Only this project's widgets: built-in ones (Input, DataTable...) list dozens of editing keys.
        if _is_ours(widget) and type(widget) not in seen_types:
            seen_types.add(type(widget))
            add(widget, _node_title(widget))
    for node in chain:
        if not _is_ours(node):
            add(node, f"{_node_title(node)} (focused, generic keys)" if node is focused else
                f"{_node_title(node)} (generic keys)")
    return groups


def _group_content(group: BindingGroup) -> Content:
    width = max(len(keys) for keys, _ in group.rows)
    return Content("\n").join(Content.assemble((f"{keys:>{width}}", "bold $accent"), "  ", description)
                              for keys, description in group.rows)


class HelpScreen(ModalScreen[None]):
    """Every key binding of the app and of the screen below, grouped by where it is defined.

    Args:
        screen: the screen whose bindings to list; by default the one this modal opens over.
    """

    CSS_PATH = "probe.tcss"
    BINDINGS = [Binding("escape", "close", "Close help"), Binding("q", "close", "Close help", show=False)]

    def __init__(self, screen: Screen | None = None, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._target = screen
        self.groups: list[BindingGroup] = []

    def _screen_below(self) -> Screen | None:
        stack = self.app.screen_stack
        if self in stack:
            index = stack.index(self)
            return stack[index - 1] if index > 0 else None
        return stack[-1] if stack else None

    def compose(self) -> ComposeResult:
        target = self._target or self._screen_below()
        self.groups = gather_bindings(target) if target is not None else []
        with Vertical(id="help-dialog"):
            yield Static(Content.assemble(("Key bindings", "bold"), ("   esc closes", "dim")), id="help-title")
            with VerticalScroll(id="help-body"):
                for group in self.groups:
                    yield Static(group.title, classes="help-group-title")
                    yield Static(_group_content(group), classes="help-group")

    def action_close(self) -> None:
        self.dismiss(None)
