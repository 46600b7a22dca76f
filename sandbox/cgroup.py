"""Per-worker cgroups for the bwrap backend: one memory cap (no swap) and one pids cap over everything a worker
runs, on top of the per-process limits the zygote sets.

    group = create("rlvr-bwrap-1234-0", memory_bytes=2 << 30, pids=24)   # None when not possible here
    group.attach(pid); ...; group.remove()

What is covered: cgroup v2 (a `rlvr-sandbox` subtree under the root, memory and pids enabled) and v1 (memory and
pids hierarchies, under this process's own cgroups), when running as root on a writable cgroup filesystem.
What is not covered: rootless delegation (systemd user slices); without root the bwrap backend keeps its
per-process limits only, and says so in `rlvr sandbox check`.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "rlvr-bwrap"


class WorkerCgroup:
    def __init__(self, directories: list[Path]):
        self.directories = directories

    def attach(self, pid: int) -> None:
        for directory in self.directories:
            (directory / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        for directory in self.directories:
            for _ in range(50):  # processes killed a moment ago may still be exiting
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path ("" key: the v2 unified path)."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def write(directory: Path, values: dict[str, str]) -> None:
    for name, value in values.items():
        if (directory / name).exists():
            (directory / name).write_text(value)


def sweep(parent: Path) -> None:
    """Remove empty cgroups left by pools whose process died without closing them (named PREFIX-<pid>-...)."""
    for stale in parent.glob(f"{PREFIX}-*"):
        owner = stale.name.split("-")[2]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                stale.rmdir()
            except OSError:
                pass


def create(name: str, memory_bytes: int, pids: int) -> WorkerCgroup | None:
    """A fresh cgroup with the caps, or None when this machine or user cannot have one. `name` starts with
    PREFIX-<pid of the owning process>- so that `sweep` can clean up after a killed owner."""
    if os.geteuid() != 0:
        return None
    made: list[Path] = []
    try:
        if (ROOT / "cgroup.controllers").exists():  # v2 unified hierarchy
            if not {"memory", "pids"} <= set((ROOT / "cgroup.controllers").read_text().split()):
                return None
            parent = ROOT / "rlvr-sandbox"
            parent.mkdir(exist_ok=True)
            (ROOT / "cgroup.subtree_control").write_text("+memory +pids")
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
            sweep(parent)
            directory = parent / name
            directory.mkdir()
            made.append(directory)
            write(directory, {"memory.max": str(memory_bytes), "memory.swap.max": "0", "pids.max": str(pids)})
        else:  # v1: separate memory and pids hierarchies
            own = own_paths()
            memory = ROOT / "memory" / own["memory"].lstrip("/") / name
            tasks = ROOT / "pids" / own["pids"].lstrip("/") / name
            for directory in (memory, tasks):
                sweep(directory.parent)
                directory.mkdir()
                made.append(directory)
            write(memory, {"memory.limit_in_bytes": str(memory_bytes), "memory.memsw.limit_in_bytes":
                           str(memory_bytes)})
            write(tasks, {"pids.max": str(pids)})
        return WorkerCgroup(made)
    except (OSError, KeyError):
        WorkerCgroup(made).remove()
        return None
