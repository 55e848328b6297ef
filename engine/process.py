"""A local model in its own process, so its decode loop never waits on the caller's interpreter.

``transformers`` decoding runs hundreds of small Python steps per token, and every one needs
the interpreter lock. In the terminal app the UI thread holds that lock while it lays out and
paints, and the decode loop sat waiting: SmolLM2 streamed at 10–11 tok/s in the app against
14–17 tok/s on its own (measured, 2 cores). In a child process the model has an interpreter of
its own; the two only exchange requests, token deltas and results over a pipe.

The child (``_serve``) loads the model and runs an :class:`~engine.local.HFBackend`; the parent's
:class:`ProcessBackend` forwards calls and cancellations and turns replies back into results,
deltas and errors. Everything that crosses is a plain picklable dataclass or an
:class:`~engine.errors.LmscopeError`.

A child that dies (killed from outside, out of memory) fails the calls in flight with
:class:`ModelProcessError`; the backend then reports :attr:`ProcessBackend.exited`, and the
engine replaces it with a fresh process for the same spec on the next request.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Sequence

from engine.backend import Emit, ModelBackend
from engine.choice_scoring import ChoiceRequest, ChoiceScores
from engine.cancel import CancelToken
from engine.errors import LmscopeError
from engine.gguf_cache import cache_root
from engine.loading import Progress
from engine.spec import ModelSpec, resolve_source

from engine.types import (
    AttentionRequest,
    AttentionResult,
    FillMaskRequest,
    FillMaskResult,
    GenerationRequest,
    GenerationResult,
    LoglikelihoodResult,
    ModelInfo,
    PerplexityResult,
)

log = logging.getLogger(__name__)


class ModelProcessError(LmscopeError):
    """The model's process failed outside a request (it exited, or its reply could not be read)."""


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (every LmscopeError does), else a plain description."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - anything unpicklable is described instead
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------------------ the child
def log_path() -> Path:
    """Where model processes write their output (warnings, tracebacks): never the terminal,
    which the TUI owns."""
    return cache_root() / "logs" / "model-processes.log"


def _redirect_output() -> None:
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for fd in (1, 2):
        os.dup2(log_fd, fd)
    os.close(log_fd)


def _serve(conn: Connection, spec: ModelSpec, threads: int, batch_size: int | None) -> None:
    """The child process: load the model, then answer calls until told to close."""
    _redirect_output()
    # tqdm (transformers' progress bars) makes a multiprocessing lock on first use. This process
    # ends with os._exit, which never releases it, so multiprocessing's resource tracker printed
    # "leaked semaphore" on the user's terminal when the app quit. One process needs a thread lock.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    import torch

    from engine.loading import load_model
    from engine.local import HFBackend

    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    torch.set_num_threads(threads)
    try:
        loaded = load_model(spec, lambda line: send(("progress", line)))
    except BaseException as exc:  # noqa: BLE001 - the parent raises it
        send(("failed", _portable(exc)))
        return
    backend = HFBackend(loaded, threads, batch_size)
    send(("ready", backend.info))
    asyncio.run(_answer_calls(conn, backend, send))
    conn.close()
    os._exit(0)  # the model is released; tearing down torch's interpreter state took seconds


