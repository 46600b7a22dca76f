"""Math grading on a saturated machine: correct answers must never time out; pathological ones must still be cut.

    flock /tmp/rlvr-bench.lock .venv/bin/python benchmarks/grading_loaded.py [--samples 3000] [--timeout 1]
        [--per-core 1] [--torch] [--compare-wall]

Load, started before grading and always stopped (finally, SIGTERM, and a parent-death signal): `--per-core`
busy-loop processes per usable core (default 1: every core saturated), and with `--torch` also a process doing
float32 matmuls on 2 threads, as a training run's forward passes would.
Data (seeded, all distinct, all correct): 2/3 fractions (`\\boxed{\\frac{18}{24}}` against `\\frac{3}{4}`),
1/3 symbolic answers (`\\boxed{\\frac{3\\sqrt{8}}{4}\\pi}` against `\\frac{3\\pi\\sqrt{2}}{2}`, sympy at work,
each well under a second of CPU), graded with the `math` grader (`RewardScorer`, 2 workers, batches of 64
as in training), plus a handful of pathological samples spread through the batches that must still be cut
within the limit plus 0.5 s of CPU.
Reports: spurious timeouts (correct answers scored 0 with a timeout: the target is 0), other wrong verdicts
(an accuracy matter, not a timing one), each pathological sample's error and CPU/wall seconds at the cut,
throughput, and how many cores the load used. `--compare-wall` grades the same samples again with the old rule
(a wall-clock limit of `--timeout` seconds, no CPU limit) under the same load.
Not covered: graders that sleep or wait (cut by the wall-clock backstop; tests/integration/test_grade_pool.py).
"""
from __future__ import annotations

import argparse
import ctypes
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

from graders import Grade, Sample, registry
from graders.pool import Job, tree_cpu_seconds
from graders.rewards import RewardScorer, RewardTerm

BATCH = 64
BUSY_LOOP = ["sh", "-c", "while :; do :; done"]
TORCH_LOAD = ("import torch\ntorch.set_num_threads(2)\na = torch.randn(1024, 1024)\n"
              "while True:\n    a = torch.tanh(a @ a)\n")
PATHOLOGICAL = [  # (name, completion): each must be cut (timeout_cpu) by the pool
    ("9^{9^{9^9}}", "The answer is $\\boxed{9^{9^{9^9}}}$"),
    ("(10^{10^{10}})!", "\\boxed{(10^{10^{10}})!}"),
    ("90 kB of LaTeX", "\\boxed{" + "\\frac{x}{2}+" * 8_000 + "1}"),
    ("9^{9^{9^{9^9}}}", "\\boxed{9^{9^{9^{9^9}}}}"),
    ("(10^{10^{12}})!", "so \\boxed{(10^{10^{12}})!}"),
]
SURDS = [2, 3, 5, 6, 7, 10, 11, 13, 14, 15]


def correct_samples(n: int, seed: int = 0) -> list[tuple[str, Sample]]:
    """n distinct correct answers: (kind, sample), 2/3 fractions and 1/3 symbolic `\\sqrt{}\\pi` expressions."""
    rng, seen, out = random.Random(seed), set(), []
    while len(out) < n:
        if len(out) % 3 < 2:
            p, q, k = rng.randint(1, 97), rng.randint(2, 97), rng.randint(2, 9)
            key = ("fraction", p, q, k)
            completion = rng.choice([f"So the answer is \\boxed{{\\frac{{{p * k}}}{{{q * k}}}}}.",
                                     f"The final answer is $\\frac{{{p * k}}}{{{q * k}}}$."])
            sample = Sample(completion, {"answer": f"\\frac{{{p}}}{{{q}}}"})
        else:
            a, b, c, k = rng.randint(1, 40), rng.choice(SURDS), rng.randint(2, 13), rng.randint(1, 3)
            key = ("symbolic", a, b, c, k)
            completion = rng.choice([f"Thus \\boxed{{\\frac{{{a}\\sqrt{{{b * k * k}}}}}{{{c * k}}}\\pi}}.",
                                     f"The area is $\\frac{{{a}}}{{{c * k}}}\\sqrt{{{b * k * k}}}\\pi$."])
            sample = Sample(completion, {"answer": f"\\frac{{{a}\\pi\\sqrt{{{b}}}}}{{{c}}}"})
        if key not in seen:
            seen.add(key)
            out.append((key[0], sample))
    return out


