"""The `code` grader: run the completion's code against the example's tests in a sandbox.

    >>> from graders import Sample
    >>> tests = {"kind": "call", "fn_name": "add", "cases": [{"args": [1, 2], "expected": 3}]}
    >>> [g] = grader.grade([Sample("```python\\ndef add(a, b):\\n    return a + b\\n```", {"tests": tests})],
    ...                    grader.Params())
    >>> g.score, g.error
    (1.0, None)

The code is the last ```python (or untagged) fence of the completion, else the whole completion. With an
`assert` spec that has a `prompt` (HumanEval), code that defines the entry point is appended to the prompt,
anything else continues it. The tests are a code test spec (DESIGN.md): kind assert, call or stdio; a call or
stdio spec may carry a `preamble` put before the code (APPS and LiveCodeBench run solutions after their imports).

The verdict comes from the sandbox's tester process, never from the program (sandbox/zygote.py): always-equal
objects, early exits, monkeypatching and reading the tests score 0. Bad output never raises: it scores 0 with
an error: `no_code`, `code_too_long`, `syntax_error`, `timeout`, `memory`, `output_limit`, `file_size`,
`exited`, `crashed`, `runtime_error`, `recursion`, `wrong_answer`, `bad_tests`, `sandbox_error`.

What is covered: batched grading on a warm sandbox pool (one per backend and settings, started on first use,
reused across calls in this process), partial credit (fraction of cases passed).
What is not covered: languages other than Python; picking among several solutions in one completion.
"""
from __future__ import annotations

import ast
import atexit
import json
import os
import re
import threading
from typing import Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graders.base import Grade, Sample
from sandbox import Job, Limits, Sandbox, default_backend, open_sandbox
from sandbox.image import IMAGE

FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
PYTHON_TAGS = {"", "python", "py", "python3"}
KINDS = {"assert": ("test",), "call": ("fn_name", "cases"), "stdio": ("cases",)}


class Params(BaseModel):
    """Options of the `code` grader."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    backend: Literal["bwrap", "docker", "process"] | None = Field(
        None, description="Sandbox backend; None picks bwrap where installed, else docker. `process` (no "
        "isolation) also needs allow_unsandboxed.")
    allow_unsandboxed: bool = Field(False, description="Permit backend `process`, which runs model code with "
                                    "no isolation (it warns loudly).")
    workers: int | None = Field(None, ge=1, description="Sandbox workers; None means two per CPU.")
    image: str = Field(IMAGE, description="Docker image with python3 (backend docker only).")
    timeout_s: float = Field(10.0, gt=0, le=600, description="Wall-clock limit per sample (all its cases).")
    memory_mb: int = Field(512, ge=64, description="Address-space limit per program process, in MiB.")
    processes: int = Field(16, ge=1, description="Most processes a program may have at once.")
    output_kb: int = Field(1024, ge=1, description="Cap on the program's printed output, in KiB.")
    file_size_mb: int = Field(16, ge=1, description="Largest file the program may write, in MiB.")
    max_code_kb: int = Field(256, ge=1, description="Longer extracted code scores 0 with `code_too_long`.")
    partial_credit: bool = Field(False, description="Score the fraction of cases passed instead of 0/1.")
    tests_field: str = Field("tests", description="Reference field holding the test spec (a dict or its JSON).")

    @model_validator(mode="after")
    def _process_needs_consent(self) -> "Params":
        if self.backend == "process" and not self.allow_unsandboxed:
            raise ValueError("backend 'process' runs model code with no isolation; set allow_unsandboxed: true "
                             "to accept that, or use bwrap or docker")
        return self


def extract_code(completion: str) -> str:
    """The last python or untagged fenced block (an unclosed last fence counts), else the whole completion."""
    blocks = [code for tag, code in FENCE.findall(completion) if tag.lower() in PYTHON_TAGS]
    return blocks[-1] if blocks else completion


def defines(code: str, name: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in tree.body)


def build_program(code: str, tests: Mapping[str, Any]) -> str:
    if tests["kind"] != "assert":  # call/stdio: an optional preamble (the imports a data set's harness adds)
        return tests["preamble"] + "\n" + code if tests.get("preamble") else code
    prompt = tests.get("prompt")
    if not prompt:
        return code
    if defines(code, tests.get("entry_point", "")):
        return prompt + "\n\n" + code
    return prompt + code


def read_tests(reference: Mapping[str, Any], field: str) -> tuple[dict | None, str | None]:
    """(spec, None), or (None, error) when the example's tests are missing or malformed."""
    spec = reference.get(field) if isinstance(reference, Mapping) else None
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            return None, "bad_tests:not_json"
    if not isinstance(spec, Mapping):
        return None, f"missing_reference:{field}"
    kind = spec.get("kind")
    if kind not in KINDS:
        return None, f"bad_tests:kind must be one of {', '.join(KINDS)}"
    missing = [key for key in KINDS[kind] if key not in spec]
    if missing:
        return None, f"bad_tests:missing {', '.join(missing)}"
    return dict(spec), None


