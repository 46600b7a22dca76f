"""The critic: per-task advantage choice in the config, loading (from the policy or a reward model), and values read
at the right positions of a packed micro-batch."""
import json
import re

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from engine.batch import pack_groups
from engine.config import ConfigError, load_config
from engine.critic import load_critic, token_values
from engine_helpers import make_tiny_model

ARITH = "tasks=[{name: arithmetic, rewards: [{grader: number}]}, {name: arithmetic, label: second, rewards: " \
        "[{grader: number}], advantage: ADV}]"


@pytest.mark.parametrize("advantage, estimator, expected", [
    ("auto", "grpo", ["grpo", "grpo"]), ("auto", "rloo", ["rloo", "rloo"]), ("gae", "grpo", ["grpo", "gae"]),
    ("dr_grpo", "rloo", ["rloo", "dr_grpo"])])
def test_each_task_gets_its_estimator(advantage, estimator, expected):
    cfg = load_config(None, [ARITH.replace("ADV", advantage), f"grpo.estimator={estimator}"])
    assert [cfg.task_advantage(t) for t in cfg.tasks] == expected
    assert cfg.uses_critic == ("gae" in expected)


def test_auto_picks_gae_for_a_learned_reward(tmp_path):
    (tmp_path / "reward_model.json").write_text(json.dumps({"format": "rlvr-reward-model/1", "members": []}))
    learned = f"{{grader: reward_model, params: {{path: {tmp_path}}}}}"
    cfg = load_config(None, [ARITH.replace("ADV", "auto").replace("[{grader: number}], advantage", f"[{learned}, "
                                                                   "{grader: number, weight: 0.5}], advantage")])
    assert [cfg.task_advantage(t) for t in cfg.tasks] == ["grpo", "gae"]
    assert cfg.critic_reward_model == str(tmp_path)
    assert [t.grader for t in cfg.tasks[1].learned_terms] == ["reward_model"]


@pytest.mark.parametrize("override, expected", [
    ("critic.init=/no/such/dir", "`critic.init`: not `policy`, `reward_model`, or a model directory"),
    ("critic.init=reward_model", "critic.init=reward_model needs a reward_model term in a task whose advantage is gae"),
    ("critic.kl_target=0.1", "critic.kl_target adapts critic.kl_coef: set critic.kl_coef > 0"),
    ("critic.lam_policy=1.5", "`critic.lam_policy`"),
    ("tasks.1.advantage=ppo", "`tasks.1.advantage`"),
])
def test_bad_critic_options_name_the_key(override, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(None, [ARITH.replace("ADV", "gae"), override])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("critic") / "model")


def test_packed_values_equal_each_prefix_scored_alone(tiny):
    """V_t is read where token t is predicted: the value of prompt + completion[:t], whatever the packing."""
    critic = load_critic("policy", str(tiny), None, torch.float32).eval()
    prompts = [[5, 6, 7], [8, 9]]
    completions = [[10, 11, 12], [13], [14, 15], [16, 17, 18, 19]]   # two groups of G = 2
    mb = pack_groups([0, 1], prompts, completions, 2, pad_id=0)
    with torch.no_grad():
        packed = token_values(critic, mb)                                             # (4, T)
        for row, completion in enumerate(completions):
            prompt = prompts[row // 2]
            for t in range(len(completion)):
                ids = torch.tensor([prompt + completion[:t]])
                alone = critic(input_ids=ids).logits[0, -1, 0]
                assert packed[row, t] == pytest.approx(float(alone), abs=1e-5)


def test_a_critic_from_a_reward_model_starts_with_its_head(tiny, tmp_path):
    """A sequence-classification reward model's score head becomes the value head: the critic's value of the whole
    sequence equals the reward model's score of it."""
    rm = AutoModelForSequenceClassification.from_pretrained(tiny, num_labels=1)
    torch.nn.init.normal_(rm.score.weight)
    rm.save_pretrained(tmp_path / "rm")
    critic = load_critic(str(tmp_path / "rm"), str(tiny), None, torch.float32).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert critic(input_ids=ids).logits[0, -1, 0] == pytest.approx(float(rm(input_ids=ids).logits[0, 0]),
                                                                        abs=1e-5)
    assert torch.equal(critic.score.weight, rm.score.weight) and critic.score.bias is None


def test_whitening_statistics_leave_out_rows_that_do_not_train():
    from engine.trainer import across_ranks_whitened
    # mean 2 and std sqrt 2 over the counted 1 and 3; the 99 (a masked row's token) neither shifts nor scales them
    out = across_ranks_whitened(torch.tensor([1.0, 3.0, 99.0]), torch.tensor([True, True, False]))
    torch.testing.assert_close(out, torch.tensor([-1 / 2 ** 0.5, 1 / 2 ** 0.5, 0.0]))
