"""Helpers shared by the pilot tests."""

from __future__ import annotations

from typing import Callable


async def wait_for(pilot, condition: Callable[[], object], steps: int = 1500) -> None:
    """Let the app run until ``condition()`` holds (polling every 20 ms, at most ``steps`` times)."""
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not reached")
