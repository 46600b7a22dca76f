"""`rlvr train` end to end on a tiny random model, in subprocesses, as a user runs it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine_helpers import REPO, run_cli


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "model.safetensors")


def test_two_steps_change_the_parameters(tiny_model, tiny_config, tmp_path):
    result = run_cli("train", *tiny_config, "train.save_every=1", "train.keep_checkpoints=1")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "tiny"
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-000002"]  # step 1 pruned
    summary = json.loads(result.stdout)  # stdout holds the result alone (DeepSpeed's log goes to stderr)
    assert summary["steps"] == 2 and summary["run_dir"] == str(run_dir)
    before, after = weights(tiny_model), weights(run_dir / "checkpoints" / "step-000002" / "hf")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before), f"unchanged: {set(before) - set(changed)}"
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert {"reward/mean", "loss", "kl", "entropy", "completion/length", "time/step_s"} <= set(rows[1])
    assert "eval/accuracy" in rows[0] and "eval/accuracy" in rows[2]
    assert (run_dir / "curves.png").stat().st_size > 10_000
    assert (run_dir / "config.yaml").read_text().count("tiny") >= 1
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert {"prompt", "completion", "reward", "terms"} <= set(samples[0])


def test_sigkilled_run_resumes_to_the_same_losses(tiny_config, tmp_path):
    steps = ["train.steps=5", "train.save_every=1", "train.keep_checkpoints=5"]
    reference = run_cli("train", *tiny_config, *steps, "log.run_name=uninterrupted")
    assert reference.returncode == 0, reference.stderr

    run_dir = tmp_path / "runs" / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", *tiny_config, *steps,
                             "log.run_name=killed"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "step-000002").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before its second checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(r["step"] for r in metrics(run_dir))
    assert killed_at < 5

    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    expected = {r["step"]: r for r in metrics(tmp_path / "runs" / "uninterrupted")}
    got = metrics(run_dir)
    assert [r["step"] for r in got] == [0, 1, 2, 3, 4, 5]  # no step logged twice, none missing
    for row in got[1:]:
        assert row["loss"] == pytest.approx(expected[row["step"]]["loss"], rel=1e-5, abs=1e-7), row["step"]
        assert row["grad_norm"] == pytest.approx(expected[row["step"]]["grad_norm"], rel=1e-5), row["step"]
        assert row["reward/mean"] == expected[row["step"]]["reward/mean"]
    final = weights(run_dir / "checkpoints" / "step-000005" / "hf")
    final_expected = weights(tmp_path / "runs" / "uninterrupted" / "checkpoints" / "step-000005" / "hf")
    for key, value in final_expected.items():
        torch.testing.assert_close(final[key], value, rtol=1e-5, atol=1e-7, msg=key)


@pytest.mark.parametrize("extra", [["train.zero_stage=2"], ["train.zero_stage=3", "grpo.beta=0.1"]],
                         ids=["zero2", "zero3-kl"])
def test_two_processes_train_data_parallel(tiny_config, tmp_path, extra):
    result = run_cli("train", "--nproc", "2", *tiny_config, "log.run_name=ddp", *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "ddp"
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2]
    if "grpo.beta=0.1" in extra:  # the reference model is loaded and the policy has moved away from it
        assert rows[1]["kl"] == pytest.approx(0.0, abs=1e-6) and rows[2]["kl"] > 0
    assert (run_dir / "checkpoints" / "step-000002" / "hf" / "model.safetensors").is_file()
    assert (run_dir / "checkpoints" / "step-000002" / "rng-rank1.pt").is_file()


def test_config_errors_are_one_paragraph_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grpo:\n  clip_hihg: 0.3\n")
    result = run_cli("train", str(bad))
    assert result.returncode == 2
    assert "unknown key `grpo.clip_hihg`; did you mean `grpo.clip_high`?" in result.stderr
    assert "Traceback" not in result.stderr

    missing = run_cli("train", "model.path=/nonexistent/model", "log.output_dir=" + str(tmp_path))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "/nonexistent/model" in missing.stderr and "model.path" in missing.stderr

    not_a_run = run_cli("train", "--resume", str(tmp_path))
    assert not_a_run.returncode == 2 and "not a run directory" in not_a_run.stderr


def test_eval_command_scores_a_checkpoint(tiny_config, tmp_path):
    assert run_cli("train", *tiny_config, "train.steps=1").returncode == 0
    ckpt = tmp_path / "runs" / "tiny" / "checkpoints" / "step-000001"
    result = run_cli("eval", str(ckpt), "eval.size=4", "eval.k=3")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert 0.0 <= out["eval/accuracy"] <= 1.0 and "eval/arithmetic/accuracy" in out
    assert 0.0 <= out["eval/avg@3"] <= out["eval/pass@3"] <= 1.0


def test_non_finite_losses_skip_updates_then_stop_keeping_the_last_good_checkpoint(tiny_config, tmp_path):
    # lr 1e30 blows the weights up in step 1's update; steps 2-4 then produce non-finite losses
    result = run_cli("train", *tiny_config, "train.lr=1e30", "train.grad_clip=1e30", "train.steps=8",
                     "train.save_every=1", "log.run_name=nan")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "stopped at step 4: 3 consecutive non-finite losses" in result.stderr
    assert "update skipped (1 in a row)" in result.stderr
    run_dir = tmp_path / "runs" / "nan"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000001"]
    rows = metrics(run_dir)
    assert [r["skipped_updates"] for r in rows[2:]] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("knobs", [
    ["grpo.estimator=rloo", "grpo.epochs=2", "grpo.minibatches=2", "grpo.drop_zero_variance=true",
     "grpo.dual_clip=3.0", "grpo.loss_agg=seq-mean-token-sum-norm", "grpo.entropy_coef=0.01"],
    ["grpo.estimator=reinforce_pp", "grpo.mask_truncated=true", "grpo.overlong_buffer=4", "grpo.beta=0.05",
     "grpo.kl_estimator=k2", "grpo.loss_agg=seq-mean-token-mean", "rollout.max_new_tokens=12"],
    ["grpo.estimator=dr_grpo", "rollout.max_prompt_tokens=64", "train.micro_batch_tokens=200",
     "model.gradient_checkpointing=true"],
], ids=["rloo-multi-update-dynamic", "reinforce_pp-masked-kl", "dr_grpo-tiny-microbatches-ckpt"])
def test_algorithm_options_run_end_to_end(tiny_config, tmp_path, knobs):
    result = run_cli("train", *tiny_config, *knobs, "log.run_name=knobs")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = metrics(tmp_path / "runs" / "knobs")
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all(r["skipped_updates"] == 0 and r["grad_norm"] is not None for r in rows[1:])
    if "grpo.epochs=2" in knobs:  # 4 updates per step: later ones see ratios != 1
        assert rows[2]["clip_fraction"] > 0
        assert "dynamic/kept_groups" in rows[1]
