"""Engine benchmark: lmscope on both local backends against the raw libraries, in one process.

Prints medians of several runs of: raw transformers and raw llama.cpp (llama-cpp-python's own
``create_completion`` on the same GGUF and thread count) single streams; lmscope's chat stream,
batched throughput (what a scenario run sends), perplexity and load time on each backend; the
time to the first token, raw and through lmscope. Ratios compare numbers taken in this process,
interleaved run by run, so a machine busy with other work slows both sides alike: read the
ratios, not the absolute numbers. Not a test: nothing here asserts a speed.

Thread counts are the engine's defaults (llama.cpp: every physical core; torch: all cores but
one) unless ``--threads`` sets both. Raw llama.cpp runs on the worker thread of lmscope's
llama.cpp model: llama.cpp is built with OpenMP, which keeps one thread pool per calling
thread, and with two pools on a 2-core machine libgomp stops spinning at its barriers, which
cut raw llama.cpp from 77 to 21 tok/s here (a cost of measuring both in one process, not of
either side).

    .venv/bin/python bench/engine.py [--runs 3] [--threads N] [--cold-load]
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

from engine import (  # noqa: E402
    ChatMessage,
    ChatRequest,
    Engine,
    EngineConfig,
    GenerationParams,
    GenerationResult,
    ModelSpec,
)
from engine.device import default_threads, llama_threads  # noqa: E402
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
STORY = "Write a short story about a robot who learns to paint."
BACKENDS = ("llamacpp", "hf")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_texts(n: int) -> list[str]:
    path = ROOT.parent / "shared" / "data" / "scitldr" / "SciTLDR-A.test.jsonl"
    if path.is_file():
        with open(path) as fh:
            return [" ".join(json.loads(line)["source"]) for _, line in zip(range(n), fh)]
    return [" ".join(PROMPTS)] * n


# ------------------------------------------------------------------------------ raw libraries
class Stream:
    """Times of the first and last token of one answer and how many there were."""

    def __init__(self, started: float) -> None:
        self.started, self.first, self.last, self.tokens = started, None, None, 0

    def token(self, n: int = 1) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.last, self.tokens = now, self.tokens + n

    @property
    def ttft(self) -> float:
        return self.first - self.started

    @property
    def decode_rate(self) -> float:
        """Tokens per second after the first (the rate a reader sees)."""
        return (self.tokens - 1) / (self.last - self.first) if self.tokens > 1 else float("nan")


def raw_llama(threads: int):
    """llama-cpp-python's high-level Llama on the default GGUF, with the engine's one deviation
    from its defaults: no AMX weight repacking, which crashes on these machines (llama.cpp
    issue 20824) and does not apply to Q4_1 weights anyway."""
    import llama_cpp
    import llama_cpp.llama as high_level

    defaults = llama_cpp.llama_model_default_params

    def params():
        p = defaults()
        p.use_extra_bufts = False
        return p

    high_level.llama_cpp.llama_model_default_params = params
    try:
        return llama_cpp.Llama(str(default_model_path()), n_threads=threads, n_threads_batch=threads, n_ctx=2048,
                               verbose=False)
    finally:
        high_level.llama_cpp.llama_model_default_params = defaults


def raw_llama_stream(llm, prompt_text: str, max_new_tokens: int) -> Stream:
    llm.reset()  # no prompt cache from the previous run: the engine recomputes short prompts too
    stream = Stream(time.perf_counter())
    for _ in llm.create_completion(prompt_text, max_tokens=max_new_tokens, temperature=0.0, stream=True):
        stream.token()
    return stream


def raw_transformers_stream(model, ids: list[int], max_new_tokens: int, eos: list[int]) -> Stream:
    from transformers.generation.streamers import BaseStreamer

    class Timer(BaseStreamer):
        def __init__(self, stream: Stream) -> None:
            self.stream, self.prompt_seen = stream, False

        def put(self, value):
            if self.prompt_seen:
                self.stream.token()
            self.prompt_seen = True

        def end(self):
            pass

    stream = Stream(time.perf_counter())
    with torch.inference_mode():
        model.generate(input_ids=torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False,
                       streamer=Timer(stream), eos_token_id=eos, pad_token_id=eos[0])
    return stream


def raw_transformers_perplexity(model, tokenizer, texts: list[str]) -> float:
    """The loop a user writes: one forward pass per text. Tokens per second."""
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    start, tokens = time.perf_counter(), 0
    with torch.inference_mode():
        for text in texts:
            ids = torch.tensor([[prefix] + tokenizer(text, add_special_tokens=False)["input_ids"]])
            logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
            float(logprobs.gather(-1, ids[0, 1:, None]).sum())
            tokens += ids.shape[1] - 1
    return tokens / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------ lmscope
async def lmscope_stream(engine: Engine, max_new_tokens: int) -> tuple[Stream, GenerationResult]:
    request = ChatRequest("default", (ChatMessage("user", STORY),), GenerationParams(max_new_tokens=max_new_tokens))
    stream = Stream(time.perf_counter())
    async for event in engine.stream(request):
        if isinstance(event, GenerationResult):
            return stream, event
        stream.token(len(event.token_ids))
    raise RuntimeError("the stream ended without a result")


async def lmscope_batched(engine: Engine, prompts: list[str], max_new_tokens: int) -> tuple[float, str]:
    """New tokens per second over ``prompts``, sent as a scenario run sends them (the backend's
    batch size per call); and the dtype the batches ran in."""
    size = getattr(await engine.backend("default"), "batch_size", 8)
    params = GenerationParams(max_new_tokens=max_new_tokens)
    requests = [ChatRequest("default", (ChatMessage("user", p),), params) for p in prompts]
    start, new, dtype = time.perf_counter(), 0, "?"
    for i in range(0, len(requests), size):
        results = await engine.generate(requests[i:i + size])
        new += sum(r.usage.new_tokens for r in results)
        dtype = results[0].usage.dtype
    return new / (time.perf_counter() - start), dtype


async def lmscope_perplexity(engine: Engine, texts: list[str]) -> float:
    start = time.perf_counter()
    results = await engine.perplexity("default", texts)
    return sum(r.num_tokens for r in results) / (time.perf_counter() - start)


async def load_time(backend: str, threads: int | None) -> float:
    async with Engine(EngineConfig(threads=threads)) as engine:
        start = time.perf_counter()
        await engine.load(ModelSpec("default", backend=backend))
        return time.perf_counter() - start


# -------------------------------------------------------------------------------------- output
def line(name: str, value: float, unit: str, *, against: tuple[str, float] | None = None,
         goal: float | None = None) -> None:
    """One result: its median, a ratio to a baseline measured in this process, and the goal."""
    text = f"  {name:<46} {value:9.1f} {unit:<6}"
    if against:
        ratio = value / against[1]
        text += f"  {ratio:5.2f}x {against[0]:<26}"
        if goal:
            text += f"  goal >= {goal:g}x: {'met' if ratio >= goal else 'NOT met'}"
    print(text)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs of the batched, perplexity and load measurements")
    parser.add_argument("--stream-runs", type=int, default=5, help="runs of the single-stream measurements")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--ttft-runs", type=int, default=15, help="pairs of first-token measurements")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="single-stream answers")
    parser.add_argument("--batch-requests", type=int, default=32)
    parser.add_argument("--batch-new-tokens", type=int, default=48)
    parser.add_argument("--cold-load", action="store_true", help="also time a first Hugging Face load (dequantises)")
    args = parser.parse_args()
    threads = args.threads  # None: each backend's default
    torch_threads, llama_cpp_threads = threads or default_threads(), threads or llama_threads()
    torch.set_num_threads(torch_threads)
    prompts = (PROMPTS * (args.batch_requests // len(PROMPTS) + 1))[:args.batch_requests]
    print(f"lmscope engine benchmark: SmolLM2-135M-Instruct (GGUF Q4_1), cpu, {os.cpu_count()} cores, "
          f"threads: llama.cpp {llama_cpp_threads}, torch {torch_threads}, medians of {args.stream_runs} runs (single streams) and {args.runs} (the rest), "
          f"load average {os.getloadavg()[0]:.1f}")

    cold = None
    if args.cold_load:
        os.environ["LMSCOPE_CACHE_DIR"] = tempfile.mkdtemp(prefix="lmscope-bench-cold-")
        cold = await load_time("hf", threads)
    await load_time("hf", threads)  # fills the converted-model cache if empty
    loads = {b: [await load_time(b, threads) for _ in range(args.runs)] for b in BACKENDS}

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = converted_dir(default_model_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    eos = sorted({model.generation_config.eos_token_id, tokenizer.eos_token_id} - {None})
    story_ids = tokenizer.apply_chat_template([{"role": "user", "content": STORY}], add_generation_prompt=True,
                                              tokenize=True, return_dict=True)["input_ids"]
    llm = raw_llama(llama_cpp_threads)
    texts = load_texts(16)

    engines = {b: Engine(EngineConfig(threads=threads, backend=b)) for b in BACKENDS}
    try:
        prompt_text = ""
        for engine in engines.values():  # warm-up: load, first batch (the bfloat16 copy), first perplexity
            _, result = await lmscope_stream(engine, 4)
            prompt_text = prompt_text or result.prompt_text
            await lmscope_batched(engine, prompts[:2], 4)
            await lmscope_perplexity(engine, texts[:1])
        llama_worker = await engines["llamacpp"].backend("default")  # raw llama.cpp runs on its thread
        await llama_worker.call(raw_llama_stream, llm, prompt_text, 4)
        raw_transformers_stream(model, story_ids, 4, eos)

        rate = {k: [] for k in ("raw_hf", "raw_llama", "llamacpp", "hf")}
        ttft = {k: [] for k in rate}
        dtypes: dict[str, str] = {}
        for _ in range(args.stream_runs):
            for key, stream in (("raw_llama", await llama_worker.call(raw_llama_stream, llm, prompt_text,
                                                                      args.max_new_tokens)),
                                ("raw_hf", raw_transformers_stream(model, story_ids, args.max_new_tokens, eos))):
                rate[key].append(stream.decode_rate)
            for b, engine in engines.items():
                stream, result = await lmscope_stream(engine, args.max_new_tokens)
                rate[b].append(stream.decode_rate)
                dtypes[b] = f"{result.usage.dtype}, {result.usage.dtype_choice}"
        # Time to first token varies by ±40 ms run to run here (a ~170 ms prefill), more than the
        # overhead measured: pairs of runs back to back, and the median of their differences.
        for _ in range(args.ttft_runs):
            pairs = ((await llama_worker.call(raw_llama_stream, llm, prompt_text, 2), "raw_llama", "llamacpp"),
                     (raw_transformers_stream(model, story_ids, 2, eos), "raw_hf", "hf"))
            for raw_stream, raw, b in pairs:
                stream, _ = await lmscope_stream(engines[b], 2)
                ttft[raw].append(raw_stream.ttft)
                ttft[b].append(stream.ttft)
        batched = {b: [] for b in BACKENDS}
        batch_dtypes: dict[str, str] = {}
        for _ in range(args.runs):
            for b, engine in engines.items():
                tps, batch_dtypes[b] = await lmscope_batched(engine, prompts, args.batch_new_tokens)
                batched[b].append(tps)
        ppl = {k: [] for k in ("raw_hf", *BACKENDS)}
        for _ in range(args.runs):
            ppl["raw_hf"].append(raw_transformers_perplexity(model, tokenizer, texts))
            for b, engine in engines.items():
                ppl[b].append(await lmscope_perplexity(engine, texts))
    finally:
        for engine in engines.values():
            await engine.aclose()

    m = {k: median(v) for k, v in rate.items()}
    print("\nload the default model (hf: from the converted-model cache)")
    line("lmscope on llama.cpp", median(loads["llamacpp"]), "s")
    line("lmscope on transformers", median(loads["hf"]), "s")
    if cold is not None:
        line("lmscope on transformers, first load (dequantise)", cold, "s")
    print(f"  goal: default ready in < 2 s on llama.cpp: {'met' if median(loads['llamacpp']) < 2 else 'NOT met'}")

    print(f"\nsingle stream, decode rate after the first token ({args.max_new_tokens} new tokens at most, greedy)")
    line("raw transformers (model.generate, float32)", m["raw_hf"], "tok/s")
    line("raw llama.cpp (Llama.create_completion)", m["raw_llama"], "tok/s", against=("raw transformers", m["raw_hf"]))
    line("lmscope chat stream on llama.cpp", m["llamacpp"], "tok/s", against=("raw llama.cpp", m["raw_llama"]),
         goal=0.9)
    line("  (the same, against transformers)", m["llamacpp"], "tok/s", against=("raw transformers", m["raw_hf"]),
         goal=3)
    line("lmscope chat stream on transformers", m["hf"], "tok/s", against=("raw transformers", m["raw_hf"]))
    print(f"    (transformers ran the stream in {dtypes['hf']})")

    print(f"\ntime to first token (ms; the same prompt, no prompt cache; medians of {args.ttft_runs} raw/lmscope "
          "pairs, overhead = median of the pairs' differences)")
    for b, raw, label in (("llamacpp", "raw_llama", "llama.cpp"), ("hf", "raw_hf", "transformers")):
        ours, theirs = median(ttft[b]) * 1000, median(ttft[raw]) * 1000
        overhead = median([o - t for o, t in zip(ttft[b], ttft[raw])]) * 1000
        verdict = "met" if overhead <= 10 else "NOT met"
        print(f"  {label:<14} raw {theirs:8.1f} ms   lmscope {ours:8.1f} ms   "
              f"streaming overhead {overhead:+7.1f} ms   goal <= 10 ms: {verdict}")

    print(f"\nbatched scenario throughput: {len(prompts)} chat requests, {args.batch_new_tokens} new tokens at most, "
          "new tokens per second, prompts included")
    for b in BACKENDS:
        line(f"lmscope on {b} ({batch_dtypes[b]})", median(batched[b]), "tok/s",
             against=("raw llama.cpp single stream", m["raw_llama"]), goal=2)

    print("\nperplexity, 16 SciTLDR abstracts (scored tokens per second)")
    line("raw transformers (one forward pass per text)", median(ppl["raw_hf"]), "tok/s")
    for b in BACKENDS:
        line(f"lmscope on {b}", median(ppl[b]), "tok/s", against=("raw transformers", median(ppl["raw_hf"])))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: absolute numbers move with "
          "other work on the machine; ratios compare runs interleaved in this process")


if __name__ == "__main__":
    asyncio.run(main())
