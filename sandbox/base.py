"""The sandbox contract: a job (program + test spec + limits) goes in, an outcome comes out.

    from sandbox import Job, open_sandbox
    with open_sandbox("bwrap") as box:
        [outcome] = box.run([Job(program="def f(x):\n    return x", tests={"kind": "call", "fn_name": "f",
                                  "cases": [{"args": [1], "expected": 1}]})])
    outcome.passed, outcome.error        # True, None

What is covered: the types every backend shares and the `Sandbox` protocol.
What is not covered: how a backend isolates (see sandbox/bwrap.py, sandbox/docker_backend.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Per-job resource limits, enforced inside the sandbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(5.0, gt=0, le=600, description="Wall-clock limit for the whole job; the process "
                             "tree is killed when it runs out (error `timeout`).")
    memory_mb: int = Field(512, ge=64, description="Address-space limit of each candidate process, in MiB "
                           "(error `memory` when the program runs out).")
    file_size_mb: int = Field(16, ge=1, description="Largest file the program may write, in MiB.")
    output_kb: int = Field(1024, ge=1, description="Cap on everything the program prints, in KiB "
                           "(error `output_limit` past it).")
    open_files: int = Field(64, ge=16, description="Open-file limit of each candidate process.")
    processes: int = Field(16, ge=1, description="Most processes the program may have at once (fork bombs stop "
                           "here; enforced by the bwrap backend's user namespace and docker's pids limit).")


def worker_memory_mb(limits: Limits) -> int:
    """Memory cap for everything one worker runs (docker container, bwrap cgroup): two candidate-sized processes
    plus 256 MiB for the zygote, the tester and tmpfs scratch files."""
    return 2 * limits.memory_mb + 256


def worker_pids(limits: Limits) -> int:
    """Process cap for one worker: the job's processes plus the worker's own (init, zygote, tester)."""
    return limits.processes + 3


@dataclass(frozen=True)
class Job:
    """One program to test. `tests` is a code test spec (kind assert, call or stdio; see DESIGN.md)."""

    program: str
    tests: Mapping[str, Any]
    limits: Limits = field(default_factory=Limits)


@dataclass
class Outcome:
    """What the tester (never the program) reported.

    passed: every case passed; cases_passed / cases_total: for partial credit.
    error: None, or why the job did not pass (`wrong_answer`, `syntax_error`, `timeout`, `memory`,
      `output_limit`, `file_size`, `exited`, `crashed`, `runtime_error`, `recursion`, `harness_error`,
      `sandbox_error`).
    detail: a short human-readable reason; output: the first 2 KiB the program printed.
    """

    passed: bool
    cases_passed: int = 0
    cases_total: int = 0
    error: str | None = None
    detail: str = ""
    output: str = ""
    duration_s: float = 0.0


class Sandbox(Protocol):
    """A pool of isolated workers. `run` is thread-safe and returns one outcome per job, in order."""

    backend: str

    def run(self, jobs: Sequence[Job]) -> list[Outcome]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Sandbox": ...

    def __exit__(self, *exc: object) -> None: ...
