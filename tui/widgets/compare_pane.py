"""One model's side of a multi-turn comparison: its transcript, a stats footer and live scores.

A pane is a (model, settings) pair: its own :class:`~scenarios.conversation.Conversation` (the
user's messages and its own model's answers, stored as one pane of a stored comparison) and its
own sampling panel with a system prompt, so one model can sit in two panes with different
temperatures or system prompts. It asks its model with the whole conversation, so two panes
never see each other's answers. Every turn is a
:class:`~tui.widgets.chat_turn.ChatTurn` in a scrollable transcript; the latest answer streams
into it through :class:`~tui.widgets.chat_stream.BufferedMarkdownStream` (deltas buffered and
appended every ``FLUSH_INTERVAL_S`` to segmented Markdown, so rendering stays linear). The
latest answer's stats sit in the pane's footer; earlier turns keep a one-line summary.

When the user typed a reference answer, the latest answer is scored (chrF, ROUGE-L) in a thread
at most every ``SCORE_INTERVAL_S`` while it streams, and exactly once more on the final text.
A stopped or failed answer keeps the text produced so far, in the transcript and in the history
the next prompt is sent with (as the chat screen does).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker, WorkerState

import evaluators
from engine import ChatMessage, GenerationParams, GenerationResult, InvalidRequestError, LmscopeError, ModelInfo, TokenDelta
from scenarios.conversation import Answer, Conversation, Waiting, answer_tokens, format_wait, usage_record
from scenarios.scenario import MetricSpec
from tui.widgets.chat_stream import BufferedMarkdownStream
from tui.widgets.chat_turn import ChatTurn
from tui.widgets.sampling_panel import SamplingPanel

LIVE_METRICS = ("chrf", "rougeL")


def short_name(spec: str) -> str:
    """A short display name for what the user typed: a folder's or file's name, a hub id's tail."""
    text = spec.strip().rstrip("/\\")
    return Path(text).name or text or spec


def score_text(text: str, reference: str) -> dict[str, float]:
    """chrF and ROUGE-L of ``text`` against ``reference`` (display name -> score), in the
    language the reference is written in."""
    language = evaluators.resolve_language(None, [reference])
    scores = {}
    for name in LIVE_METRICS:
        metric = MetricSpec(name).build(language)
        scores[metric.name] = metric.score_example(text, [reference]).score
    return scores


