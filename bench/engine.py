"""Engine benchmark: lmscope's engine against raw transformers calls in the same process.

Prints medians of several runs and their ratios (engine / raw; > 1 means the engine is faster
for throughputs, < 1 better for times). Not a test: nothing here asserts a speed.

    .venv/bin/python bench/engine.py [--runs 3] [--max-new-tokens 48] [--batch-size N]

Runs unchanged on CUDA (bfloat16, batch 64 by default there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import ChatMessage, ChatRequest, Engine, EngineConfig, GenerationParams, GenerationResult  # noqa: E402
from engine.device import default_threads, dtype_name, pick_device, pick_dtype  # noqa: E402
from engine.gguf_cache import converted_dir  # noqa: E402
from engine.spec import default_model_path  # noqa: E402

PROMPTS = [
    "What is the capital of France?",
    "Explain photosynthesis in two sentences.",
    "Write a haiku about the sea.",
    "Give three tips for learning a new language.",
    "What is the difference between a list and a tuple in Python?",
    "Summarise the plot of Romeo and Juliet.",
    "Why is the sky blue?",
    "Translate 'good morning' into German.",
    "Name three planets of the solar system.",
    "What does a compiler do?",
    "Suggest a name for a friendly robot.",
    "How many legs does a spider have?",
    "What is machine learning?",
    "Describe a cat to someone who has never seen one.",
    "Write a short thank-you note to a teacher.",
    "What causes rain?",
]


def median(values: list[float]) -> float:
    return statistics.median(values)


def raw_inputs(tokenizer, prompts: list[str]) -> list[list[int]]:
    return [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                          tokenize=True, return_dict=True)["input_ids"] for p in prompts]


def count_new(tokens: torch.Tensor, eos: set[int]) -> int:
    """New tokens a sequence really produced: up to and including its first end token."""
    total = 0
    for row in tokens.tolist():
        n = 0
        for t in row:
            n += 1
            if t in eos:
                break
        total += n
    return total


def raw_generate(model, tokenizer, ids_list: list[list[int]], max_new_tokens: int, eos: set[int]) -> tuple[int, float]:
    """What a user writes: left-padded batch, model.generate, greedy. Returns (new tokens, seconds)."""
    width = max(len(i) for i in ids_list)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(i)) + i for i in ids_list], device=model.device)
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids_list], device=model.device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=pad, eos_token_id=sorted(eos))
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return count_new(out[:, width:], eos), time.perf_counter() - start


def raw_ttft(model, tokenizer, ids: list[int]) -> float:
    """Time from calling generate to the first new token reaching a streamer."""
    from transformers.generation.streamers import BaseStreamer

    class FirstToken(BaseStreamer):
        def __init__(self):
            self.calls, self.at = 0, None

        def put(self, value):
            self.calls += 1
            if self.calls == 2 and self.at is None:
                self.at = time.perf_counter()

        def end(self):
            pass

    streamer = FirstToken()
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=torch.tensor([ids], device=model.device), max_new_tokens=2, do_sample=False,
                       streamer=streamer, pad_token_id=tokenizer.pad_token_id)
    return streamer.at - start


def raw_perplexity_tokens(model, tokenizer, texts: list[str]) -> tuple[int, float]:
    """The loop a user writes: one forward pass per text, log-softmax, gather."""
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    start = time.perf_counter()
    tokens = 0
    with torch.inference_mode():
        for text in texts:
            ids = torch.tensor([[prefix] + tokenizer(text, add_special_tokens=False)["input_ids"]], device=model.device)
            logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
            float(logprobs.gather(-1, ids[0, 1:, None]).sum())
            tokens += ids.shape[1] - 1
    return tokens, time.perf_counter() - start


def load_texts(n: int) -> list[str]:
    path = ROOT.parent / "shared" / "data" / "scitldr" / "SciTLDR-A.test.jsonl"
    if path.is_file():
        with open(path) as fh:
            return [" ".join(json.loads(line)["source"]) for _, line in zip(range(n), fh)]
    return [" ".join(PROMPTS)] * n


async def engine_batched(engine: Engine, prompts: list[str], params: GenerationParams) -> tuple[int, float]:
    requests = [ChatRequest("default", (ChatMessage("user", p),), params) for p in prompts]
    start = time.perf_counter()
    results = await engine.generate(requests)
    return sum(r.usage.new_tokens for r in results), time.perf_counter() - start


async def engine_ttft(engine: Engine, prompt: str) -> float:
    start = time.perf_counter()
    async for event in engine.stream(ChatRequest("default", (ChatMessage("user", prompt),), GenerationParams(max_new_tokens=2))):
        if not isinstance(event, GenerationResult):
            return time.perf_counter() - start
    raise RuntimeError("no token")


async def timed_load(cache_dir: str) -> float:
    """Load the default model in a fresh engine using the given converted-model cache folder."""
    os.environ["LMSCOPE_CACHE_DIR"] = cache_dir
    async with Engine(EngineConfig(threads=THREADS)) as eng:
        start = time.perf_counter()
        await eng.load("default")
        return time.perf_counter() - start


def continuous_batching(model, ids_list: list[list[int]], max_new_tokens: int, eos: set[int]) -> tuple[int, float] | str:
    from transformers import GenerationConfig

    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=sorted(eos),
                              pad_token_id=model.generation_config.pad_token_id)
    try:
        start = time.perf_counter()
        out = model.generate_batch(inputs=ids_list, generation_config=config, progress_bar=False)
        elapsed = time.perf_counter() - start
        return sum(len(o.generated_tokens) for o in out.values()), elapsed
    except Exception as exc:  # noqa: BLE001 - report why it cannot run here
        return f"unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})"


def row(name: str, engine_value: float, raw_value: float, unit: str, higher_is_better: bool = True) -> None:
    ratio = engine_value / raw_value if raw_value else float("nan")
    note = "engine faster" if (ratio > 1) == higher_is_better else "raw faster"
    print(f"  {name:<44} engine {engine_value:9.2f} {unit:<6} raw {raw_value:9.2f} {unit:<6} ratio {ratio:5.2f}  ({note})")


THREADS = default_threads()


async def main() -> None:
    global THREADS
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load-runs", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    THREADS = args.threads or THREADS
    torch.set_num_threads(THREADS)
    device = pick_device(None)
    dtype = pick_dtype(device)
    batch = args.batch_size or (64 if device.startswith("cuda") else 16)
    prompts = (PROMPTS * ((batch + len(PROMPTS) - 1) // len(PROMPTS)))[:max(batch, len(PROMPTS))]
    print(f"lmscope engine benchmark: SmolLM2-135M-Instruct on {device} ({torch.cuda.get_device_name() if device.startswith('cuda') else os.cpu_count()} "
          f"{'GPU' if device.startswith('cuda') else 'cores'}), {dtype_name(dtype)}, threads={THREADS}, "
          f"{len(prompts)} prompts, batch {batch}, max_new_tokens={args.max_new_tokens}, medians of {args.runs} runs")

    # Loads: cold (dequantise GGUF) vs converted cache, each in a fresh cache folder / the warm one.
    cold, warm = [], []
    cache = tempfile.mkdtemp(prefix="lmscope-bench-cache-")
    for _ in range(args.load_runs):
        fresh = tempfile.mkdtemp(prefix="lmscope-bench-cold-")
        cold.append(await timed_load(fresh))
    await timed_load(cache)  # fill
    for _ in range(args.runs):
        warm.append(await timed_load(cache))
    os.environ["LMSCOPE_CACHE_DIR"] = cache

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = converted_dir(default_model_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    eos = {model.generation_config.eos_token_id, tokenizer.eos_token_id} - {None}
    ids_list = raw_inputs(tokenizer, prompts)
    params = GenerationParams(max_new_tokens=args.max_new_tokens)

    async with Engine(EngineConfig(threads=THREADS, max_batch_size=batch)) as engine:
        await engine.load("default")
        await engine_batched(engine, prompts[:2], params)  # warm-up
        raw_generate(model, tokenizer, ids_list[:2], 4, eos)

        e_tps, r_tps = [], []
        for _ in range(args.runs):
            n, t = await engine_batched(engine, prompts, params)
            e_tps.append(n / t)
            n, t = raw_generate(model, tokenizer, ids_list[:batch], args.max_new_tokens, eos)
            r_tps.append(n / t)

        cb = continuous_batching(model, ids_list[:batch], args.max_new_tokens, eos)

        e_seq, r_seq = [], []
        if not args.skip_sequential:
            for _ in range(args.runs):
                n_total, t_total = 0, 0.0
                for p in prompts[:8]:
                    n, t = await engine_batched(engine, [p], params)
                    n_total, t_total = n_total + n, t_total + t
                e_seq.append(n_total / t_total)
                n_total, t_total = 0, 0.0
                for ids in ids_list[:8]:
                    n, t = raw_generate(model, tokenizer, [ids], args.max_new_tokens, eos)
                    n_total, t_total = n_total + n, t_total + t
                r_seq.append(n_total / t_total)

        e_ttft, r_ttft = [], []
        for i in range(max(5, args.runs)):
            e_ttft.append(await engine_ttft(engine, PROMPTS[i % len(PROMPTS)]))
            r_ttft.append(raw_ttft(model, tokenizer, ids_list[i % len(PROMPTS)]))

        texts = load_texts(16)
        await engine.perplexity("default", texts[:2])
        e_ppl, r_ppl = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            results = await engine.perplexity("default", texts)
            e_ppl.append(sum(r.num_tokens for r in results) / (time.perf_counter() - start))
            n, t = raw_perplexity_tokens(model, tokenizer, texts)
            r_ppl.append(n / t)

    print("results (medians):")
    row(f"batched generate, batch {batch} (tok/s)", median(e_tps), median(r_tps), "tok/s")
    if isinstance(cb, str):
        print(f"  continuous batching (generate_batch): {cb}")
    else:
        row("static batching vs continuous batching (tok/s)", median(e_tps), cb[0] / cb[1], "tok/s")
    if e_seq:
        row("sequential generate, 1 request at a time", median(e_seq), median(r_seq), "tok/s")
    ttft_e, ttft_r = median(e_ttft) * 1000, median(r_ttft) * 1000
    print(f"  {'streaming time to first token (ms)':<44} engine {ttft_e:9.2f} ms     raw {ttft_r:9.2f} ms     "
          f"overhead {ttft_e - ttft_r:+.2f} ms")
    row("perplexity, 16 SciTLDR abstracts (tok/s)", median(e_ppl), median(r_ppl), "tok/s")
    print(f"  {'load: cold GGUF vs converted cache (s)':<44} cold {median(cold):9.2f} s      cache {median(warm):7.2f} s      "
          f"speed-up {median(cold) / median(warm):.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
