"""Math grading throughput: rlvr's `math` grader (2 workers, cache) against math-verify in a plain loop.

    flock /tmp/rlvr-bench.lock python benchmarks/grading_throughput.py [--samples 2000]

Data: GSM8K-like completions generated here (seeded): 250 problems x 8 samples, as in GRPO groups; each
sample is drawn from 4 candidate solutions of its problem (about half the samples are distinct), written as
multi-step arithmetic with `<<a*b=c>>` calculator notes and one of the endings small models produce
(`#### 72`, "The answer is 72.", `\\boxed{72}`, or a closing sentence whose last number is the answer).
Half the candidates are wrong (labels known). math-verify = `verify(parse(f"${gold}$"), parse(completion))`
per sample, one process; rlvr = RewardScorer(workers=2).score() over batches of 64 (one training step each),
pool started and warm before timing (as in training).
With --latex the answers are surds (`\\boxed{\\frac{72\\sqrt{2}}{7}}`, `$\\dfrac{72}{7}\\sqrt{2}$`): no fast path,
so the gain can only come from the cache and the second worker.
Not covered: long MATH-style solutions with many formulas (parsing cost grows with the text).
"""
from __future__ import annotations

import argparse
import random
import time

from math_verify import parse, verify

from graders import Sample
from graders.rewards import RewardScorer, RewardTerm

NAMES = ["Natalia", "Weng", "Betty", "Julie", "James", "Mark", "Albert", "Ken", "Alexis", "Tina"]
ITEMS = ["clips", "dollars", "pages", "apples", "marbles", "cookies", "miles", "tickets"]


def solution(rng: random.Random, answer: int, name: str, item: str, latex: bool = False) -> str:
    a = rng.randint(2, 60)
    b = rng.randint(2, 12)
    steps = [f"{name} has {a} {item} at first.",
             f"Each day {name} gets {b} more, so after 3 days that is {b}*3 = <<{b}*3={3 * b}>>{3 * b} {item}.",
             f"Together that makes {a}+{3 * b} = <<{a}+{3 * b}={a + 3 * b}>>{a + 3 * b} {item}.",
             f"After giving some away and counting again, {name} ends up with {answer:,} {item}."]
    if latex:  # a surd: no plain-number fast path, math-verify and sympy do the work
        ending = rng.choice([f"So the final answer is \\boxed{{\\frac{{{answer}\\sqrt{{2}}}}{{7}}}}.",
                             f"The answer is $\\dfrac{{{answer}}}{{7}}\\sqrt{{2}}$."])
    else:
        ending = rng.choice([f"#### {answer}", f"The answer is {answer}.",
                             f"So the final answer is \\boxed{{{answer}}}.", f"Therefore {name} has {answer} {item} in total."])
    return "\n".join(steps[: rng.randint(2, 4)] + [ending])


def dataset(n: int, seed: int = 0, latex: bool = False) -> tuple[list[Sample], list[bool]]:
    """n samples in groups of 8, and whether each is right."""
    rng = random.Random(seed)
    samples, labels = [], []
    for problem in range((n + 7) // 8):
        gold = rng.randint(5, 5000)
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        pool = [solution(rng, gold if k % 2 == 0 else gold + rng.randint(1, 40), name, item, latex)
                for k in range(4)]
        reference = f"\\frac{{{gold}\\sqrt{{2}}}}{{7}}" if latex else str(gold)
        for _ in range(8):
            k = rng.randrange(4)
            samples.append(Sample(pool[k], {"answer": reference}, prompt=f"problem {problem}"))
            labels.append(k % 2 == 0)
    return samples[:n], labels[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="number of samples (groups of 8)")
    parser.add_argument("--workers", type=int, default=2, help="rlvr grading workers")
    parser.add_argument("--latex", action="store_true", help="surd answers in LaTeX (no fast path)")
    args = parser.parse_args()
    samples, labels = dataset(args.samples, latex=args.latex)
    distinct = len({(s.completion, s.reference["answer"]) for s in samples})
    print(f"{len(samples)} samples, {distinct} distinct ({distinct / len(samples):.0%})")

    start = time.perf_counter()
    direct = [bool(verify(parse(f"${s.reference['answer']}$"), parse(s.completion))) for s in samples]
    mv_seconds = time.perf_counter() - start

    term = RewardTerm(grader="math")
    with RewardScorer(workers=args.workers, timeout_s=10.0) as scorer:
        scorer.score([term], dataset(64, seed=1)[0])  # warm-up on other data: workers started, graders imported
        start = time.perf_counter()
        ours = []
        for i in range(0, len(samples), 64):
            ours += [r.correct for r in scorer.score([term], samples[i:i + 64])]
        rlvr_seconds = time.perf_counter() - start
    n = len(samples)
    for name, seconds, verdicts in (("math-verify plain loop", mv_seconds, direct),
                                    (f"rlvr math, {args.workers} workers", rlvr_seconds, ours)):
        right = sum(v == label for v, label in zip(verdicts, labels))
        print(f"{name}: {seconds:.2f}s ({n / seconds:.0f} samples/s), verdicts right {right}/{n}")
    print(f"speed-up {mv_seconds / rlvr_seconds:.1f}x")


if __name__ == "__main__":
    main()
