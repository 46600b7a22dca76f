"""engine/advantages.py against hand-computed numbers (the arithmetic is in the comments)."""

import math

import pytest
import torch

from engine.advantages import (
    ESTIMATORS,
    gae,
    group_advantages,
    masked_whiten,
    overlong_penalty,
    token_rewards,
    zero_variance_groups,
)

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
    assert {c[0] for c in CASES} == set(ESTIMATORS.entries())


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


def test_an_unknown_estimator_names_the_valid_ones():
    with pytest.raises(LookupError, match="unknown advantage estimator 'gpro'. Did you mean 'grpo'. Valid advantage "
                                          "estimators: dr_grpo, grpo, reinforce_pp, rloo"):
        group_advantages(torch.zeros(2, 3), "gpro")


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


# ----------------------------------------------------------------------------------- per-token rewards and GAE

NAN = float("nan")


@pytest.mark.parametrize(
    "kl,kl_coef,expected",
    [
        # row 0 (2 real tokens): -0.1 * 0.5 = -0.05; last real token -0.1 * -1 + score 1 = 1.1; padding 0
        # row 1 (full): -0.1 * 0.2 = -0.02 everywhere, score 2 on the last: 1.98
        # row 2 (no real tokens): zeros, its NaN score dropped; NaN kl off the mask ignored
        ([[0.5, -1.0, NAN], [0.2, 0.2, 0.2], [NAN] * 3], 0.1, [[-0.05, 1.1, 0], [-0.02, -0.02, 1.98], [0, 0, 0]]),
        (None, 0.1, [[0, 1, 0], [0, 0, 2], [0, 0, 0]]),  # no KL: the score alone, on the last real token
        ([[0.5, -1.0, NAN], [0.2, 0.2, 0.2], [NAN] * 3], 0.0, [[0, 1, 0], [0, 0, 2], [0, 0, 0]]),  # coef 0: same
        ([[NAN] * 3] * 3, 0.0, [[0, 1, 0], [0, 0, 2], [0, 0, 0]]),  # coef 0: kl is not even read
    ],
    ids=["kl", "no-kl", "kl-coef-0", "kl-coef-0-unread"],
)
def test_token_rewards_placement(kl, kl_coef, expected):
    scores = torch.tensor([1.0, 2.0, NAN], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    out = token_rewards(scores, mask, None if kl is None else torch.tensor(kl), kl_coef)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=out.dtype))
    assert not out.requires_grad  # rewards are targets


# Row 0: 3 real tokens, NaN garbage in the padded 4th. gamma = lam = 0.5, so gamma * lam = 0.25; V after the end = 0.
#   t=2: delta = 1 + 0.5*0 - 3 = -2             A2 = -2
#   t=1: delta = 0 + 0.5*3 - 2 = -0.5           A1 = -0.5 + 0.25*(-2) = -1
#   t=0: delta = 0 + 0.5*2 - 1 = 0              A0 = 0 + 0.25*(-1) = -0.25      returns A + V = [0.75, 1, 1]
# Row 1: full length (cut at the cap: no bootstrap), V = 1 everywhere, score 2 on the last token.
#   t=3: delta = 2 + 0 - 1 = 1                  A3 = 1
#   t=2: delta = 0 + 0.5*1 - 1 = -0.5           A2 = -0.5 + 0.25*1 = -0.25
#   t=1: delta = -0.5                           A1 = -0.5 + 0.25*(-0.25) = -0.5625
#   t=0: delta = -0.5                           A0 = -0.5 + 0.25*(-0.5625) = -0.640625
# Row 2: no real tokens, NaN everywhere: zeros.
GAE_REWARDS = [[0.0, 0.0, 1.0, NAN], [0.0, 0.0, 0.0, 2.0], [NAN] * 4]
GAE_VALUES = [[1.0, 2.0, 3.0, NAN], [1.0, 1.0, 1.0, 1.0], [NAN] * 4]
GAE_MASK = [[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]]


def test_gae_hand_numbers_with_masked_tail_nan_garbage_and_an_empty_row():
    values = torch.tensor(GAE_VALUES, requires_grad=True)
    adv, ret = gae(torch.tensor(GAE_REWARDS), values, torch.tensor(GAE_MASK), gamma=0.5, lam=0.5)
    torch.testing.assert_close(adv, torch.tensor([[-0.25, -1.0, -2.0, 0], [-0.640625, -0.5625, -0.25, 1.0], [0] * 4]))
    torch.testing.assert_close(ret, torch.tensor([[0.75, 1.0, 1.0, 0], [0.359375, 0.4375, 0.75, 2.0], [0] * 4]))
    assert not adv.requires_grad and not ret.requires_grad  # targets, not part of the critic's graph


