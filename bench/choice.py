"""Multiple-choice scoring benchmark: the engine's batched option scoring (context encoded once,
its cache shared by the options) against a plain transformers loop that scores every
(context, option) pair on its own, on the same model object in the same process.

Prints options per second for each (median of several runs), their ratio (> 1: the engine is
faster) and the accuracy of both, which must be equal. Not a test: nothing here asserts a speed.

    .venv/bin/python bench/choice.py [--model default] [--shots 0] [--runs 3] [--repeat 1]

The set is the built-in ``commonsense_mc`` scenario (24 questions x 4 options), prompted as a
run prompts a causal model; ``--shots k`` puts k solved examples before each question (longer
shared contexts), ``--repeat n`` scores the set n times per run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evaluators  # noqa: E402
from engine import Engine, EngineConfig, ModelSpec  # noqa: E402
from engine.scoring import encode_pair  # noqa: E402
from scenarios.catalog import find_scenario  # noqa: E402
from scenarios.choice_prompting import build_choice_request  # noqa: E402
from scenarios.examples import draw_shots, load_examples  # noqa: E402
from scenarios.scenario import FewShot  # noqa: E402


def plain_loop(loaded, requests) -> list[list[float]]:
    """Every (context, option) pair in its own forward pass, lm-evaluation-harness's token rule."""
    model, out = loaded.model, []
    limit = loaded.info.context_length or 10**9
    with torch.inference_mode():
        for request in requests:
            scores = []
            for option in request.options:
                ctx, cont = encode_pair(loaded, request.context, option)
                ids = (ctx + cont)[-(limit + 1):]
                logits = model(input_ids=torch.tensor([ids[:-1]], device=loaded.device)).logits[0, -len(cont):]
                logprobs = torch.log_softmax(logits.float(), dim=-1)
                scores.append(float(logprobs.gather(-1, torch.tensor(cont, device=loaded.device)[:, None]).sum()))
            out.append(scores)
    return out


def accuracy(examples, logprobs: list[list[float]]) -> float:
    metric = evaluators.build("acc")
    for example, lps in zip(examples, logprobs):
        metric.add(evaluators.ChoiceOutcome(example.options, tuple(lps), example.gold))
    return metric.corpus().score


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    scenario = find_scenario("commonsense_mc")
    if args.shots:
        import dataclasses

        scenario = dataclasses.replace(scenario, few_shot=FewShot(args.shots, None))
    examples = load_examples(scenario) * args.repeat
    async with Engine(EngineConfig(threads=args.threads)) as engine:
        spec = ModelSpec(args.model, backend="hf")
        backend = await engine.backend(spec)
        loaded, info = backend.loaded, backend.info
        requests = [build_choice_request(scenario, info, e, draw_shots(scenario, examples, e)) for e in examples]
        n_options = sum(len(r.options) for r in requests)
        print(f"model {info.name} ({info.device}, {info.dtype}); {len(requests)} questions, {n_options} options, "
              f"{args.shots}-shot, batch size {backend.batch_size}")
        await engine.score_choices(spec.name, requests[:2])  # warm up both paths
        plain_loop(loaded, requests[:2])
        engine_times, plain_times, single_times = [], [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            scored = await engine.score_choices(spec.name, requests)
            engine_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            for request in requests:  # prefix reuse alone: no batching across questions
                await engine.score_choices(spec.name, [request])
            single_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            plain = await asyncio.to_thread(plain_loop, loaded, requests)
            plain_times.append(time.perf_counter() - start)
        engine_lps = [list(s.logprobs) for s in scored]
        worst = max(abs(a - b) for ea, pa in zip(engine_lps, plain) for a, b in zip(ea, pa))
        e_rate = n_options / statistics.median(engine_times)
        p_rate = n_options / statistics.median(plain_times)
        s_rate = n_options / statistics.median(single_times)
        print(f"engine (batched, prefix reuse): {e_rate:8.1f} options/s  (median of {args.runs}: "
              f"{statistics.median(engine_times):.2f} s)")
        print(f"engine, one question per call:  {s_rate:8.1f} options/s  (median of {args.runs}: "
              f"{statistics.median(single_times):.2f} s; prefix reuse without batching across questions)")
        print(f"plain transformers loop:        {p_rate:8.1f} options/s  (median of {args.runs}: "
              f"{statistics.median(plain_times):.2f} s)")
        print(f"ratio engine / plain: {e_rate / p_rate:.2f}x (one question per call: {s_rate / p_rate:.2f}x)")
        print(f"acc engine {accuracy(examples, engine_lps):.2f}, acc plain {accuracy(examples, plain):.2f}; "
              f"largest log-likelihood difference {worst:.2e}")


if __name__ == "__main__":
    asyncio.run(main())
