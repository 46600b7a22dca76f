"""The docker backend: each worker is a long-lived container running a zygote, driven through the docker SDK.

`DOCKER_HOST` (and the other docker environment variables) are honoured, so the daemon may be remote. Every
container runs with no network (`network_mode=none`), a read-only root, all capabilities dropped,
no-new-privileges, uid 65534, a pids limit and a memory limit (no swap), docker's init as PID 1, and size-capped
tmpfs scratch dirs (/tmp, /dev/shm) that the zygote wipes after every job. Jobs and verdicts go over the
container's attached stdin/stdout; the stream is demultiplexed here.

What is covered: a warm pool (containers start once, in parallel, and are reused; a dead one is replaced), any
image with python3 >= 3.8 (`rlvr sandbox build-image` builds one without a registry).
What is not covered: gVisor/Kata-style kernel isolation (use `runtime=` on your daemon if you need it); remote
daemons reached over ssh:// (the attach socket is not a plain socket there).
"""
from __future__ import annotations

import socket
import struct

from sandbox.base import Limits, worker_memory_mb, worker_pids
from sandbox.image import IMAGE, image_exists
from sandbox.pipe_channel import read_exactly
from sandbox.pool import SandboxPool
from sandbox.zygote import BOOTSTRAP

SANDBOX_USER = "65534:65534"
SCRATCH_MB = 256
CONFIG = {"kill_scope": "namespace", "scratch": ["/tmp", "/dev/shm"], "workdir": "/tmp/job", "limit_nproc": False}
LABEL = "rlvr.sandbox"


def client_or_reason():
    """(client, None) when a daemon answers, else (None, what to do)."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
        return client, None
    except Exception as exc:  # the SDK raises many types for "no daemon"; all mean the same to the user
        return None, (f"no Docker daemon reachable ({type(exc).__name__}: {exc}); start dockerd or set "
                      "DOCKER_HOST (scripts/setup-sandbox.sh does both)")


class DockerChannel:
    """A container's attached stdin/stdout. Docker frames stdout as [stream, 0, 0, 0, size (4 bytes BE)]."""

    def __init__(self, container, attached):
        self.container = container
        self.attached = attached
        self.sock: socket.socket = getattr(attached, "_sock", attached)
        self.pending = bytearray()  # demultiplexed stdout not yet consumed

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_raw(self, n: int, deadline: float) -> bytes:
        return read_exactly(self.sock, self.sock.recv, n, deadline, "the container's stream closed")

    def recv(self, n: int, deadline: float) -> bytes:
        while len(self.pending) < n:
            stream, size = struct.unpack(">BxxxI", self._read_raw(8, deadline))
            payload = self._read_raw(size, deadline)
            if stream == 1:
                self.pending += payload
        data, self.pending = bytes(self.pending[:n]), self.pending[n:]
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            try:
                self.container.remove(force=True)
            except Exception:  # already gone (daemon restarted, auto-removed): nothing left to clean
                pass


def spawn(client, image: str, limits: Limits) -> DockerChannel:
    container = client.containers.create(
        image, command=["python3", "-I", "-S", "-c", BOOTSTRAP], stdin_open=True, working_dir="/tmp",
        network_mode="none", read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        user=SANDBOX_USER, init=True, pids_limit=worker_pids(limits),
        mem_limit=f"{worker_memory_mb(limits)}m", memswap_limit=f"{worker_memory_mb(limits)}m",
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={SCRATCH_MB}m,mode=1777"}, shm_size="64m",
        environment={"HOME": "/tmp", "LANG": "C.UTF-8"}, labels={LABEL: "worker"}, auto_remove=True,
    )
    try:
        attached = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stream": 1})
        container.start()
    except BaseException:
        container.remove(force=True)
        raise
    return DockerChannel(container, attached)


def open_docker(workers: int | None = None, image: str = IMAGE, limits: Limits | None = None) -> SandboxPool:
    """A warm pool of containers. `limits` sizes the container-level pids and memory caps (per-job limits still
    apply inside)."""
    client, reason = client_or_reason()
    if client is None:
        raise RuntimeError(f"docker backend unavailable: {reason}")
    if not image_exists(client, image):
        raise RuntimeError(f"docker image {image} not found: run `rlvr sandbox build-image` (or pass --image)")
    ceiling = limits or Limits()
    return SandboxPool("docker", lambda: spawn(client, image, ceiling), CONFIG, workers, on_close=client.close)
