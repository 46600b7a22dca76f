"""Which sandbox backends the tests can use here, and why not (shared by the sandbox test modules)."""
from __future__ import annotations

import pytest


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