def _die_with_parent() -> None:
    """In a load process: SIGKILL when the benchmark dies, however it dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def start_load(per_core: int, torch_load: bool) -> list[subprocess.Popen]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    procs = []
    try:
        for _ in range(per_core * cores):
            procs.append(subprocess.Popen(BUSY_LOOP, preexec_fn=_die_with_parent))
        if torch_load:
            procs.append(subprocess.Popen([sys.executable, "-c", TORCH_LOAD], preexec_fn=_die_with_parent))
    except BaseException:
        stop_load(procs)
        raise
    return procs


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def load_cpu(procs: list[subprocess.Popen]) -> float:
    return sum(tree_cpu_seconds(p.pid) or 0.0 for p in procs)


def grade_all(grade_batch, batches: list[list[Sample]]) -> tuple[list[Grade], float]:
    start, grades = time.monotonic(), []
    for batch in batches:
        grades += grade_batch(batch)
    return grades, time.monotonic() - start


def report(label: str, kinds: list[str], grades: list[Grade], seconds: float, timeout: float,
           load_cores: float) -> bool:
    good = [(k, g) for k, g in zip(kinds, grades) if k != "pathological"]
    spurious = Counter(k for k, g in good if (g.error or "").startswith("timeout"))
    wrong = Counter(k for k, g in good if g.correct is not True and not (g.error or "").startswith("timeout"))
    by_kind = Counter(k for k, _ in good)
    print(f"\n[{label}] {len(grades)} samples in {seconds:.1f}s ({len(grades) / seconds:.0f} samples/s); "
          f"load used {load_cores:.2f} cores on average")
    for kind in sorted(by_kind):
        print(f"  {kind:9} {by_kind[kind]:5} correct answers: spurious timeouts {spurious[kind]}, "
              f"other wrong verdicts {wrong[kind]}")
    patho = [g for k, g in zip(kinds, grades) if k == "pathological"]
    cut_ok = 0
    for (name, _), g in zip(PATHOLOGICAL * (len(patho) // len(PATHOLOGICAL) + 1), patho):
        cpu, wall = g.metrics.get("cpu_s"), g.metrics.get("wall_s")
        ok = g.score == 0.0 and (g.error or "").startswith("timeout") and (cpu is None or cpu <= timeout + 0.5)
        cut_ok += ok
        at_cut = f"cpu {cpu:.3f}s, wall {wall:.3f}s at the cut" if cpu is not None else "no cut"
        print(f"  pathological {name:18} score {g.score:.0f}  error {g.error}  ({at_cut}){'' if ok else '  <-- FAIL'}")
    total_spurious = sum(spurious.values())
    held = sum(g.metrics.get("wall_s", 0.0) for g in patho)
    print(f"  => spurious timeouts {total_spurious}/{len(good)} (target 0); pathological cut within "
          f"{timeout + 0.5:.1f} s of CPU: {cut_ok}/{len(patho)} (they held a worker {held:.1f}s in all)")
    return total_spurious == 0 and cut_ok == len(patho)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="correct answers to grade")
    parser.add_argument("--timeout", type=float, default=1.0, help="CPU seconds per sample (RewardScorer)")
    parser.add_argument("--workers", type=int, default=2, help="grading worker processes")
    parser.add_argument("--per-core", type=int, default=1, help="busy-loop processes per core")
    parser.add_argument("--torch", action="store_true", help="also a torch matmul process on 2 threads")
    parser.add_argument("--compare-wall", action="store_true",
                        help="also grade with a plain wall-clock limit of --timeout seconds (the old rule)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs the finally below

    data = correct_samples(args.samples)
    kinds, samples = [k for k, _ in data], [s for _, s in data]
    step = max(1, len(samples) // len(PATHOLOGICAL))
    for i, (_, completion) in enumerate(PATHOLOGICAL):  # spread through the batches
        at = min(len(samples), (i + 1) * step - step // 2)
        kinds.insert(at, "pathological")
        samples.insert(at, Sample(completion, {"answer": "1"}))
    batches = [samples[i:i + BATCH] for i in range(0, len(samples), BATCH)]
    term = RewardTerm(grader="math")
    print(f"{len(samples)} samples ({Counter(kinds)}), timeout {args.timeout} CPU s, {args.workers} workers, "
          f"{os.cpu_count()} cores, load: {args.per_core} busy loop(s) per core"
          f"{' + torch matmuls on 2 threads' if args.torch else ''}; load average before {os.getloadavg()[0]:.1f}")

    passed = True
    with RewardScorer(workers=args.workers, timeout_s=args.timeout) as scorer:
        scorer.score([term], [Sample("\\boxed{\\frac{\\sqrt{8}}{2}\\pi}", {"answer": "\\sqrt{2}\\pi"})] * 2)  # warm
        load = start_load(args.per_core, args.torch)
        try:
            time.sleep(1.0)  # let the load reach full speed
            cpu0 = load_cpu(load)
            grades, seconds = grade_all(lambda b: scorer.grade(term, b), batches)
            cores_used = (load_cpu(load) - cpu0) / seconds
            print(f"load average during: {os.getloadavg()[0]:.1f}")
            passed = report("CPU limit (this pool)", kinds, grades, seconds, args.timeout, cores_used)
            if args.compare_wall:
                entry, params_json = registry.entry("math"), "{}"
                wall_only = lambda b: [g for [g] in scorer.pool.run(  # noqa: E731
                    [Job(entry.ref, "math", params_json, [s], math.inf, args.timeout) for s in b])]
                cpu0 = load_cpu(load)
                old, seconds = grade_all(wall_only, batches)
                cores_used = (load_cpu(load) - cpu0) / seconds
                report(f"wall-clock limit {args.timeout}s (the old rule)", kinds, old, seconds, args.timeout,
                       cores_used)
        finally:
            stop_load(load)
    print(f"\n{'PASS' if passed else 'FAIL'}: CPU-limited grading under load")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
