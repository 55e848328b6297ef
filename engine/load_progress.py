"""Percentages for the slow loops of a transformers load: GGUF dequantisation and weight loading.

transformers runs both loops through a ``tqdm`` progress bar of its own module and offers no
callback. While :func:`reporting` is active on a thread, those bars on that thread feed the
caller's progress callback with lines such as ``"dequantising: 45% (120/272 tensors)"``
instead (at most four a second, and at the end); on every other thread they behave as before,
so two models loading at once each see only their own progress.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Iterable, Iterator

# The modules whose own ``tqdm`` name drives a loop worth reporting (transformers 5.x), and what
# the loop does.
_LOOPS = {
    "transformers.modeling_gguf_pytorch_utils": "dequantising",
    "transformers.core_model_loading": "loading weights",
}
_INTERVAL_S = 0.25

_reporters: dict[int, Callable[[str], None]] = {}
_install_lock = threading.Lock()
_installed = False


def _counted(iterable: Iterable[Any], stage: str, say: Callable[[str], None]) -> Iterator[Any]:
    try:
        total = len(iterable)  # type: ignore[arg-type]
    except TypeError:
        total = 0
    last = 0.0
    for done, item in enumerate(iterable, 1):
        yield item
        now = time.monotonic()
        if total and (now - last >= _INTERVAL_S or done == total):
            last = now
            say(f"{stage}: {100 * done // total}% ({done}/{total} tensors)")


class _CountedBar:
    """What the wrapped ``tqdm(...)`` returns on a reporting thread: iterating it reports to
    ``say``; anything else a loop may do with a bar (``with``, ``set_postfix``) goes to a
    disabled bar of the original kind, so a changed loop still loads."""

    def __init__(self, bar: Any, iterable: Iterable[Any], stage: str, say: Callable[[str], None]) -> None:
        self._bar, self._iterable, self._stage, self._say = bar, iterable, stage, say

    def __iter__(self) -> Iterator[Any]:
        return _counted(self._iterable, self._stage, self._say)

    def __len__(self) -> int:
        return len(self._iterable)  # type: ignore[arg-type]

    def __enter__(self) -> "_CountedBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bar.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bar, name)


def _wrap(original: Callable[..., Any], stage: str) -> Callable[..., Any]:
    def tqdm(iterable: Iterable[Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        say = _reporters.get(threading.get_ident())
        if say is None or iterable is None:
            return original(iterable, *args, **kwargs)
        return _CountedBar(original(iterable, *args, **{**kwargs, "disable": True}), iterable, stage, say)

    tqdm.lmscope_wrapped = True  # type: ignore[attr-defined]
    return tqdm


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        import importlib

        for name, stage in _LOOPS.items():
            try:
                module = importlib.import_module(name)
            except ImportError:  # another transformers version: that loop stays silent
                continue
            original = getattr(module, "tqdm", None)
            if original is not None and not getattr(original, "lmscope_wrapped", False):
                module.tqdm = _wrap(original, stage)
        _installed = True


@contextlib.contextmanager
def reporting(say: Callable[[str], None]) -> Iterator[None]:
    """Within the block, transformers' load loops on this thread report their percentages to ``say``."""
    _install()
    key = threading.get_ident()
    _reporters[key] = say
    try:
        yield
    finally:
        _reporters.pop(key, None)
