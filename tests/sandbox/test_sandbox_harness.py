"""Harness correctness on public benchmarks: every canonical HumanEval and sanitized-MBPP solution passes and a
wrong one fails, on each backend (data: benchmarks/data/code_*.jsonl, sources in code_SOURCES.md)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from graders.code import build_program
from sandbox import Job, Limits

from sandbox_backends import backend_params

DATA = Path(__file__).parents[2] / "benchmarks" / "data"
LIMITS = Limits(timeout_s=30.0)  # MBPP/123's reference solution alone takes ~10 s on this machine


def tasks(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("dataset", ["code_humaneval.jsonl", "code_mbpp.jsonl"])
def test_canonical_passes_and_wrong_fails(pools, backend, dataset):
    rows = tasks(dataset)
    box = pools(backend)
    canonical = box.run([Job(build_program(r["canonical"], r["tests"]), r["tests"], LIMITS) for r in rows])
    failed = [(r["task_id"], o.error, o.detail[:120]) for r, o in zip(rows, canonical) if not o.passed]
    assert not failed, f"{len(failed)} canonical solutions failed: {failed[:10]}"
    wrong = box.run([Job(build_program(r["wrong"], r["tests"]), r["tests"]) for r in rows])
    passed = [r["task_id"] for r, o in zip(rows, wrong) if o.passed]
    assert not passed, f"wrong solutions passed: {passed}"
