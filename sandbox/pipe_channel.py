"""A `Channel` over a child process's stdin/stdout pipes (used by the bwrap and process backends)."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from typing import Callable


def read_exactly(source, read: Callable[[int], bytes], n: int, deadline: float, closed: str) -> bytes:
    """n bytes from `source` (anything select() takes) through `read(max_bytes)`; TimeoutError past the deadline,
    EOFError(closed) when the other end closes first."""
    buf = bytearray()
    while len(buf) < n:
        wait = deadline - time.monotonic()
        if wait <= 0 or not select.select([source], [], [], wait)[0]:
            raise TimeoutError
        chunk = read(n - len(buf))
        if not chunk:
            raise EOFError(closed)
        buf += chunk
    return bytes(buf)


class PipeChannel:
    """Owns `process` (started with start_new_session=True); `close` kills its whole process group."""

    def __init__(self, process: subprocess.Popen, on_close: Callable[[], None] | None = None):
        self.process, self.on_close = process, on_close
        assert process.stdin is not None and process.stdout is not None
        self.stdin, self.stdout = process.stdin.fileno(), process.stdout.fileno()

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.stdin, view):]

    def recv(self, n: int, deadline: float) -> bytes:
        return read_exactly(self.stdout, lambda k: os.read(self.stdout, k), n, deadline, "the sandbox process exited")

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        if self.on_close is not None:
            self.on_close()
