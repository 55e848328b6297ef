"""One conversation with one model: history, send, stream, stop, regenerate and storage.

Shared by the chat screen (a conversation plus its transcript) and every compare pane (a
conversation plus live scores); widgets only show what it reports. The request for a model is
built in one place, :func:`build_request`, from the model's kind. Storage goes through the
store's chat API: the conversation's settings at creation, every user message as it is sent,
every answer (finished, stopped or failed) with its usage, and a finished answer's
:func:`~scenarios.result_record.result_record`.

Waiting is reported, not hidden: :meth:`Conversation.answer` calls ``on_event`` with
:class:`Waiting` lines (load stages, requests queued ahead), then each
:class:`~engine.TokenDelta`; the returned :class:`Answer` carries :class:`Timings` that split
the time to first token into load, queue and prefill.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from engine import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Engine,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    LmscopeError,
    ModelInfo,
    Text2TextRequest,
    TokenDelta,
)
from scenarios.result_record import result_from_record, result_record
from scenarios.store import Store, StoredChat

# Why there is no finished answer to show (F10 / F7), by how the last answer ended.
NO_ANSWER = "no answer yet"
STOPPED = ("this answer was stopped before it finished, so its prompt and tokens were not kept; "
           "regenerate it (ctrl+r) to probe it")
FAILED = ("this answer failed before it finished, so its prompt and tokens were not kept; "
          "regenerate it (ctrl+r) to probe it")
UNANSWERED = "the last message has no answer yet; ctrl+r answers it"
NO_TOKEN_DATA = ("this chat was saved without token data (by an older lmscope); "
                 "regenerate the answer (ctrl+r) to probe it")
# What the waits are measured with (a test pins it to keep snapshots independent of the machine's load).
clock = time.monotonic

UNREADABLE = "the stored token data of this answer could not be read; regenerate it (ctrl+r) to probe it"


def build_request(model: str, info: ModelInfo, messages: tuple[ChatMessage, ...],
                  params: GenerationParams, chat: bool = True) -> GenerationRequest:
    """The request that asks ``model`` to answer the last of ``messages``, by the model's kind.

    Causal LMs get the whole conversation (a chat request, system prompt included), or with
    ``chat=False`` the last message as a plain completion prompt (no chat template); seq2seq
    models are not chat models and get the last user message alone.

    Raises:
        LmscopeError: a masked LM, which cannot write answers.
    """
    if info.kind == "seq2seq":
        return Text2TextRequest(model, messages[-1].content, params=params)
    if info.kind == "masked":
        raise LmscopeError(f"{model} is a masked language model; it cannot write answers",
                           hint="chat with or compare causal or seq2seq models; use the probing view for fill-mask")
    if not chat:
        return CompletionRequest(model, messages[-1].content, params)
    return ChatRequest(model, tuple(messages), params)


@dataclass(frozen=True)
class Waiting:
    """What an answer waits for before its first token: a load stage, or requests ahead of it."""

    text: str


@dataclass
class Timings:
    """Where the wait before the first token went (seconds; ``None``: not reached).

    ``first_token_s`` is what the user waited, from sending to the first token; it is
    ``load_s`` + ``queue_s`` + ``prefill_s``. ``queue_s`` is measured only when requests were
    ahead on the model (then prefill is the engine's own time to first token, from the start of
    its generation, and the queue the rest); otherwise prefill is all the time after loading.
    """

    load_s: float = 0.0
    queue_s: float | None = None
    prefill_s: float | None = None
    first_token_s: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)


@dataclass
class Answer:
    """How one answer ended: its text, the engine's result (``None`` if stopped before the end
    or failed), ``ended`` (``"done"``, ``"cancelled"`` or ``"error"``), the error, and timings."""

    text: str = ""
    tokens: int = 0
    result: GenerationResult | None = None
    ended: str = "done"
    error: Exception | None = None
    timings: Timings = field(default_factory=Timings)
    settings: dict[str, Any] = field(default_factory=dict)


def answer_tokens(result: GenerationResult) -> int:
    """The answer's tokens, counted as the probe view lists them: the end-of-sequence token a
    model stops on is generated (``usage.new_tokens`` counts it) but is not part of the answer.
    Remote results carry no token ids; their count is the server's."""
    return len(result.token_ids) if result.token_ids else result.usage.new_tokens


