"""The message editor of the chat and compare screens: multi-line, with input history.

Enter sends; Shift+Enter or Ctrl+J inserts a newline; a bracketed paste keeps its newlines (a
document or code can be pasted whole). Up on the first line and Down on the last line walk
through the messages sent before, as in a shell; what was being typed is kept as the newest
entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.actions import SkipAction
from textual.message import Message
from textual.widgets import TextArea


class ChatInput(TextArea):
    """A :class:`~textual.widgets.TextArea` that posts :class:`ChatInput.Submitted` on Enter."""

    DEFAULT_CSS = """
    ChatInput {
        height: auto;
        min-height: 1;
        max-height: 10;
    }
    """

    @dataclass
    class Submitted(Message):
        """Enter was pressed: ``text`` is the message (the editor is not cleared here)."""

        chat_input: "ChatInput"
        text: str

        @property
        def control(self) -> "ChatInput":
            return self.chat_input

    def __init__(self, *, placeholder: str = "", id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
                         compact=True, highlight_cursor_line=False, placeholder=placeholder)
        self.sent: list[str] = []
        self._history_index: int | None = None  # position while walking the history
        self._draft = ""  # what was typed before walking the history

    @property
    def value(self) -> str:
        """The text typed (an alias of ``text``, as on an ``Input``)."""
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def clear(self) -> "ChatInput":
        """Empty the editor (after a message was sent) and stop walking the history."""
        self._history_index = None
        super().clear()
        return self

    def remember(self, text: str) -> None:
        """Add a sent message to the history (a repeat of the newest entry is not added twice)."""
        if text and (not self.sent or self.sent[-1] != text):
            self.sent.append(text)
        self._history_index = None

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == 0 and self.sent:
            self._walk(-1)
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self._history_index is not None and self.cursor_location[0] == self.document.line_count - 1:
            self._walk(1)
            return
        super().action_cursor_down(select)

    def _walk(self, step: int) -> None:
        if self._history_index is None:
            if step > 0:
                return
            self._draft = self.text
            index = len(self.sent) - 1
        else:
            index = self._history_index + step
        if index < 0:
            return
        if index >= len(self.sent):
            self._history_index = None
            text = self._draft
        else:
            self._history_index = index
            text = self.sent[index]
        self.load_text(text)
        self.move_cursor(self.document.end if step > 0 else (0, len(self.document.get_line(0))))

    @classmethod
    def _merge_bindings(cls):
        # The screen's F5-F7 (probe, save as case) win over the editor's selection shortcuts,
        # in the footer as on the keyboard; Ctrl+A / shift+arrows still select.
        bindings = super()._merge_bindings()
        for key in ("f5", "f6", "f7"):
            bindings.key_to_bindings.pop(key, None)
        return bindings

    # PgUp / PgDn scroll the transcript (the screen's keys), not the cursor by a page.
    def action_cursor_page_up(self) -> None:
        raise SkipAction()

    def action_cursor_page_down(self) -> None:
        raise SkipAction()

    def action_cursor_line_end(self, select: bool = False) -> None:
        # At the end of the line already (an empty editor, say), End goes to the screen: there
        # it scrolls the transcript back to the bottom.
        if not select and self.cursor_location == self.get_cursor_line_end_location():
            raise SkipAction()
        super().action_cursor_line_end(select)
