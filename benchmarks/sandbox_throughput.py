"""Sandboxed test execution throughput on HumanEval-sized programs, next to an unsandboxed baseline.

    flock /tmp/rlvr-bench.lock python benchmarks/sandbox_throughput.py [--rounds 3] [--backends bwrap docker]

Workload: the 164 canonical HumanEval solutions with their tests (benchmarks/data/code_humaneval.jsonl),
`--rounds` times over. Each backend runs them on a warm pool of its default size (two workers per CPU), after
a 20-job warm-up; pool start-up is reported separately. The baseline runs each program with its tests as a
plain `python3 file.py` subprocess (no isolation, exit code as verdict), with as many in flight as the pools
have workers. Every job must pass, or the figure is not reported as valid.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from graders.code import build_program
from sandbox import Job, open_sandbox
from sandbox.bwrap import default_python
from sandbox.pool import default_workers

DATA = Path(__file__).parent / "data" / "code_humaneval.jsonl"


def load() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines()]


def baseline(rows: list[dict], rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, row in enumerate(rows):
            path = Path(tmp) / f"task{i}.py"
            tests = row["tests"]
            path.write_text(f"{build_program(row['canonical'], tests)}\n\n{tests['test']}\n\n"
                            f"check({tests['entry_point']})\n")
            files.append(str(path))
        python = default_python()

        def run(path: str) -> bool:
            return subprocess.run([python, path], capture_output=True, timeout=30, cwd=tmp).returncode == 0

        started = time.perf_counter()
        with ThreadPoolExecutor(default_workers()) as executor:
            passed = list(executor.map(run, files * rounds))
        elapsed = time.perf_counter() - started
    return {"name": "subprocess per program (no sandbox)", "programs": len(passed), "passed": sum(passed),
            "seconds": elapsed, "per_s": len(passed) / elapsed, "start_s": 0.0}


def sandboxed(backend: str, rows: list[dict], rounds: int) -> dict:
    jobs = [Job(build_program(r["canonical"], r["tests"]), r["tests"]) for r in rows] * rounds
    started = time.perf_counter()
    with open_sandbox(backend) as box:
        start_s = time.perf_counter() - started
        box.run(jobs[:20])
        started = time.perf_counter()
        outcomes = box.run(jobs)
        elapsed = time.perf_counter() - started
        workers = len(box.workers)
    return {"name": f"{backend} (warm pool, {workers} workers)", "programs": len(jobs),
            "passed": sum(o.passed for o in outcomes), "seconds": elapsed, "per_s": len(jobs) / elapsed,
            "start_s": start_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 164 programs")
    parser.add_argument("--backends", nargs="+", default=["bwrap", "docker"], help="sandbox backends to time")
    args = parser.parse_args()
    rows = load()
    results = [baseline(rows, args.rounds)] + [sandboxed(b, rows, args.rounds) for b in args.backends]
    print("| runner | programs/s | passed | pool start (s) |\n|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['per_s']:.1f} | {r['passed']}/{r['programs']} | {r['start_s']:.2f} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
