"""The harness compares outputs the way the standard code data sets define it, and every code preset's test specs
pass a right solution and fail a wrong one, on the real sandbox backends."""
from __future__ import annotations

import pytest

from graders.code import build_program
from sandbox import Job, Limits
from tasks import get_task_spec

import dataset_rows as rows
from sandbox_backends import backend_params

LIMITS = Limits(timeout_s=20.0)
ECHO = "import sys\nsys.stdout.write(sys.stdin.read())\n"


def stdio(output: str, expected: str, **compare) -> dict:
    return {"kind": "stdio", "cases": [{"input": output, "output": expected}], **compare}


CASES = [  # (program, tests, passes)
    (ECHO, stdio("0.3333333\n", "0.333333", rel_tol=1e-5, abs_tol=1e-8), True),  # APPS: np.allclose
    (ECHO, stdio("0.34", "0.333333", rel_tol=1e-5, abs_tol=1e-8), False),
    (ECHO, stdio("1000001", "1000000", rel_tol=1e-5, abs_tol=1e-8), False),  # integers are never "close"
    (ECHO, stdio("0.3333333", "0.333333"), False),  # no tolerance asked: tokens must be equal
    (ECHO, stdio("YES 2.500001\n", "yes 2.5", ignore_case=True, abs_tol=1e-5), True),  # CodeContests
    (ECHO, stdio("YES 2.5", "yes 2.5"), False),
    (ECHO, stdio("1 2", "1 2 0", abs_tol=1.0), False),  # token counts differ
    (ECHO, stdio("4.50", "4.5", abs_tol=0.0, rel_tol=0.0), True),  # LiveCodeBench: equal as decimals
    (ECHO, stdio("nan", "nan", abs_tol=1.0), True),
    (ECHO, stdio("inf", "1e999", abs_tol=1.0), False),
    ("def f(x):\n    return x * 2\n",
     {"kind": "call", "fn_name": "f", "cases": [{"args": [[3]], "expected": 6, "alternatives": [[3, 3]]}]}, True),
    ("def f(x):\n    return 7\n",
     {"kind": "call", "fn_name": "f", "cases": [{"args": [1], "expected": 6, "alternatives": [[6]]}]}, False),
    ("class Solution:\n    def add(self, a: List[int]) -> int:\n        return sum(a)\n",
     {"kind": "call", "fn_name": "add", "preamble": "from typing import List",
      "cases": [{"args": [[1, 2]], "expected": 3}]}, True),
    ("class Solution:\n    def add(self, a: List[int]) -> int:\n        return sum(a)\n",  # no preamble: NameError
     {"kind": "call", "fn_name": "add", "cases": [{"args": [[1, 2]], "expected": 3}]}, False),
    ("class Solution:\n    pass\n", {"kind": "call", "fn_name": "add", "cases": [{"args": [1], "expected": 1}]},
     False),
]


@pytest.mark.parametrize("backend", backend_params())
def test_comparison_options(pools, backend):
    outcomes = pools(backend).run([Job(build_program(code, tests), tests, LIMITS) for code, tests, _ in CASES])
    wrong = [(tests, o.error, o.detail) for (_, tests, passes), o in zip(CASES, outcomes) if o.passed != passes]
    assert not wrong


def preset_jobs(tmp_path) -> list[tuple[str, str, Job, Job]]:
    """(preset, row id, job with the right code, job with a wrong one) for every code preset row."""
    right = {
        "humaneval": {r["task_id"]: r["canonical_solution"] for r in rows.humaneval_rows()},
        "mbpp": {r["task_id"]: r["code"] for r in rows.mbpp_rows()},
        "apps": rows.APPS_RIGHT, "code_contests": rows.CC_RIGHT, "livecodebench": rows.LCB_RIGHT,
    }
    keys = {"humaneval": "task_id", "mbpp": "task_id", "apps": "problem_id", "code_contests": "name",
            "livecodebench": "question_id"}
    jobs = []
    for name, params in rows.preset_files(tmp_path).items():
        if name not in right:
            continue
        spec = get_task_spec(name)
        task = spec.build(spec.Params.model_validate(params), 0, name)
        for example in [*task.train_rows(), *task.eval_examples()]:
            row_id = example.meta[keys[name]]
            tests = example.reference["tests"]
            jobs.append((name, row_id, Job(build_program(right[name][row_id], tests), tests, LIMITS),
                         Job(build_program(rows.WRONG, tests), tests, LIMITS)))
    return jobs


@pytest.mark.parametrize("backend", backend_params())
def test_every_code_preset_passes_right_code_and_fails_wrong_code(pools, backend, tmp_path):
    jobs = preset_jobs(tmp_path)
    assert {name for name, *_ in jobs} == {"humaneval", "mbpp", "apps", "code_contests", "livecodebench"}
    box = pools(backend)
    right = box.run([job for *_, job, _ in jobs])
    failed = [(name, row_id, o.error, o.detail) for (name, row_id, *_), o in zip(jobs, right) if not o.passed]
    assert not failed
    wrong = box.run([job for *_, job in jobs])
    assert not [(name, row_id) for (name, row_id, *_), o in zip(jobs, wrong) if o.passed]
