"""Reward models without training: the Bradley-Terry loss and ensemble maths against hand-computed numbers,
preference rows (bad ones skipped and counted), the data order of ensemble members, and config-time errors."""
import json
import math

import pytest
import torch

from engine.config import ConfigError, load_config
from engine.reward_model import aggregate_members, member_spread, pearson, preference_metrics
from engine.rm_config import load_rm_config
from engine.rm_train import PairOrder, bradley_terry_loss, steps_per_member
from tasks.preferences import PreferenceParams, load_preferences


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))  # -logsigmoid(-x)


# ---------------------------------------------------------------------------------------------- the loss

def test_bradley_terry_loss_by_hand():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    # -logsigmoid(d) = log(1 + e^-d); d = 2 and -1
    expected = (softplus(-2.0) + softplus(1.0)) / 2                      # (0.126928 + 1.313262) / 2
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.720095, abs=1e-6)


def test_bradley_terry_loss_with_margin_by_hand():
    chosen, rejected, margin = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.5])
    # d - margin = 1 and -1.5: (log(1 + e^-1) + log(1 + e^1.5)) / 2 = (0.313262 + 1.701413) / 2
    loss = bradley_terry_loss(chosen, rejected, margin)
    assert loss.item() == pytest.approx(1.0073375, abs=1e-6)


def test_bradley_terry_loss_with_centering_by_hand():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    # centering: 0.1 * mean((2 + 0)^2, (0 + 1)^2) = 0.1 * 2.5
    loss = bradley_terry_loss(chosen, rejected, center_coef=0.1)
    assert loss.item() == pytest.approx(0.720095 + 0.25, abs=1e-6)


def test_bradley_terry_loss_gradient_pushes_chosen_up():
    chosen, rejected = torch.tensor([0.0], requires_grad=True), torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(chosen, rejected).backward()
    assert chosen.grad.item() == pytest.approx(-0.5) and rejected.grad.item() == pytest.approx(0.5)  # sigmoid(0)-1


# ---------------------------------------------------------------------------------------------- ensembles

SCORES = torch.tensor([[1.0, 4.0, 2.0],
                       [3.0, 0.0, 2.0]])  # (K=2 members, N=3 samples)


def test_aggregate_members_by_hand():
    assert aggregate_members(SCORES, "mean").tolist() == [2.0, 2.0, 2.0]
    assert aggregate_members(SCORES, "min").tolist() == [1.0, 0.0, 2.0]
    assert member_spread(SCORES).tolist() == [1.0, 2.0, 0.0]  # population std: |a - b| / 2
    assert aggregate_members(SCORES, "mean_minus_std", k=0.5).tolist() == [1.5, 1.0, 2.0]
    assert aggregate_members(SCORES, "mean_minus_std").tolist() == [1.0, 0.0, 2.0]


def test_one_member_aggregates_to_itself():
    one = torch.tensor([[0.5, -1.0]])
    for how in ("mean", "min", "mean_minus_std"):
        assert aggregate_members(one, how).tolist() == [0.5, -1.0]


def test_unknown_aggregate_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mean, min, mean_minus_std"):
        aggregate_members(SCORES, "max")


def test_preference_metrics_by_hand():
    chosen, rejected = torch.tensor([1.0, 0.0, 3.0]), torch.tensor([0.0, 1.0, 2.0])
    lengths = torch.tensor([10, 20, 30]), torch.tensor([5, 15, 25])
    out = preference_metrics(chosen, rejected, *lengths)
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert out["margin"] == pytest.approx(1 / 3)
    assert out["length_corr"] == pytest.approx(pearson(torch.tensor([1.0, 0, 3, 0, 1, 2]),
                                                       torch.tensor([10.0, 20, 30, 5, 15, 25])))


def test_pearson_by_hand():
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([5.0, 5.0, 5.0])) == 0.0  # constant: no correlation


def test_members_see_different_bootstrap_resamples_of_the_same_data():
    a, b = PairOrder(50, seed=0, member=0, bootstrap=True), PairOrder(50, seed=0, member=1, bootstrap=True)
    assert a.pool != b.pool and len(set(a.pool)) < 50  # with replacement: some pairs twice, some never
    assert a.batch(3, 8) == PairOrder(50, seed=0, member=0, bootstrap=True).batch(3, 8)  # a function of (seed, m)
    whole = PairOrder(10, seed=0, member=0, bootstrap=False)
    assert sorted(whole.batch(0, 10)) == list(range(10)) and sorted(whole.batch(1, 10)) == list(range(10))
    assert whole.batch(0, 10) != whole.batch(1, 10)  # reshuffled each epoch