# One row, 3 real tokens then garbage: rewards [1, 0, 2], values [0.5, 1, 1.5].
@pytest.mark.parametrize(
    "gamma,lam,expected_adv",
    [
        # lam = gamma = 1: reward-to-go [3, 2, 2] minus V -> [2.5, 1, 0.5]
        (1.0, 1.0, [2.5, 1.0, 0.5, 0.0]),
        # lam = 0, gamma = 0.5: one-step TD. 1 + 0.5*1 - 0.5 = 1; 0 + 0.5*1.5 - 1 = -0.25; 2 + 0.5*0 - 1.5 = 0.5
        (0.5, 0.0, [1.0, -0.25, 0.5, 0.0]),
        # gamma = 0: delta = r - V = [0.5, -1, 0.5], and gamma * lam = 0 so A = delta
        (0.0, 1.0, [0.5, -1.0, 0.5, 0.0]),
    ],
    ids=["monte-carlo", "td0", "gamma0"],
)
def test_gae_limits(gamma, lam, expected_adv):
    values = torch.tensor([[0.5, 1.0, 1.5, 7.0]])
    adv, ret = gae(torch.tensor([[1.0, 0.0, 2.0, 9.0]]), values, torch.tensor([[1, 1, 1, 0]]), gamma, lam)
    torch.testing.assert_close(adv, torch.tensor([expected_adv]))
    torch.testing.assert_close(ret, torch.tensor([expected_adv]) + torch.tensor([[0.5, 1.0, 1.5, 0.0]]))


def test_gae_matches_the_sum_of_discounted_td_errors():
    # A_t = sum_l (gamma lam)^l delta_{t+l} over the real tokens (GAE paper, sec. 3), on random ragged rows
    g = torch.Generator().manual_seed(0)
    N, T, gamma, lam = 5, 7, 0.9, 0.8
    rewards = torch.randn(N, T, generator=g, dtype=torch.float64)  # (N, T)
    values = torch.randn(N, T, generator=g, dtype=torch.float64)  # (N, T)
    lengths = [7, 3, 0, 1, 5]
    mask = torch.tensor([[1] * n + [0] * (T - n) for n in lengths])  # (N, T)
    adv, ret = gae(rewards, values, mask, gamma, lam)
    for i, n in enumerate(lengths):
        v = values[i, :n].tolist() + [0.0]  # V after the last real token is 0
        delta = [rewards[i, t].item() + gamma * v[t + 1] - v[t] for t in range(n)]
        expected = [sum((gamma * lam) ** k * delta[t + k] for k in range(n - t)) for t in range(n)] + [0.0] * (T - n)
        assert adv[i].tolist() == pytest.approx(expected, abs=1e-12)
        assert ret[i, :n].tolist() == pytest.approx([a + b for a, b in zip(expected[:n], v[:n])], abs=1e-12)


def test_gae_on_only_empty_rows_and_zero_width():
    adv, ret = gae(torch.full((2, 3), NAN), torch.full((2, 3), NAN), torch.zeros(2, 3), 1.0, 0.95)
    assert torch.equal(adv, torch.zeros(2, 3)) and torch.equal(ret, torch.zeros(2, 3))
    adv, ret = gae(torch.zeros(2, 0), torch.zeros(2, 0), torch.zeros(2, 0), 1.0, 0.95)
    assert adv.shape == ret.shape == (2, 0)


# ------------------------------------------------------------------------------------------------- masked whiten

# Masked entries 1, 2, 3, 4 (NaN and 99 off the mask): mean 2.5, deviations -1.5 -0.5 0.5 1.5, squares sum to 5,
# ddof-1 variance 5/3 -> std sqrt(5/3) = 1.29099 (population would be sqrt(5/4) = 1.11803).
W_X = [[1.0, 2.0, 3.0, NAN], [4.0, 99.0, NAN, NAN]]
W_MASK = [[1, 1, 1, 0], [1, 0, 0, 0]]
W_STD = math.sqrt(5 / 3)


