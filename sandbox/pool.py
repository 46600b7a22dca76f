"""A pool of warm workers behind the `Sandbox` protocol: jobs fan out over threads, one worker per thread.

What is covered: sizing (two workers per CPU by default), parallel start-up, thread-safe `run`, clean shutdown.
What is not covered: isolation and per-job clean-up (backends and the zygote do those).
"""
from __future__ import annotations

import os
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from sandbox.base import Job, Outcome
from sandbox.worker import Channel, Worker


def default_workers() -> int:
    """Two workers per usable CPU: a job spends part of its time waiting on pipes, forks and clean-up."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 2 * cpus


class SandboxPool:
    """`workers` zygote workers from `spawn`; `run(jobs)` returns outcomes in job order."""

    def __init__(self, backend: str, spawn: Callable[[], Channel], config: dict[str, Any],
                 workers: int | None = None, on_close: Callable[[], None] | None = None):
        self.backend = backend
        self.workers = [Worker(spawn, config) for _ in range(workers or default_workers())]
        self.idle: queue.Queue[Worker] = queue.Queue()
        self.executor = ThreadPoolExecutor(len(self.workers), thread_name_prefix=f"sandbox-{backend}")
        self.on_close = on_close
        try:
            list(self.executor.map(Worker.start, self.workers))
        except BaseException:
            self.close()
            raise
        for worker in self.workers:
            self.idle.put(worker)

    def run(self, jobs: Sequence[Job]) -> list[Outcome]:
        return list(self.executor.map(self._run_one, jobs))

    def _run_one(self, job: Job) -> Outcome:
        worker = self.idle.get()
        try:
            return worker.run(job)
        finally:
            self.idle.put(worker)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        for worker in self.workers:
            worker.stop()
        if self.on_close is not None:
            self.on_close()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
