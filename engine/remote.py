"""The remote backend: a model served by an OpenAI-compatible server (vLLM, transformers serve,
llama.cpp, ...), driven over HTTP with httpx.

Single requests stream (server-sent events, parsed by ``httpx-sse``); batches without a delta
callback go as plain requests, at most ``max_concurrency`` in flight. Connection failures and
429 / 503 answers are retried by ``tenacity`` (exponential backoff with jitter, the server's
``Retry-After`` honoured). tenacity rather than stamina: stamina is a layer over tenacity with its
own defaults (a 45 s retry budget, 5 s longest wait) and process-wide switches; here every
setting comes from the endpoint, and the wait reads the server's answer, which tenacity's
strategy objects express directly. The API key is read from the environment
when connecting and lives only in the HTTP client's headers: never in :class:`ModelInfo`,
results, errors or logs. A server is not trusted: whatever it sends passes through
:func:`~engine.sse.redact` before it is quoted (it may echo the key), and it cannot hold a
request open forever (a stall timer that only content resets, and an overall deadline).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import email.utils
import json
import logging
import random
import time
from contextlib import aclosing, contextmanager, suppress
from typing import Awaitable, Iterator, Sequence, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity import wait_exponential_jitter

from engine.backend import Emit, ModelBackend
from engine.cancel import CancelToken
from engine.endpoints import RemoteEndpoint, parse_remote_spec
from engine.errors import (
    ContextLengthError,
    GenerationStalledError,
    InvalidRequestError,
    LmscopeError,
    MalformedStreamError,
    ModelNotFoundError,
    RemoteServerError,
    ServerUnreachableError,
    UnsupportedModelError,
)
from engine.openai_protocol import Assembler, build_payload, route
from engine.remote_scoring import (
    PromptToken,
    ScoreMode,
    loglikelihood_result,
    perplexity_result,
    prompt_tokens,
    scoring_payload,
)
from engine.spec import ModelSpec
from engine.sse import decode_event, error_message, excerpt, redact, server_events
from engine.types import GenerationRequest, GenerationResult, LoglikelihoodResult, ModelInfo, PerplexityResult

log = logging.getLogger(__name__)
T = TypeVar("T")
# The usage chunk follows the finish at once; a server that keeps the stream open after the
# finish is not waited for long (the answer is complete).
AFTER_FINISH_S = 2.0
# What parsing hostile JSON of the wrong shape raises (a string where a number belongs, ...).
_SHAPE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, IndexError)
_RETRY_STATUS = (429, 503)
MAX_RETRY_AFTER_S = 30.0  # a longer Retry-After is not waited for in full
_NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                  httpx.WriteError)


async def open_remote(spec: ModelSpec) -> ModelBackend:
    """Connect to the server ``spec`` names (``openai:MODEL@URL`` or ``openai:ENDPOINT``).

    Raises:
        InvalidRequestError: malformed spec or config file.
        ModelNotFoundError: unknown endpoint name.
        ServerUnreachableError: the server cannot be reached (after the configured retries).
        RemoteServerError: the server refused the connection check (e.g. a bad API key).
        GenerationStalledError: the check took longer than the endpoint's ``request_timeout_s``.
    """
    backend = OpenAIBackend(spec.name, parse_remote_spec(spec.text))
    try:
        await backend.connect()
    except BaseException:
        await backend.aclose()
        raise
    return backend


class _RetryableStatus(Exception):
    """A 429 / 503 answer, worth another try after the server's ``Retry-After``."""

    def __init__(self, status: int, body: bytes, retry_after_s: float) -> None:
        super().__init__(status)
        self.status, self.body, self.retry_after_s = status, body, retry_after_s


