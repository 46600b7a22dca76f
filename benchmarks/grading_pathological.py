"""Pathological inputs: each must be graded within timeout + 0.5 s with score 0 (a specific error, or plainly
wrong), and the pool must be healthy afterwards (correct grades, 2 workers, no stray process after close;
multiprocessing's own forkserver and resource tracker stay until the parent exits and are listed apart).
The limit is CPU time (graders/pool.py): a case cut by the pool (`timeout_cpu`) is judged by the CPU seconds
its worker's process tree had used at the cut (column `cpu s`); any other case by its wall-clock latency
(column `seconds`, an upper bound of its CPU time: these graders are single-threaded). On an idle machine
the two agree; on a busy one the wall-clock latency of a cut case grows, its CPU time does not.

    flock /tmp/rlvr-bench.lock python benchmarks/grading_pathological.py [--timeout 2]

Each case is scored alone (one `RewardScorer.score` call), so its wall time is its grading latency.
Not covered: inputs that attack the machine rather than the grader (fork bombs: that is the sandbox's job).
"""
from __future__ import annotations

import argparse
import os
import time
from multiprocessing import forkserver, resource_tracker

from graders import Sample
from graders.rewards import RewardScorer, RewardTerm

MB = 2**20
CASES = [  # (name, grader, params, completion, reference)
    ("1 MB of LaTeX", "math", {}, "$" + "\\frac{1}{2}+" * (MB // 11) + "1$", {"answer": "1"}),
    ("90 kB of LaTeX (under max_chars)", "math", {}, "\\boxed{" + "\\frac{x}{2}+" * 8_000 + "1}", {"answer": "1"}),
    ("10,000 nested brackets", "math", {}, "\\boxed{" + "(" * 10_000 + "1" + ")" * 10_000 + "}", {"answer": "1"}),
    ("10,000 nested \\sqrt{", "math", {}, "\\boxed{" + "\\sqrt{" * 10_000 + "2" + "}" * 10_000 + "}", {"answer": "2"}),
    ("9^{9^{9^9}}", "math", {}, "The answer is $\\boxed{9^{9^{9^9}}}$", {"answer": "1"}),
    ("10^{10^{10}}!", "math", {}, "\\boxed{(10^{10^{10}})!}", {"answer": "1"}),
    ("division by zero", "math", {}, "\\boxed{\\frac{1}{0}}", {"answer": "1"}),
    ("10,000 unclosed \\boxed{", "math", {}, "\\boxed{" * 10_000, {"answer": "1"}),
    ("empty completion", "math", {}, "", {"answer": "1"}),
    ("None completion", "math", {}, None, {"answer": "1"}),
    ("list completion", "number", {}, ["4", "2"], {"answer": "42"}),
    ("missing reference", "math", {}, "\\boxed{1}", {}),
    ("unparseable reference", "math", {}, "\\boxed{1}", {"answer": "\\boxed{}"}),
    ("1 MB of digits", "number", {}, "9" * MB, {"answer": "9"}),
    ("catastrophic regex", "regex", {"pattern": "^(a+)+$"}, "a" * 40 + "b", {}),
    ("1 MB for format", "format", {}, "<think>" * (MB // 7), {}),
]


def _descendants() -> dict[int, str]:
    """This process's live descendants (Linux /proc): pid -> command line."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = {}, [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    found[child] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            todo.append(child)
    return found


def _helpers() -> set[int]:
    """multiprocessing's forkserver and resource tracker: they live as long as this process."""
    return {forkserver._forkserver._forkserver_pid, resource_tracker._resource_tracker._pid}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0, help="per-sample timeout (seconds)")
    args = parser.parse_args()
    limit = args.timeout + 0.5
    healthy = [Sample(f"\\boxed{{{i}}}", {"answer": str(i)}) for i in range(16)]
    worst, failures = 0.0, 0
    with RewardScorer(workers=2, timeout_s=args.timeout) as scorer:
        for grader in sorted({c[1] for c in CASES}):  # warm-up: graders imported in both workers
            scorer.score([RewardTerm(grader=grader, params=next(c[2] for c in CASES if c[1] == grader))],
                         [Sample("warm", {"answer": "1"}), Sample("up", {"answer": "2"})])
        workers_before = set(_descendants()) - _helpers()
        print(f"{'case':34} {'grader':7} {'seconds':>8} {'cpu s':>6}  error")
        for name, grader, params, completion, reference in CASES:
            start = time.monotonic()
            [reward] = scorer.score([RewardTerm(grader=grader, params=params)], [Sample(completion, reference)])
            seconds = time.monotonic() - start
            cpu = reward.metrics.get(f"{grader}/cpu_s")  # only where the pool cut the case
            used = cpu if reward.errors.get(grader) == "timeout_cpu" else seconds
            worst = max(worst, used)
            ok = used <= limit and reward.score <= 0.0 and (reward.errors or reward.correct is not True)
            failures += not ok
            verdict = reward.errors.get(grader) or f"graded: score 0, correct={reward.correct}"
            cpu_text = f"{cpu:6.3f}" if cpu is not None else f"{'-':>6}"
            print(f"{name:34} {grader:7} {seconds:8.3f} {cpu_text}  {verdict}{'' if ok else '  <-- FAIL'}")
        rewards = scorer.score([RewardTerm(grader="math")], healthy)
        pool_ok = all(r.correct for r in rewards) and len(scorer.pool._workers) == 2
        workers_after = set(_descendants()) - _helpers()
    left = _descendants()
    strays = [cmd for p, cmd in left.items() if p not in _helpers()]
    print(f"worst: {worst:.3f}s (CPU at the cut for timeout_cpu, else wall-clock; limit {limit:.1f}s); "
          f"failures {failures}/{len(CASES)}; "
          f"pool healthy after: {pool_ok}; worker processes before/after: {len(workers_before)}/"
          f"{len(workers_after)}; stray processes after close: {len(strays)} "
          f"(multiprocessing helpers still up: {len(left) - len(strays)}) {strays or ''}")


if __name__ == "__main__":
    main()
