"""The bwrap backend: each worker is a bubblewrap sandbox around a zygote (the default backend).

Isolation, per worker:
- every namespace unshared (user, PID, network, IPC, UTS, cgroup): no network interface but an isolated
  loopback, host processes invisible (own PID namespace, own /proc);
- the filesystem is an empty read-only root with /usr (and the interpreter's prefix, when elsewhere) bound
  read-only, a fresh /dev, and two size-capped tmpfs scratch dirs (/tmp, /dev/shm) wiped after every job; no
  /etc, /home, /root or project files, so no host secrets;
- the sandbox runs as uid 65534 with no capabilities. When rlvr itself runs as root, bwrap is started as host
  uid 65534 too: RLIMIT_NPROC is not enforced for processes whose real uid is host root, and with an
  unprivileged uid the per-job process limit holds (counted inside the worker's own user namespace);
- the zygote applies CPU, address-space, file-size, open-file and process limits to each candidate and kills
  every process in the namespace after each job; --die-with-parent tears the sandbox down with the host.

What is not covered: an aggregate memory cap per worker (each process has its own address-space limit; the
process limit bounds the product), seccomp syscall filtering, CPU shares.
Needs: bubblewrap >= 0.4 and unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1` on
older Debian kernels).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sandbox.pipe_channel import PipeChannel
from sandbox.pool import SandboxPool
from sandbox.zygote import BOOTSTRAP

SANDBOX_UID = 65534
SCRATCH_MB = 256
CONFIG = {"kill_scope": "namespace", "scratch": ["/tmp", "/dev/shm"], "workdir": "/tmp/job", "limit_nproc": True}


def default_python() -> str:
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3") or "python3"


def unavailable_reason() -> str | None:
    """None when bwrap can run here, else what to do about it."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap, or run scripts/setup-sandbox.sh)"
    return None


def root_binds(python: str) -> list[str]:
    """Read-only binds for /usr and the merged-/usr links, plus the interpreter's prefix when outside /usr."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    prefix = Path(os.path.realpath(python)).parent.parent
    if not str(prefix).startswith("/usr") and str(prefix) != "/":
        args += ["--ro-bind", str(prefix), str(prefix)]
    return args


def bwrap_argv(python: str, scratch_mb: int = SCRATCH_MB) -> list[str]:
    size = str(scratch_mb << 20)
    return [
        "bwrap", "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
        "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
        *root_binds(python),
        "--proc", "/proc", "--dev", "/dev",
        "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/tmp",
        "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
        python, "-I", "-S", "-c", BOOTSTRAP,
    ]


def spawn(python: str, scratch_mb: int = SCRATCH_MB) -> PipeChannel:
    as_root = os.geteuid() == 0
    process = subprocess.Popen(
        bwrap_argv(python, scratch_mb), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, cwd="/", env={}, start_new_session=True,
        user=SANDBOX_UID if as_root else None, group=SANDBOX_UID if as_root else None,
        extra_groups=[] if as_root else None,
    )
    return PipeChannel(process)


def open_bwrap(workers: int | None = None, python: str | None = None, scratch_mb: int = SCRATCH_MB) -> SandboxPool:
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"bwrap backend unavailable: {reason}")
    interpreter = python or default_python()
    return SandboxPool("bwrap", lambda: spawn(interpreter, scratch_mb), CONFIG, workers)