class ComparePane(Vertical):
    """One (model, settings) pane of the compare view: a conversation plus live scores.

    ``spec`` is the model as the user typed it (the name requests use), ``info`` what the engine
    loaded, ``label`` the pane's letter (A, B, ...); ``comparison`` the stored comparison its
    conversation belongs to; ``settings`` the sampling panel's starting values (``system`` too).
    :attr:`messages` is the conversation so far (what the next request carries);
    :attr:`last_request` the latest request sent. About the latest answer: ``text`` holds it,
    ``tokens`` the tokens streamed, ``result`` the engine's :class:`GenerationResult` (None if
    stopped before the model started or failed), ``error`` the exception it failed with, and
    ``scores`` the chrF / ROUGE-L against the reference.
    """

    FLUSH_INTERVAL_S = 0.1  # four panes at 0.04 s made keys wait behind their layout passes (bench/keypress.py)
    STATS_INTERVAL_S = 0.25
    SCORE_INTERVAL_S = 0.2

    def __init__(self, spec: str, info: ModelInfo, label: str, *, comparison: str | None = None,
                 settings: dict[str, Any] | None = None, id: str | None = None) -> None:
        super().__init__(id=id, classes="compare-pane")
        self.spec = spec
        self.info = info
        self.label = label
        self._comparison = comparison
        self._settings = dict(settings or {})
        self._conversation: Conversation | None = None
        self.reference = ""
        self._worker: Worker | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._reset_answer()
        self._score_task: asyncio.Task | None = None
        self._score_seq = 0
        self._score_applied = 0
        self._last_score_at = 0.0

    def _reset_answer(self) -> None:
        """Forget the latest answer's text, counts, result and scores."""
        self.text = ""
        self.tokens = 0
        self.result: GenerationResult | None = None
        self.error: Exception | None = None
        self.scores: dict[str, float] = {}
        self._live = False  # tokens are being streamed (the footer says "streaming")
        self._waiting = ""  # what the answer waits for before its first token
        self._record: dict[str, Any] | None = None  # the latest answer's usage record (timings)
        self._started_at = 0.0
        self._first_token_at: float | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._title(), classes="pane-title", markup=False)
        with Horizontal(classes="pane-main"):
            yield VerticalScroll(classes="pane-body")
            yield SamplingPanel(system=True, values=self._settings, classes="pane-sampling -hidden")
        yield Static(self._info_line(), classes="pane-stats", markup=False)

    def on_mount(self) -> None:
        self.sampling.fit_context(self.info.context_length)
        # Anchored: follows a streaming answer, until the user scrolls up to read earlier turns.
        self.body.anchor()

    # ----------------------------------------------------------------------------- public
    @property
    def body(self) -> VerticalScroll:
        """The scrollable transcript."""
        return self.query_one(".pane-body", VerticalScroll)

    @property
    def sampling(self) -> SamplingPanel:
        """This pane's own settings: sampling and system prompt."""
        return self.query_one(SamplingPanel)

    @property
    def conversation(self) -> Conversation:
        """The pane's conversation (made on first use: it needs the app's engine and store)."""
        if self._conversation is None:
            self._conversation = Conversation(self.app.engine, self.app.store, self.spec,
                                              comparison=self._comparison, pane=self.label)
            self._conversation.info = self.info
        return self._conversation

    @property
    def messages(self) -> list[ChatMessage]:
        return self.conversation.messages

    @property
    def last_request(self):
        """The latest request sent (``None`` before the first, or after starting over)."""
        return self.conversation.last_request

    @property
    def turns(self) -> list[ChatTurn]:
        """The turns on screen, oldest first."""
        return [child for child in self.body.children if isinstance(child, ChatTurn)]

    @property
    def streaming(self) -> bool:
        """Whether an answer is being generated (or about to be)."""
        pending = self._worker is not None and self._worker.state == WorkerState.PENDING
        return pending or not self._idle.is_set()

    def settings(self) -> dict[str, Any]:
        """The pane's settings as stored: the sampling texts and the system prompt."""
        return {**self.sampling.values(), "system": self.sampling.system_prompt}

    def checked_params(self) -> GenerationParams | None:
        """The pane's generation parameters, or ``None`` after showing why they are invalid."""
        try:
            return self.sampling.params()
        except InvalidRequestError as exc:
            self.sampling.check()
            self.sampling.remove_class("-hidden")
            self.app.show_error(exc)
            return None

    def start(self, prompt: str, reference: str, params: GenerationParams | None = None) -> None:
        """Send ``prompt`` as the next user message with the pane's settings (``params`` overrides
        its sampling panel); a running answer is stopped first (and kept)."""
        params = params or self.checked_params()
        if params is None:
            return
        self.conversation.system_prompt = self.sampling.system_prompt
        self.refresh_title()
        self._worker = self._answer(prompt, reference, params, self.settings())

    def stop(self) -> None:
        """Stop the answer being generated; what was produced stays."""
        if not self.streaming:
            return
        if not self.conversation.stop() and self._worker is not None:
            # The engine does not know the request yet: cancelling the worker closes the stream.
            self._worker.cancel()

    async def clear(self) -> None:
        """Start over: stop any answer, then forget the conversation and empty the transcript."""
        if self._worker is not None:
            self._worker.cancel()
        await self._idle.wait()
        self.conversation.clear()
        self._reset_answer()
        self._score_seq += 1
        self._score_applied = self._score_seq  # a scoring still running must not show its scores afterwards
        await self.body.remove_children()
        self._update_stats()

    async def restore(self, chat) -> None:
        """Show a stored pane conversation (``scenarios.store.StoredChat``) and continue it."""
        turns, sampling = self.conversation.restore(chat)
        self.sampling.apply({**sampling, "system": self.conversation.system_prompt})
        await self.body.mount_all([ChatTurn(t.user, t.answer or "", t.footer) for t in turns])
        if turns:
            self.text = turns[-1].answer or ""
        self.result = self.conversation.last_result
        self.body.anchor()
        self._update_stats()

    def set_reference(self, reference: str) -> None:
        """Rescore the latest finished answer against a new reference (live scoring does this while streaming)."""
        self.reference = reference
        if not self.streaming and self.turns:
            self._schedule_score(final=True)

    # ----------------------------------------------------------------------------- worker
    @work(exclusive=True, group="answer", exit_on_error=False)
    async def _answer(self, prompt: str, reference: str, params: GenerationParams, settings: dict[str, Any]) -> None:
        await self._idle.wait()  # a superseded answer first writes out what it had
        self._idle.clear()
        turn: ChatTurn | None = None
        writer: BufferedMarkdownStream | None = None
        timer: Timer | None = None
        answer: Answer | None = None
        try:
            turn = await self._begin_turn(prompt, reference)
            writer = BufferedMarkdownStream(turn.answer, self.FLUSH_INTERVAL_S, on_flush=self._flushed)
            timer = self.set_interval(self.STATS_INTERVAL_S, self._update_stats)

            def on_event(event: Waiting | TokenDelta) -> None:
                if isinstance(event, Waiting):
                    self._waiting = event.text
                    self._update_stats()
                    return
                if self._first_token_at is None:
                    self._first_token_at = time.monotonic()
                    self._waiting = ""
                self.tokens += len(event.token_ids)
                self.text += event.text
                writer.write(event.text)

            answer = await self.conversation.send(prompt, params, settings, on_event)
            self.result, self.error = answer.result, answer.error
            if answer.error is not None:
                self.app.show_error(answer.error)
        finally:
            try:
                if timer is not None:
                    timer.stop()
                await self._end_turn(turn, writer, answer)
            finally:
                self._idle.set()

    async def _begin_turn(self, prompt: str, reference: str) -> ChatTurn:
        """Add a turn for ``prompt`` to the transcript."""
        self._reset_answer()
        self.reference = reference
        self._live = True
        self._started_at = time.monotonic()
        self._last_score_at = 0.0
        for earlier in self.turns:
            earlier.remove_class("-latest")  # its summary line shows from now on
        turn = ChatTurn(prompt)
        turn.add_class("-latest")
        await self.body.mount(turn)
        self.body.anchor()  # a new prompt follows the answer again
        self._update_stats()
        return turn

    async def _end_turn(self, turn: ChatTurn | None, writer: BufferedMarkdownStream | None,
                        answer: Answer | None) -> None:
        """Write out the rest of the answer, score it, summarise it."""
        self._live = False
        self._waiting = ""
        if writer is not None:
            await writer.stop()
        if answer is not None and turn is not None and answer.text != self.text:
            # e.g. a stop string trimmed from the end
            if answer.text.startswith(self.text):
                await turn.answer.append(answer.text[len(self.text):])
            else:
                await turn.answer.update(answer.text)
        if answer is not None:
            self.text = answer.text
            self._record = usage_record(answer)
        if turn is not None:
            turn.set_footer(self._turn_summary(), error=self.error is not None)
            await self._score_final()
        self._update_stats()

    def _flushed(self) -> None:
        """After a write to the transcript: maybe rescore. (The footer has its own timer: a
        footer update per flush was a layout pass per pane per flush, and keys waited on them.)"""
        if self.reference and time.monotonic() - self._last_score_at >= self.SCORE_INTERVAL_S:
            self._schedule_score(final=False)

    # ----------------------------------------------------------------------------- scores
    def _schedule_score(self, final: bool) -> None:
        if not self.reference:
            self.scores = {}
            self._update_stats()
            return
        if not final and self._score_task is not None and not self._score_task.done():
            return  # one live scoring at a time; the next flush tries again
        self._last_score_at = time.monotonic()
        self._score_seq += 1
        self._score_task = asyncio.create_task(self._score(self._score_seq, self.text, self.reference))

    async def _score(self, seq: int, text: str, reference: str) -> None:
        try:
            scores = await asyncio.to_thread(score_text, text, reference)
        except Exception as exc:
            self.app.show_error(exc)
            return
        if seq > self._score_applied:  # an older scoring finishing late never wins
            self._score_applied = seq
            self.scores = scores
            self._update_stats()

    async def _score_final(self) -> None:
        if self._score_task is not None and not self._score_task.done():
            await asyncio.wait([self._score_task])
        self._schedule_score(final=True)
        if self._score_task is not None:
            await asyncio.wait([self._score_task])

    # ----------------------------------------------------------------------------- footers
    def _title(self) -> str:
        """``A · model`` and, when set, the pane's distinguishing settings."""
        title = f"{self.label} · {short_name(self.spec)}"
        extra = []
        temperature = self._settings.get("temperature")
        if temperature not in (None, "", "0", "0.0"):
            extra.append(f"T={temperature}")
        if self._settings.get("system"):
            extra.append(f"system: {str(self._settings['system']).splitlines()[0][:24]}")
        return title + (f" · {' · '.join(extra)}" if extra else "")

    def refresh_title(self) -> None:
        """Show the pane's current settings in its title (after the panel changed)."""
        self._settings = self.settings()
        self.query_one(".pane-title", Static).update(self._title())

    def _info_line(self) -> str:
        return f"{self.info.device}/{self.info.dtype} · {self.info.kind}"

    def _turn_summary(self) -> str:
        """The one line an earlier turn keeps under its answer."""
        if self.result is not None:
            u = self.result.usage
            line = f"{answer_tokens(self.result)} tok · {u.tokens_per_s:.1f} tok/s"
            return line if self.result.finish_reason == "stop" else f"{line} · {self.result.finish_reason}"
        if self.error is not None:
            message = self.error.message if isinstance(self.error, LmscopeError) else str(self.error)
            return f"{self.tokens} tok · error: {message}"
        return f"{self.tokens} tok · stopped"

    def _update_stats(self) -> None:
        if self.result is not None:
            u = self.result.usage
            wait = format_wait(self._record or {}, "TTFT") or f"TTFT {u.time_to_first_token_s:.2f} s"
            line = f"{answer_tokens(self.result)} tok · {wait} · {u.tokens_per_s:.1f} tok/s · {u.device}/{u.dtype}"
            if self.result.finish_reason != "stop":
                line += f" · {self.result.finish_reason}"
            if any("truncated" in w for w in self.result.warnings):
                line += " · history truncated"
        elif self._live:
            elapsed = time.monotonic() - self._started_at
            ttft = f" · TTFT {self._first_token_at - self._started_at:.2f} s" if self._first_token_at else ""
            status = self._waiting or "streaming"
            line = f"{self.tokens} tok · {elapsed:.1f} s{ttft} · {self._info_line()} · {status}"
        elif self.error is not None:
            line = f"{self.tokens} tok · error · {self._info_line()}"
        elif self.tokens:
            line = f"{self.tokens} tok · stopped · {self._info_line()}"
        else:
            line = self._info_line()
        if self.scores:
            line += "\n" + " · ".join(f"{name} {score:.1f}" for name, score in self.scores.items())
        self.query_one(".pane-stats", Static).update(line)
