"""Every preset, loaded from a file in its data set's real shape, trains a step of `rlvr train` (one run, all
seven presets in one task mixture, graded by their real graders: math, and code in the sandbox), with a planted
overlap that the contamination check reports and drops."""
import json

import pytest
import yaml

from engine_helpers import run_cli

import dataset_rows as rows

CODE = {"humaneval", "mbpp", "apps", "code_contests", "livecodebench"}
VARIES = {"grader": "regex", "weight": 0.1, "params": {"pattern": "[a-m]"}}  # a reward that varies on random text
PLANTED = rows.gsm8k_rows()[1]["question"]  # a GSM8K training question, also held out by the math task


@pytest.mark.slow
def test_every_preset_trains_a_step(tiny_model, tmp_path):
    files = rows.preset_files(tmp_path / "data")
    files["math"]["eval_path"] = rows.write_jsonl(tmp_path / "data" / "math_test.jsonl", rows.math500_rows() + [
        {"problem": PLANTED, "solution": "$\\boxed{2700}$", "answer": "2700", "subject": "Prealgebra", "level": 1,
         "unique_id": "planted"}])
    tasks = [{"name": name, "params": params,
              "rewards": [{"grader": "code", "params": {"timeout_s": 5}} if name in CODE else {"grader": "math"},
                          VARIES]}
             for name, params in files.items()]
    config = {
        "model": {"path": str(tiny_model)}, "tasks": tasks,
        "rollout": {"prompts_per_step": 35, "group_size": 2, "max_new_tokens": 8},
        "train": {"steps": 1, "lr": 1e-2, "time_budget_min": None, "grader_workers": 1, "save_every": 0},
        "eval": {"size": 1, "every": 0, "at_start": False, "drop_contaminated": True},
        "log": {"output_dir": str(tmp_path / "runs"), "run_name": "presets", "tensorboard": False,
                "progress": False, "samples_per_step": 70},
    }
    (tmp_path / "presets.yaml").write_text(yaml.safe_dump(config))
    result = run_cli("train", str(tmp_path / "presets.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "presets"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics][-1] == 1 and "reward/mean" in metrics[-1]
    assert all(f"eval/{name}/accuracy" in metrics[-1] for name in files), metrics[-1]
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert {s["task"] for s in samples} == set(files)  # every preset was drawn into the step
    errors = {error for s in samples for error in s["errors"].values()} if isinstance(samples[0]["errors"], dict) \
        else {error for s in samples for error in s["errors"]}
    assert not {e for e in errors if e and e.startswith(("bad_tests", "missing_reference", "sandbox_error"))}

    report = json.loads((run_dir / "contamination.json").read_text())
    pairs = {(p["train_task"], p["eval_task"]): p for p in report["pairs"]}
    assert pairs["gsm8k", "math"]["train_ids"] == ["gsm8k/train/1"] and report["dropped"] == {"gsm8k": 1}
    assert "gsm8k/train/1" not in {s["id"] for s in samples}
