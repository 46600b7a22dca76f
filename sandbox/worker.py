"""One sandboxed worker seen from the host: a byte channel to a zygote, started, fed jobs, restarted on failure.

A backend only supplies `spawn() -> Channel` (a started sandbox running `python3 -I -S -c zygote.BOOTSTRAP`) and
the zygote's config; this module boots the zygote (its source goes over the channel), frames jobs and verdicts
(4-byte big-endian length + JSON) and enforces a host-side deadline on top of the zygote's own timeout.

What is covered: boot, one job at a time, recovery: a worker whose sandbox died, hung or spoke garbage is
killed and the job reported as `sandbox_error` (or `timeout`); the next job starts a fresh sandbox.
What is not covered: isolation (the backend's spawn), concurrency (sandbox/pool.py).
"""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from sandbox import zygote
from sandbox.base import Job, Outcome

ZYGOTE_SOURCE = Path(zygote.__file__).read_bytes()
BOOT_TIMEOUT_S = 60.0
GRACE_S = 5.0  # host-side slack past a job's own timeout before the whole worker is declared hung


class Channel(Protocol):
    """A started sandbox's stdin/stdout. `recv` returns exactly n bytes or raises EOFError / TimeoutError."""

    def send(self, data: bytes) -> None: ...

    def recv(self, n: int, deadline: float) -> bytes: ...

    def close(self) -> None: ...


def frame(obj: Any) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def read_frame(channel: Channel, deadline: float) -> Any:
    (n,) = struct.unpack(">I", channel.recv(4, deadline))
    if n > zygote.MAX_FRAME:
        raise ValueError(f"worker sent a {n}-byte frame")
    return json.loads(channel.recv(n, deadline))


class Worker:
    """A zygote in a sandbox; `run` is not thread-safe (the pool hands each worker to one thread at a time)."""

    def __init__(self, spawn: Callable[[], Channel], config: dict[str, Any]):
        self.spawn, self.config = spawn, config
        self.channel: Channel | None = None

    def start(self) -> None:
        channel = self.spawn()
        try:
            channel.send(b"%010d" % len(ZYGOTE_SOURCE) + ZYGOTE_SOURCE + frame(self.config))
            hello = read_frame(channel, time.monotonic() + BOOT_TIMEOUT_S)
            if not hello.get("ready"):
                raise ValueError(f"unexpected greeting {hello!r}")
        except BaseException:
            channel.close()
            raise
        self.channel = channel

    def run(self, job: Job) -> Outcome:
        started = time.monotonic()
        try:
            if self.channel is None:
                self.start()
            assert self.channel is not None
            self.channel.send(frame({"program": job.program, "tests": dict(job.tests),
                                     "limits": job.limits.model_dump()}))
            verdict = read_frame(self.channel, time.monotonic() + job.limits.timeout_s + GRACE_S)
            return Outcome(**verdict)
        except TimeoutError:
            self.stop()
            return Outcome(False, error="timeout", detail="the worker did not answer in time; restarted",
                           duration_s=time.monotonic() - started)
        except (EOFError, OSError, ValueError, TypeError) as exc:
            self.stop()
            return Outcome(False, error="sandbox_error", detail=f"worker failed ({type(exc).__name__}: {exc}); "
                           "restarted", duration_s=time.monotonic() - started)

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