async def _answer_calls(conn: Connection, backend: Any, send) -> None:
    loop = asyncio.get_running_loop()
    cancels: dict[str, CancelToken] = {}
    tasks: set[asyncio.Task] = set()

    async def run(call_id: int, method: str, args: tuple) -> None:
        try:
            if method == "generate":
                requests: Sequence[GenerationRequest] = args[0]
                tokens = [cancels.setdefault(r.request_id, CancelToken()) for r in requests]
                emit = None if not args[1] else (lambda delta: send(("delta", call_id, delta)))
                try:
                    value = await backend.generate(requests, tokens, emit)
                finally:
                    for r in requests:
                        cancels.pop(r.request_id, None)
            else:
                value = await getattr(backend, method)(*args)
            send(("result", call_id, value))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            send(("error", call_id, _portable(exc)))

    while True:
        try:
            message = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):
            break  # the parent went away
        kind = message[0]
        if kind == "call":
            task = asyncio.ensure_future(run(*message[1:]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif kind == "cancel":
            cancels.setdefault(message[1], CancelToken()).set()
        elif kind == "close":
            break
    for token in list(cancels.values()):
        token.set()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    await backend.aclose()


# ----------------------------------------------------------------------------- the parent
class ProcessBackend(ModelBackend):
    """A local model served by a child process (see the module docstring). Start with :meth:`start`."""

    def __init__(self, process: multiprocessing.Process, conn: Connection, info: ModelInfo, spec: ModelSpec) -> None:
        self.process = process
        self.conn = conn
        self.info = info
        self.spec = spec  # what the process loaded: a replacement process loads the same
        self._eof = False  # the reader saw the pipe close: the child is gone
        self._send_lock = threading.Lock()
        self._ids = itertools.count()
        self._calls: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future, Emit | None]] = {}
        self._failure: BaseException | None = None
        self._reader = threading.Thread(target=self._read, name=f"lmscope-reader-{info.name[-24:]}", daemon=True)
        self._reader.start()

    @classmethod
    async def start(cls, spec: ModelSpec, threads: int, batch_size: int | None,
                    progress: Progress | None = None) -> "ProcessBackend":
        """Start a process that loads ``spec``; returns once the model is ready.

        The process is started with ``spawn``, which imports the caller's main module again in
        the child: a script that uses this must keep its top-level code under
        ``if __name__ == "__main__":`` (the ``lmscope`` command does).

        Raises:
            the load's own errors (ModelNotFoundError, HubUnreachableError, ...), or
            ModelProcessError when the process dies while loading.
        """
        await asyncio.to_thread(resolve_source, spec)  # a typo fails here, before a process starts
        context = multiprocessing.get_context("spawn")  # never fork a process that holds torch threads
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_serve, args=(child_end, spec, threads, batch_size),
                                  name=f"lmscope-model-{spec.name[-24:]}", daemon=True)
        _start(process)
        child_end.close()

        def wait_until_loaded() -> tuple:
            while True:
                try:
                    message = parent_end.recv()
                except (EOFError, OSError):
                    return ("died",)
                if message[0] == "progress":
                    if progress is not None:
                        progress(message[1])
                    continue
                return message

        message = await asyncio.to_thread(wait_until_loaded)
        if message[0] == "ready":
            return cls(process, parent_end, message[1], spec)
        parent_end.close()
        await asyncio.to_thread(process.join, 10)
        if message[0] == "failed":
            raise message[1]
        raise ModelProcessError(f"the process loading {spec.name!r} exited (code {process.exitcode})",
                                hint=f"it may have run out of memory; its output is in {log_path()}")

    @property
    def exited(self) -> bool:
        """Whether the child is gone (killed, crashed): this backend serves nothing more."""
        return self._eof or self.process.exitcode is not None

    # -------------------------------------------------------------------------- plumbing
    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self.conn.send(message)

    def _send_cancel(self, request_id: str) -> None:
        try:
            self._send(("cancel", request_id))
        except (OSError, ValueError):
            pass  # the process is gone; the reader fails the call

    def _read(self) -> None:
        """Reader thread: route every reply to its call's future or delta callback."""
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self._eof = True
                self.process.join(1)  # reaped, so the error can say how it ended
                break
            except Exception as exc:  # noqa: BLE001 - an unreadable reply fails the calls, not the thread
                self._fail_all(ModelProcessError(f"unreadable reply from {self.info.name!r}'s process: {exc}"))
                continue
            kind, call_id, value = message
            call = self._calls.get(call_id)
            if call is None:
                continue
            loop, future, emit = call
            if kind == "delta":
                if emit is not None:
                    emit(value)
            elif kind in ("result", "error"):
                self._calls.pop(call_id, None)
                loop.call_soon_threadsafe(_settle, future, kind, value)
        self._fail_all(self._exited())

    def _exited(self) -> ModelProcessError:
        code = self.process.exitcode
        how = f"was killed ({signal.Signals(-code).name})" if code is not None and code < 0 and \
            -code in signal.valid_signals() else f"exited (code {code})"
        return ModelProcessError(
            f"the process serving {self.info.name!r} {how}",
            hint=f"it was killed or ran out of memory (its output is in {log_path()}); "
                 "the next request starts it again")

    def _fail_all(self, error: ModelProcessError) -> None:
        self._failure = error
        for call_id in list(self._calls):
            loop, future, _emit = self._calls.pop(call_id)
            loop.call_soon_threadsafe(_settle, future, "error", error)

    async def _call(self, method: str, *args, emit: Emit | None = None,
                    cancels: dict[str, CancelToken] | None = None) -> Any:
        """Run ``method(*args)`` in the child. A token in ``cancels`` that is set (from any
        thread) sends its request's cancel to the child at once; so does cancelling this call."""
        if self._failure is not None:
            raise self._failure
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        call_id = next(self._ids)
        self._calls[call_id] = (loop, future, emit)
        removers = []
        try:
            try:
                self._send(("call", call_id, method, args))
            except (OSError, ValueError):  # the process died and the reader has not noticed yet
                self._calls.pop(call_id, None)
                raise self._failure or self._exited() from None
            for request_id, token in (cancels or {}).items():
                removers.append(token.add_callback(functools.partial(self._send_cancel, request_id)))
            return await future
        except asyncio.CancelledError:
            for token in (cancels or {}).values():
                token.set()  # the caller gave up: the child stops these requests too
            raise
        finally:
            for remove in removers:
                remove()

    # ------------------------------------------------------------------------ the contract
    async def generate(self, requests: Sequence[GenerationRequest], cancels: Sequence[CancelToken],
                       emit: Emit | None) -> list[GenerationResult]:
        tokens = {r.request_id: c for r, c in zip(requests, cancels)}
        return await self._call("generate", list(requests), emit is not None, emit=emit, cancels=tokens)

    async def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LoglikelihoodResult]:
        return await self._call("loglikelihood", list(pairs))

    async def perplexity(self, texts: Sequence[str], max_length: int | None,
                         stride: int | None) -> list[PerplexityResult]:
        return await self._call("perplexity", list(texts), max_length, stride)

    async def fill_mask(self, request: FillMaskRequest) -> FillMaskResult:
        return await self._call("fill_mask", request)

    async def attention(self, request: AttentionRequest) -> AttentionResult:
        return await self._call("attention", request)

    async def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceScores]:
        """Option log-likelihoods computed in the model's process (see :mod:`engine.choice_scoring`)."""
        return await self._call("score_choices", list(requests))

    async def aclose(self) -> None:
        try:
            self._send(("close",))
        except (OSError, ValueError):
            pass  # already gone
        await asyncio.to_thread(self.process.join, 30)
        if self.process.is_alive():
            log.warning("the process serving %s did not exit; terminating it", self.info.name)
            self.process.terminate()
            await asyncio.to_thread(self.process.join, 5)
        self.conn.close()


def _start(process: multiprocessing.process.BaseProcess) -> None:
    """Start ``process`` with the real stderr in place. A TUI (Textual) swaps ``sys.stderr`` for
    an object whose ``fileno()`` is -1, and multiprocessing's resource tracker hands stderr's
    descriptor to its own process: "bad value(s) in fds_to_keep"."""
    saved = sys.stderr
    try:
        usable = saved is not None and saved.fileno() >= 0
    except Exception:  # noqa: BLE001 - no descriptor at all
        usable = False
    if not usable and sys.__stderr__ is not None:
        sys.stderr = sys.__stderr__
    try:
        process.start()
    finally:
        sys.stderr = saved


def _settle(future: asyncio.Future, kind: str, value: Any) -> None:
    if future.done():
        return
    if kind == "result":
        future.set_result(value)
    else:
        future.set_exception(value)
