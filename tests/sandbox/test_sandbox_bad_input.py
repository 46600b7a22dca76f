"""Bad input scores 0 with a specific error, and the pool stays healthy afterwards (real sandboxes)."""
from __future__ import annotations

import time

import pytest

from graders import Sample
from graders.code import grader
from sandbox import Job, Limits

from sandbox_backends import backend_params, skip_reason

ADD = {"kind": "call", "fn_name": "add", "cases": [{"args": [1, 2], "expected": 3}]}
CASES = {
    "does not compile": ("def add(a, b) return a + b", "syntax_error"),
    "empty": ("", "no_code"),
    "only a fence": ("```python\n```", "no_code"),
    "10 MB of code": ("x = 1\n" * (10 << 20 >> 3), "code_too_long"),
    "prints 1 GB": ("import sys\nwhile True:\n    sys.stdout.write('x' * (1 << 20))\n", "output_limit"),
    "sleeps forever": ("import time\ntime.sleep(1000)\n", "timeout"),
    "allocates 64 GB": ("x = bytearray(64 << 30)\n", "memory"),
    "recurses forever": ("def add(a, b):\n    return add(a, b)\n", "wrong_answer"),
    "returns nothing": ("def add(a, b):\n    pass\n", "wrong_answer"),
    "kills itself": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "crashed"),
    "burns CPU in C code": ("x = 10 ** 10 ** 9\n", "timeout"),
    "kills the whole sandbox": ("import os, signal\nos.kill(-1, signal.SIGKILL)\n", "sandbox_error"),
}


@pytest.mark.parametrize("backend", backend_params())
def test_bad_input_gets_a_specific_error(backend):
    reason = skip_reason(backend)
    if reason:
        pytest.skip(reason)
    params = grader.Params(backend=backend, timeout_s=2.0, workers=2)
    started = time.monotonic()
    grades = grader.grade([Sample(code, {"tests": ADD}) for code, _ in CASES.values()], params)
    got = {name: g.error for name, g in zip(CASES, grades)}
    assert got == {name: error for name, (_, error) in CASES.items()}
    assert all(g.score == 0.0 for g in grades)
    assert time.monotonic() - started < 30
    healthy = grader.grade([Sample("def add(a, b):\n    return a + b\n", {"tests": ADD})] * 4, params)
    assert [g.score for g in healthy] == [1.0] * 4


@pytest.mark.parametrize("backend", backend_params())
def test_huge_program_straight_to_the_sandbox(pools, backend):
    """Past the grader's size check, a 10 MB program still cannot hurt the pool."""
    box = pools(backend)
    [outcome] = box.run([Job("x = 1\n" * (10 << 20 >> 3), ADD, Limits(timeout_s=5.0))])
    assert not outcome.passed
    [healthy] = box.run([Job("def add(a, b):\n    return a + b\n", ADD)])
    assert healthy.passed