class OpenAIBackend(ModelBackend):
    """One model on an OpenAI-compatible server.

    ``info.supports_logprobs`` and ``info.supports_loglikelihood`` start True and turn False
    once the server is seen to ignore the request for them.
    """

    def __init__(self, name: str, endpoint: RemoteEndpoint) -> None:
        self.endpoint = endpoint
        self._exponential = wait_exponential_jitter(multiplier=endpoint.backoff_s, jitter=endpoint.backoff_s / 4)
        self.served_models: list[str] = []
        self._score_mode: ScoreMode | None = None
        self._slots = asyncio.Semaphore(endpoint.max_concurrency)
        key = endpoint.api_key()
        self._secret = key
        self._client = httpx.AsyncClient(
            base_url=endpoint.base_url + "/",
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=httpx.Timeout(endpoint.request_timeout_s, connect=endpoint.connect_timeout_s),
            limits=httpx.Limits(max_connections=endpoint.max_concurrency + 4,
                                max_keepalive_connections=endpoint.max_concurrency),
        )
        self.info = ModelInfo(
            name=name, source=f"{endpoint.model} at {endpoint.base_url}", kind="causal",
            device=f"remote:{endpoint.host}", dtype="unknown", context_length=None, num_parameters=0,
            memory_bytes=0, has_chat_template=True, load_time_s=0.0, backend="remote",
        )

    # ------------------------------------------------------------------------ connecting
    async def connect(self) -> None:
        """Check the server answers and learn what it serves (``GET /models``).

        A server without ``/models`` is accepted; a wrong model name is reported by the first
        request (servers that load models on demand do not list them all).

        Raises:
            ServerUnreachableError, RemoteServerError (bad API key, server error),
            GenerationStalledError (no whole answer within ``request_timeout_s``).
        """
        started = time.perf_counter()
        body = await self._within_deadline(self._get_json("models"))
        entries = body.get("data") if isinstance(body, dict) else None
        context = None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                self.served_models.append(entry["id"])
                if entry["id"] == self.endpoint.model and isinstance(entry.get("max_model_len"), int):
                    context = entry["max_model_len"]  # vLLM
        if self.served_models and self.endpoint.model not in self.served_models:
            log.warning("%s does not list %r among its models (%s)", self.endpoint.base_url,
                        self.endpoint.model, self._served())
        self.info = dataclasses.replace(self.info, context_length=context, load_time_s=time.perf_counter() - started)

    async def _get_json(self, path: str) -> object:
        """The JSON body of ``GET path``, or None when it is not JSON."""
        response = await self._send("GET", path, None, self.endpoint.connect_timeout_s)
        try:
            return json.loads(await response.aread())
        except (ValueError, httpx.HTTPError):
            return None
        finally:
            await response.aclose()

    def _served(self) -> str:
        """The served models, for a message (the names come from the server: redacted)."""
        return self._redact(", ".join(self.served_models[:10]))

    # ------------------------------------------------------------------------------ HTTP
    async def _within_deadline(self, work: Awaitable[T]) -> T:
        """``await work``, failing once it has taken the endpoint's ``request_timeout_s``
        (retries included): a server that trickles bytes never holds a request forever.

        Raises:
            GenerationStalledError: the deadline passed.
        """
        limit = self.endpoint.request_timeout_s
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                return await work
        except TimeoutError:
            if not deadline.expired():
                raise
            raise GenerationStalledError(f"the server at {self.endpoint.base_url} did not finish the request "
                                         f"within {limit:g} s", hint="raise the endpoint's request_timeout_s") from None

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Parse server data of any shape: a wrong one is a MalformedStreamError, quoting it redacted."""
        try:
            yield
        except _SHAPE_ERRORS as exc:
            raise MalformedStreamError(f"the server at {self.endpoint.base_url} sent {what} lmscope cannot read: "
                                       f"{excerpt(exc, self._secret)}") from None

    async def _send(self, method: str, path: str, payload: dict | None, read_timeout_s: float) -> httpx.Response:
        """Send a request; connection failures and 429 / 503 answers are retried (``max_retries``
        times: ``backoff_s * 2**n`` plus up to ``backoff_s / 4`` of jitter, and at least the
        server's ``Retry-After``, up to :data:`MAX_RETRY_AFTER_S`).

        Returns an open response with a 2xx status (the caller closes it).

        Raises:
            ServerUnreachableError, GenerationStalledError (no answer within ``read_timeout_s``),
            or the error :meth:`_http_error` makes of an error answer.
        """
        ep = self.endpoint
        timeout = httpx.Timeout(read_timeout_s, connect=ep.connect_timeout_s)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ep.max_retries + 1),
            wait=self._backoff,
            retry=retry_if_exception_type((*_NOT_CONNECTED, _RetryableStatus)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return await retrying(self._send_once, method, path, payload, timeout)
        except _NOT_CONNECTED as exc:
            raise ServerUnreachableError(
                f"cannot reach the server at {ep.base_url}: {self._describe(exc)}",
                hint="is it running? start one with `vllm serve MODEL` or `transformers serve FOLDER`",
            ) from None
        except httpx.TimeoutException:
            raise GenerationStalledError(f"the server at {ep.base_url} did not answer within {read_timeout_s:g} s",
                                         hint="it may be overloaded; raise the endpoint's timeouts") from None
        except _RetryableStatus as exc:  # still refused after the last retry
            raise self._http_error(exc.status, exc.body, path) from None

    async def _send_once(self, method: str, path: str, payload: dict | None, timeout: httpx.Timeout) -> httpx.Response:
        request = self._client.build_request(method, path, json=payload, timeout=timeout)
        response = await self._client.send(request, stream=True)
        if response.status_code < 400:
            return response
        body = await self._read_quietly(response)
        if response.status_code in _RETRY_STATUS:
            raise _RetryableStatus(response.status_code, body, _retry_after(response))
        raise self._http_error(response.status_code, body, path)

    def _backoff(self, state: RetryCallState) -> float:
        """Seconds before the next try (see :meth:`_send`)."""
        delay = self._exponential(state)
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _RetryableStatus):
            delay = max(delay, min(failure.retry_after_s, MAX_RETRY_AFTER_S))
        return delay

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        why = f"answered {failure.status}" if isinstance(failure, _RetryableStatus) else \
            f"not reachable ({self._describe(failure)})" if isinstance(failure, Exception) else "failed"
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("server at %s %s; retrying in %.2f s", self.endpoint.base_url, why, delay)

    async def _read_quietly(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        except httpx.HTTPError:
            return b""
        finally:
            await response.aclose()

    def _http_error(self, status: int, raw: bytes, path: str) -> LmscopeError:
        """The error for an HTTP error answer, with the server's own message."""
        try:
            message = error_message(json.loads(raw), self._secret)
        except ValueError:
            message = error_message(raw.decode("utf-8", "replace"), self._secret) or "(no message)"
        ep, model = self.endpoint, self.endpoint.model
        lowered = message.lower()
        served = f"it serves: {self._served()}" if self.served_models else \
            f"list its models with GET {ep.base_url}/models"
        if status in (400, 404, 422) and model in message and ("model" in lowered or "pinned" in lowered):
            return ModelNotFoundError(f"model {model!r} is not served at {ep.base_url}: {message}", hint=served)
        if status == 404:
            if "model" in lowered:
                return ModelNotFoundError(f"model {model!r} is not served at {ep.base_url}: {message}", hint=served)
            return RemoteServerError(f"no OpenAI-compatible API at {ep.base_url} (404 on /{path}): {message}",
                                     hint="check the base URL; it usually ends in /v1")
        if status in (401, 403):
            where = f"set {ep.api_key_env}" if ep.api_key_env else "set api_key_env for this endpoint"
            return RemoteServerError(f"the server at {ep.base_url} refused the request ({status}): {message}",
                                     hint=f"{where} to a valid API key")
        if status in (400, 413, 422) and ("context" in lowered or "too long" in lowered or "maximum" in lowered):
            return ContextLengthError(f"the server at {ep.base_url} rejected the prompt's length: {message}",
                                      hint="shorten the prompt or lower max_new_tokens")
        if 400 <= status < 500:
            return InvalidRequestError(f"the server at {ep.base_url} rejected the request ({status}): {message}")
        return RemoteServerError(f"the server at {ep.base_url} failed ({status}): {message}")

    def _describe(self, exc: Exception) -> str:
        return self._redact(str(exc) or type(exc).__name__)

    def _redact(self, text: str) -> str:
        return redact(text, self._secret)

    # ------------------------------------------------------------------------ generation
    async def generate(self, requests: Sequence[GenerationRequest], cancels: Sequence[CancelToken],
                       emit: Emit | None) -> list[GenerationResult]:
        """Run ``requests`` on the server, at most ``max_concurrency`` in flight; results in order.

        A single request, or any request when ``emit`` is given, streams; the rest are plain
        requests. The first failure cancels the others and is raised.

        Raises:
            ServerUnreachableError, GenerationStalledError, ModelNotFoundError, ContextLengthError,
            InvalidRequestError, MalformedStreamError, RemoteServerError.
        """
        stream = emit is not None or len(requests) == 1
        tasks = [asyncio.ensure_future(self._one(r, c, emit, stream)) for r, c in zip(requests, cancels)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            pending = [task for task in tasks if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]

    async def _one(self, request: GenerationRequest, cancel: CancelToken, emit: Emit | None,
                   stream: bool) -> GenerationResult:
        params = request.params
        seed = params.seed if params.seed is not None or not params.do_sample else random.randrange(2**31)
        asm = Assembler(request, self.info.name, self.info.device, seed, secret=self._secret)
        async with self._slots:
            if cancel.is_set():
                asm.cancel()
                return asm.result()
            asm.started = time.perf_counter()
            payload = build_payload(request, self.endpoint.model, stream, seed)
            work = self._stream(payload, route(request), asm, cancel, emit) if stream else \
                self._complete(payload, route(request), asm)
            if await _cancellable(self._within_deadline(work), cancel):
                asm.cancel()
        if params.logprobs and asm.chunks and not asm.logprobs and self.info.supports_logprobs:
            self.info = dataclasses.replace(self.info, supports_logprobs=False)
        return asm.result()

    async def _stream(self, payload: dict, path: str, asm: Assembler, cancel: CancelToken,
                      emit: Emit | None) -> None:
        stall = self.endpoint.stall_timeout_s
        response = await self._send("POST", path, payload, stall)
        try:
            await self._read_stream(response, asm, cancel, emit)
        except httpx.TimeoutException:
            if not asm.done:
                raise self._stalled() from None
        except httpx.HTTPError as exc:
            raise self._connection_lost(exc) from None
        finally:
            await response.aclose()
        if not asm.done and not cancel.is_set():
            raise RemoteServerError(f"the server at {self.endpoint.base_url} ended the stream before the answer was "
                                    "complete (no finish_reason)")

    async def _read_stream(self, response: httpx.Response, asm: Assembler, cancel: CancelToken,
                           emit: Emit | None) -> None:
        """Absorb the event stream until the answer is complete.

        Progress is content (text, log-probabilities, the finish), not bytes: keep-alive
        comments and empty chunks do not reset the stall timer.

        Raises:
            GenerationStalledError: no content for ``stall_timeout_s``.
            MalformedStreamError, RemoteServerError: see :func:`~engine.sse.server_events` and
                :func:`~engine.sse.decode_event`.
        """
        loop = asyncio.get_running_loop()
        stall = self.endpoint.stall_timeout_s
        watchdog = asyncio.timeout(stall)
        try:
            async with watchdog, aclosing(server_events(response, self._secret)) as events:
                async for event in events:
                    before = asm.progress
                    if self._absorb(event, asm, emit) or cancel.is_set():
                        return
                    if asm.progress != before:
                        watchdog.reschedule(loop.time() + (min(stall, AFTER_FINISH_S) if asm.done else stall))
        except TimeoutError:
            if not watchdog.expired():
                raise
            if not asm.done:  # once finished, only the trailing usage chunk was missing
                raise self._stalled() from None

    def _stalled(self) -> GenerationStalledError:
        return GenerationStalledError(
            f"the server at {self.endpoint.base_url} sent nothing for {self.endpoint.stall_timeout_s:g} s "
            "(no text and no finish)", hint="it may be overloaded; the request was abandoned")

    def _connection_lost(self, exc: httpx.HTTPError) -> ServerUnreachableError:
        return ServerUnreachableError(
            f"lost the connection to {self.endpoint.base_url} mid-answer: {self._describe(exc)}",
            hint="the server may have stopped; run the request again once it is back")

    def _absorb(self, event, asm: Assembler, emit: Emit | None) -> bool:
        """Feed one event to ``asm``; return True once the answer is complete."""
        obj = decode_event(event, self._secret)
        if obj is None:  # [DONE]
            return True
        with self._reading("a stream chunk"):
            delta = asm.add_chunk(obj)
        if delta is not None and emit is not None:
            emit(delta)
        # A finish_reason may be followed by a usage-only chunk, so read on until the stream ends,
        # except after a stop string matched here: the server would go on past it.
        return asm.finish_reason == "stop_string"

    async def _complete(self, payload: dict, path: str, asm: Assembler) -> None:
        timeout = self.endpoint.request_timeout_s
        response = await self._send("POST", path, payload, timeout)
        try:
            raw = await response.aread()
        except httpx.TimeoutException:
            raise GenerationStalledError(f"the server at {self.endpoint.base_url} did not finish within {timeout:g} s",
                                         hint="raise the endpoint's request_timeout_s") from None
        except httpx.HTTPError as exc:
            raise self._connection_lost(exc) from None
        finally:
            await response.aclose()
        try:
            obj = json.loads(raw)
        except ValueError:
            raise RemoteServerError(f"the server at {self.endpoint.base_url} answered with something that is not JSON",
                                    hint="is the URL an OpenAI-compatible API (it usually ends in /v1)?") from None
        with self._reading("an answer"):
            asm.add_response(obj if isinstance(obj, dict) else {})

    # --------------------------------------------------------------------------- scoring
    async def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        """log P(continuation | context) from the server's prompt log-probabilities.

        Context and continuation are sent as one prompt; the continuation's tokens are those
        covering its characters (trailing spaces of the context move to the continuation, as
        the local backend does).

        Raises:
            UnsupportedModelError: the server returns no prompt log-probabilities.
            InvalidRequestError: an empty continuation, or an empty context the server cannot score.
        """
        jobs = []
        for context, cont in pairs:
            if not cont:
                raise InvalidRequestError("log-likelihood needs a non-empty continuation")
            jobs.append((context + cont, len(context.rstrip())))
        scored = await self._score_all([prompt for prompt, _ in jobs], "log-likelihoods")
        return [loglikelihood_result(tokens, prompt, boundary) for tokens, (prompt, boundary) in zip(scored, jobs)]

    async def perplexity(self, texts: Sequence[str], max_length: int | None,
                         stride: int | None) -> list[PerplexityResult]:
        """Perplexity of each text in one server-side window (``max_length`` / ``stride`` are not
        applied: the server's own context limit applies and an over-long text is an error).

        Raises:
            UnsupportedModelError: the server returns no prompt log-probabilities.
            InvalidRequestError: an empty text.
        """
        for index, text in enumerate(texts):
            if not text.strip():
                raise InvalidRequestError(f"text {index} is empty; perplexity needs at least one token")
        scored = await self._score_all(list(texts), "perplexity")
        return [perplexity_result(tokens, text, self.endpoint.host) for tokens, text in zip(scored, texts)]

    async def _score_all(self, prompts: list[str], what: str) -> list[list[PromptToken]]:
        if not self.info.supports_loglikelihood:
            raise self._no_scores(what)
        if self._score_mode is None:  # find out once what this server offers
            first = await self._detect_score_mode(prompts[0], what)
            rest = await asyncio.gather(*(self._score(p, what) for p in prompts[1:]))
            return [first, *rest]
        return list(await asyncio.gather(*(self._score(p, what) for p in prompts)))

    async def _detect_score_mode(self, prompt: str, what: str) -> list[PromptToken]:
        for mode in ("echo", "prompt_logprobs"):
            try:
                tokens = await self._score_request(prompt, mode)
            except (InvalidRequestError, ContextLengthError) as exc:
                if mode == "prompt_logprobs":  # a server that rejects vLLM's extra field
                    log.info("server rejected prompt_logprobs: %s", exc)
                    break
                raise
            if tokens is not None:
                self._score_mode = mode
                return tokens
        self.info = dataclasses.replace(self.info, supports_loglikelihood=False)
        raise self._no_scores(what)

    async def _score(self, prompt: str, what: str) -> list[PromptToken]:
        tokens = await self._score_request(prompt, self._score_mode or "echo")
        if tokens is None:
            raise self._no_scores(what)
        return tokens

    async def _score_request(self, prompt: str, mode: ScoreMode) -> list[PromptToken] | None:
        async with self._slots:
            raw = await self._within_deadline(self._post_raw("completions",
                                                             scoring_payload(self.endpoint.model, prompt, mode)))
        try:
            obj = json.loads(raw)
        except ValueError:
            return None
        with self._reading("prompt log-probabilities"):
            return prompt_tokens(obj, prompt) if isinstance(obj, dict) else None

    async def _post_raw(self, path: str, payload: dict) -> bytes:
        response = await self._send("POST", path, payload, self.endpoint.request_timeout_s)
        return await self._read_quietly(response)

    def _no_scores(self, what: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"{what} are not supported by this backend: the server at {self.endpoint.base_url} returns no prompt "
            "log-probabilities (it ignores echo/logprobs)",
            hint="serve the model with vLLM, which returns them, or score it as a local model")

    # ------------------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        """Close the HTTP connections (requests still running fail)."""
        await self._client.aclose()


async def _cancellable(work: Awaitable[None], cancel: CancelToken) -> bool:
    """Run ``work`` until it ends or ``cancel`` is set (then cancel it at once, closing its stream).

    Returns whether it was cancelled. Cancelling the caller cancels ``work`` too.
    """
    task = asyncio.ensure_future(work)
    cancelled = asyncio.ensure_future(cancel.wait_async())
    try:
        await asyncio.wait({task, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            return cancel.is_set()
        task.cancel()
        # What fails while the stream is torn down no longer matters to the caller.
        with suppress(asyncio.CancelledError, LmscopeError, httpx.HTTPError):
            await task
        return True
    finally:
        cancelled.cancel()
        if not task.done():
            task.cancel()


def _retry_after(response: httpx.Response) -> float:
    """Seconds the server asked to wait (``Retry-After``: seconds or an HTTP date); 0 if it did not."""
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return 0.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    return seconds if seconds > 0 else 0.0  # NaN and negatives: no wait
