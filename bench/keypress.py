"""Keypress-to-screen latency while answers stream, in the chat view and a 4-pane comparison.

    .venv/bin/python bench/keypress.py [--keys 60] [--runs 3] [--model FOLDER]

A small randomly initialised model that never ends (as ``bench/tui.py --stress``) streams byte
soup at its full rate, in a process of its own as in the app. Meanwhile a key is posted to the
app every 150 ms, as the terminal driver posts it; its latency is the time until the first
screen update that shows the editor holding it (the moment the app writes the frame to the
terminal). Prints the median and the largest latency, medians over runs; the goal is a median
of at most 30 ms and a maximum of at most 75 ms.
"""

from __future__ import annotations

import argparse
import shutil
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events  # noqa: E402

from engine import Engine, EngineConfig, GenerationParams  # noqa: E402
from scenarios.store import Store  # noqa: E402
from tests.tui.pilot_helpers import HostApp, wait_for  # noqa: E402
from tui.screens.chat import ChatScreen  # noqa: E402
from tui.screens.compare import CompareScreen  # noqa: E402
from tui.widgets.chat_input import ChatInput  # noqa: E402

INTERVAL_S = 0.15
LETTERS = "abcdefghijklmnopqrstuvwxyz"


async def _type_while_streaming(pilot, editor: ChatInput, keys: int, streaming) -> list[float]:
    """Post ``keys`` keys to the app one by one; the latency of each (seconds)."""
    app = pilot.app
    display = app._display
    pending: dict[str, float] = {}
    latencies: list[float] = []

    def timed_display(screen, renderable) -> None:
        display(screen, renderable)
        if renderable is not None and pending:
            text = editor.text
            for expected, posted in list(pending.items()):
                if text.endswith(expected):
                    latencies.append(time.perf_counter() - posted)
                    del pending[expected]

    app._display = timed_display
    try:
        typed = ""
        for n in range(keys):
            if not streaming():
                break
            letter = LETTERS[n % len(LETTERS)]
            typed = "" if len(typed) > 40 else typed
            typed += letter
            pending[typed] = time.perf_counter()
            app.post_message(events.Key(letter, letter))
            await asyncio.sleep(INTERVAL_S)
            if len(typed) > 40:
                editor.clear()
    finally:
        app._display = display
    return latencies


async def chat_latency(model: str, keys: int) -> list[float]:
    app = HostApp(ChatScreen, model=model, engine=Engine(EngineConfig()),
                  store=Store(Path(tempfile.mkdtemp()) / "r.sqlite"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.host_screen
        await wait_for(pilot, lambda: screen.model_info is not None, steps=6000)
        screen.sampling.apply({"max_new_tokens": 3500})
        editor = screen.query_one("#chat-input", ChatInput)
        editor.value = "Tell me a long story."
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.last_result is None and screen.query("ChatTurn")
                       and len(screen.query_one("ChatTurn").answer.source) > 200, steps=6000)
        latencies = await _type_while_streaming(pilot, editor, keys, lambda: screen.generating)
        screen.action_stop()
        await wait_for(pilot, lambda: not screen.generating)
    return latencies


async def compare_latency(model: str, keys: int) -> list[float]:
    # Four copies: one model's requests run in order, so four panes on one model would take turns.
    copies = [model] + [shutil.copytree(model, f"{model}-copy{i}", dirs_exist_ok=True) for i in range(1, 4)]
    screen = CompareScreen(", ".join(copies), params=GenerationParams(max_new_tokens=3500))
    app = HostApp(screen, model=model, engine=Engine(EngineConfig()),
                  store=Store(Path(tempfile.mkdtemp()) / "r.sqlite"))
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: len(screen.panes) == 4, steps=6000)
        editor = screen.query_one("#prompt", ChatInput)
        editor.value = "Tell me a long story."
        editor.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: all(len(p.text) > 200 for p in screen.panes), steps=6000)
        latencies = await _type_while_streaming(pilot, editor, keys,
                                                lambda: any(p.streaming for p in screen.panes))
        screen.action_stop_all()
        await wait_for(pilot, lambda: not any(p.streaming for p in screen.panes))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default=None, help="default: a random never-ending tiny model")
    args = parser.parse_args()
    model = args.model
    if model is None:
        from tests.tiny_models import build_causal

        model = str(build_causal(Path(tempfile.mkdtemp()) / "never-ends", max_positions=4096, hidden=256, layers=4,
                                 never_ends=True))
    for name, measure in (("chat", chat_latency), ("compare, 4 panes", compare_latency)):
        medians, maxima, counts = [], [], []
        for _ in range(args.runs):
            latencies = asyncio.run(measure(model, args.keys))
            if latencies:
                medians.append(statistics.median(latencies) * 1000)
                maxima.append(max(latencies) * 1000)
                counts.append(len(latencies))
        if not medians:
            print(f"  {name:<18} no keys measured (the answer ended first)")
            continue
        print(f"  {name:<18} keypress-to-screen while streaming: median {statistics.median(medians):6.1f} ms, "
              f"max {statistics.median(maxima):6.1f} ms   ({statistics.median(counts):.0f} keys, medians of "
              f"{len(medians)} runs; goal median <= 30 ms, max <= 75 ms)")


if __name__ == "__main__":
    main()
