"""A pool of grading worker processes with a hard per-call timeout: no sample can hang a training run.

Why: graders run model output through parsers and sympy (and code graders run model code); some inputs take
forever (`9^{9^{9^9}}`), blow the stack or crash the interpreter. Timeouts based on signal.alarm (math-verify's
own) only work in the main thread, and a thread cannot be killed. A process can.

How: each worker is a process in its own process group, fed one job at a time over a pipe (a job is one call
`grader.grade(samples, params)`; built-in graders get one sample per job). The dispatcher waits on the pipes
with a deadline; a worker past its deadline is killed with its whole process group and replaced, its job gets
`Grade(0.0, error="timeout")`, and the other workers carry on. (The clock restarts once after a worker
first imports a grader: import time is not grading time.) A worker that dies (segfault, out of memory)
gives `error="worker_crashed: ..."` the same way. Workers are forked from a forkserver that has already
imported the built-in graders, so a replacement is ready in milliseconds and never inherits the trainer's
threads or CUDA state, and without re-running the parent's main script. `run()` may be called from any
thread (calls are serialised).

    with WorkerPool(workers=2, timeout_s=5.0) as pool:
        [[grade]] = pool.run([Job("graders.number:number_grader", "number", "{}", [Sample("42", {"answer": "42"})])])

Not covered: graders defined in a `__main__` script (workers import graders by module name); per-sample
timeouts inside one multi-sample job (an async grader's batch times out as a whole); limits other than time
and address space (CPU share, file descriptors).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import sys
import threading
import time
import weakref
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Sequence

from graders.base import Grade, Sample

PRELOAD = ["graders.registry", "graders.math", "graders.number", "graders.exact", "graders.regex",
           "graders.format", "graders.length"]
MAX_START_FAILURES = 5


@dataclass(frozen=True)
class Job:
    """One call of a grader: `ref` ("module:attr") is imported by the worker, params arrive as JSON."""

    ref: str
    name: str
    params_json: str
    samples: Sequence[Sample]
    timeout_s: float | None = None  # None: the pool's timeout


@contextmanager
def _main_not_reimported():
    """Start a process without it re-running the parent's main script (multiprocessing's default), so that
    scripts and notebooks need no `if __name__ == "__main__"` guard and workers stay light."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__.get(k) for k in ("__file__", "__spec__")}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update({k: v for k, v in saved.items() if v is not None or k == "__spec__"})


def _limit_memory(memory_mb: int) -> None:
    """Soft address-space limit: sympy blow-ups raise MemoryError. The hard limit is left as it is, so a
    sandbox started by a grader (the code grader) may still set its own limits."""
    if memory_mb > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_mb * 2**20 if hard == resource.RLIM_INFINITY else min(memory_mb * 2**20, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _worker_main(conn: Connection, memory_mb: int) -> None:
    """Worker loop: receive (job_id, Job), send (job_id, grades). Never raises on a grader's behaviour."""
    from graders import registry
    from graders.function import error_grade

    os.setpgid(0, 0)  # own group: a timeout kills anything the grader started too
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _limit_memory(memory_mb)
    loaded: dict[tuple[str, str], tuple] = {}
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job_id, job = message
        try:
            key = (job.ref, job.params_json)
            if key not in loaded:
                grader = registry.load(job.ref, job.name)
                loaded[key] = (grader, grader.Params.model_validate_json(job.params_json))
                conn.send(("loaded", job_id))  # importing a grader is not grading: the clock restarts
            grader, params = loaded[key]
            grades = list(grader.grade(list(job.samples), params))
            if len(grades) != len(job.samples) or not all(isinstance(g, Grade) for g in grades):
                grades = [Grade(0.0, error=f"grader_contract: {job.name} returned {len(grades)} grades "
                                           f"for {len(job.samples)} samples")] * len(job.samples)
        except BaseException as exc:  # MemoryError, RecursionError, SystemExit from a plugin...
            grades = [error_grade(exc)] * len(job.samples)
        try:
            conn.send((job_id, grades))
        except Exception as exc:  # e.g. unpicklable metrics
            conn.send((job_id, [error_grade(exc)] * len(job.samples)))


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection
    ready: bool = False
    job: int | None = None  # id of the job it is running
    size: int = 0  # samples in that job
    timeout: float = 0.0  # that job's time limit
    deadline: float = 0.0


def _kill(worker: _Worker) -> None:
    pid = worker.process.pid
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), worker.process.kill):
        try:
            kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass
    worker.process.join(timeout=2)
    worker.conn.close()


