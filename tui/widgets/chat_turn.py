"""One chat turn on screen: the user's message, the answer as Markdown, and a stats footer."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from engine import GenerationResult
from tui.widgets.segmented_markdown import SegmentedMarkdown


def usage_record(result: GenerationResult, params: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps about an answer: its usage, finish reason, model and settings."""
    u = result.usage
    return {"prompt_tokens": u.prompt_tokens, "new_tokens": u.new_tokens,
            "time_to_first_token_s": u.time_to_first_token_s, "total_time_s": u.total_time_s,
            "tokens_per_s": u.tokens_per_s, "device": u.device, "dtype": u.dtype, "seed": u.seed,
            "finish_reason": result.finish_reason, "model": result.model, "params": params}


def format_usage(record: dict[str, Any]) -> str:
    """The footer line of an answer, from :func:`usage_record`'s dict (also as stored)."""
    parts = [f"{record.get('new_tokens', 0)} tokens",
             f"first token {record.get('time_to_first_token_s', 0.0):.2f} s",
             f"{record.get('tokens_per_s', 0.0):.1f} tok/s",
             f"{record.get('device', '?')} {record.get('dtype', '?')}"]
    if record.get("seed") is not None:
        parts.append(f"seed {record['seed']}")
    if record.get("finish_reason") not in (None, "stop"):
        parts.append(str(record["finish_reason"]))
    return " · ".join(parts)


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