# ---------------------------------------------------------------------------------------------- preference rows

def write_rows(path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return str(path)


def row(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_bad_preference_rows_are_skipped_and_counted(tmp_path):
    path = write_rows(tmp_path / "prefs.jsonl", [
        row(prompt="p1", chosen="good", rejected="bad"),
        row(prompt="p2", chosen="good"),                                      # no rejected
        row(prompt="p3", chosen="same", rejected="same"),                     # chosen == rejected
        b'{"prompt": "p4", "chosen": "caf\xe9", "rejected": "x"}',            # not UTF-8
        b"{not json",
        row(prompt=[{"role": "user", "content": "p6"}], chosen=[{"role": "assistant", "content": "yes"}],
            rejected=[{"role": "assistant", "content": "no"}]),                # TRL's conversational format
        row(prompt="p7", chosen=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            rejected="c"),                                                    # not one assistant message
        row(prompt="p8", chosen=3, rejected="c"),                             # wrong type
        row(prompt=None, chosen="a", rejected="b"),                           # missing prompt
    ])
    data = load_preferences(PreferenceParams(path=path, eval_fraction=0.0), seed=0)
    kept = list(data.train_rows())
    assert [ex.reference for ex in kept] == [{"chosen": "good", "rejected": "bad"}, {"chosen": "yes", "rejected": "no"}]
    assert kept[1].prompt == [{"role": "user", "content": "p6"}]
    assert data.skipped == 7
    reasons = " | ".join(data.skip_reasons)
    assert "missing field 'rejected'" in reasons and "same text" in reasons and "UTF-8" in reasons


def test_margin_column_is_read_and_checked(tmp_path):
    path = write_rows(tmp_path / "prefs.jsonl", [row(prompt="p", chosen="a", rejected="b", score_gap=2),
                                                 row(prompt="q", chosen="a", rejected="b", score_gap="big")])
    data = load_preferences(PreferenceParams(path=path, eval_fraction=0.0, margin_field="score_gap"), seed=0)
    assert [ex.reference["margin"] for ex in data.train_rows()] == [2.0]
    assert data.skipped == 1 and "expected a number" in data.skip_reasons[0]


def test_default_split_holds_out_pairs_by_prompt(tmp_path):
    lines = [row(prompt=f"p{i % 50}", chosen=f"c{i}", rejected=f"r{i}") for i in range(200)]
    data = load_preferences(PreferenceParams(path=write_rows(tmp_path / "prefs.jsonl", lines)), seed=0)
    held = {ex.prompt for ex in data.eval_examples()}
    trained = {ex.prompt for ex in data.train_rows()}
    assert held and trained and not held & trained  # 10% of prompts by default, never on both sides
    explicit = PreferenceParams(path="x.jsonl", eval_path="y.jsonl")
    assert explicit.eval_fraction == 0.0  # an explicit held-out source replaces the default fraction


# ---------------------------------------------------------------------------------------------- config

def test_rm_config_defaults_and_derived_steps():
    cfg = load_rm_config(None, ["data.path=prefs.jsonl", "ensemble.size=2"])
    assert cfg.model.path == "smollm2-135m" and cfg.data.eval_fraction == 0.1 and cfg.ensemble.size == 2
    assert steps_per_member(cfg, 100) == 7  # ceil(1 epoch x 100 pairs / 16 per step)
    assert steps_per_member(load_rm_config(None, ["data.path=x", "train.steps=3"]), 100) == 3


def test_rm_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="`data` is required"):
        load_rm_config(None, [])
    with pytest.raises(ConfigError, match="did you mean `train.lr`"):
        load_rm_config(None, ["data.path=x", "train.lrr=1"])
    with pytest.raises(ConfigError, match="streaming is not supported"):
        load_rm_config(None, ["data.path=x", "data.streaming=true"])


def test_missing_reward_model_path_is_a_config_time_error(tmp_path):
    missing = tmp_path / "no-such-rm"
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"tasks.0.rewards=[{{grader: reward_model, params: {{path: {missing}}}}}]"])
    message = str(info.value)
    assert "tasks.0.rewards.0" in message and "path" in message and str(missing) in message
    assert "rlvr rm train" in message  # says what to pass instead
    with pytest.raises(ConfigError, match="path: Field required"):
        load_config(None, ["tasks.0.rewards=[{grader: reward_model}]"])
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ConfigError, match="has no reward_model.json"):
        load_config(None, [f"tasks.0.rewards=[{{grader: reward_model, params: {{path: {tmp_path / 'not-a-model'}}}}}]"])
