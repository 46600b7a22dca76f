"""Shared sandbox pools for the sandbox tests: one warm pool per backend per session, skipped with the reason
when the backend cannot run here (scripts/setup-sandbox.sh installs and starts both)."""
from __future__ import annotations

import pytest

from sandbox import open_sandbox


def backend_params():
    return [pytest.param("bwrap", marks=pytest.mark.bwrap), pytest.param("docker", marks=pytest.mark.docker)]


def skip_reason(backend: str) -> str | None:
    if backend == "bwrap":
        from sandbox.bwrap import unavailable_reason

        return unavailable_reason()
    from sandbox.docker_backend import client_or_reason
    from sandbox.image import IMAGE, image_exists

    client, reason = client_or_reason()
    if client is None:
        return reason
    if not image_exists(client, IMAGE):
        return f"docker image {IMAGE} missing: run `rlvr sandbox build-image`"
    return None


@pytest.fixture(scope="session")
def pools():
    """backend -> warm pool (2 workers), created on first use."""
    opened = {}

    def get(backend: str):
        if backend not in opened:
            reason = skip_reason(backend)
            if reason:
                pytest.skip(reason)
            opened[backend] = open_sandbox(backend, workers=2)
        return opened[backend]

    yield get
    for pool in opened.values():
        pool.close()


@pytest.fixture(scope="session")
def single_worker_pools():
    """backend -> warm pool with one worker (checks that need two jobs on the same worker)."""
    opened = {}

    def get(backend: str):
        if backend not in opened:
            reason = skip_reason(backend)
            if reason:
                pytest.skip(reason)
            opened[backend] = open_sandbox(backend, workers=1)
        return opened[backend]

    yield get
    for pool in opened.values():
        pool.close()