class CodeGrader:
    """The `code` grader object (registered as `graders.code:grader`)."""

    name = "code"
    description = "Run the completion's Python against unit tests (assert/call/stdio) in a sandbox"
    Params = Params

    def __init__(self) -> None:
        self._pools: dict[tuple, Sandbox] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        atexit.register(self.close)

    @staticmethod
    def limits(params: Params) -> Limits:
        return Limits(timeout_s=params.timeout_s, memory_mb=params.memory_mb, processes=params.processes,
                      output_kb=params.output_kb, file_size_mb=params.file_size_mb)

    def sandbox(self, params: Params) -> Sandbox:
        """The warm pool for these settings, started on first use (its worker caps follow the limits)."""
        backend = params.backend or default_backend()
        key = (backend, params.workers, params.image, params.allow_unsandboxed, self.limits(params))
        with self._lock:
            if self._pid != os.getpid():  # forked into a grader worker: the parent's pools are not ours
                self._pools, self._pid = {}, os.getpid()
            if key not in self._pools:
                options: dict[str, Any] = {"limits": self.limits(params)}
                if backend == "docker":
                    options["image"] = params.image
                if backend == "process":
                    options = {"allow_unsandboxed": params.allow_unsandboxed}
                self._pools[key] = open_sandbox(backend, params.workers, **options)
            return self._pools[key]

    def grade(self, samples: Sequence[Sample], params: BaseModel) -> list[Grade]:
        assert isinstance(params, Params)
        limits = self.limits(params)
        grades: list[Grade | None] = [None] * len(samples)
        jobs, slots = [], []
        for i, sample in enumerate(samples):
            tests, error = read_tests(sample.reference, params.tests_field)
            code = extract_code(sample.completion) if isinstance(sample.completion, str) else ""
            if error is None and not code.strip():
                error = "no_code"
            elif error is None and len(code.encode("utf-8", "replace")) > params.max_code_kb << 10:
                error = "code_too_long"
            if error is not None:
                grades[i] = Grade(0.0, correct=False, error=error)
                continue
            assert tests is not None
            jobs.append(Job(build_program(code, tests), tests, limits))
            slots.append(i)
        if jobs:
            for i, outcome in zip(slots, self.sandbox(params).run(jobs)):
                fraction = outcome.cases_passed / outcome.cases_total if outcome.cases_total else 0.0
                score = 1.0 if outcome.passed else (fraction if params.partial_credit else 0.0)
                grades[i] = Grade(score, correct=outcome.passed, error=outcome.error,
                                  metrics={"cases_passed": float(outcome.cases_passed),
                                           "cases_total": float(outcome.cases_total),
                                           "duration_s": outcome.duration_s})
        return [g for g in grades if g is not None]

    def close(self) -> None:
        with self._lock:
            pools, self._pools = (list(self._pools.values()) if self._pid == os.getpid() else []), {}
        for pool in pools:
            pool.close()


grader = CodeGrader()
