"""The process backend: the zygote as a plain child process. NO ISOLATION: model code can read and write your
files, use the network and see your processes. For debugging, or inside an already isolated VM or container.

Only reachable with an explicit opt-in (`allow_unsandboxed=True`, or `backend: process` plus
`allow_unsandboxed: true` in the code grader's params), and it warns on every start.

What is covered: the same harnesses, limits (CPU, memory, file size, open files), timeout and output cap as
the sandboxed backends, each worker in its own temporary directory.
What is not covered: any isolation; a process that calls setsid() can outlive its job.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import warnings

from sandbox.pipe_channel import PipeChannel
from sandbox.pool import SandboxPool
from sandbox.zygote import BOOTSTRAP

CONFIG = {"kill_scope": "group", "scratch": ["."], "workdir": "job", "limit_nproc": False}
WARNING = ("rlvr sandbox backend 'process' runs model-written code WITHOUT ANY ISOLATION: it can read and write "
           "your files, reach the network and see your processes. Use backend 'bwrap' or 'docker' for training.")


class UnsandboxedWarning(RuntimeWarning):
    """Model code is about to run with no isolation."""


def open_process(workers: int | None = None, python: str | None = None,
                 allow_unsandboxed: bool = False) -> SandboxPool:
    if not allow_unsandboxed:
        raise RuntimeError("the 'process' backend has no isolation; pass allow_unsandboxed=True to use it anyway")
    warnings.warn(WARNING, UnsandboxedWarning, stacklevel=2)
    print(f"WARNING: {WARNING}", file=sys.stderr)
    base = tempfile.mkdtemp(prefix="rlvr-process-sandbox-")
    interpreter = python or sys.executable

    def spawn() -> PipeChannel:
        return PipeChannel(subprocess.Popen(
            [interpreter, "-I", "-S", "-c", BOOTSTRAP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, cwd=tempfile.mkdtemp(dir=base), start_new_session=True))

    return SandboxPool("process", spawn, CONFIG, workers, on_close=lambda: shutil.rmtree(base, True))
