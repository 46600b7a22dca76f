"""PPO with a critic, per task, in one batch: a tiny random model on two arithmetic tasks, one trained with group
advantages (grpo) and one with GAE and the critic. In process for the batch's targets and the critic's update; as a
user runs it (the CLI, 1 or 2 processes) for training, checkpoints and exact resume."""
import copy
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine_helpers import run_cli

REGEX = "{grader: regex, params: {pattern: '[a-m]'}}"
MIXED = f"tasks=[{{name: arithmetic, rewards: [{REGEX}]}}, " \
        f"{{name: arithmetic, label: ppo, advantage: gae, rewards: [{REGEX}]}}]"


def mixed_config(tiny_config: list[str]) -> list[str]:
    return [o for o in tiny_config if not o.startswith("tasks.0.rewards")] + [MIXED, "train.seed=3"]


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def mixed_run(tiny_model, tmp_path_factory):
    """One run built in this process (its first step's batch collected), with GAE that has a closed form:
    gamma = lambda = 1 and no whitening make a critic row's advantage at token t its score minus V_t."""
    from engine.config import load_config
    from engine.trainer import build_run, collect_groups
    from engine.update import Packer

    tmp = tmp_path_factory.mktemp("mixed")
    overrides = [o.replace("TMP", str(tmp)) for o in (
        f"model.path={tiny_model}", "log.output_dir=TMP", "log.run_name=mixed", "rollout.prompts_per_step=8",
        "rollout.group_size=4", "rollout.max_new_tokens=6", "train.grader_workers=1", "log.tensorboard=false",
        "log.progress=false", "eval.at_start=false", MIXED, "train.seed=3", "critic.whiten_advantages=false",
        "critic.lam_policy=1.0", "critic.lr=1e-3")]
    environ = dict(os.environ)
    run = build_run(load_config(None, overrides), tmp / "mixed", resume=False)
    os.environ.clear()
    os.environ.update(environ)  # the process group is up; runs started later must not inherit its RANK and port
    groups, _, _ = collect_groups(run)
    packer = Packer(groups.rollout, 4, run.tokenizer.pad_token_id, run.cfg.train.micro_batch_tokens)
    yield run, groups, packer
    run.scorer.close()
    torch.distributed.destroy_process_group()


def test_group_rows_get_group_advantages_and_critic_rows_get_gae(mixed_run):
    from engine.advantages import group_advantages
    from engine.trainer import compute_targets
    from engine.update import critic_values

    run, groups, packer = mixed_run
    kinds = [run.estimators[ex.task] for ex in groups.examples]
    assert set(kinds) == {"grpo", "gae"}, kinds                     # the seed mixes both kinds in one batch
    targets, metrics = compute_targets(run, groups, packer, None, None)
    values = critic_values(packer, run.critic.module, targets.critic_groups)
    lengths = packer.lengths()
    assert targets.critic_groups == [j for j, kind in enumerate(kinds) if kind == "gae"]
    for j, kind in enumerate(kinds):
        expected = group_advantages(groups.rewards[j:j + 1], "grpo")[0]
        for i in range(4):
            row, n = j * 4 + i, lengths[j * 4 + i]
            got = targets.advantages[row]
            assert not got[n:].any()                                 # nothing past the completion
            if kind == "grpo":                                       # one number on every token
                assert torch.equal(got[:n], torch.full((n,), float(expected[i])))
                assert not targets.values[row].any() and not targets.returns[row].any()
            else:                                                    # reward-to-go (the score) minus V_t
                score = float(groups.rewards[j, i])
                torch.testing.assert_close(got[:n], score - values[row], rtol=0, atol=1e-6)
                torch.testing.assert_close(targets.returns[row, :n], torch.full((n,), score), rtol=0, atol=1e-6)
                torch.testing.assert_close(targets.values[row, :n], values[row])
    assert {"critic/explained_var", "advantage/arithmetic/mean", "advantage/ppo/std"} <= set(metrics)


def test_nan_values_from_the_critic_skip_its_rows_not_the_step(mixed_run, monkeypatch):
    import engine.trainer as trainer
    from engine.update import update_critic

    run, groups, packer = mixed_run
    healthy, _ = trainer.compute_targets(run, groups, packer, None, None)
    real_values = trainer.critic_values
    monkeypatch.setattr(trainer, "critic_values", lambda *a: {r: v * float("nan") for r, v in real_values(*a).items()})
    targets, metrics = trainer.compute_targets(run, groups, packer, None, None)
    critic_rows = [j * 4 + i for j in healthy.critic_groups for i in range(4)]
    group_rows = sorted(set(range(len(targets.weight))) - set(critic_rows))
    assert critic_rows and not targets.weight[critic_rows].any()                     # out of the policy loss
    assert torch.equal(targets.weight[group_rows], healthy.weight[group_rows])       # the group rows still train
    assert torch.equal(targets.advantages[group_rows], healthy.advantages[group_rows])
    assert targets.critic_groups == [] and update_critic(run.cfg, run.critic, packer, targets, seed=0) == {}
    assert metrics["critic/nonfinite_values"] == 1.0 and metrics["critic/skipped_updates"] == 1.0  # a bad step


