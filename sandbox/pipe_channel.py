"""A `Channel` over a child process's stdin/stdout pipes (used by the bwrap and process backends)."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from typing import Callable


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
        buf = bytearray()
        while len(buf) < n:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([self.stdout], [], [], wait)[0]:
                raise TimeoutError
            chunk = os.read(self.stdout, n - len(buf))
            if not chunk:
                raise EOFError("the sandbox process exited")
            buf += chunk
        return bytes(buf)

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
