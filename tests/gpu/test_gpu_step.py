"""GPU path: bf16 training on CUDA with the packed-group forward. Skipped cleanly without a CUDA device."""
import json

import pytest
import torch

from engine_helpers import run_cli

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_bf16_steps_on_gpu(tiny_config, tmp_path):
    result = run_cli("train", *tiny_config, "model.dtype=auto", "log.run_name=gpu")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "runs" / "gpu" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and all(r.get("skipped_updates", 0) == 0 for r in rows[1:])


def test_bf16_steps_with_a_critic_on_gpu(tiny_config, tmp_path):
    """PPO rows (advantage gae, the critic on the GPU in bf16) and group rows in one batch."""
    tasks = "tasks=[{name: arithmetic, rewards: [{grader: regex, params: {pattern: '[a-m]'}}]}, {name: arithmetic, " \
            "label: ppo, advantage: gae, rewards: [{grader: regex, params: {pattern: '[a-m]'}}]}]"
    config = [o for o in tiny_config if not o.startswith("tasks.0.rewards")]
    result = run_cli("train", *config, tasks, "model.dtype=auto", "log.run_name=gpu-critic")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "runs" / "gpu-critic" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and all(r["critic/skipped_updates"] == 0 for r in rows[1:])


def test_device_and_dtype_choice():
    from engine import device
    assert device.device().type == "cuda" and device.train_dtype() == torch.bfloat16 and device.dist_backend() == "nccl"
