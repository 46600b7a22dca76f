"""Build the docker backend's image locally, without any registry: debootstrap a minimal Debian with python3,
then `docker import` the tree through the docker SDK.

    rlvr sandbox build-image [--tag rlvr-sandbox:py3] [--force]

What is covered: a small (~100 MB) image with python3 and its standard library, nothing else; reuse of an
existing image unless --force.
What is not covered: extra Python packages (any image with python3 works with `--image`; build your own).
Needs: root, debootstrap, a reachable Debian mirror (RLVR_DEBIAN_MIRROR overrides the default).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

IMAGE = "rlvr-sandbox:py3"
SUITE = "bookworm"
MIRROR = os.environ.get("RLVR_DEBIAN_MIRROR", "http://deb.debian.org/debian")
TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale", "var/log")


def image_exists(client, tag: str = IMAGE) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_image(tag: str = IMAGE, force: bool = False, log=print) -> str:
    """Build `tag` unless it exists; returns the image id. Raises RuntimeError with the fix when it cannot."""
    import docker

    client = docker.from_env()
    if not force and image_exists(client, tag):
        log(f"image {tag} already present")
        return client.images.get(tag).id
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise RuntimeError("building the image needs root and debootstrap (apt-get install debootstrap)")
    repository, _, version = tag.partition(":")
    with tempfile.TemporaryDirectory(prefix="rlvr-rootfs-") as workdir:
        root = Path(workdir) / "root"
        log(f"debootstrap {SUITE} with python3 from {MIRROR} (a few minutes)")
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", SUITE, str(root), MIRROR],
                       check=True, stdout=subprocess.DEVNULL)
        for path in TRIM:
            shutil.rmtree(root / path, ignore_errors=True)
        tarball = Path(workdir) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True)
        log(f"importing {tarball.stat().st_size >> 20} MiB as {tag}")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=version or "latest",
                                          changes=['CMD ["python3"]'])
    return client.images.get(tag).id
