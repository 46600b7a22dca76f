"""engine/advantages.py against hand-computed numbers (the arithmetic is in the comments)."""

import math

import pytest
import torch

from engine.advantages import ESTIMATORS, group_advantages, overlong_penalty, zero_variance_groups

S3 = math.sqrt(3.0)
R2 = 1 / math.sqrt(2.0)

# B=3, G=4. Row 0: mean 0.5, deviations +-0.5, ddof-1 var = 4 * 0.25 / 3 = 1/3, std = 1/sqrt(3).
#           Row 1: all equal (zero variance).  Row 2: mean 1, deviations [1, -1, 0, 0], var = 2/3.
REWARDS_G4 = [[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0]]
# B=3, G=2. Row 0: mean 0.5, std sqrt(0.5). Row 1: equal. Row 2: mean 2, std sqrt(2).
REWARDS_G2 = [[1.0, 0.0], [0.5, 0.5], [3.0, 1.0]]

# Batch stats for REINFORCE++ on REWARDS_G4: eight 1s, three 0s, one 2 -> sum 10, mean 5/6;
# squared deviations 8/36 + 3*25/36 + 49/36 = 132/36 = 11/3, ddof-1 var = (11/3)/11 = 1/3, std = 1/sqrt(3).
# So a reward of 1 -> (1/6)*sqrt3, 0 -> -(5/6)*sqrt3, 2 -> (7/6)*sqrt3.
P1, P0, P2 = S3 / 6, -5 * S3 / 6, 7 * S3 / 6
# Batch stats on REWARDS_G2: values 1, 0, .5, .5, 3, 1 -> mean 1; squared deviations 0+1+.25+.25+4+0 = 5.5,
# ddof-1 var = 5.5/5 = 1.1. So a = (r - 1)/sqrt(1.1).
Q = 1 / math.sqrt(1.1)

CASES = [
    # grpo G=4: row 0 +-0.5 / (1/sqrt3) = +-sqrt3/2; row 2: +-1 / sqrt(2/3) = +-sqrt(1.5); row 1 -> 0
    ("grpo", REWARDS_G4, [[S3 / 2, -S3 / 2, -S3 / 2, S3 / 2], [0, 0, 0, 0], [1.5**0.5, -(1.5**0.5), 0, 0]]),
    # grpo G=2: always +-1/sqrt2 (deviation d over std d*sqrt2)
    ("grpo", REWARDS_G2, [[R2, -R2], [0, 0], [R2, -R2]]),
    # dr_grpo: r - mean, no std
    ("dr_grpo", REWARDS_G4, [[0.5, -0.5, -0.5, 0.5], [0, 0, 0, 0], [1, -1, 0, 0]]),
    ("dr_grpo", REWARDS_G2, [[0.5, -0.5], [0, 0], [1, -1]]),
    # rloo G=4: row 0: 1 - (0+0+1)/3 = 2/3, 0 - (1+0+1)/3 = -2/3; row 2: 2 - (0+1+1)/3 = 4/3, 0 - 4/3, 1 - 1 = 0
    ("rloo", REWARDS_G4, [[2 / 3, -2 / 3, -2 / 3, 2 / 3], [0, 0, 0, 0], [4 / 3, -4 / 3, 0, 0]]),
    # rloo G=2: r_i - r_j
    ("rloo", REWARDS_G2, [[1, -1], [0, 0], [2, -2]]),
    # reinforce_pp: batch whitening, the all-equal group is NOT zero (batch baseline, not group)
    ("reinforce_pp", REWARDS_G4, [[P1, P0, P0, P1], [P1, P1, P1, P1], [P2, P0, P1, P1]]),
    ("reinforce_pp", REWARDS_G2, [[0, -Q], [-0.5 * Q, -0.5 * Q], [2 * Q, 0]]),
]


@pytest.mark.parametrize("estimator,rewards,expected", CASES, ids=[f"{c[0]}-G{len(c[1][0])}" for c in CASES])
def test_estimators_on_hand_tables(estimator, rewards, expected):
    adv = group_advantages(torch.tensor(rewards), estimator, eps=0.0)
    torch.testing.assert_close(adv, torch.tensor(expected, dtype=adv.dtype), rtol=1e-5, atol=1e-6)


def test_every_estimator_has_a_hand_case():
    assert {c[0] for c in CASES} == set(ESTIMATORS)


def test_grpo_default_eps_is_in_the_denominator():
    # row 0: 0.5 / (1/sqrt3 + 1e-6)
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), "grpo")
    expected = 0.5 / (1 / S3 + 1e-6)
    torch.testing.assert_close(adv, torch.tensor([[expected, -expected, -expected, expected]]))


