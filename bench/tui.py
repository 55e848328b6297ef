"""TUI benchmark: stream a long answer into the chat view headlessly and measure the UI's cost.

    .venv/bin/python bench/tui.py [--tokens 2000] [--model default|FOLDER] [--runs 3] [--in-process]

Each run has three parts, in one process:

1. **Live**: the chat screen asks the model (the embedded default: real prose, lists and
   paragraphs; it may end before --tokens) for a long story, greedy, as the app does (the model
   in a process of its own unless --in-process). Prints the UI thread's CPU time over the
   generation's wall time and the largest event-loop stall (gap between 5 ms timer ticks).
2. **Baseline**: the same request streamed through a bare in-process :class:`Engine` with no UI,
   for the decode rate the app should match (ratio app / engine).
3. **Render cost per token**: the live answer's deltas replayed into a fresh chat turn at a
   fixed pace (one delta, then 20 ms for layout and paint), measuring the UI thread's CPU per
   token over tokens 50-250 (the view not yet full: less to paint), 800-1000 (the view full)
   and the last 200, less the idle cost of the same 20 ms
   (timers, no text). A fixed pace keeps the two windows comparable (a live decode slows as
   the context grows, which alone would raise any per-token share of the UI's constant costs).
   Linear rendering keeps the ratio ~1.

``--stress`` uses a small randomly initialised model that never ends and streams byte soup at
~100-150 tok/s instead.
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

from engine import ChatMessage, ChatRequest, Engine, EngineConfig, GenerationParams, GenerationResult  # noqa: E402
from scenarios.store import Store  # noqa: E402
from tui.widgets.chat_input import ChatInput  # noqa: E402
from tui.base import LmscopeAppBase  # noqa: E402
from tui.screens.chat import ChatScreen  # noqa: E402
from tui.widgets import chat_stream  # noqa: E402
from tui.widgets.chat_turn import ChatTurn  # noqa: E402

PROMPT = "Tell me a very long story about a lighthouse keeper."
PACE_S = 0.02


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


async def replay(pilot, screen: ChatScreen, deltas: list[str]) -> tuple[float, float, float]:
    """Render cost per token (ms) over tokens 50-250 (the view still filling), 800-1000 (the
    view full) and the last 200, idle cost removed."""
    await screen.action_new_chat()
    turn = ChatTurn("replay")
    await screen.transcript.mount(turn)
    writer = chat_stream.BufferedMarkdownStream(turn.answer, interval=3600, on_flush=screen._follow)
    idle = []
    for _ in range(100):
        start = time.thread_time()
        await pilot.pause(PACE_S)
        idle.append(time.thread_time() - start)
    costs = []
    for text in deltas:
        start = time.thread_time()
        writer.write(text)
        await writer._flush()
        await pilot.pause(PACE_S)
        costs.append(time.thread_time() - start)
    await writer.stop()
    baseline = statistics.median(idle)
    early = statistics.mean(costs[50:250]) - baseline
    full = statistics.mean(costs[800:1000]) - baseline
    late = statistics.mean(costs[-200:]) - baseline
    return early * 1000, full * 1000, late * 1000


async def engine_alone(model: str, params: GenerationParams) -> float:
    """Decode rate (tok/s, after the first token) of the same request with no UI at all."""
    async with Engine(EngineConfig()) as engine:
        async for event in engine.stream(ChatRequest(model, (ChatMessage("user", PROMPT),), params)):
            if isinstance(event, GenerationResult):
                return event.usage.tokens_per_s
    raise RuntimeError("no result")


async def measure(model: str, tokens: int, isolate: bool) -> dict[str, float]:
    deltas: list[str] = []
    write = chat_stream.BufferedMarkdownStream.write

    def recording_write(self, text: str) -> None:
        deltas.append(text)
        write(self, text)

    app = Host(model=model, engine=Engine(EngineConfig(isolate=isolate)),
               store=Store(Path(tempfile.mkdtemp()) / "r.sqlite"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        while screen.model_info is None:
            await pilot.pause(0.05)
        screen.sampling.apply({"max_new_tokens": tokens})
        params = screen.sampling.params(logprobs=True, top_logprobs=5)  # what the chat screen sends
        screen.query_one("#chat-input", ChatInput).value = PROMPT
        chat_stream.BufferedMarkdownStream.write = recording_write
        try:
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
        app_rate = screen.last_result.usage.tokens_per_s
        render_early, render_full, render_late = await replay(pilot, screen, deltas)
    return {"tokens": len(deltas), "generation_s": generation_s, "ui_cpu_s": ui_cpu,
            "stall_ms": max(gaps) * 1000 if gaps else 0.0, "app_tok_s": app_rate,
            "engine_tok_s": await engine_alone(model, params),
            "render_early_ms": render_early, "render_full_ms": render_full, "render_late_ms": render_late}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--model", default="default")
    parser.add_argument("--stress", action="store_true", help="a random never-ending model instead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--in-process", action="store_true", help="the model in the app's process (the old way)")
    args = parser.parse_args()
    model = args.model
    if args.stress:
        from tests.tiny_models import build_causal

        model = str(build_causal(Path(tempfile.mkdtemp()) / "never-ends", max_positions=4096, hidden=256, layers=4,
                                 never_ends=True))
    runs = [asyncio.run(measure(model, args.tokens, isolate=not args.in_process)) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    where = "in the app's process" if args.in_process else "in its own process"
    print(f"TUI benchmark: {med['tokens']:.0f}-token answer streamed into the chat view, model {where}, "
          f"medians of {args.runs} runs")
    print(f"  generation wall time                 {med['generation_s']:8.2f} s")
    print(f"  UI thread CPU / generation time      {med['ui_cpu_s'] / med['generation_s']:8.2f}")
    print(f"  largest event-loop stall             {med['stall_ms']:8.1f} ms   (goal < 50 ms)")
    print(f"  decode rate in the app               {med['app_tok_s']:8.2f} tok/s")
    print(f"  decode rate, bare engine, no UI      {med['engine_tok_s']:8.2f} tok/s   "
          f"(ratio app / engine {med['app_tok_s'] / max(med['engine_tok_s'], 1e-9):.2f})")
    print(f"  render cost per token, tokens 50-250 {med['render_early_ms']:8.3f} ms   (the view still filling)")
    print(f"  render cost per token, 800-1000      {med['render_full_ms']:8.3f} ms   (the view full)")
    print(f"  render cost per token, last 200      {med['render_late_ms']:8.3f} ms   "
          f"(ratio to 50-250 {med['render_late_ms'] / max(med['render_early_ms'], 1e-9):.2f}, "
          f"to 800-1000 {med['render_late_ms'] / max(med['render_full_ms'], 1e-9):.2f}; linear rendering keeps it ~1)")


if __name__ == "__main__":
    main()
