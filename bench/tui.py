"""TUI benchmark: stream a long answer into the chat view headlessly and measure the UI's cost.

    .venv/bin/python bench/tui.py [--tokens 2000] [--model default|FOLDER]

Prints the UI thread's CPU time over the generation's wall time, the largest event-loop stall
(gap between 5 ms timer ticks), and the render cost per token (UI thread CPU per token: the
Markdown append and the layout and paint it sets off) over tokens 50-250 and over the last 200
tokens (linear rendering keeps them about equal). The model is the embedded default
(real prose, lists and paragraphs; it may end before --tokens). ``--stress`` uses a small
randomly initialised model that never ends and streams byte soup at ~150 tok/s instead.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.widgets import Input  # noqa: E402

from engine import Engine, EngineConfig  # noqa: E402
from scenarios.store import Store  # noqa: E402
from tui.base import LmscopeAppBase  # noqa: E402
from tui.screens.chat import ChatScreen  # noqa: E402
from tui.widgets import chat_stream  # noqa: E402


class Host(LmscopeAppBase):
    def on_mount(self) -> None:
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self.set_interval(0.005, self._tick)
        self.push_screen(ChatScreen())

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now


async def measure(model: str, tokens: int) -> dict[str, float]:
    delivered = 0
    flushes: list[tuple[int, float]] = []  # (tokens delivered so far, UI thread CPU seconds so far)
    write, flush = chat_stream.BufferedMarkdownStream.write, chat_stream.BufferedMarkdownStream._flush

    def counting_write(self, text: str) -> None:
        nonlocal delivered
        delivered += 1
        write(self, text)

    async def recorded_flush(self) -> None:
        await flush(self)
        flushes.append((delivered, time.thread_time()))

    chat_stream.BufferedMarkdownStream.write = counting_write
    chat_stream.BufferedMarkdownStream._flush = recorded_flush
    app = Host(model=model, engine=Engine(EngineConfig()), store=Store(Path(tempfile.mkdtemp()) / "r.sqlite"))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            while screen.model_info is None:
                await pilot.pause(0.05)
            screen.sampling.apply({"max_new_tokens": tokens})
            screen.query_one("#chat-input", Input).value = "Tell me a very long story about a lighthouse keeper."
            app.gaps.clear()
            ui_cpu = time.thread_time()
            started = time.perf_counter()
            await pilot.press("enter")
            await pilot.pause(0.05)
            while screen.generating:
                await pilot.pause(0.05)
            generation_s = time.perf_counter() - started
            ui_cpu = time.thread_time() - ui_cpu
            gaps = list(app.gaps)
    finally:
        chat_stream.BufferedMarkdownStream.write = write
        chat_stream.BufferedMarkdownStream._flush = flush

    def per_token(lo: int, hi: int) -> float:
        """UI thread CPU per token between the flushes around tokens ``lo`` and ``hi``: the append
        and everything it sets off on the UI thread (layout, paint), plus timers (a constant rate)."""
        window = [(n, cpu) for n, cpu in flushes if lo <= n <= hi]
        if len(window) < 2:
            return float("nan")
        (n0, cpu0), (n1, cpu1) = window[0], window[-1]
        return (cpu1 - cpu0) / max(1, n1 - n0)

    last = delivered
    return {"tokens": delivered, "generation_s": generation_s, "ui_cpu_s": ui_cpu,
            "stall_ms": max(gaps) * 1000 if gaps else 0.0,
            "render_100_ms": per_token(50, 250) * 1000,
            "render_end_ms": per_token(last - 200, last) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--model", default="default")
    parser.add_argument("--stress", action="store_true", help="a random never-ending model instead")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    model = args.model
    if args.stress:
        from tests.tiny_models import build_causal

        model = str(build_causal(Path(tempfile.mkdtemp()) / "never-ends", max_positions=4096, hidden=256, layers=4,
                                 never_ends=True))
    runs = [asyncio.run(measure(model, args.tokens)) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"TUI benchmark: {med['tokens']:.0f}-token answer streamed into the chat view, medians of {args.runs} runs")
    print(f"  generation wall time                 {med['generation_s']:8.2f} s ({med['tokens'] / med['generation_s']:.0f} tok/s)")
    print(f"  UI thread CPU / generation time      {med['ui_cpu_s'] / med['generation_s']:8.2f}")
    print(f"  largest event-loop stall             {med['stall_ms']:8.1f} ms   (goal < 50 ms)")
    print(f"  render cost per token, tokens 50-250 {med['render_100_ms']:8.3f} ms")
    print(f"  render cost per token, last 200      {med['render_end_ms']:8.3f} ms   "
          f"(ratio {med['render_end_ms'] / max(med['render_100_ms'], 1e-9):.2f}; linear rendering keeps it ~1)")


if __name__ == "__main__":
    main()