@pytest.mark.parametrize("estimator", ["grpo", "dr_grpo", "rloo", "reinforce_pp"])
def test_equal_rewards_give_exact_zeros(estimator):
    # 0.7 * 7 in float32: the mean is off by one ulp, so an unguarded grpo gives 0.056 per completion
    rewards = torch.full((2, 7), 0.7)
    adv = group_advantages(rewards, estimator)
    assert torch.equal(adv, torch.zeros(2, 7))


def test_rloo_identity_and_leave_one_out_definition():
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(5, 6, generator=g, dtype=torch.float64)  # (B, G)
    rloo = group_advantages(rewards, "rloo")
    # G/(G-1) * (r - mean): 6/5 * dr_grpo
    torch.testing.assert_close(rloo, 6 / 5 * group_advantages(rewards, "dr_grpo"))
    for b in range(5):
        for i in range(6):
            others = torch.cat([rewards[b, :i], rewards[b, i + 1 :]])
            assert rloo[b, i].item() == pytest.approx((rewards[b, i] - others.mean()).item(), abs=1e-12)


def test_integer_rewards_are_accepted_as_floats():
    adv = group_advantages(torch.tensor([[1, 0]]), "dr_grpo")
    assert adv.is_floating_point()
    torch.testing.assert_close(adv, torch.tensor([[0.5, -0.5]]))


def test_zero_variance_groups():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    assert zero_variance_groups(rewards).tolist() == [True, False, True, False]
    assert zero_variance_groups(torch.tensor([[3.0], [1.0]])).tolist() == [True, True]  # G=1: trivially flat


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: group_advantages(torch.zeros(2, 3), "ppo"), "grpo, dr_grpo, rloo, reinforce_pp"),
        (lambda: group_advantages(torch.zeros(6), "grpo"), "2-D"),
        (lambda: group_advantages(torch.zeros(0, 4), "grpo"), "empty"),
        (lambda: group_advantages(torch.zeros(3, 1), "rloo"), "G >= 2"),
        (lambda: group_advantages(torch.zeros(3, 1), "grpo"), "G >= 2"),
        (lambda: group_advantages(torch.zeros(1, 1), "reinforce_pp"), "at least 2"),
        (lambda: group_advantages(torch.tensor([[1.0, float("nan")]]), "dr_grpo"), "NaN"),
        (lambda: group_advantages(torch.zeros(2, 2), "grpo", eps=-1.0), "eps"),
        (lambda: zero_variance_groups(torch.zeros(2, 2, 2)), "2-D"),
    ],
)
def test_advantage_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_reinforce_pp_allows_one_completion_per_prompt():
    # G=1 is REINFORCE++'s own setting: rewards 0, 2 -> mean 1, ddof-1 std sqrt(2) -> -+1/sqrt2
    adv = group_advantages(torch.tensor([[0.0], [2.0]]), "reinforce_pp", eps=0.0)
    torch.testing.assert_close(adv, torch.tensor([[-R2], [R2]]))


# max_len 20, buffer 4 -> ramp starts after 16: penalty (16 - L) / 4 for 16 < L <= 20, -1 beyond.
@pytest.mark.parametrize(
    "lengths,max_len,buffer,factor,expected",
    [
        ([0, 15, 16, 17, 18, 20, 21, 100], 20, 4, 1.0, [0, 0, 0, -0.25, -0.5, -1, -1, -1]),
        # factor 0.5 halves every value: 17 -> 0.5 * (16 - 17)/4 = -0.125
        ([16, 17, 19, 20, 21], 20, 4, 0.5, [0, -0.125, -0.375, -0.5, -0.5]),
        # buffer 0: no ramp, 0 up to and including max_len, -factor beyond
        ([19, 20, 21], 20, 0, 1.0, [0, 0, -1]),
        # buffer = max_len: the ramp covers everything, 5 -> (0 - 5)/20 = -0.25
        ([0, 5, 20, 21], 20, 20, 1.0, [0, -0.25, -1, -1]),
    ],
)
def test_overlong_penalty_boundaries(lengths, max_len, buffer, factor, expected):
    out = overlong_penalty(torch.tensor(lengths), max_len, buffer, factor)
    assert out.is_floating_point()
    torch.testing.assert_close(out, torch.tensor(expected, dtype=out.dtype))


@pytest.mark.parametrize(
    "args,match",
    [
        ((torch.tensor([[1, 2]]), 20, 4), "1-D"),
        ((torch.tensor([1]), 20, -1), "buffer"),
        ((torch.tensor([1]), 20, 21), "buffer"),
        ((torch.tensor([1]), 0, 0), "max_len"),
        ((torch.tensor([1]), 20, 4, -1.0), "factor"),
        ((torch.tensor([True]), 20, 4), "dtype"),
    ],
)
def test_overlong_penalty_errors(args, match):
    with pytest.raises(ValueError, match=match):
        overlong_penalty(*args)
