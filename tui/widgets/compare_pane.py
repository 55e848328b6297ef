"""One model's answer in the compare view: streamed Markdown, a stats footer and live scores.

The pane streams its model's answer with ``engine.stream`` in its own worker. Token deltas are
counted one by one, but their text is buffered and written to the Markdown stream every
``FLUSH_INTERVAL_S`` (writing per token costs far more CPU for the same picture). When the user
typed a reference answer, the text so far is scored (chrF, ROUGE-L) in a thread at most every
``SCORE_INTERVAL_S`` while it streams, and exactly once more on the final text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets.markdown import MarkdownStream
from textual.timer import Timer
from textual.widgets import Markdown, Static
from textual.worker import Worker

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

LIVE_METRICS = ("chrf", "rougeL")


def short_name(spec: str) -> str:
    """A short display name for what the user typed: a folder's or file's name, a hub id's tail."""
    text = spec.strip().rstrip("/\\")
    return Path(text).name or text or spec


def score_text(text: str, reference: str) -> dict[str, float]:
    """chrF and ROUGE-L of ``text`` against ``reference`` (display name -> score)."""
    scores = {}
    for name in LIVE_METRICS:
        metric = evaluators.get(name)
        scores[metric.name] = metric.score_example(text, [reference]).score
    return scores


def build_request(spec: str, info: ModelInfo, prompt: str, params: GenerationParams):
    """The request that asks ``spec`` for an answer to ``prompt`` (chat for causal LMs)."""
    if info.context_length:
        limit = max(1, info.context_length // 2)
        params = dataclasses.replace(params, max_new_tokens=min(params.max_new_tokens, limit))
    if info.kind == "seq2seq":
        return Text2TextRequest(spec, prompt, params=params)
    if info.kind == "masked":
        raise LmscopeError(f"{spec} is a masked language model; it cannot write answers",
                           hint="compare causal or seq2seq models; use the probing view for fill-mask")
    return ChatRequest(spec, (ChatMessage("user", prompt),), params)


class ComparePane(Vertical):
    """Streams one model's answer to the shared prompt, with its own stats and live scores.

    ``spec`` is the model as the user typed it (the name requests use), ``info`` what the engine
    loaded, ``label`` the pane's letter (A, B, ...). After a run, ``text`` holds the answer,
    ``result`` the engine's :class:`GenerationResult` (None if stopped before the model
    started) and ``scores`` the chrF / ROUGE-L against the reference, if one was given.
    """

    FLUSH_INTERVAL_S = 0.04
    SCORE_INTERVAL_S = 0.2

    def __init__(self, spec: str, info: ModelInfo, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="compare-pane")
        self.spec = spec
        self.info = info
        self.label = label
        self.text = ""
        self.tokens = 0
        self.result: GenerationResult | None = None
        self.reference = ""
        self.scores: dict[str, float] = {}
        self.request_id: str | None = None
        self.error: Exception | None = None
        self._pending: list[str] = []
        self._stream: MarkdownStream | None = None
        self._worker: Worker | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._started_at = 0.0
        self._first_token_at: float | None = None
        self._score_task: asyncio.Task | None = None
        self._score_seq = 0
        self._score_applied = 0
        self._last_score_at = 0.0

    def compose(self) -> ComposeResult:
        yield Static(f"[b]{self.label}[/b] · {short_name(self.spec)}", classes="pane-title", markup=True)
        with VerticalScroll(classes="pane-body"):
            yield Markdown("", classes="pane-answer")
        yield Static(self._info_line(), classes="pane-stats", markup=False)

    # ----------------------------------------------------------------------------- public
    @property
    def streaming(self) -> bool:
        """Whether an answer is being generated."""
        return not self._idle.is_set()

    def start(self, prompt: str, reference: str, params: GenerationParams) -> None:
        """Ask the model for an answer to ``prompt``; a running answer is superseded."""
        self._worker = self._answer(prompt, reference, params)

    def stop(self) -> None:
        """Stop the answer being generated; what was produced stays."""
        if not self.streaming:
            return
        if self.request_id is None or not self.app.engine.cancel(self.request_id):
            # The engine does not know the request yet: cancelling the worker closes the stream.
            if self._worker is not None:
                self._worker.cancel()

    def set_reference(self, reference: str) -> None:
        """Rescore a finished answer against a new reference (live scoring does this while streaming)."""
        self.reference = reference
        if not self.streaming:
            self._schedule_score(final=True)

    # ----------------------------------------------------------------------------- worker
    @work(exclusive=True, group="answer", exit_on_error=False)
    async def _answer(self, prompt: str, reference: str, params: GenerationParams) -> None:
        await self._idle.wait()  # a superseded answer first writes out what it had
        self._idle.clear()
        timer: Timer | None = None
        try:
            self.text, self.tokens, self.result, self.error = "", 0, None, None
            self.reference, self.scores = reference, {}
            self._pending = []
            self._started_at, self._first_token_at = time.monotonic(), None
            self._last_score_at = 0.0
            markdown = self.query_one(".pane-answer", Markdown)
            await markdown.update("")
            self._stream = Markdown.get_stream(markdown)
            timer = self.set_interval(self.FLUSH_INTERVAL_S, self._flush)
            self._update_stats()
            request = build_request(self.spec, self.info, prompt, params)
            self.request_id = request.request_id
            async for event in self.app.engine.stream(request):
                if isinstance(event, TokenDelta):
                    if self._first_token_at is None:
                        self._first_token_at = time.monotonic()
                    self.tokens += len(event.token_ids)
                    self.text += event.text
                    self._pending.append(event.text)
                else:
                    self.result = event
        except Exception as exc:  # engine errors are shown; the text produced so far stays
            self.error = exc
            self.app.show_error(exc)
        finally:
            if timer is not None:
                timer.stop()
            rewrite = False
            if self.result is not None:
                if self.result.text.startswith(self.text):
                    self._pending.append(self.result.text[len(self.text):])
                else:  # e.g. a stop string was trimmed from the end: show the final text
                    rewrite = True
                self.text = self.result.text
            await self._flush()
            stream, self._stream = self._stream, None
            if stream is not None:
                await stream.stop()
            if rewrite:
                await self.query_one(".pane-answer", Markdown).update(self.text)
            self.request_id = None
            await self._score_final()
            self._update_stats()
            self._idle.set()

    async def _flush(self) -> None:
        """Write the buffered text to the Markdown stream, refresh stats, maybe rescore."""
        if self._pending and self._stream is not None:
            chunk = "".join(self._pending)
            self._pending.clear()
            await self._stream.write(chunk)
            self.query_one(".pane-body", VerticalScroll).scroll_end(animate=False)
        if self.streaming:
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

    # ----------------------------------------------------------------------------- footer
    def _info_line(self) -> str:
        return f"{self.info.device}/{self.info.dtype} · {self.info.kind}"

    def _update_stats(self) -> None:
        if self.result is not None:
            u = self.result.usage
            line = (f"{u.new_tokens} tok · TTFT {u.time_to_first_token_s:.2f} s · {u.tokens_per_s:.1f} tok/s · "
                    f"{u.device}/{u.dtype}")
            if self.result.finish_reason != "stop":
                line += f" · {self.result.finish_reason}"
        elif self.streaming:
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
