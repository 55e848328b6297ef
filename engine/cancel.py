"""Cancellation tokens that threads and asyncio tasks can both wait on, without polling.

The engine makes one :class:`CancelToken` per request and hands it to the backend. A decode loop
on a worker thread checks :meth:`CancelToken.is_set` once per step; a thread with nothing else to
do blocks in :meth:`CancelToken.wait`; a coroutine awaits :meth:`CancelToken.wait_async`, which
resumes on its own event loop as soon as any thread sets the token; a callback
(:meth:`CancelToken.add_callback`) forwards the cancel elsewhere (to a model process, say).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class CancelToken:
    """A one-way flag: once set it stays set. Every method is safe to call from any thread."""

    __slots__ = ("_callbacks", "_event", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"CancelToken({'set' if self.is_set() else 'clear'})"

    def is_set(self) -> bool:
        """Whether cancellation was asked for."""
        return self._event.is_set()

    def set(self) -> None:
        """Ask for cancellation: wake every waiter and run every callback (once, on the calling
        thread). Setting a set token again does nothing."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _run(callback)

    def wait(self, timeout: float | None = None) -> bool:
        """Block the calling thread until the token is set (or ``timeout`` seconds pass).
        Returns whether it is set. Never call this on an event loop: await :meth:`wait_async`."""
        return self._event.wait(timeout)

    def add_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` when the token is set: on the thread that sets it, or at once
        (here) if it is set already. Returns a function that removes the callback if it has not
        run yet. A callback that raises is logged, never propagated to whoever set the token."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        _run(callback)
        return _nothing

    async def wait_async(self) -> None:
        """Return once the token is set; set from any thread, this resumes on the awaiting
        task's own loop (``loop.call_soon_threadsafe``). Cancelling the awaiting task leaves
        nothing behind on the token."""
        if self.is_set():
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(_resolve, woken)
            except RuntimeError:  # the loop was closed meanwhile: nobody is waiting any more
                pass

        remove = self.add_callback(wake)
        try:
            await woken
        finally:
            remove()

    def _remove(self, callback: Callable[[], None]) -> None:
        with self._lock:
            try:
                self._callbacks.remove(callback)
            except ValueError:
                pass  # it ran already


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - the canceller must not fail because a listener did
        log.exception("a cancellation callback failed")


def _nothing() -> None:
    """What removing an already-run callback does."""
