"""Benchmark lmscope's evaluators against raw sacrebleu / rouge-score.

Prints, on the first 1,000 segments of WMT21 en-de (reference C scored against
reference A, read from ../shared/data beside the project root):

1. incremental update cost per example at 1,000 examples (add one example, read the
   corpus score) for BLEU, chrF and ROUGE-L, against recomputing the whole corpus with
   the raw library (goals: <= 5 ms, and >= 20x cheaper);
2. lmscope's one-shot corpus scoring time / the raw library's time on the same
   segments (goal: <= 1.1), as the median of per-run ratios with the two interleaved.

ROUGE-L: lmscope uses its default Unicode tokenizer (German umlauts kept), the raw
figure rouge-score's default tokenizer, hence the slightly different scores.

Every figure is the median of several runs. Run: ``python bench/metrics.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sacrebleu  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

import evaluators  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "wmt21"
N = 1000


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def raw_rouge_l(hyps: list[str], refs: list[str]) -> float:
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    scores = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)]
    return 100 * sum(scores) / len(scores)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median reported)")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"WMT21 data not found at {DATA.resolve()}", file=sys.stderr)
        return 1
    refs = (DATA / "newstest2021.en-de.ref.A.de").read_text(encoding="utf-8").splitlines()[:N]
    hyps = (DATA / "newstest2021.en-de.ref.C.de").read_text(encoding="utf-8").splitlines()[:N]
    print(f"WMT21 en-de, first {len(hyps)} segments (ref C scored against ref A), median of {args.runs} runs\n")

    raw = {
        "BLEU": lambda: sacrebleu.BLEU().corpus_score(hyps, [refs]).score,
        "chrF": lambda: sacrebleu.CHRF().corpus_score(hyps, [refs]).score,
        "ROUGE-L": lambda: raw_rouge_l(hyps, refs),
    }
    names = {"BLEU": "bleu", "chrF": "chrf", "ROUGE-L": "rougeL"}

    print("1. Incremental update at 1,000 examples (add 1 example + read corpus score)")
    print(f"   {'metric':8} {'update':>10} {'recompute':>11} {'ratio':>8}   goal: <= 5 ms and >= 20x")
    for label, name in names.items():
        at_999 = evaluators.build(name)
        at_999.add_many(hyps[:-1], refs[:-1])
        times = []
        for _ in range(max(args.runs, 20)):
            metric = copy.deepcopy(at_999)  # every timed update goes from 999 to 1,000
            start = time.perf_counter()
            metric.add(hyps[-1], [refs[-1]])
            metric.corpus()
            times.append(time.perf_counter() - start)
        upd = statistics.median(times)
        full = median_time(raw[label], args.runs)
        print(f"   {label:8} {upd * 1e3:8.3f} ms {full * 1e3:8.1f} ms {full / upd:7.0f}x")

    print("\n2. One-shot corpus scoring, lmscope / raw library (same segments)")
    print(f"   {'metric':8} {'lmscope':>10} {'raw':>10} {'ratio':>7} {'score':>8} {'raw score':>10}   goal: <= 1.1")
    for label, name in names.items():
        metric = evaluators.build(name)
        ours, theirs = [], []
        # Interleave the two so load from other processes hits both alike.
        for _ in range(args.runs):
            ours.append(median_time(lambda: metric.score_corpus(hyps, refs), 1))
            theirs.append(median_time(raw[label], 1))
        ratio = statistics.median(o / t for o, t in zip(ours, theirs))
        score = metric.score_corpus(hyps, refs).score
        print(f"   {label:8} {statistics.median(ours) * 1e3:7.1f} ms {statistics.median(theirs) * 1e3:7.1f} ms "
              f"{ratio:7.3f} {score:8.3f} {raw[label]():10.3f}")
    print(f"\n   signatures: BLEU {evaluators.build('bleu').score_corpus(hyps[:2], refs[:2]).signature}")
    print(f"               ROUGE-L {evaluators.build('rougeL').signature}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