@pytest.mark.parametrize("shift_mean,offset", [(True, 0.0), (False, 2.5)])  # shift_mean=False keeps the mean
def test_masked_whiten_hand_numbers(shift_mean, offset):
    x = torch.tensor(W_X, requires_grad=True)
    out = masked_whiten(x, torch.tensor(W_MASK), eps=0.0, shift_mean=shift_mean)
    d = [-1.5 / W_STD + offset, -0.5 / W_STD + offset, 0.5 / W_STD + offset, 1.5 / W_STD + offset]
    torch.testing.assert_close(out, torch.tensor([[d[0], d[1], d[2], 0.0], [d[3], 0.0, 0.0, 0.0]]))
    real = out[torch.tensor(W_MASK) != 0]
    assert real.mean().item() == pytest.approx(offset, abs=1e-6)
    assert real.std(correction=1).item() == pytest.approx(1.0)  # ddof=1 std of the result is 1
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[torch.tensor(W_MASK) == 0].abs().sum() == 0


def test_masked_whiten_eps_is_added_to_the_std():
    out = masked_whiten(torch.tensor(W_X), torch.tensor(W_MASK), eps=0.5)
    assert out[0, 0].item() == pytest.approx(-1.5 / (W_STD + 0.5))  # -0.8371, not -1.5 / sqrt(5/3 + 0.5)


@pytest.mark.parametrize(
    "x,mask,shift_mean,expected",
    [
        ([[5.0, NAN]], [[1, 0]], True, [[5.0, 0.0]]),  # one entry: no std, returned as is
        ([[NAN, NAN]], [[0, 0]], True, [[0.0, 0.0]]),  # no entries
        ([[0.7] * 7], [[1] * 7], True, [[0.0] * 7]),  # all equal: exact 0, not rounding noise / 1e-8
        ([[0.7] * 7], [[1] * 7], False, [[0.7] * 7]),  # ... and x itself when the mean is kept
    ],
    ids=["one", "none", "equal", "equal-keep-mean"],
)
def test_masked_whiten_degenerate_inputs(x, mask, shift_mean, expected):
    out = masked_whiten(torch.tensor(x), torch.tensor(mask), shift_mean=shift_mean)
    assert torch.equal(out, torch.tensor(expected))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: token_rewards(torch.ones(2, 1), torch.ones(2, 3), None, 0.0), r"scores must be 1-D"),
        (lambda: token_rewards(torch.ones(2), torch.ones(3, 3), None, 0.0), r"N = len\(scores\) = 2"),
        (lambda: token_rewards(torch.ones(2), torch.ones(2, 3), torch.ones(2, 4), 0.1), "kl shape"),
        (lambda: token_rewards(torch.ones(2), torch.ones(2, 3), None, -0.1), "kl_coef"),
        (lambda: token_rewards(torch.tensor([1.0, NAN]), torch.ones(2, 3), None, 0.0), "scores contain NaN"),
        (lambda: token_rewards(torch.ones(1), torch.ones(1, 2), torch.tensor([[0.0, NAN]]), 0.1), "kl contains NaN"),
        (lambda: token_rewards(torch.ones(2), torch.tensor([[1, 1, 0], [0, 1, 1]]), None, 0.0), "mask row 1"),
        (lambda: gae(torch.zeros(1, 3), torch.zeros(1, 3), torch.tensor([[1, 0, 1]]), 1.0, 1.0), "mask row 0"),
        (lambda: gae(torch.zeros(1, 3), torch.zeros(1, 2), torch.ones(1, 3), 1.0, 1.0), r"all be \(N, T\)"),
        (lambda: gae(torch.zeros(3), torch.zeros(3), torch.ones(3), 1.0, 1.0), r"\(N, T\)"),
        (lambda: gae(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3), 1.5, 1.0), "gamma"),
        (lambda: gae(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3), 1.0, -0.1), "lam"),
        (lambda: gae(torch.zeros(1, 2), torch.tensor([[0.0, NAN]]), torch.ones(1, 2), 1.0, 1.0), "NaN"),
        (lambda: masked_whiten(torch.zeros(2, 3), torch.ones(2, 2)), r"\(N, T\)"),
        (lambda: masked_whiten(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3)), "floating"),
        (lambda: masked_whiten(torch.zeros(2, 3), torch.ones(2, 3), eps=-1.0), "eps"),
        (lambda: masked_whiten(torch.tensor([[0.0, NAN]]), torch.ones(1, 2)), "NaN"),
    ],
)
def test_per_token_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
