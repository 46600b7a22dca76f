"""Shared sandbox pools for the sandbox tests: one warm pool per backend per session, skipped with the reason
when the backend cannot run here (scripts/setup-sandbox.sh installs and starts both)."""
from __future__ import annotations

import pytest

from sandbox import open_sandbox

from sandbox_backends import skip_reason


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
