"""One model's side of a multi-turn comparison: its transcript, a stats footer and live scores.

Each pane keeps its own conversation (the user's messages and its own model's answers) and asks
its model with the whole of it, so two models never see each other's answers. Every turn is a
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
import dataclasses
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker, WorkerState

import evaluators
from engine import (
    ChatMessage,
    ChatRequest,
    GenerationParams,
    GenerationResult,
    LmscopeError,
    ModelInfo,
    Text2TextRequest,
    TokenDelta,
)
from scenarios.scenario import MetricSpec
from tui.widgets.chat_stream import BufferedMarkdownStream
from tui.widgets.chat_turn import ChatTurn

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


def build_request(spec: str, info: ModelInfo, messages: tuple[ChatMessage, ...],
                  params: GenerationParams) -> ChatRequest | Text2TextRequest:
    """The request that asks ``spec`` to answer the last of ``messages``.

    Causal LMs get the whole conversation (a chat request); seq2seq models are not chat
    models and get the last user message alone. Raises :class:`LmscopeError` for masked LMs.
    """
    if info.context_length:
        limit = max(1, info.context_length // 2)
        params = dataclasses.replace(params, max_new_tokens=min(params.max_new_tokens, limit))
    if info.kind == "seq2seq":
        return Text2TextRequest(spec, messages[-1].content, params=params)
    if info.kind == "masked":
        raise LmscopeError(f"{spec} is a masked language model; it cannot write answers",
                           hint="compare causal or seq2seq models; use the probing view for fill-mask")
    return ChatRequest(spec, tuple(messages), params)


class ComparePane(Vertical):
    """One model's conversation in the compare view, with the latest answer's stats and scores.

    ``spec`` is the model as the user typed it (the name requests use), ``info`` what the engine
    loaded, ``label`` the pane's letter (A, B, ...). :attr:`messages` is the conversation so far
    (what the next request carries); :attr:`last_request` the latest request sent. About the
    latest answer: ``text`` holds it, ``tokens`` the tokens streamed, ``result`` the engine's
    :class:`GenerationResult` (None if stopped before the model started or failed), ``error``
    the exception it failed with, and ``scores`` the chrF / ROUGE-L against the reference.
    """

    FLUSH_INTERVAL_S = 0.04
    STATS_INTERVAL_S = 0.25
    SCORE_INTERVAL_S = 0.2

    def __init__(self, spec: str, info: ModelInfo, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="compare-pane")
        self.spec = spec
        self.info = info
        self.label = label
        self.messages: list[ChatMessage] = []
        self.last_request: ChatRequest | Text2TextRequest | None = None
        self.reference = ""
        self.request_id: str | None = None
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
        self._started_at = 0.0
        self._first_token_at: float | None = None

    def compose(self) -> ComposeResult:
        yield Static(f"[b]{self.label}[/b] · {short_name(self.spec)}", classes="pane-title", markup=True)
        yield VerticalScroll(classes="pane-body")
        yield Static(self._info_line(), classes="pane-stats", markup=False)

    def on_mount(self) -> None:
        # Anchored: follows a streaming answer, until the user scrolls up to read earlier turns.
        self.body.anchor()

    # ----------------------------------------------------------------------------- public
    @property
    def body(self) -> VerticalScroll:
        """The scrollable transcript."""
        return self.query_one(".pane-body", VerticalScroll)

    @property
    def turns(self) -> list[ChatTurn]:
        """The turns on screen, oldest first."""
        return [child for child in self.body.children if isinstance(child, ChatTurn)]

    @property
    def streaming(self) -> bool:
        """Whether an answer is being generated (or about to be)."""
        pending = self._worker is not None and self._worker.state == WorkerState.PENDING
        return pending or not self._idle.is_set()

    def start(self, prompt: str, reference: str, params: GenerationParams) -> None:
        """Send ``prompt`` as the next user message; a running answer is stopped first (and kept)."""
        self._worker = self._answer(prompt, reference, params)

    def stop(self) -> None:
        """Stop the answer being generated; what was produced stays."""
        if not self.streaming:
            return
        if self.request_id is None or not self.app.engine.cancel(self.request_id):
            # The engine does not know the request yet: cancelling the worker closes the stream.
            if self._worker is not None:
                self._worker.cancel()

    async def clear(self) -> None:
        """Start over: stop any answer, then forget the conversation and empty the transcript."""
        if self._worker is not None:
            self._worker.cancel()
        await self._idle.wait()
        self.messages = []
        self.last_request = None
        self._reset_answer()
        self._score_seq += 1
        self._score_applied = self._score_seq  # a scoring still running must not show its scores afterwards
        await self.body.remove_children()
        self._update_stats()

    def set_reference(self, reference: str) -> None:
        """Rescore the latest finished answer against a new reference (live scoring does this while streaming)."""
        self.reference = reference
        if not self.streaming and self.turns:
            self._schedule_score(final=True)

    # ----------------------------------------------------------------------------- worker
    @work(exclusive=True, group="answer", exit_on_error=False)
    async def _answer(self, prompt: str, reference: str, params: GenerationParams) -> None:
        await self._idle.wait()  # a superseded answer first writes out what it had
        self._idle.clear()
        turn: ChatTurn | None = None
        writer: BufferedMarkdownStream | None = None
        timer: Timer | None = None
        try:
            turn = await self._begin_turn(prompt, reference)
            writer = BufferedMarkdownStream(turn.answer, self.FLUSH_INTERVAL_S, on_flush=self._flushed)
            timer = self.set_interval(self.STATS_INTERVAL_S, self._update_stats)
            request = build_request(self.spec, self.info, tuple(self.messages), params)
            self.last_request, self.request_id = request, request.request_id
            async for event in self.app.engine.stream(request):
                if isinstance(event, TokenDelta):
                    if self._first_token_at is None:
                        self._first_token_at = time.monotonic()
                    self.tokens += len(event.token_ids)
                    self.text += event.text
                    writer.write(event.text)
                else:
                    self.result = event
        except Exception as exc:  # engine errors are shown; the text produced so far stays
            self.error = exc
            self.app.show_error(exc)
        finally:
            try:
                if timer is not None:
                    timer.stop()
                await self._end_turn(turn, writer)
            finally:
                self._idle.set()

    async def _begin_turn(self, prompt: str, reference: str) -> ChatTurn:
        """Add ``prompt`` to the conversation and a turn for it to the transcript."""
        self._reset_answer()
        self.reference = reference
        self._live = True
        self._started_at = time.monotonic()
        self._last_score_at = 0.0
        self.messages.append(ChatMessage("user", prompt))
        for earlier in self.turns:
            earlier.remove_class("-latest")  # its summary line shows from now on
        turn = ChatTurn(prompt)
        turn.add_class("-latest")
        await self.body.mount(turn)
        self.body.scroll_end(animate=False)  # a new prompt follows the answer again
        self._update_stats()
        return turn

    async def _end_turn(self, turn: ChatTurn | None, writer: BufferedMarkdownStream | None) -> None:
        """Write out the rest of the answer, keep it in the conversation, score it, summarise it."""
        self._live = False
        self.request_id = None
        if writer is not None:
            await writer.stop()
        if self.result is not None:
            final = self.result.text
            if turn is not None and final != self.text:  # e.g. a stop string trimmed from the end
                if final.startswith(self.text):
                    await turn.answer.append(final[len(self.text):])
                else:
                    await turn.answer.update(final)
            self.text = final
        if self.result is not None or self.text:
            self.messages.append(ChatMessage("assistant", self.text))
        if turn is not None:
            turn.set_footer(self._turn_summary(), error=self.error is not None)
            await self._score_final()
        self._update_stats()

    def _flushed(self) -> None:
        """After a write to the transcript: refresh the footer, maybe rescore."""
        self._update_stats()
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
    def _info_line(self) -> str:
        return f"{self.info.device}/{self.info.dtype} · {self.info.kind}"

    def _turn_summary(self) -> str:
        """The one line an earlier turn keeps under its answer."""
        if self.result is not None:
            u = self.result.usage
            line = f"{u.new_tokens} tok · {u.tokens_per_s:.1f} tok/s"
            return line if self.result.finish_reason == "stop" else f"{line} · {self.result.finish_reason}"
        if self.error is not None:
            message = self.error.message if isinstance(self.error, LmscopeError) else str(self.error)
            return f"{self.tokens} tok · error: {message}"
        return f"{self.tokens} tok · stopped"

    def _update_stats(self) -> None:
        if self.result is not None:
            u = self.result.usage
            line = (f"{u.new_tokens} tok · TTFT {u.time_to_first_token_s:.2f} s · {u.tokens_per_s:.1f} tok/s · "
                    f"{u.device}/{u.dtype}")
            if self.result.finish_reason != "stop":
                line += f" · {self.result.finish_reason}"
            if any("truncated" in w for w in self.result.warnings):
                line += " · history truncated"
        elif self._live:
            elapsed = time.monotonic() - self._started_at
            ttft = f" · TTFT {self._first_token_at - self._started_at:.2f} s" if self._first_token_at else ""
            line = f"{self.tokens} tok · {elapsed:.1f} s{ttft} · {self._info_line()} · streaming"
        elif self.error is not None:
            line = f"{self.tokens} tok · error · {self._info_line()}"
        elif self.tokens:
            line = f"{self.tokens} tok · stopped · {self._info_line()}"
        else:
            line = self._info_line()
        if self.scores:
            line += "\n" + " · ".join(f"{name} {score:.1f}" for name, score in self.scores.items())
        self.query_one(".pane-stats", Static).update(line)
