"""Remote backend benchmark: scenario throughput through ``transformers serve`` (continuous
batching) vs the in-process engine, on the same model (the embedded SmolLM2-135M-Instruct,
served from its converted safetensors copy), at 1, 4 and 16 requests in flight.

A "scenario run" here is what the runner does: one ``Engine.generate`` call with all examples.
In-process, the concurrency is the batch size; remotely, it is the endpoint's
``max_concurrency`` and the server batches what is in flight. Both sides get the same torch
thread count and dtype, and never run at the same time. Prints medians of ``--runs`` runs
and remote / local ratios (> 1: the remote backend is faster). Not a test: nothing asserts a speed.

    .venv/bin/python bench/remote.py [--runs 3] [--max-new-tokens 32] [--no-continuous-batching]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import ChatMessage, ChatRequest, Engine, EngineConfig, GenerationParams  # noqa: E402
from engine.device import default_threads  # noqa: E402
from engine.gguf_cache import converted_dir  # noqa: E402
from engine.spec import default_model_path  # noqa: E402
from tests.remote.serve import TransformersServe  # noqa: E402

PROMPTS = [
    "What is the capital of France?", "Explain photosynthesis in two sentences.", "Write a haiku about the sea.",
    "Give three tips for learning a new language.", "Why is the sky blue?", "What does a compiler do?",
    "Summarise the plot of Romeo and Juliet.", "Name three planets of the solar system.",
    "How many legs does a spider have?", "What is machine learning?", "What causes rain?",
    "Suggest a name for a friendly robot.", "Translate 'good morning' into German.",
    "Describe a cat to someone who has never seen one.", "Write a short thank-you note to a teacher.",
    "What is the difference between a list and a tuple in Python?",
]
LEVELS = (1, 4, 16)


def workload(concurrency: int, model: str, max_new_tokens: int) -> list[ChatRequest]:
    """``max(4, 2 x concurrency)`` chat requests, so every level keeps its slots busy for a while."""
    n = max(4, 2 * concurrency)
    params = GenerationParams(max_new_tokens=max_new_tokens)
    return [ChatRequest(model, (ChatMessage("user", PROMPTS[i % len(PROMPTS)]),), params) for i in range(n)]


async def timed_run(engine: Engine, requests: list[ChatRequest]) -> float:
    """Throughput of one scenario run, in new tokens per second."""
    start = time.perf_counter()
    results = await engine.generate(requests)
    return sum(r.usage.new_tokens for r in results) / (time.perf_counter() - start)


async def measure_local(runs: int, max_new_tokens: int, threads: int) -> tuple[dict[int, float], str]:
    async with Engine(EngineConfig(threads=threads)) as engine:
        info = await engine.load("default")
        backend = await engine.backend("default")
        await engine.generate(workload(1, "default", 4))  # warm-up
        out = {}
        for level in LEVELS:
            backend.batch_size = level  # the in-process backend's batch size is its concurrency
            out[level] = statistics.median([await timed_run(engine, workload(level, "default", max_new_tokens))
                                            for _ in range(runs)])
            print(f"  local  c={level:<2} {out[level]:7.1f} tok/s", flush=True)
        return out, info.dtype


async def measure_remote(server: TransformersServe, runs: int, max_new_tokens: int) -> dict[int, float]:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text("".join(f'[endpoints.c{level}]\nurl = "{server.url}"\nmodel = "{server.model}"\n'
                                  f"max_concurrency = {level}\n" for level in LEVELS))
        os.environ["LMSCOPE_CONFIG"] = str(config)
        async with Engine() as engine:
            await engine.generate(workload(1, "openai:c1", 4))  # warm-up
            out = {}
            for level in LEVELS:
                spec = f"openai:c{level}"
                out[level] = statistics.median([await timed_run(engine, workload(level, spec, max_new_tokens))
                                                for _ in range(runs)])
                print(f"  remote c={level:<2} {out[level]:7.1f} tok/s", flush=True)
            return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads, both sides (default: cores - 1)")
    parser.add_argument("--no-continuous-batching", action="store_true", help="serve without --continuous-batching")
    args = parser.parse_args()
    threads = args.threads or default_threads()
    started = time.perf_counter()
    print(f"remote backend benchmark: SmolLM2-135M-Instruct, {os.cpu_count()} cores, {threads} torch threads, "
          f"{args.max_new_tokens} new tokens, median of {args.runs} runs", flush=True)

    local, dtype = await measure_local(args.runs, args.max_new_tokens, threads)  # also writes the converted copy
    cb = () if args.no_continuous_batching else ("--continuous-batching",)
    with tempfile.TemporaryDirectory() as logs:
        server = TransformersServe(converted_dir(default_model_path()), Path(logs) / "serve.log",
                                   extra_args=("--dtype", dtype, *cb), threads=threads)
        server.start()
        try:
            remote = await measure_remote(server, args.runs, args.max_new_tokens)
        finally:
            server.stop()

    mode = "continuous batching" if cb else "no continuous batching"
    print(f"\nscenario throughput (new tokens/s), {dtype}; remote = transformers serve, {mode}")
    print(f"  {'in flight':>9}  {'local':>8}  {'remote':>8}  {'remote/local':>12}")
    for level in LEVELS:
        print(f"  {level:>9}  {local[level]:8.1f}  {remote[level]:8.1f}  {remote[level] / local[level]:12.2f}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