def _shutdown(workers: list[_Worker]) -> None:
    for w in workers:
        try:
            w.conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + 1.0
    for w in workers:
        w.process.join(timeout=max(0.0, deadline - time.monotonic()))
        _kill(w)  # also reaps anything left in its process group
    workers.clear()


class WorkerPool:
    """`workers` grading processes; each job must finish within `timeout_s` of being handed to a worker."""

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, memory_mb: int = 4096):
        if workers < 1 or timeout_s <= 0:
            raise ValueError(f"WorkerPool needs workers >= 1 and timeout_s > 0, got {workers} and {timeout_s}")
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._lock = threading.Lock()
        self._start_failures = 0
        self._next_id = 0
        self._workers = [self._start() for _ in range(workers)]
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(child, self.memory_mb), daemon=True,
                                    name="rlvr-grader")
        with _main_not_reimported():
            process.start()
        child.close()
        return _Worker(process, parent)

    def _timeout(self, job: Job) -> float:
        return job.timeout_s if job.timeout_s is not None else self.timeout_s

    def _replace(self, worker: _Worker) -> None:
        _kill(worker)
        self._workers[self._workers.index(worker)] = self._start()

    def run(self, jobs: Sequence[Job]) -> list[list[Grade]]:
        """Grade every job; returns one list of grades per job, in order. Never raises on grader behaviour."""
        with self._lock:
            if not self._workers:
                raise RuntimeError("WorkerPool.run() after close()")
            return self._run(jobs)

    def _run(self, jobs: Sequence[Job]) -> list[list[Grade]]:
        results: list[list[Grade] | None] = [None] * len(jobs)
        queue = deque(range(len(jobs)))
        pending: dict[int, int] = {}  # job id -> index in `jobs`; ids of an interrupted earlier run are not here
        while queue or pending:
            for w in self._workers:
                if w.ready and w.job is None and queue:
                    self._dispatch(w, queue, jobs, pending)
            busy = [w.deadline for w in self._workers if w.job is not None]
            wait_s = max(0.0, min(busy) - time.monotonic()) if busy else self.timeout_s
            wait([w.conn for w in self._workers] + [w.process.sentinel for w in self._workers], timeout=wait_s)
            for w in list(self._workers):
                self._collect(w, results, pending)
        return results  # type: ignore[return-value]

    def _dispatch(self, w: _Worker, queue: deque, jobs: Sequence[Job], pending: dict[int, int]) -> None:
        index = queue.popleft()
        self._next_id += 1
        try:
            w.conn.send((self._next_id, jobs[index]))
        except (OSError, ValueError):  # died while idle: not this job's fault
            queue.appendleft(index)
            self._replace(w)
            return
        pending[self._next_id] = index
        w.job, w.size, w.timeout = self._next_id, len(jobs[index].samples), self._timeout(jobs[index])
        w.deadline = time.monotonic() + w.timeout

    def _settle(self, w: _Worker, grades: list[Grade], results: list, pending: dict[int, int]) -> None:
        index = pending.pop(w.job, None)
        if index is not None:  # else a result of an interrupted earlier run: dropped
            results[index] = grades
        w.job = None

    def _collect(self, w: _Worker, results: list, pending: dict[int, int]) -> None:
        """Take a finished result, or settle a worker that timed out or died."""
        try:
            message = w.conn.recv() if w.conn.poll() else None
        except (EOFError, OSError):
            message = None
            w.process.join(timeout=1)
        if message is not None:
            if message[0] == "ready":
                w.ready, self._start_failures = True, 0
            elif message[0] == "loaded":
                w.deadline = time.monotonic() + w.timeout
            elif message[0] == w.job:
                self._settle(w, message[1], results, pending)
            return
        if w.job is not None and time.monotonic() >= w.deadline:
            self._settle(w, [Grade(0.0, error="timeout")] * w.size, results, pending)
            self._replace(w)
        elif not w.process.is_alive():
            if w.job is not None:
                code = w.process.exitcode
                why = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
                self._settle(w, [Grade(0.0, error=f"worker_crashed: {why}")] * w.size, results, pending)
            elif not w.ready:
                self._start_failures += 1
                if self._start_failures > MAX_START_FAILURES:
                    raise RuntimeError(f"grader workers keep dying at start-up (exit {w.process.exitcode}); "
                                       "run `rlvr graders` to check that the graders import")
            self._replace(w)

    def close(self) -> None:
        """Stop every worker (and anything they started). Idempotent."""
        with self._lock:
            self._finalizer()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