def usage_record(answer: Answer) -> dict[str, Any]:
    """What the store keeps about an answer: usage, finish reason, model, settings and timings."""
    record: dict[str, Any] = {"params": answer.settings, "timings": answer.timings.as_dict()}
    if answer.result is None:
        record.update(finish_reason="error" if answer.ended == "error" else "cancelled", new_tokens_shown=answer.tokens)
        return record
    u, result = answer.result.usage, answer.result
    record.update(prompt_tokens=u.prompt_tokens, new_tokens=u.new_tokens, answer_tokens=answer_tokens(result),
                  time_to_first_token_s=u.time_to_first_token_s,
                  total_time_s=u.total_time_s, tokens_per_s=u.tokens_per_s, device=u.device, dtype=u.dtype,
                  dtype_choice=u.dtype_choice, seed=u.seed, finish_reason=result.finish_reason, model=result.model)
    return record


def format_wait(record: dict[str, Any], label: str = "first token") -> str | None:
    """``first token 47.20 s (load 40.00 s, queue 7.00 s, prefill 0.20 s)``: what the user waited
    for the first token, split where it went; ``None`` when the answer has no first token."""
    timings = record.get("timings") or {}
    waited = timings.get("first_token_s")
    if waited is None:
        waited = record.get("time_to_first_token_s")
    if waited is None:
        return None
    # A load or queue too short to print as 0.01 s is not worth a mention.
    split = [f"{name} {timings[key]:.2f} s" for name, key in (("load", "load_s"), ("queue", "queue_s"))
             if (timings.get(key) or 0.0) >= 0.005]
    prefill = timings.get("prefill_s", record.get("time_to_first_token_s"))
    if split and prefill is not None:
        split.append(f"prefill {prefill:.2f} s")
    return f"{label} {waited:.2f} s" + (f" ({', '.join(split)})" if split else "")


def format_usage(record: dict[str, Any]) -> str:
    """An answer's footer line, from :func:`usage_record`'s dict (also as stored).

    The time to first token is what the user waited; load, queue and prefill follow it when
    known, so a 40 s load never hides behind a 0.2 s prefill.
    """
    count = record.get("answer_tokens", record.get("new_tokens", record.get("new_tokens_shown", 0)))
    parts = [f"{count} tokens"]
    if (wait := format_wait(record)) is not None:
        parts.append(wait)
    if "tokens_per_s" in record:
        parts.append(f"{record['tokens_per_s']:.1f} tok/s")
    if "device" in record:
        choice = record.get("dtype_choice")  # why this dtype (engine.types.Usage.dtype_choice)
        parts.append(f"{record.get('device', '?')} {record.get('dtype', '?')}" + (f" ({choice})" if choice else ""))
    if record.get("seed") is not None:
        parts.append(f"seed {record['seed']}")
    if record.get("finish_reason") not in (None, "stop"):
        parts.append(str(record["finish_reason"]))
    return " · ".join(parts)


@dataclass(frozen=True)
class Turn:
    """A user message and its answer as restored from the store (``footer``: the answer's line)."""

    user: str
    answer: str | None
    footer: str


