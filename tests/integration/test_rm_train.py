"""Reward models end to end on a tiny random model, as a user runs them: `rlvr rm train` learns a rule from
preference pairs ("the response with more a's wins"), `rlvr rm eval`, `rlvr grade --grader reward_model`, the
reward-model term in RewardScorer (in this process, timed, never in the pool), ensembles, an exact resume after
SIGKILL, two processes, and (slow) the real SmolLM2 backbone."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine import rm_grader
from engine_helpers import REPO, run_cli
from graders.base import Sample
from graders.rewards import RewardScorer, RewardTerm

BAD_LINES = [b'{"prompt": "x", "chosen": "aa"}', b'{"prompt": "y", "chosen": "ab", "rejected": "ab"}',
             b'{"prompt": "z", "chosen": "caf\xe9", "rejected": "b"}']
FAST = ["log.progress=false", "log.tensorboard=false", "train.lr=3e-3", "eval.every=10", "eval.stats_samples=200"]


def response(rng: random.Random, share_of_a: float) -> str:
    return "".join("a" if rng.random() < share_of_a else rng.choice("bcd") for _ in range(rng.randint(6, 14)))


def preference_rows(n: int, seed: int = 0) -> list[dict]:
    """Pairs whose chosen response has more a's; lengths drawn independently of the label."""
    rng, rows = random.Random(seed), []
    while len(rows) < n:
        chosen, rejected = response(rng, 0.6), response(rng, 0.1)
        if chosen.count("a") > rejected.count("a"):
            rows.append({"prompt": f"Write something, please ({len(rows)})", "chosen": chosen, "rejected": rejected})
    return rows


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def stdout_json(stdout: str) -> dict:
    return json.loads(stdout)  # the command's result alone: DeepSpeed's log goes to stderr


@pytest.fixture(scope="module")
def prefs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prefs") / "prefs.jsonl"
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in preference_rows(400)) +
                     b"".join(line + b"\n" for line in BAD_LINES))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model, prefs) -> tuple[Path, dict]:
    """One member trained for 40 steps of 16 pairs: (run dir, the command's JSON summary)."""
    out = tmp_path_factory.mktemp("rm")
    result = run_cli("rm", "train", f"data.path={prefs}", f"model.path={tiny_model}", f"log.output_dir={out}",
                     "log.run_name=rm", "train.steps=40", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "rm", stdout_json(result.stdout)


@pytest.fixture
def graded_rows(tmp_path) -> Path:
    rows = preference_rows(20, seed=1)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"prompt": r["prompt"], "completion": r[side], "side": side}) + "\n"
                            for r in rows for side in ("chosen", "rejected")))
    return path


def test_rm_train_learns_the_rule_and_writes_the_run(trained):
    run_dir, summary = trained
    rows = metrics(run_dir)
    assert rows[0]["step"] == 0 and "eval/accuracy" in rows[0]  # the untrained baseline
    final = rows[-1]
    assert final["step"] == 40 and final["eval/accuracy"] >= 0.9, final
    assert -1 <= final["eval/length_corr"] <= 1 and "train/loss" in rows[1]
    assert rows[1]["train/loss"] > final["train/loss"]
    assert summary["eval/accuracy"] == final["eval/accuracy"] and summary["skipped_rows"] == len(BAD_LINES)
    assert summary["train_pairs"] + summary["eval_pairs"] == 400 and summary["eval_pairs"] > 20
    manifest = json.loads((run_dir / "model" / "reward_model.json").read_text())
    [member] = manifest["members"]
    assert member["std"] > 0 and {"mean", "seed", "eval"} <= set(member)
    assert (run_dir / "model" / "member-0" / "model.safetensors").is_file()
    assert (run_dir / "curves.png").stat().st_size > 10_000
    assert not (run_dir / "checkpoints").exists()  # the finished member supersedes its checkpoints


def test_rm_eval_prints_accuracy_n_and_length_corr(trained, prefs):
    run_dir, _ = trained
    result = run_cli("rm", "eval", str(run_dir / "model"), str(prefs))
    assert result.returncode == 0, result.stderr[-3000:]
    out = stdout_json(result.stdout)
    assert out["n"] == 400 and out["skipped"] == len(BAD_LINES) and out["ensemble_size"] == 1
    assert out["accuracy"] >= 0.9 and -1 <= out["length_corr"] <= 1
    assert "skipped 3 bad rows" in result.stderr


