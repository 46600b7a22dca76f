"""A pool of grading worker processes with a CPU-time limit per call: no sample can hang a training run, and
a busy machine cannot time out a good answer.

Why: graders run model output through parsers and sympy (and code graders run model code); some inputs take
forever (`9^{9^{9^9}}`), blow the stack or crash the interpreter. Timeouts based on signal.alarm (math-verify's
own) only work in the main thread, and a thread cannot be killed. A process can. The limit is CPU time, not
wall-clock time: in a training run the policy's forward passes compete with the graders for the same cores,
and a wall-clock limit then turns correct answers into `timeout` zeros that poison the advantages.

How: each worker is a process in its own process group, fed one job at a time over a pipe (a job is one call
`grader.grade(samples, params)`; built-in graders get one sample per job).
- CPU limit (`timeout_s`): the dispatcher reads, from /proc, the user + system time of the worker's process
  tree (the worker, its live descendants, children that left its process group included, and what reaped
  children used) and cuts a job once the tree has used `timeout_s` CPU seconds since the job was handed
  over: `Grade(0.0, error="timeout_cpu")`. It reads no sooner than the job could have spent its budget on
  every core (remaining / cores), then every CPU_POLL_S (20 ms) at most, so a CPU hog is cut within its
  limit plus a poll and a clock tick of CPU (about 0.03 s for one busy thread): well within the 0.5 s target.
- Wall-clock backstop, max(`wall_factor` x `timeout_s`, `wall_min_s`) (10x, at least 30 s, by default):
  cuts a job that sleeps or waits (a grader blocked on I/O, a deadlock): `error="timeout_wall"`. A CPU-bound
  job reaches it before its CPU budget only if it gets under a tenth of a core on average (and, for limits
  under 3 s, under timeout_s / 30 s of one). Beside 8 busy loops per core and a torch process on a shared
  2-core box, graders got 3-10% of a core (benchmarks/grading_loaded.py).
A cut worker is killed with its process group and every descendant found in its tree, and replaced; its
grades carry `metrics={"cpu_s", "wall_s"}` as measured at the cut; the other workers carry on. (Both clocks
restart once after a worker first imports a grader: import time is not grading time.) A worker that dies
(segfault, out of memory) gives `error="worker_crashed: ..."` the same way. Workers are forked from a
forkserver that has already imported the built-in graders, so a replacement is ready in milliseconds and
never inherits the trainer's threads or CUDA state, and without re-running the parent's main script. `run()`
may be called from any thread (calls are serialised).

    with WorkerPool(workers=2, timeout_s=5.0) as pool:
        [[grade]] = pool.run([Job("graders.number:number_grader", "number", "{}", [Sample("42", {"answer": "42"})])])

A job may set its own limits: `Job(timeout_s=math.inf, wall_s=...)` is limited by the wall clock only (the
code grader: its programs run in sandbox processes, possibly outside the worker's tree (docker), under the
sandbox's own limits; RewardScorer sets this up).
Not covered: CPU time of processes that left the worker's tree (a double-forked daemon, a docker container)
and of a descendant reaped by someone else; without /proc (macOS) the CPU limit is applied to wall-clock
time (and reported as `timeout_wall`); graders defined in a `__main__` script (workers import graders by
module name); per-sample limits inside one multi-sample job (an async grader's batch is limited as a whole);
limits other than time and address space (CPU share, file descriptors).
"""
from __future__ import annotations

import math
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
WALL_FACTOR = 10.0  # default wall-clock backstop: this many times the CPU limit...
WALL_MIN_S = 30.0  # ...and at least this many seconds
CPU_POLL_S = 0.02  # shortest interval between two reads of a job's CPU time
CORES = os.cpu_count() or 1  # a process tree uses at most this many CPU seconds per second
CLOCK_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
HAVE_PROC = os.path.exists(f"/proc/{os.getpid()}/stat")
HAVE_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")  # CONFIG_PROC_CHILDREN


@dataclass(frozen=True)
class Job:
    """One call of a grader: `ref` ("module:attr") is imported by the worker, params arrive as JSON."""

    ref: str
    name: str
    params_json: str
    samples: Sequence[Sample]
    timeout_s: float | None = None  # CPU seconds for its process tree; None: the pool's; math.inf: no CPU limit
    wall_s: float | None = None  # wall-clock backstop; None: the pool's rule (WorkerPool.wall_limit) applied to
    #                              the CPU limit (to the pool's timeout_s where there is no CPU limit)


def _stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    """Live children of every thread of `pid` (without CONFIG_PROC_CHILDREN: the members of its process group,
    which is `pid` for a worker)."""
    if not HAVE_CHILDREN:
        members = []
        for entry in os.listdir("/proc"):
            fields = _stat(int(entry)) if entry.isdigit() and int(entry) != pid else None
            if fields is not None and int(fields[2]) == pid:
                members.append(int(entry))
        return members
    kids: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return kids


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants, parents before children (Linux /proc; [] where there is none)."""
    if not HAVE_PROC:
        return []
    found, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        if p not in found:
            found.append(p)
            todo.extend(_children(p) if HAVE_CHILDREN or p == pid else [])
    return found


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process `pid` and its descendants: each live process's own
    time plus what its reaped children used. None where `pid` cannot be read (no /proc, or it is gone).

    Each process is read before its children: a child reaped in between is missed until the next read (its
    time then shows in its parent's), never counted twice."""
    ticks, seen, todo = 0, set(), [pid]
    while todo:
        p = todo.pop(0)
        if p in seen:
            continue
        seen.add(p)
        fields = _stat(p)
        if fields is None:
            if p == pid:
                return None
            continue
        ticks += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
        if HAVE_CHILDREN or p == pid:
            todo.extend(_children(p))
    return ticks * CLOCK_TICK_S


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
    cpu_limit: float = math.inf  # that job's CPU seconds
    wall_limit: float = math.inf  # its wall-clock backstop, seconds
    started: float = 0.0  # time.monotonic() when its clocks started
    cpu_start: float = 0.0  # its process tree's CPU seconds then
    next_check: float = math.inf  # when to read its CPU time next