class Conversation:
    """A conversation of the user with ``model`` through ``engine``, kept in ``store``.

    ``system_prompt`` and ``settings`` (the sampling panel's raw texts, stored as they are)
    apply to the next answer; ``comparison`` / ``pane`` tie the stored chat to a comparison.
    Nothing is stored until the first message is sent.
    """

    def __init__(self, engine: Engine, store: Store | None, model: str, *, system_prompt: str = "",
                 comparison: str | None = None, pane: str | None = None) -> None:
        self.engine = engine
        self.store = store
        self.model = model
        self.system_prompt = system_prompt
        self.comparison = comparison
        self.pane = pane
        self.messages: list[ChatMessage] = []  # user and assistant turns, in order
        self.chat_id: str | None = None
        self.info: ModelInfo | None = None
        self.last_result: GenerationResult | None = None
        self.no_result_reason = NO_ANSWER
        self.last_request: ChatRequest | Text2TextRequest | None = None
        self.request_id: str | None = None
        self.busy = False

    # ------------------------------------------------------------------------------ model
    async def load(self, progress: Callable[[str], None] | None = None) -> ModelInfo:
        """Load the model (or find it loaded); ``progress`` gets the load stages on the event loop."""
        loop = asyncio.get_running_loop()

        def relay(line: str) -> None:  # called from the loading thread
            try:
                loop.call_soon_threadsafe(progress, line)
            except RuntimeError:  # the loop has closed (the app quit mid-load): nobody to tell
                pass

        self.info = await self.engine.load(self.model, progress=None if progress is None else relay)
        return self.info

    # ------------------------------------------------------------------------------ history
    def request_messages(self) -> tuple[ChatMessage, ...]:
        """What the next request carries: the system prompt (if any), then the conversation."""
        system = (ChatMessage("system", self.system_prompt),) if self.system_prompt else ()
        return system + tuple(self.messages)

    @property
    def last_prompt(self) -> str | None:
        """The last user message, or ``None``."""
        return next((m.content for m in reversed(self.messages) if m.role == "user"), None)

    def set_system_prompt(self, text: str) -> None:
        """Change the system prompt for the next answers (stored as a ``system`` message)."""
        if text == self.system_prompt:
            return
        self.system_prompt = text
        if self.chat_id is not None and self.store is not None:
            self.store.add_message(self.chat_id, "system", text)

    def _persist(self, role: str, content: str, settings: dict[str, Any], usage: dict[str, Any] | None = None,
                 result: dict[str, Any] | None = None) -> None:
        if self.store is None:
            return
        if self.chat_id is None:
            self.chat_id = self.store.create_chat(
                self.model, {"system_prompt": self.system_prompt, "sampling": settings},
                comparison=self.comparison, pane=self.pane)
        self.store.add_message(self.chat_id, role, content, usage, result)

    # ------------------------------------------------------------------------------ answers
    async def send(self, prompt: str, params: GenerationParams, settings: dict[str, Any] | None = None,
                   on_event: Callable[[Waiting | TokenDelta], None] | None = None) -> Answer:
        """Add ``prompt`` as the next user message and answer it (see :meth:`answer`)."""
        self.messages.append(ChatMessage("user", prompt))
        self._persist("user", prompt, settings or {})
        return await self.answer(params, settings, on_event)

    async def regenerate(self, params: GenerationParams, settings: dict[str, Any] | None = None,
                         on_event: Callable[[Waiting | TokenDelta], None] | None = None) -> Answer:
        """Answer the last user message again; the new answer replaces the last one."""
        if self.messages and self.messages[-1].role == "assistant":
            self.messages.pop()
        return await self.answer(params, settings, on_event)

    async def answer(self, params: GenerationParams, settings: dict[str, Any] | None = None,
                     on_event: Callable[[Waiting | TokenDelta], None] | None = None) -> Answer:
        """Stream an answer to the conversation so far; the answer joins the history and the store.

        Stopping (:meth:`stop`, or cancelling the task awaiting this) keeps what was produced.
        Engine errors end the answer with ``ended == "error"`` (the error is on the answer, not
        raised); cancellation of the awaiting task is re-raised after the partial answer is kept.
        """
        emit = on_event or (lambda _event: None)
        answer = Answer(settings=dict(settings or {}))
        started = clock()
        self.busy = True
        try:
            try:
                loaded = {m.name for m in self.engine.loaded_models()}
                if self.model not in loaded:
                    emit(Waiting(f"loading {self.model} …"))
                info = await self.load(lambda line: emit(Waiting(line)))
                answer.timings.load_s = clock() - started
                ready = clock()
                request = build_request(self.model, info, self.request_messages(), params)
                self.last_request, self.request_id = request, request.request_id
                ahead = self._requests_ahead()
                if ahead:
                    emit(Waiting(f"queued: {ahead} request(s) ahead on {self.model} (a scenario run or another pane)"))
                queued = ahead > 0
                async for event in self.engine.stream(request):
                    if isinstance(event, GenerationResult):
                        answer.result = event
                        continue
                    if answer.timings.first_token_s is None:
                        answer.timings.first_token_s = clock() - started
                        # Everything after loading; split into queue and prefill at the end.
                        answer.timings.prefill_s = clock() - ready
                        answer.timings.queue_s = 0.0 if queued else None
                    answer.tokens += len(event.token_ids)
                    answer.text += event.text
                    emit(event)
            except asyncio.CancelledError:
                answer.ended = "cancelled"
                self._end(answer)
                raise
            except Exception as exc:  # noqa: BLE001 - reported on the answer; the conversation survives
                answer.ended, answer.error = "error", exc
            self._end(answer)
            return answer
        finally:
            self.busy = False
            self.request_id = None

    def _requests_ahead(self) -> int:
        in_flight = getattr(self.engine, "in_flight", None)  # a scripted test engine has none
        return in_flight(self.model) if in_flight is not None else 0

    def _end(self, answer: Answer) -> None:
        """Keep the answer in the history and the store; split the wait into queue and prefill."""
        result = answer.result
        if result is not None:
            answer.text = result.text
            answer.ended = "done" if result.finish_reason != "cancelled" else "cancelled"
            t = answer.timings
            if t.queue_s is not None and t.prefill_s is not None:  # requests were ahead of this one
                after_load, engine_prefill = t.prefill_s, result.usage.time_to_first_token_s
                t.prefill_s = min(engine_prefill, after_load)
                t.queue_s = after_load - t.prefill_s
            self.last_result, self.no_result_reason = result, NO_ANSWER
        else:
            self.last_result = None
            self.no_result_reason = FAILED if answer.ended == "error" else STOPPED
        if result is None and not answer.text:
            return  # nothing produced: the user message waits for a retry (ctrl+r)
        self.messages.append(ChatMessage("assistant", answer.text))
        self._persist("assistant", answer.text, answer.settings, usage_record(answer),
                      result_record(result) if result is not None else None)

    def stop(self) -> bool:
        """Ask the engine to stop the answer; False when the engine does not know the request yet
        (the caller then cancels the task awaiting :meth:`answer`)."""
        return self.request_id is not None and self.engine.cancel(self.request_id)

    # ------------------------------------------------------------------------------ storage
    def clear(self) -> None:
        """Start a new conversation (the old one stays in the store)."""
        self.messages = []
        self.chat_id = None
        self.last_request = None
        self.last_result, self.no_result_reason = None, NO_ANSWER

    def restore(self, chat: StoredChat) -> tuple[list[Turn], dict[str, Any]]:
        """Become the stored conversation ``chat``: messages, system prompt and the last answer's
        result (so F10 / F7 work on it). Returns its turns and the sampling settings it last used."""
        assert self.store is not None
        settings = chat.settings or {}
        system_prompt = settings.get("system_prompt", "")
        sampling = dict(settings.get("sampling") or {})
        turns: list[Turn] = []
        messages: list[ChatMessage] = []
        last_usage: dict[str, Any] = {}
        for row in self.store.chat_history(chat.id):
            usage = row.usage or {}
            if row.role == "system":
                system_prompt = row.content
            elif row.role == "user":
                messages.append(ChatMessage("user", row.content))
                turns.append(Turn(row.content, None, ""))
            elif row.role == "assistant" and turns:
                if messages[-1].role == "assistant":
                    messages.pop()  # a regenerated answer replaces the one before it
                messages.append(ChatMessage("assistant", row.content))
                turns[-1] = Turn(turns[-1].user, row.content, format_usage(usage) if usage else "")
                sampling.update(usage.get("params") or {})
                last_usage = usage
        self.messages = messages
        self.system_prompt = system_prompt
        self.chat_id = chat.id
        self.last_result, self.no_result_reason = self._stored_answer(last_usage)
        return turns, sampling

    def _stored_answer(self, usage: dict[str, Any]) -> tuple[GenerationResult | None, str]:
        """The reopened chat's last answer rebuilt from the store, or why it cannot be."""
        if not self.messages:
            return None, NO_ANSWER
        if self.messages[-1].role != "assistant":
            return None, UNANSWERED
        try:
            record = self.store.last_answer_result(self.chat_id)  # type: ignore[union-attr, arg-type]
            if record is not None:
                return result_from_record(record), NO_ANSWER
        except ValueError:  # also a corrupt JSON text (json.JSONDecodeError)
            return None, UNREADABLE
        if "new_tokens" not in usage:  # stored without an engine result: stopped or failed
            return None, FAILED if usage.get("finish_reason") == "error" else STOPPED
        return None, NO_TOKEN_DATA