def test_the_critic_learns_only_from_its_rows(mixed_run):
    """The critic's update is the same whatever the group rows hold; it does change the critic."""
    from engine.trainer import compute_targets
    from engine.update import update_critic

    run, groups, packer = mixed_run
    critic = run.critic
    targets, _ = compute_targets(run, groups, packer, None, None)
    start = [copy.deepcopy(x.state_dict()) for x in (critic.module, critic.optimizer, critic.lr_scheduler)]

    def update(t) -> dict[str, torch.Tensor]:
        for x, state in zip((critic.module, critic.optimizer, critic.lr_scheduler), start):
            x.load_state_dict(copy.deepcopy(state))
        out = update_critic(run.cfg, critic, packer, t, seed=0)
        assert out["critic/value_loss"] > 0 and out["critic/skipped_updates"] == 0
        return {k: v.clone() for k, v in critic.module.state_dict().items()}

    after = update(targets)
    group_rows = torch.tensor([j * 4 + i for j in range(len(groups.examples)) if j not in targets.critic_groups
                               for i in range(4)])
    garbled = copy.copy(targets)
    garbled.returns, garbled.values = targets.returns.clone(), targets.values.clone()
    garbled.returns[group_rows] = 1e3
    garbled.values[group_rows] = -1e3
    assert torch.equal(garbled.returns[targets.critic_groups[0] * 4], targets.returns[targets.critic_groups[0] * 4])
    after_garbled = update(garbled)
    assert all(torch.equal(after[k], after_garbled[k]) for k in after)
    assert any(not torch.equal(after[k], start[0][k]) for k in after)


def critic_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt / "critic" / "state" / "mp_rank_00_model_states.pt", weights_only=False)["module"]


def test_a_run_with_a_critic_resumes_exactly(tiny_config, tmp_path):
    config = [*mixed_config(tiny_config), "train.steps=3", "train.save_every=1", "train.keep_checkpoints=3",
              "critic.lr=1e-3", "critic.warmup_steps=1", "critic.kl_coef=0.05", "critic.kl_target=0.01"]
    result = run_cli("train", *config)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "tiny"
    straight = metrics(run_dir)
    assert straight[1]["policy/frozen"] == 1.0 and "loss" not in straight[1]    # critic warm-up: policy frozen
    assert {"loss", "critic/value_loss", "critic/explained_var", "critic/kl_coef"} <= set(straight[3])
    assert straight[3]["critic/kl_coef"] != 0.05                                 # the adaptive coefficient moved
    last = run_dir / "checkpoints" / "step-000003"
    expected_policy, expected_critic = load_file(last / "hf" / "model.safetensors"), critic_weights(last)
    last.rename(last.with_name(last.name + ".tmp"))                              # as if killed while writing it
    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    for key in ("loss", "critic/value_loss", "critic/explained_var", "critic/kl_coef", "grad_norm"):
        assert rows[3][key] == pytest.approx(straight[3][key], rel=1e-5, abs=1e-7), key
    policy, critic = load_file(last / "hf" / "model.safetensors"), critic_weights(last)
    for key, value in expected_policy.items():
        torch.testing.assert_close(policy[key], value, rtol=1e-5, atol=1e-7, msg=key)
    for key, value in expected_critic.items():
        torch.testing.assert_close(critic[key], value, rtol=1e-5, atol=1e-7, msg=key)


def test_two_processes_with_zero2_train_the_policy_and_the_critic(tiny_config, tmp_path):
    result = run_cli("train", "--nproc", "2", *mixed_config(tiny_config), "train.zero_stage=2",
                     "log.run_name=ddp", "critic.lr=1e-3")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "ddp"
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all(r["critic/skipped_updates"] == 0 and r["critic/value_loss"] > 0 for r in rows[1:])
    state = run_dir / "checkpoints" / "step-000002" / "critic" / "state"
    assert {p.name for p in state.glob("zero_pp_rank_*_optim_states.pt")} == {
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"}  # ZeRO-2 shards


def test_mixed_run_with_several_updates_dynamic_sampling_and_both_kls(tiny_config, tmp_path):
    knobs = ["grpo.estimator=reinforce_pp", "grpo.epochs=2", "grpo.minibatches=2", "grpo.drop_zero_variance=true",
             "grpo.beta=0.05", "critic.kl_coef=0.02", "critic.value_clip=null", "critic.lr=1e-3"]
    result = run_cli("train", *mixed_config(tiny_config), *knobs, "log.run_name=knobs")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = metrics(tmp_path / "runs" / "knobs")
    assert [r["step"] for r in rows] == [0, 1, 2]
    for row in rows[1:]:
        assert row["skipped_updates"] == 0 and row["critic/skipped_updates"] == 0
        assert row["critic/value_clip_fraction"] == 0                      # no value clipping asked for
        assert row["critic/kl_coef"] == 0.02 and "dynamic/kept_groups" in row
    assert rows[2]["critic/kl"] != 0 and rows[2]["kl"] > 0    # the policy moved from the reference (k1 may be < 0)