def _kill(worker: _Worker) -> None:
    """SIGKILL the worker, its process group and every descendant in its tree (some may have left the group)."""
    pid = worker.process.pid
    tree = process_tree(pid) if pid and worker.process.exitcode is None else []  # a dead worker's pid may be reused
    kills = [lambda: os.killpg(pid, signal.SIGKILL), worker.process.kill]
    kills += [lambda p=p: os.kill(p, signal.SIGKILL) for p in tree[1:]]
    for kill in kills:
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
    """`workers` grading processes; each job may use `timeout_s` CPU seconds (its worker's whole process tree)
    and max(wall_factor * timeout_s, wall_min_s) wall-clock seconds from being handed to a worker."""

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, memory_mb: int = 4096,
                 wall_factor: float = WALL_FACTOR, wall_min_s: float = WALL_MIN_S):
        if workers < 1 or timeout_s <= 0 or wall_factor < 1 or wall_min_s < 0:
            raise ValueError(f"WorkerPool needs workers >= 1, timeout_s > 0, wall_factor >= 1 and wall_min_s >= 0, "
                             f"got {workers}, {timeout_s}, {wall_factor} and {wall_min_s}")
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self.wall_factor, self.wall_min_s = wall_factor, wall_min_s
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

    def wall_limit(self, cpu_s: float) -> float:
        """The wall-clock backstop of a CPU limit: max(wall_factor x cpu_s, wall_min_s)."""
        return max(self.wall_factor * cpu_s, self.wall_min_s)

    def limits(self, job: Job) -> tuple[float, float]:
        """(CPU seconds, wall-clock seconds) allowed to `job`. Without /proc the CPU limit is a wall-clock one."""
        cpu = job.timeout_s if job.timeout_s is not None else self.timeout_s
        wall = job.wall_s if job.wall_s is not None else self.wall_limit(cpu if cpu < math.inf else self.timeout_s)
        return (cpu, wall) if HAVE_PROC else (math.inf, min(cpu, wall))

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
            busy = [min(w.next_check, w.started + w.wall_limit) for w in self._workers if w.job is not None]
            wait_s = max(0.0, min(busy) - time.monotonic()) if busy else self.timeout_s
            wait([w.conn for w in self._workers] + [w.process.sentinel for w in self._workers], timeout=wait_s)
            for w in list(self._workers):
                self._collect(w, results, pending)
        return results  # type: ignore[return-value]

    def _dispatch(self, w: _Worker, queue: deque, jobs: Sequence[Job], pending: dict[int, int]) -> None:
        index = queue.popleft()
        self._next_id += 1
        w.cpu_limit, w.wall_limit = self.limits(jobs[index])
        self._start_clocks(w)  # before the job can start using CPU
        try:
            w.conn.send((self._next_id, jobs[index]))
        except (OSError, ValueError):  # died while idle: not this job's fault
            queue.appendleft(index)
            self._replace(w)
            return
        pending[self._next_id] = index
        w.job, w.size = self._next_id, len(jobs[index].samples)

    def _start_clocks(self, w: _Worker) -> None:
        w.started = time.monotonic()
        w.cpu_start = tree_cpu_seconds(w.process.pid) or 0.0
        w.next_check = w.started + max(CPU_POLL_S, w.cpu_limit / CORES) if w.cpu_limit < math.inf else math.inf

    def _over_limit(self, w: _Worker) -> tuple[str, float, float] | None:
        """("timeout_cpu" or "timeout_wall", CPU s, wall s) when the job of `w` is past a limit, else None."""
        now = time.monotonic()
        cpu = None
        if now >= w.next_check:
            cpu = (tree_cpu_seconds(w.process.pid) or w.cpu_start) - w.cpu_start
            if cpu >= w.cpu_limit:
                return "timeout_cpu", cpu, now - w.started
            w.next_check = now + max(CPU_POLL_S, (w.cpu_limit - cpu) / CORES)
        if now >= w.started + w.wall_limit:
            if cpu is None:
                cpu = (tree_cpu_seconds(w.process.pid) or w.cpu_start) - w.cpu_start
            return "timeout_wall", cpu, now - w.started
        return None

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
                self._start_clocks(w)
            elif message[0] == w.job:
                self._settle(w, message[1], results, pending)
            return
        if w.process.is_alive():
            over = self._over_limit(w) if w.job is not None else None
            if over is not None:
                kind, cpu, wall = over
                metrics = {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3)}
                self._settle(w, [Grade(0.0, error=kind, metrics=metrics) for _ in range(w.size)], results, pending)
                self._replace(w)
        else:
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
