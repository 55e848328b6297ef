"""Runner benchmark: a scenario through lmscope's runner and store, against the same prompts
sent straight to the engine in one batch call, and against a naive per-example transformers loop.

    .venv/bin/python bench/runner.py [--scenario qa] [--runs 3] [--limit 30]

Prints medians of several runs in one process and their ratios (> 1: lmscope faster).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Engine, EngineConfig  # noqa: E402
from engine.device import default_threads, dtype_name, pick_device, pick_dtype  # noqa: E402
from engine.gguf_cache import converted_dir  # noqa: E402
from engine.spec import default_model_path  # noqa: E402
from scenarios.catalog import find_scenario  # noqa: E402
from scenarios.events import RunFinished  # noqa: E402
from scenarios.examples import draw_shots, few_shot_pool, load_examples  # noqa: E402
from scenarios.prompting import build_request  # noqa: E402
from scenarios.runner import ScenarioRun  # noqa: E402
from scenarios.store import Store  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="qa")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    scenario = find_scenario(args.scenario)
    examples = load_examples(scenario, args.limit)
    pool = few_shot_pool(scenario, examples)
    device = pick_device(None)
    dtype = pick_dtype(device)
    print(f"runner benchmark: scenario {scenario.name}, {len(examples)} examples, SmolLM2-135M-Instruct on {device} "
          f"{dtype_name(dtype)}, threads={threads}, medians of {args.runs} runs")
    store = Store(Path(tempfile.mkdtemp()) / "bench.sqlite")
    runner_s, engine_s, naive_s = [], [], []
    async with Engine(EngineConfig(threads=threads)) as engine:
        info = await engine.load("default")
        batch = (await engine.backend("default")).batch_size
        requests = lambda: [build_request(scenario, info, e, draw_shots(scenario, pool, e)) for e in examples]  # noqa: E731
        await engine.generate(requests()[:2])  # warm-up
        for _ in range(args.runs):
            start = time.perf_counter()
            async for event in ScenarioRun(scenario, ["default"], engine, store, limit=args.limit):
                if isinstance(event, RunFinished):
                    runner_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            await engine.generate(requests())
            engine_s.append(time.perf_counter() - start)

    if not args.skip_naive:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = converted_dir(default_model_path())
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
        chats = [[{"role": m.role, "content": m.content} for m in r.messages] for r in requests()]
        for _ in range(args.runs):
            start = time.perf_counter()
            for chat in chats:  # what a user writes: one example at a time
                ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True).to(device)
                with torch.inference_mode():
                    out = model.generate(**ids, max_new_tokens=scenario.generation.max_new_tokens, do_sample=False,
                                         pad_token_id=tokenizer.pad_token_id,
                                         stop_strings=list(scenario.generation.stop) or None, tokenizer=tokenizer)
                tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
            naive_s.append(time.perf_counter() - start)

    r, e = statistics.median(runner_s), statistics.median(engine_s)
    print(f"  lmscope run (runner + scoring + store)      {r:8.2f} s   {len(examples) / r:6.2f} ex/s")
    print(f"  engine.generate, same prompts, batch {batch:<3}   {e:8.2f} s   {len(examples) / e:6.2f} ex/s")
    print(f"  ratio runner / raw engine throughput         {e / r:8.2f}   (goal >= 0.95)")
    if naive_s:
        n = statistics.median(naive_s)
        print(f"  naive transformers loop, one at a time      {n:8.2f} s   {len(examples) / n:6.2f} ex/s")
        print(f"  ratio runner / naive loop throughput         {n / r:8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
