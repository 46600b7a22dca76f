"""The bwrap backend: each worker is a bubblewrap sandbox around a zygote (the default backend).

Isolation, per worker:
- every namespace unshared (user, PID, network, IPC, UTS, cgroup): no network interface but an isolated
  loopback (which the zygote's seccomp filter makes unusable too), host processes invisible (own PID
  namespace, own /proc);
- the filesystem is an empty read-only root with /usr (and the interpreter's prefix, when elsewhere) bound
  read-only, a fresh /dev, and two size-capped tmpfs scratch dirs (/tmp, /dev/shm) wiped after every job; no
  /etc, /home, /root or project files, so no host secrets;
- the sandbox runs as uid 65534 with no capabilities. When rlvr itself runs as root, bwrap is started as host
  uid 65534 too: RLIMIT_NPROC is not enforced for processes whose real uid is host root, and with an
  unprivileged uid the per-job process limit holds (counted inside the worker's own user namespace);
- the zygote applies CPU, address-space, file-size, open-file and process limits to each candidate and kills
  every process in the namespace after each job; --die-with-parent tears the sandbox down with the host;
- when rlvr runs as root, each worker (bwrap, its init, the zygote and everything forked later) is moved into its
  own cgroup before any job runs: one memory cap (no swap) and one pids cap for the whole worker
  (sandbox/cgroup.py; v1 or v2).

What is not covered: the aggregate memory cap without root (per-process limits only; `rlvr sandbox check`
reports it), CPU shares between workers.
Needs: bubblewrap >= 0.4 and unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1` on
older Debian kernels).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from sandbox import cgroup
from sandbox.base import Limits, worker_memory_mb, worker_pids
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


def sandbox_tree(root: int, python: str, timeout_s: float = 10.0) -> list[int]:
    """Pids of bwrap `root` and its descendants, once the interpreter inside has started (before any job)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children: dict[int, list[int]] = {}
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        tree, queue = [], [root]
        while queue:
            pid = queue.pop()
            tree.append(pid)
            queue += children.get(pid, [])
        for pid in tree:
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0] == python.encode():
                    return tree
            except OSError:
                continue
        time.sleep(0.002)
    raise TimeoutError("the sandboxed interpreter did not start")


def spawn(python: str, limits: Limits, scratch_mb: int = SCRATCH_MB) -> PipeChannel:
    as_root = os.geteuid() == 0
    process = subprocess.Popen(
        bwrap_argv(python, scratch_mb), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, cwd="/", env={}, start_new_session=True,
        user=SANDBOX_UID if as_root else None, group=SANDBOX_UID if as_root else None,
        extra_groups=[] if as_root else None,
    )
    group = cgroup.create(f"{cgroup.PREFIX}-{os.getpid()}-{process.pid}", worker_memory_mb(limits) << 20,
                          worker_pids(limits) + 1)  # + bwrap's monitor process, outside the sandbox
    channel = PipeChannel(process, on_close=group.remove if group else None)
    if group is not None:
        try:
            for pid in sandbox_tree(process.pid, python):
                group.attach(pid)
        except (OSError, TimeoutError):
            channel.close()
            raise
    return channel


def open_bwrap(workers: int | None = None, python: str | None = None, scratch_mb: int = SCRATCH_MB,
               limits: Limits | None = None) -> SandboxPool:
    """A warm pool. `limits` sizes each worker's cgroup (memory, pids) when one can be made (root)."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"bwrap backend unavailable: {reason}")
    interpreter = python or default_python()
    ceiling = limits or Limits()
    return SandboxPool("bwrap", lambda: spawn(interpreter, ceiling, scratch_mb), CONFIG, workers)
