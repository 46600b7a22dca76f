"""Harness soundness: canonical solutions pass, wrong ones fail, reward hacks score 0, per backend.

    python benchmarks/sandbox_correctness.py [--backends bwrap docker]

Data: HumanEval (164) and sanitized MBPP (427) from benchmarks/data/code_*.jsonl (sources in code_SOURCES.md);
hacks: the catalogue in sandbox/hacks.py, each in four test styles, through the `code` grader, and, as a
control, against a naive exit-code harness (run inside the sandbox).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from graders import Sample
from graders.code import build_program, grader
from sandbox import Job, Limits, open_sandbox
from sandbox.hacks import ATTACKS, HONEST, attack_programs, new_secret, specs

DATA = Path(__file__).parent / "data"
LIMITS = Limits(timeout_s=30.0)  # MBPP/123's reference solution alone takes ~10 s


def benchmark_rows(backend: str) -> list[str]:
    rows = []
    with open_sandbox(backend) as box:
        for name in ("code_humaneval.jsonl", "code_mbpp.jsonl"):
            tasks = [json.loads(line) for line in (DATA / name).read_text().splitlines()]
            good = box.run([Job(build_program(t["canonical"], t["tests"]), t["tests"], LIMITS) for t in tasks])
            bad = box.run([Job(build_program(t["wrong"], t["tests"]), t["tests"]) for t in tasks])
            failing = [t["task_id"] for t, o in zip(tasks, good) if not o.passed]
            rows.append(f"| {backend} | {name} | {sum(o.passed for o in good)}/{len(tasks)} | "
                        f"{sum(not o.passed for o in bad)}/{len(tasks)} | {', '.join(failing) or '-'} |")
    return rows


def hack_row(backend: str) -> str:
    tests = specs(new_secret())
    params = grader.Params(backend=backend, timeout_s=3.0)
    programs = attack_programs()
    samples = [Sample(code, {"tests": spec}) for code in programs.values() for spec in tests.values()]
    grades = grader.grade(samples, params)
    zero = sum(g.score == 0.0 for g in grades)
    leaked = sorted({name for (name, _), g in zip([(n, s) for n in programs for s in tests], grades) if g.score})
    honest = grader.grade([Sample(HONEST, {"tests": spec}) for spec in tests.values()],
                          params.model_copy(update={"partial_credit": True}))
    return (f"| {backend} | {len(programs)} attacks x {len(tests)} styles | {zero}/{len(grades)} scored 0 | "
            f"honest partial credit {[g.score for g in honest]} | {', '.join(leaked) or '-'} |")


NAIVE = """
import subprocess, sys
result = subprocess.run([sys.executable, "-c", {source!r}], capture_output=True, timeout=5)
print("PASS" if result.returncode == 0 else "FAIL")
"""


def naive_row(backend: str) -> str:
    """Control: the same attacks against a naive harness (program and tests in one process, exit code as the
    verdict), itself run inside the sandbox so the attacks stay contained."""
    tests = specs(new_secret())
    fooled = {}
    with open_sandbox(backend) as box:
        for style in ("humaneval", "mbpp"):
            spec = tests[style]
            call = f"\ncheck({spec['entry_point']})\n" if style == "humaneval" else "\n"
            jobs = [Job(NAIVE.format(source=build_program(code, spec) + "\n" + spec["test"] + call),
                        {"kind": "stdio", "cases": [{"input": "", "output": "PASS"}]}, Limits(timeout_s=10.0))
                    for code in ATTACKS.values()]
            fooled[style] = [name for name, o in zip(ATTACKS, box.run(jobs)) if o.passed]
    return (f"| {backend} | naive exit-code harness | HumanEval style fooled by {len(fooled['humaneval'])}, "
            f"MBPP style by {len(fooled['mbpp'])} | {', '.join(sorted(set(sum(fooled.values(), [])))) or '-'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["bwrap", "docker"])
    args = parser.parse_args()
    print("| backend | data | canonical pass | wrong fail | canonical failures |\n|---|---|---:|---:|---|")
    for backend in args.backends:
        print("\n".join(benchmark_rows(backend)))
    print("\n| backend | catalogue | result | control | attacks that scored |\n|---|---|---|---|---|")
    for backend in args.backends:
        print(hack_row(backend))
    print(naive_row(args.backends[0]))
    grader.close()


if __name__ == "__main__":
    main()
