"""Every property of `rlvr sandbox check`, as a test per backend: real attacks on real sandboxes."""
from __future__ import annotations

import pytest

from sandbox.check import CHECKS

from sandbox_backends import backend_params


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("prop", list(CHECKS))
def test_property_holds(single_worker_pools, backend, prop):
    ok, detail = CHECKS[prop](single_worker_pools(backend))
    assert ok, f"{backend}: {prop}: {detail}"
