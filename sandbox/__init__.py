"""Sandboxes that run model-written code under kernel isolation, and test it without trusting it.

    from sandbox import Job, open_sandbox
    with open_sandbox("bwrap") as box:            # or "docker"; "process" only with allow_unsandboxed=True
        outcomes = box.run([Job(program, tests)])

Backends: bwrap (sandbox/bwrap.py, with sandbox/cgroup.py), docker (sandbox/docker_backend.py, image from
sandbox/image.py), process (sandbox/process.py, no isolation). Shared: sandbox/pool.py, sandbox/worker.py.
How a job runs and is judged: sandbox/zygote.py. Isolation self-test: sandbox/check.py (`rlvr sandbox check`).
Reward-hacking catalogue: sandbox/hacks.py. Design and figures: docs/sandbox.md.
"""
from __future__ import annotations

from typing import Any

from sandbox.base import Job, Limits, Outcome, Sandbox

BACKENDS = ("bwrap", "docker", "process")


def default_backend() -> str:
    """bwrap where bubblewrap is installed, else docker where a daemon answers; never the process backend."""
    from sandbox import bwrap

    if bwrap.unavailable_reason() is None:
        return "bwrap"
    from sandbox import docker_backend

    client, reason = docker_backend.client_or_reason()
    if client is None:
        raise RuntimeError(f"no sandbox backend available: {bwrap.unavailable_reason()}; {reason}")
    client.close()
    return "docker"


def open_sandbox(backend: str | None = None, workers: int | None = None, **options: Any) -> Sandbox:
    """Start a warm pool. Options: bwrap: python, scratch_mb; docker: image, limits; process: python,
    allow_unsandboxed."""
    backend = backend or default_backend()
    if backend == "bwrap":
        from sandbox.bwrap import open_bwrap

        return open_bwrap(workers, **options)
    if backend == "docker":
        from sandbox.docker_backend import open_docker

        return open_docker(workers, **options)
    if backend == "process":
        from sandbox.process import open_process

        return open_process(workers, **options)
    raise ValueError(f"unknown sandbox backend {backend!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Job", "Limits", "Outcome", "Sandbox", "default_backend", "open_sandbox"]
