#!/usr/bin/env bash
# Make both sandbox backends usable: bubblewrap, unprivileged user namespaces, a running Docker daemon and the
# local sandbox image (built with debootstrap + docker import; no registry). Idempotent: a second run only checks.
#   bash scripts/setup-sandbox.sh        (run by scripts/test.sh after scripts/setup.sh)
# Honours DOCKER_HOST: with a remote daemon nothing is started locally.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ -z "${DOCKER_HOST:-}" ] && ! command -v dockerd >/dev/null; then missing+=(docker.io); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-sandbox: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bwrap needs unprivileged user namespaces (off by default on some Debian kernels and Ubuntu >= 23.10).
for knob in kernel.unprivileged_userns_clone=1 kernel.apparmor_restrict_unprivileged_userns=0; do
  file=/proc/sys/${knob%=*}; file=${file//.//}
  if [ -e "$file" ] && [ "$(cat "$file")" != "${knob#*=}" ]; then $SUDO sysctl -q -w "$knob"; fi
done

docker_up() { "$PY" -c "import docker; docker.from_env(timeout=5).ping()" >/dev/null 2>&1; }
if ! docker_up; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    echo "setup-sandbox: DOCKER_HOST=$DOCKER_HOST does not answer" >&2; exit 1
  fi
  echo "setup-sandbox: starting dockerd (log: /tmp/rlvr-dockerd.log)"
  $SUDO sh -c 'nohup dockerd >/tmp/rlvr-dockerd.log 2>&1 &'
  for _ in $(seq 60); do docker_up && break; sleep 1; done
  docker_up || { echo "setup-sandbox: dockerd did not come up; see /tmp/rlvr-dockerd.log" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] || $SUDO chmod 666 /var/run/docker.sock
fi

if [ "$(id -u)" -eq 0 ]; then
  .venv/bin/rlvr sandbox build-image
else
  $SUDO --preserve-env=DOCKER_HOST .venv/bin/rlvr sandbox build-image
fi
