"""One chat turn on screen: the user's message, the answer as Markdown, and a stats footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.widgets.segmented_markdown import SegmentedMarkdown


class ChatTurn(Vertical):
    """A user message and its answer. The answer streams into :attr:`answer` (segmented Markdown)."""

    def __init__(self, user_text: str, answer_text: str = "", footer: str = "") -> None:
        super().__init__(classes="chat-turn")
        self.user_text = user_text
        self._answer_text = answer_text
        self._footer_text = footer

    def compose(self) -> ComposeResult:
        yield Static(self.user_text, classes="chat-user", markup=False)
        yield SegmentedMarkdown(self._answer_text, classes="chat-answer")
        yield Static(self._footer_text, classes="chat-footer", markup=False)

    @property
    def answer(self) -> SegmentedMarkdown:
        return self.query_one(".chat-answer", SegmentedMarkdown)

    @property
    def footer(self) -> Static:
        return self.query_one(".chat-footer", Static)

    def set_footer(self, text: str, error: bool = False) -> None:
        """Show ``text`` under the answer (in the error colour when ``error``)."""
        self.footer.update(text)
        self.footer.set_class(error, "-error")

    async def reset_answer(self) -> None:
        """Clear the answer and footer (before regenerating)."""
        await self.answer.update("")
        self.set_footer("")
