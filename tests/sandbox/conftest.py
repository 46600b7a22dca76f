"""Shared sandbox pools for the sandbox tests: warm pools per backend per session, skipped with the reason when
the backend cannot run here (scripts/setup-sandbox.sh installs and starts both)."""
from __future__ import annotations

import pytest

from sandbox import open_sandbox
from sandbox.check import LIMITS

from sandbox_backends import skip_reason


def pool_factory(**options):
    opened = {}

    def get(backend: str):
        if backend not in opened:
            reason = skip_reason(backend)
            if reason:
                pytest.skip(reason)
            opened[backend] = open_sandbox(backend, **options)
        return opened[backend]

    return opened, get


@pytest.fixture(scope="session")
def pools():
    """backend -> warm pool with 2 workers and default limits."""
    opened, get = pool_factory(workers=2)
    yield get
    for pool in opened.values():
        pool.close()


@pytest.fixture(scope="session")
def check_pools():
    """backend -> a pool like `rlvr sandbox check` uses: one worker (two jobs land on the same worker) and
    worker caps sized from the check's limits."""
    opened, get = pool_factory(workers=1, limits=LIMITS)
    yield get
    for pool in opened.values():
        pool.close()
