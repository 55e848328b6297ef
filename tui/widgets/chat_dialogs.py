"""The chat screen's dialogs: the exact prompt sent, the system prompt editor, saved chats."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from scenarios.store import StoredChat


class PromptViewDialog(ModalScreen[None]):
    """Shows the exact text the model received (after the chat template), read-only."""

    CSS_PATH = "chat_dialogs.tcss"
    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def __init__(self, prompt_text: str) -> None:
        super().__init__(classes="chat-dialog")
        self.prompt_text = prompt_text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Prompt sent (after the chat template) — Esc closes", classes="dialog-title")
            yield TextArea(self.prompt_text, read_only=True, soft_wrap=True, id="prompt-text")


class SystemPromptDialog(ModalScreen[str | None]):
    """Edits the system prompt; dismisses with the new text, or ``None`` when cancelled."""

    CSS_PATH = "chat_dialogs.tcss"
    BINDINGS = [Binding("ctrl+s", "save", "Save system prompt"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, system_prompt: str) -> None:
        super().__init__(classes="chat-dialog")
        self.system_prompt = system_prompt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("System prompt — ctrl+s saves, Esc cancels (empty: none)", classes="dialog-title")
            yield TextArea(self.system_prompt, soft_wrap=True, id="system-prompt")

    def action_save(self) -> None:
        self.dismiss(self.query_one("#system-prompt", TextArea).text.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


def _chat_label(chat: StoredChat) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(chat.updated_at))
    return f"{when}  {chat.title[:40]}  ({chat.model})"


class ChatListDialog(ModalScreen[str | None]):
    """Lists saved chats (most recent first); dismisses with the chosen chat's id."""

    CSS_PATH = "chat_dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, chats: list[StoredChat], *, title: str = "Saved chats") -> None:
        super().__init__(classes="chat-dialog")
        self.chats = chats
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"{self.title_text} — Enter opens, Esc cancels", classes="dialog-title", markup=False)
            if self.chats:
                yield OptionList(*(Option(_chat_label(c), id=c.id) for c in self.chats), id="chat-list")
            else:
                yield Static(f"No {self.title_text.lower()} yet.", id="chat-list-empty")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