def test_grade_cli_scores_prompt_completion_rows(trained, graded_rows, tmp_path):
    run_dir, _ = trained
    params = json.dumps({"path": str(run_dir / "model"), "aggregate": "min"})
    result = run_cli("grade", "--grader", "reward_model", "--params", params, str(graded_rows), "-o",
                     str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(out) == 40 and all(isinstance(r["score"], float) and r["error"] is None for r in out)
    chosen = [r["score"] for r in out if r["side"] == "chosen"]
    rejected = [r["score"] for r in out if r["side"] == "rejected"]
    assert sum(c > r for c, r in zip(chosen, rejected)) >= 18
    clipped = run_cli("grade", "--grader", "reward_model", "--params",
                      json.dumps({"path": str(run_dir), "clip": 0.5}), str(graded_rows))  # the run dir works too
    assert all(abs(json.loads(line)["score"]) <= 0.5 for line in clipped.stdout.splitlines())


def test_reward_scorer_runs_the_reward_model_in_this_process_and_times_it(trained):
    run_dir, _ = trained
    term = RewardTerm(grader="reward_model", params={"path": str(run_dir / "model")})
    samples = [Sample(r[side], {}, r["prompt"]) for r in preference_rows(4, seed=2) for side in ("chosen", "rejected")]
    with RewardScorer(workers=1, timeout_s=5.0) as scorer:
        rewards = scorer.score([term], samples)
        taken = scorer.take_metrics()
        assert scorer.take_metrics() == {}  # reset once taken
        assert [r.score for r in scorer.score([term], samples)] == [r.score for r in rewards]
        assert scorer.take_metrics() == {}  # all cached: the model did not run again
    assert rm_grader.load_model.cache_info().currsize >= 1  # loaded here, not in a pool worker
    assert taken["time/reward_model_s"] > 0 and "reward/ensemble_std" not in taken  # one member: no spread
    assert all(set(r.terms) == {"reward_model"} and r.correct is None and not r.mask for r in rewards)
    assert all(rewards[i].score > rewards[i + 1].score for i in range(0, 8, 2))


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory, tiny_model, prefs) -> Path:
    """Two members trained for 20 steps each: the run directory."""
    out = tmp_path_factory.mktemp("ensemble")
    result = run_cli("rm", "train", f"data.path={prefs}", f"model.path={tiny_model}", f"log.output_dir={out}",
                     "log.run_name=ens", "train.steps=20", "ensemble.size=2", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    return out / "ens"


def test_an_ensemble_of_two_has_members_that_differ(ensemble, prefs, graded_rows):
    model_dir = ensemble / "model"
    members = json.loads((model_dir / "reward_model.json").read_text())["members"]
    assert [m["seed"] for m in members] == [0, 1] and all(m["bootstrap"] for m in members)
    a, b = (load_file(model_dir / f"member-{i}" / "model.safetensors") for i in (0, 1))
    assert set(a) == set(b) and all(not torch.equal(a[k], b[k]) for k in a)  # every tensor differs, head included
    assert "eval/ensemble/accuracy" in metrics(ensemble)[-1]

    evaluated = stdout_json(run_cli("rm", "eval", str(model_dir), str(prefs)).stdout)
    assert evaluated["ensemble_size"] == 2 and len(evaluated["members"]) == 2
    assert evaluated["members"][0] != evaluated["members"][1]
    assert all({"accuracy", "length_corr"} <= set(m) for m in evaluated["members"])

    rows = [json.loads(line) for line in graded_rows.read_text().splitlines()]
    samples = [Sample(r["completion"], {}, r["prompt"]) for r in rows]
    grader = rm_grader.reward_model_grader
    spread = [g.metrics["ensemble_std"] for g in grader.grade(samples, rm_grader.Params(path=str(model_dir)))]
    assert min(spread) > 0  # the members disagree, a little, on every sample
    cut = sorted(spread)[len(spread) // 2]
    masked = grader.grade(samples, rm_grader.Params(path=str(model_dir), mask_std_above=cut))
    assert [g.mask for g in masked] == [s > cut for s in spread] and any(g.mask for g in masked)
    means = grader.grade(samples, rm_grader.Params(path=str(model_dir)))
    worst = grader.grade(samples, rm_grader.Params(path=str(model_dir), aggregate="min"))
    assert all(w.score <= m.score for w, m in zip(worst, means))


def test_grpo_with_the_ensemble_as_reward_logs_its_term_time_and_spread(ensemble, tiny_config, tmp_path):
    term = f"{{grader: reward_model, params: {{path: {ensemble / 'model'}, aggregate: mean_minus_std, " \
           "mask_std_above: 1.0e-9}}"
    result = run_cli("train", *tiny_config, f"tasks.0.rewards=[{term}]", "tasks.0.advantage=grpo")
    assert result.returncode == 0, result.stderr[-3000:]
    step = metrics(tmp_path / "runs" / "tiny")[1]
    assert step["reward/term/reward_model"] == pytest.approx(step["reward/mean"])
    assert -1 <= step["reward/rm_length_corr"] <= 1 and "critic/value_loss" not in step  # grpo asked: no critic
    assert step["time/reward_model_s"] > 0 and step["reward/ensemble_std"] > 0
    assert step["reward/masked"] == 1.0  # every sample is above a threshold of 1e-9: all left out of the loss
    assert step["loss"] == 0.0


def test_a_learned_term_trains_with_a_critic_started_from_the_reward_model(ensemble, tiny_config, tmp_path):
    """advantage auto: the task with a reward-model term is trained with PPO; its critic starts from member 0."""
    terms = f"[{{grader: regex, params: {{pattern: '[a-m]'}}}}, " \
            f"{{grader: reward_model, weight: 0.5, params: {{path: {ensemble / 'model'}}}}}]"
    result = run_cli("train", *tiny_config, f"tasks.0.rewards={terms}", "critic.init=reward_model")
    assert result.returncode == 0, result.stderr[-3000:]
    for step in metrics(tmp_path / "runs" / "tiny")[1:]:
        assert step["critic/value_loss"] > 0 and -1 <= step["reward/rm_length_corr"] <= 1
        assert "advantage/arithmetic/mean" in step


@pytest.mark.slow
def test_a_sigkilled_rm_run_resumes_to_the_same_weights(tiny_model, prefs, tmp_path):
    config = [f"data.path={prefs}", f"model.path={tiny_model}", f"log.output_dir={tmp_path}", "train.steps=12",
              "train.batch_size=8", "train.micro_batch_size=1", "train.save_every=3", "train.keep_checkpoints=1", *FAST]
    reference = run_cli("rm", "train", *config, "log.run_name=whole")
    assert reference.returncode == 0, reference.stderr[-3000:]
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "rm", "train", *config, "log.run_name=killed"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "step-000003").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "model" / "member-0" / "member.json").exists()  # killed while training
    resumed = run_cli("rm", "train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got, expected = metrics(run_dir), {r["step"]: r for r in metrics(tmp_path / "whole")}
    assert [r["step"] for r in got] == sorted(expected)  # no step logged twice, none missing
    for row in got[1:]:
        assert row["train/loss"] == pytest.approx(expected[row["step"]]["train/loss"], rel=1e-5), row["step"]
    final, final_expected = (load_file(d / "model" / "member-0" / "model.safetensors") for d in (run_dir,
                                                                                               tmp_path / "whole"))
    for key, value in final_expected.items():
        torch.testing.assert_close(final[key], value, rtol=1e-5, atol=1e-7, msg=key)


@pytest.mark.slow
def test_two_processes_train_one_reward_model(tiny_model, prefs, tmp_path):
    result = run_cli("rm", "train", "--nproc", "2", f"data.path={prefs}", f"model.path={tiny_model}",
                     f"log.output_dir={tmp_path}", "log.run_name=ddp", "train.steps=20", "train.zero_stage=2", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = stdout_json(result.stdout)
    assert summary["eval/accuracy"] >= 0.9
    assert (tmp_path / "ddp" / "model" / "reward_model.json").is_file()


@pytest.mark.slow
def test_the_default_backbone_trains_and_grades_on_cpu(prefs, tmp_path):
    """SmolLM2-135M (the default backbone): two small steps, then the grader on a chat-templated prompt."""
    result = run_cli("rm", "train", f"data.path={prefs}", f"log.output_dir={tmp_path}", "log.run_name=smol",
                     "train.steps=2", "train.batch_size=4", "train.micro_batch_size=2", "data.eval_limit=8",
                     "eval.stats_samples=8", "log.progress=false", "log.tensorboard=false")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = stdout_json(result.stdout)
    assert summary["eval_pairs"] == 8 and "eval/accuracy" in summary
    model_dir = tmp_path / "smol" / "model"
    [grade] = rm_grader.reward_model_grader.grade([Sample("4", {}, [{"role": "user", "content": "2+2?"}])],
                                                  rm_grader.Params(path=str(model_dir)))
    assert grade.error is None and isinstance(grade.score, float)
