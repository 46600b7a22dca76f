"""engine/losses.py against hand-computed numbers (the arithmetic is in the comments) and gradient checks."""

import math

import pytest
import torch

from engine.losses import (
    AGGREGATIONS,
    IS_CORRECTIONS,
    KL_ESTIMATORS,
    adaptive_kl_coef,
    aggregate_loss,
    clipped_surrogate,
    clipped_value_loss,
    entropy_from_logits,
    explained_variance,
    kl_penalty,
    mismatch_kl,
    rollout_correction,
    token_logprobs,
)

E01, E05, EM05 = math.exp(0.1), math.exp(0.5), math.exp(-0.5)  # 1.10517, 1.64872, 0.60653

# ---------------------------------------------------------------------------------------------- clipped surrogate

# Four tokens per sequence with log-ratios 0, 0.1, 0.5, -0.5: ratios 1, 1.105, 1.649, 0.607; clip range [0.8, 1.2].
LOG_RATIOS = [0.0, 0.1, 0.5, -0.5]


def _surrogate(advantages, log_ratios=LOG_RATIOS, clip_low=0.2, clip_high=0.2, dual_clip=None):
    n = len(advantages)
    logp = torch.tensor([log_ratios] * n, requires_grad=True)  # (N, T); old_logp = 0, so log-ratio = logp
    loss, clipped = clipped_surrogate(logp, torch.zeros(n, len(log_ratios)), torch.tensor(advantages), clip_low,
                                      clip_high, dual_clip)
    loss.sum().backward()
    return loss.detach(), clipped, logp.grad


def test_surrogate_positive_and_negative_advantages_inside_and_outside_the_clip():
    loss, clipped, grad = _surrogate([2.0, -0.5])
    expected = [
        # A=2: max(-2r, -2 clip(r)): inside for r=1, 1.105 -> -2r; r=1.649 clipped to 1.2 -> -2.4;
        #      r=0.607 < 0.8: max(-1.213, -1.6) keeps the unclipped -2 * 0.607 (pessimistic bound)
        [-2.0, -2 * E01, -2.4, -2 * EM05],
        # A=-0.5: max(0.5r, 0.5 clip(r)): r=1.649 keeps 0.5 * 1.649 (unclipped is larger);
        #         r=0.607 clipped up to 0.8 -> 0.4
        [0.5, 0.5 * E01, 0.5 * E05, 0.4],
    ]
    torch.testing.assert_close(loss, torch.tensor(expected))
    assert clipped.tolist() == [[False, False, True, False], [False, False, False, True]]
    # d/dlogp of -A * exp(logp) is -A * r on unclipped tokens, 0 on clipped ones
    torch.testing.assert_close(grad, torch.tensor([[-2.0, -2 * E01, 0.0, -2 * EM05], [0.5, 0.5 * E01, 0.5 * E05, 0.0]]))


def test_surrogate_ratio_e_clipped_to_1_2():
    loss, clipped, grad = _surrogate([3.0], log_ratios=[1.0])
    torch.testing.assert_close(loss, torch.tensor([[-3.6]]))  # ratio e clipped to 1.2 gives -1.2 * A = -3.6
    assert clipped.tolist() == [[True]] and grad.tolist() == [[0.0]]


def test_clip_higher_moves_only_the_upper_bound():
    # log-ratios 0.2, 0.3, -0.25: ratios 1.2214, 1.3499, 0.7788
    lr = [0.2, 0.3, -0.25]
    sym, sym_clipped, _ = _surrogate([1.0, -1.0], lr, clip_low=0.2, clip_high=0.2)
    high, high_clipped, _ = _surrogate([1.0, -1.0], lr, clip_low=0.2, clip_high=0.28)
    # A=+1, symmetric: 1.2214 and 1.3499 both clipped to 1.2 -> -1.2
    # A=+1, clip-high 0.28: 1.2214 < 1.28 passes -> -1.2214; 1.3499 clipped to 1.28 -> -1.28
    # A=-1, r=0.7788 below 0.8 in both -> clipped up to 0.8; ratios above 1 are unclipped for A<0 in both
    torch.testing.assert_close(sym, torch.tensor([[-1.2, -1.2, -math.exp(-0.25)], [math.exp(0.2), math.exp(0.3), 0.8]]))
    torch.testing.assert_close(
        high, torch.tensor([[-math.exp(0.2), -1.28, -math.exp(-0.25)], [math.exp(0.2), math.exp(0.3), 0.8]])
    )
    assert sym_clipped.tolist() == [[True, True, False], [False, False, True]]
    assert high_clipped.tolist() == [[False, True, False], [False, False, True]]


def test_dual_clip_bounds_negative_advantages():
    # log-ratios 1.5, 0.5, 10: ratios 4.4817, 1.6487, 22026
    lr = [1.5, 0.5, 10.0]
    plain, plain_clipped, plain_grad = _surrogate([-1.0, 1.0], lr)
    dual, dual_clipped, dual_grad = _surrogate([-1.0, 1.0], lr, dual_clip=3.0)
    # A=-1 without dual clip: loss = r (unbounded): 4.4817, 1.6487, 22026
    torch.testing.assert_close(plain[0], torch.tensor([math.exp(1.5), E05, math.exp(10.0)]))
    # with c=3: min(r, 3 * |A|) -> 3, 1.6487 (below c, untouched), 3
    torch.testing.assert_close(dual[0], torch.tensor([3.0, E05, 3.0]))
    # A=+1 is untouched by the dual clip: all three ratios > 1.2 -> -1.2
    torch.testing.assert_close(dual[1], torch.tensor([-1.2, -1.2, -1.2]))
    assert dual_clipped[0].tolist() == [True, False, True] and plain_clipped[0].tolist() == [False, False, False]
    # gradient: r on unclipped A<0 tokens (4.48, 1.65, 22026) without dual clip; 0 where the dual clip bites
    torch.testing.assert_close(plain_grad[0], torch.tensor([math.exp(1.5), E05, math.exp(10.0)]))
    torch.testing.assert_close(dual_grad[0], torch.tensor([0.0, E05, 0.0]))


def test_per_token_advantages_match_broadcast_sequence_advantages():
    logp = torch.tensor([[0.3, -0.4, 0.05], [0.0, 0.6, -0.1]])  # (2, 3)
    old = torch.zeros(2, 3)
    seq, seq_clipped = clipped_surrogate(logp, old, torch.tensor([1.5, -2.0]), 0.2, 0.28)
    tok, tok_clipped = clipped_surrogate(logp, old, torch.tensor([[1.5] * 3, [-2.0] * 3]), 0.2, 0.28)
    torch.testing.assert_close(seq, tok)
    assert torch.equal(seq_clipped, tok_clipped) and seq_clipped.shape == (2, 3)


def test_zero_advantage_gives_zero_loss_and_is_not_clipped():
    loss, clipped, grad = _surrogate([0.0], log_ratios=[0.5, -0.5], dual_clip=3.0)
    assert loss.tolist() == [[0.0, 0.0]] and clipped.tolist() == [[False, False]] and grad.abs().sum() == 0


def test_old_logp_and_advantages_get_no_gradient():
    logp = torch.tensor([[0.1, 0.2]], requires_grad=True)
    old = torch.tensor([[0.0, 0.0]], requires_grad=True)
    adv = torch.tensor([1.0], requires_grad=True)
    loss, _ = clipped_surrogate(logp, old, adv, 0.2, 0.2)
    loss.sum().backward()
    assert old.grad is None and adv.grad is None and logp.grad is not None


def test_extreme_log_ratio_gives_finite_loss_and_gradient():
    # log-ratio 100: exp overflows float32 to inf and backward would give 0 * inf = NaN; the [-20, 20] guard
    # keeps the ratio at e^20. A=+1 -> -1.2 (upper clip); A=-1 with dual clip 3 -> 3.
    loss, clipped, grad = _surrogate([1.0, -1.0], log_ratios=[100.0], dual_clip=3.0)
    torch.testing.assert_close(loss, torch.tensor([[-1.2], [3.0]]))
    assert clipped.all() and torch.isfinite(grad).all() and grad.abs().sum() == 0
    # beyond the guard without any other clip (A<0, no dual clip): marked clipped, zero gradient, finite loss
    loss, clipped, grad = _surrogate([-1.0], log_ratios=[100.0])
    torch.testing.assert_close(loss, torch.tensor([[math.exp(20.0)]]))
    assert clipped.tolist() == [[True]] and grad.tolist() == [[0.0]]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(old_logp=torch.zeros(2, 4)), "old_logp shape"),
        (dict(advantages=torch.zeros(3)), "advantages must be"),
        (dict(advantages=torch.zeros(2, 2)), "advantages must be"),
        (dict(logp=torch.zeros(6)), r"\(N, T\)"),
        (dict(clip_low=1.0), "clip_low"),
        (dict(clip_low=-0.1), "clip_low"),
        (dict(clip_high=-0.1), "clip_high"),
        (dict(dual_clip=1.0), "dual_clip"),
        (dict(dual_clip=0.5), "dual_clip"),
    ],
)
def test_surrogate_errors(kwargs, match):
    args = dict(logp=torch.zeros(2, 3), old_logp=torch.zeros(2, 3), advantages=torch.zeros(2), clip_low=0.2,
                clip_high=0.2) | kwargs
    with pytest.raises(ValueError, match=match):
        clipped_surrogate(**args)


# ------------------------------------------------------------------------------------------------------------ KL

# logp - ref_logp = [0.5, -1, 0]
KL_LOGP, KL_REF = [[-1.0, -2.0, -0.5]], [[-1.5, -1.0, -0.5]]


@pytest.mark.parametrize(
    "estimator,expected,grad",
    [
        ("k1", [0.5, -1.0, 0.0], [1.0, 1.0, 1.0]),  # log-ratio itself; d/dlogp = 1
        ("k2", [0.125, 0.5, 0.0], [0.5, -1.0, 0.0]),  # 0.5 * 0.25, 0.5 * 1; d/dlogp = log-ratio
        # k3 = e^-x - 1 + x: e^-0.5 - 0.5 = 0.10653, e^1 - 2 = 0.71828, 0; d/dlogp = 1 - e^-x
        ("k3", [EM05 - 0.5, math.e - 2, 0.0], [1 - EM05, 1 - math.e, 0.0]),
    ],
)
def test_kl_estimators_on_hand_numbers(estimator, expected, grad):
    logp = torch.tensor(KL_LOGP, requires_grad=True)
    ref = torch.tensor(KL_REF, requires_grad=True)
    kl = kl_penalty(logp, ref, estimator)
    torch.testing.assert_close(kl, torch.tensor([expected]))
    kl.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([grad]))
    assert ref.grad is None  # the reference is a constant


def test_every_kl_estimator_has_a_hand_case():
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}


def test_k3_is_nonnegative_and_finite_even_for_extreme_log_ratios():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(64, 32, generator=g) * 5  # (N, T)
    ref = torch.randn(64, 32, generator=g) * 5  # (N, T)
    assert (kl_penalty(logp, ref, "k3") >= 0).all()
    # log-ratio -50 would be e^50 - 51 (overflow-prone); the clamp evaluates at -20: e^20 - 21
    k3 = kl_penalty(torch.tensor([[-50.0, 50.0]]), torch.zeros(1, 2), "k3")
    torch.testing.assert_close(k3, torch.tensor([[math.exp(20) - 21, math.exp(-20) + 19]]))
    # k1 on the same samples goes negative: it is the one estimator that does
    assert (kl_penalty(logp, ref, "k1") < 0).any()


def test_kl_errors():
    with pytest.raises(ValueError, match="k1, k2, k3"):
        kl_penalty(torch.zeros(1, 2), torch.zeros(1, 2), "k4")
    with pytest.raises(ValueError, match="ref_logp shape"):
        kl_penalty(torch.zeros(1, 2), torch.zeros(1, 3), "k3")


# ---------------------------------------------------------------------------------------- entropy and log-probs


def test_entropy_hand_values():
    logits = torch.stack(
        [
            torch.zeros(7),  # uniform over 7: log 7 = 1.94591
            torch.full((7,), 5.0),  # shifted uniform: still log 7
            torch.tensor([100.0, 0, 0, 0, 0, 0, 0]),  # one-hot-ish: ~ 6 * 101 * e^-100 ~ 0
            torch.tensor([1000.0, 1000.0, -1e4, -1e4, -1e4, -1e4, -1e4]),  # naive exp overflows; two-way: log 2
        ]
    ).reshape(2, 2, 7)  # (N, T, V)
    h = entropy_from_logits(logits)
    torch.testing.assert_close(h, torch.tensor([[math.log(7), math.log(7)], [0.0, math.log(2)]]))
    # p = [0.5, 0.25, 0.25]: H = 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2 = 1.03972
    torch.testing.assert_close(entropy_from_logits(torch.tensor([[[0.5, 0.25, 0.25]]]).log()),
                               torch.tensor([[1.5 * math.log(2)]]))


def test_entropy_with_masked_vocabulary_has_finite_value_and_gradient():
    logits = torch.tensor([[[0.0, 0.0, float("-inf")]]], requires_grad=True)  # (1, 1, 3)
    h = entropy_from_logits(logits)
    torch.testing.assert_close(h, torch.tensor([[math.log(2)]]))
    h.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_token_logprobs_hand_value_and_against_log_softmax():
    # softmax([0, ln 3]) = [0.25, 0.75]: token 1 -> ln 0.75 = -0.28768, token 0 -> ln 0.25 = -1.38629
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, math.log(3)]]])  # (1, 2, 2)
    torch.testing.assert_close(token_logprobs(logits, torch.tensor([[1, 0]])),
                               torch.tensor([[math.log(0.75), math.log(0.25)]]))

    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 5, 11, generator=g) * 4).requires_grad_()  # (N, T, V)
    tokens = torch.randint(0, 11, (3, 5), generator=g)  # (N, T)
    ours = token_logprobs(logits, tokens)  # (N, T)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    ref = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (N, T)
    (g_ref,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(g_ours, g_ref)


@pytest.mark.parametrize(
    "logits,tokens,match",
    [
        (torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long), "shift logits"),
        (torch.zeros(2, 3, 5), torch.zeros(2, 3), "integer"),
        (torch.zeros(2, 3, 5), torch.full((2, 3), 5), r"\[0, 5\)"),
        (torch.zeros(2, 3, 5), torch.full((2, 3), -100), "-100"),
        (torch.zeros(3, 5), torch.zeros(3, dtype=torch.long), r"\(N, T, V\)"),
    ],
)
def test_token_logprobs_errors(logits, tokens, match):
    with pytest.raises(ValueError, match=match):
        token_logprobs(logits, tokens)


def test_entropy_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(N, T, V\)"):
        entropy_from_logits(torch.zeros(3, 5))


# -------------------------------------------------------------------------------------------------- aggregation

PER_TOKEN = [[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0], [5.0, 5.0, 5.0, 5.0]]
RAGGED = [[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]]  # lengths 4, 1, 0 (an empty sequence)


@pytest.mark.parametrize(
    "mode,norm_len,expected,grad",
    [
        # (1+2+3+4+10) / 5 tokens = 4; each counted token weighs 1/5
        ("token-mean", None, 4.0, [[0.2] * 4, [0.2, 0, 0, 0], [0] * 4]),
        # seq means 10/4 = 2.5 and 10/1 = 10, empty seq excluded: (2.5 + 10)/2 = 6.25; weights 1/(2*4), 1/(2*1)
        ("seq-mean-token-mean", None, 6.25, [[0.125] * 4, [0.5, 0, 0, 0], [0] * 4]),
        # 20 / (N=3 * 4) = 1.6667; each counted token weighs 1/12
        ("seq-mean-token-sum-norm", 4, 20 / 12, [[1 / 12] * 4, [1 / 12, 0, 0, 0], [0] * 4]),
        # 20 / (3 * 8) = 0.8333
        ("seq-mean-token-sum-norm", 8, 20 / 24, [[1 / 24] * 4, [1 / 24, 0, 0, 0], [0] * 4]),
    ],
)
@pytest.mark.parametrize("mask_dtype", [torch.float32, torch.bool])
def test_aggregation_modes_on_ragged_masks(mode, norm_len, expected, grad, mask_dtype):
    per_token = torch.tensor(PER_TOKEN, requires_grad=True)
    loss = aggregate_loss(per_token, torch.tensor(RAGGED).to(mask_dtype), mode, norm_len)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    torch.testing.assert_close(per_token.grad, torch.tensor(grad))


def test_every_aggregation_has_a_hand_case_and_they_differ_on_ragged_masks():
    assert set(AGGREGATIONS) == {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"}
    values = {m: aggregate_loss(torch.tensor(PER_TOKEN), torch.tensor(RAGGED), m, 4).item() for m in AGGREGATIONS}
    assert len({round(v, 6) for v in values.values()}) == 3  # 4, 6.25, 1.667


def test_modes_agree_when_every_sequence_is_full_length():
    # equal lengths T and norm_len = T: all three reduce to the plain mean over the 12 tokens
    per_token = torch.tensor(PER_TOKEN)
    values = [aggregate_loss(per_token, torch.ones(3, 4), m, norm_len=4) for m in AGGREGATIONS]
    for v in values:
        torch.testing.assert_close(v, per_token.mean())  # (10 + 100 + 20) / 12 = 10.8333


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_empty_mask_gives_connected_zero(mode):
    per_token = torch.tensor(PER_TOKEN, requires_grad=True)
    loss = aggregate_loss(per_token, torch.zeros(3, 4), mode, norm_len=4)
    assert loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(per_token.grad, torch.zeros(3, 4))


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_masked_positions_may_hold_nan_or_inf(mode):
    per_token = torch.tensor(PER_TOKEN)
    per_token[1, 1:] = float("nan")
    per_token[2] = float("inf")
    per_token.requires_grad_()
    loss = aggregate_loss(per_token, torch.tensor(RAGGED), mode, norm_len=4)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(per_token.grad).all()


@pytest.mark.parametrize(
    "args,match",
    [
        ((torch.zeros(2, 3), torch.ones(2, 3), "sum"), "token-mean, seq-mean-token-mean, seq-mean-token-sum-norm"),
        ((torch.zeros(2, 3), torch.ones(2, 4), "token-mean"), "mask shape"),
        ((torch.zeros(6), torch.ones(6), "token-mean"), r"\(N, T\)"),
        ((torch.zeros(2, 3), torch.ones(2, 3), "seq-mean-token-sum-norm"), "norm_len"),
        ((torch.zeros(2, 3), torch.ones(2, 3), "seq-mean-token-sum-norm", 0), "norm_len"),
    ],
)
def test_aggregation_errors(args, match):
    with pytest.raises(ValueError, match=match):
        aggregate_loss(*args)


# ------------------------------------------------------------------------------------ rollout/trainer correction

# Two sequences; the second has 2 real tokens (its third holds garbage). Log-ratios train - sampler:
#   seq 0: 0.5, -0.2, 0.4  -> token ratios 1.6487, 0.8187, 1.4918; sequence ratio exp(0.7) = 2.0138
#   seq 1: 1.0,  0.2       -> token ratios 2.7183, 1.2214;         sequence ratio exp(1.2) = 3.3201
# Bounds [0.9, 2.5].
IS_DIFF = [[0.5, -0.2, 0.4], [1.0, 0.2, 5.0]]
IS_MASK = [[1, 1, 1], [1, 1, 0]]
R05, RM02, R04, R1, R02, S0 = (math.exp(x) for x in (0.5, -0.2, 0.4, 1.0, 0.2, 0.7))


@pytest.mark.parametrize("mode, weights, outside", [
    ("token_truncate", [[R05, 0.9, R04], [2.5, R02, 0.0]], [[0, 1, 0], [1, 0, 0]]),       # 0.8187 -> 0.9, e -> 2.5
    ("token_mask", [[R05, 0.0, R04], [0.0, R02, 0.0]], [[0, 1, 0], [1, 0, 0]]),           # the same two zeroed
    ("sequence_truncate", [[S0, S0, S0], [2.5, 2.5, 0.0]], [[0, 0, 0], [1, 1, 0]]),       # 3.3201 -> 2.5
    ("sequence_mask", [[S0, S0, S0], [0.0, 0.0, 0.0]], [[0, 0, 0], [1, 1, 0]]),           # sequence 1 dropped
    ("none", [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], [[0, 0, 0], [0, 0, 0]]),
])
def test_rollout_correction_on_hand_numbers(mode, weights, outside):
    sampler = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]])  # (2, 3)
    train = (sampler + torch.tensor(IS_DIFF)).requires_grad_()            # (2, 3)
    w, out = rollout_correction(train, sampler, torch.tensor(IS_MASK), mode, 0.9, 2.5)
    torch.testing.assert_close(w, torch.tensor(weights))
    assert out.int().tolist() == outside
    assert not w.requires_grad  # a constant in the loss: gradients flow only through the surrogate


def test_every_correction_mode_has_a_hand_case():
    assert set(IS_CORRECTIONS) == {"token_truncate", "token_mask", "sequence_truncate", "sequence_mask", "none"}


def test_rollout_correction_of_agreeing_logprobs_is_one_and_nan_sampler_logprobs_count_as_agreement():
    logp = torch.tensor([[-0.3, -2.0]])
    for mode in IS_CORRECTIONS:
        w, out = rollout_correction(logp, logp.clone(), torch.ones(1, 2), mode, 0.0, 3.0)
        assert w.tolist() == [[1.0, 1.0]] and not out.any()
    w, _ = rollout_correction(logp, torch.tensor([[float("nan"), -2.0]]), torch.ones(1, 2), "sequence_mask", 0.0, 3.0)
    assert w.tolist() == [[1.0, 1.0]]


def test_rollout_correction_extreme_sequence_ratio_stays_finite():
    train, sampler = torch.zeros(1, 50), torch.full((1, 50), -5.0)  # log ratio 250 per sequence
    w, out = rollout_correction(train, sampler, torch.ones(1, 50), "sequence_truncate", 0.0, 3.0)
    assert torch.isfinite(w).all() and w.max() == 3.0 and out.all()


@pytest.mark.parametrize("args, match", [
    (("bogus", 0.0, 3.0), "unknown rollout correction 'bogus'"),
    (("token_mask", 2.0, 1.5), "ratio_min < ratio_max"),
])
def test_rollout_correction_errors(args, match):
    with pytest.raises(ValueError, match=match):
        rollout_correction(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), *args)
    with pytest.raises(ValueError, match=r"must all be \(N, T\)"):
        rollout_correction(torch.zeros(1, 2), torch.zeros(1, 3), torch.ones(1, 2), "none", 0.0, 3.0)


def test_mismatch_kl_on_hand_numbers():
    # d = 0.5: e^0.5 - 1 - 0.5 = 0.148721; d = -0.2: e^-0.2 - 1 + 0.2 = 0.018731; d = 0: 0
    kl = mismatch_kl(torch.tensor([[0.5, -0.2, -1.0]]), torch.tensor([[0.0, 0.0, -1.0]]))
    torch.testing.assert_close(kl, torch.tensor([[0.148721, 0.018731, 0.0]]))


# ------------------------------------------------------------------------------------------------- critic (PPO)

# clip 0.5. Row 0: old V = 0, so v_clip = clamp(v, -0.5, 0.5). Row 1: old V = 1, v_clip = clamp(v, 0.5, 1.5).
#   (v, R)        v_clip  (v-R)^2  (v_clip-R)^2  loss = 0.5 * max    clipped  d loss / dv
# row 0:
#   (0.3, 1)      0.3     0.49     0.49          0.245               no       v - R = -0.7   inside the clip
#   (2, 3)        0.5     1        6.25          3.125               yes      0              above, cut
#   (2, -1)       0.5     9        2.25          4.5                 no       3              above, unclipped wins
#   (-2, -3)      -0.5    1        6.25          3.125               yes      0              below, cut
#   (-2, 1)       -0.5    9        2.25          4.5                 no       -3             below, unclipped wins
# row 1:
#   (2, 3)        1.5     1        2.25          1.125               yes      0              above, cut
#   (1.2, 0)      1.2     1.44     1.44          0.72                no       1.2            inside the clip
#   (0, 3)        0.5     9        6.25          4.5                 no       -3             below, unclipped wins
#   (0, -1)       0.5     1        2.25          1.125               yes      0              below, cut
#   (3, 2)        1.5     1        0.25          0.5                 no       1              above, unclipped wins
# clip None: 0.5 * (v - R)^2 and d/dv = v - R everywhere.
V_VALUES = [[0.3, 2.0, 2.0, -2.0, -2.0], [2.0, 1.2, 0.0, 0.0, 3.0]]
V_RETURNS = [[1.0, 3.0, -1.0, -3.0, 1.0], [3.0, 0.0, 3.0, -1.0, 2.0]]
V_OLD = [[0.0] * 5, [1.0] * 5]


@pytest.mark.parametrize(
    "clip,loss,clipped,grad",
    [
        (0.5, [[0.245, 3.125, 4.5, 3.125, 4.5], [1.125, 0.72, 4.5, 1.125, 0.5]],
         [[0, 1, 0, 1, 0], [1, 0, 0, 1, 0]], [[-0.7, 0.0, 3.0, 0.0, -3.0], [0.0, 1.2, -3.0, 0.0, 1.0]]),
        (None, [[0.245, 0.5, 4.5, 0.5, 4.5], [0.5, 0.72, 4.5, 0.5, 0.5]],
         [[0] * 5, [0] * 5], [[-0.7, -1.0, 3.0, 1.0, -3.0], [-1.0, 1.2, -3.0, 1.0, 1.0]]),
    ],
    ids=["clip-0.5", "no-clip"],
)
def test_clipped_value_loss_hand_numbers_and_gradient(clip, loss, clipped, grad):
    values = torch.tensor(V_VALUES, requires_grad=True)
    old = torch.tensor(V_OLD, requires_grad=True)
    returns = torch.tensor(V_RETURNS, requires_grad=True)
    out, cut = clipped_value_loss(values, old, returns, clip)
    torch.testing.assert_close(out, torch.tensor(loss))
    assert cut.int().tolist() == clipped
    out.sum().backward()
    torch.testing.assert_close(values.grad, torch.tensor(grad))
    assert torch.equal(values.grad == 0, cut)  # zero gradient exactly where clipped (no token here has v = R)
    assert old.grad is None and returns.grad is None  # constants


@pytest.mark.parametrize(
    "args,match",
    [
        ((torch.zeros(3), torch.zeros(3), torch.zeros(3), 0.2), r"\(N, T\)"),
        ((torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(2, 3), 0.2), "old_values"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 2), 0.2), "returns"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), 0.0), "None to turn value clipping off"),
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), -0.2), "> 0"),
    ],
)
def test_clipped_value_loss_errors(args, match):
    with pytest.raises(ValueError, match=match):
        clipped_value_loss(*args)


# Masked returns 1, 2, 3, 6 (NaN garbage off the mask): mean 3, deviations -2 -1 0 3, population Var(R) = 14/4 = 3.5.
NAN = float("nan")
EV_RETURNS = [[1.0, 2.0, NAN], [3.0, 6.0, NAN]]
EV_MASK = [[1, 1, 0], [1, 1, 0]]


@pytest.mark.parametrize(
    "values,expected",
    [
        ([[1.0, 2.0, NAN], [3.0, 6.0, 5.0]], 1.0),  # V = R: perfect
        ([[3.0, 3.0, NAN], [3.0, 3.0, NAN]], 0.0),  # V = mean(R): Var(R - V) = Var(R)
        # V = [1, 2, 3, 4]: R - V = [0, 0, 0, 2], mean 0.5, Var = (3 * 0.25 + 2.25) / 4 = 0.75 -> 1 - 0.75/3.5 = 11/14
        ([[1.0, 2.0, NAN], [3.0, 4.0, NAN]], 11 / 14),
        # V = R - 5: a constant offset is not penalised (variance of R - V is 0)
        ([[-4.0, -3.0, 0.0], [-2.0, 1.0, 0.0]], 1.0),
        # V = -R + 6 = [5, 4, 3, 0]: R - V = [-4, -2, 0, 6] = 2 * (R - 3), Var = 4 * 3.5 -> 1 - 4 = -3
        ([[5.0, 4.0, NAN], [3.0, 0.0, NAN]], -3.0),
    ],
    ids=["perfect", "mean", "hand", "offset", "anti"],
)
def test_explained_variance_hand_numbers(values, expected):
    ev = explained_variance(torch.tensor(values), torch.tensor(EV_RETURNS), torch.tensor(EV_MASK))
    assert isinstance(ev, float) and ev == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "returns,mask",
    [
        ([[1.0, 2.0, 3.0]], [[1, 0, 0]]),  # one entry
        ([[1.0, 2.0, 3.0]], [[0, 0, 0]]),  # none
        ([[0.7] * 7], [[1] * 7]),  # all returns equal: Var(R) = 0 (0.7 has rounding noise in its mean)
    ],
    ids=["one", "none", "constant"],
)
def test_explained_variance_is_nan_without_spread(returns, mask):
    R = torch.tensor(returns)
    assert math.isnan(explained_variance(R + 0.1, R, torch.tensor(mask)))


def test_explained_variance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"all be \(N, T\)"):
        explained_variance(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(3, 2))


# coef 0.1, target 6, n_steps / horizon = 1000 / 10000 = 0.1: coef * (1 + 0.1 * error), error clipped to +-0.2
@pytest.mark.parametrize(
    "observed,n_steps,expected",
    [
        (6.6, 1000, 0.101),  # 6.6/6 - 1 = 0.1 -> 0.1 * 1.01
        (5.4, 1000, 0.099),  # -0.1 -> 0.1 * 0.99
        (12.0, 1000, 0.102),  # 1 clipped to 0.2 -> 0.1 * 1.02
        (0.0, 1000, 0.098),  # -1 clipped to -0.2 -> 0.1 * 0.98
        (-3.0, 1000, 0.098),  # a negative k1 estimate: -1.5 clipped to -0.2
        (6.0, 1000, 0.1),  # on target: unchanged
        (12.0, 0, 0.1),  # no samples since the last update: unchanged
        (12.0, 40000, 0.18),  # n_steps / horizon = 4: 1 + 0.2 * 4 = 1.8
    ],
)
def test_adaptive_kl_coef(observed, n_steps, expected):
    assert adaptive_kl_coef(0.1, observed, 6.0, n_steps, 10000) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "args,match",
    [
        ((-0.1, 1.0, 6.0, 10, 100), "coef"),
        ((0.1, 1.0, 0.0, 10, 100), "target"),
        ((0.1, 1.0, 6.0, 10, 0), "horizon"),
        ((0.1, 1.0, 6.0, -1, 100), "n_steps"),
        ((0.1, 1.0, 6.0, 500, 100), "must be < 5"),  # 1 - 0.2 * 5 = 0 would zero the coefficient for good
        ((0.1, float("nan"), 6.0, 10, 100), "observed_kl"),
    ],
)
def test_adaptive_kl_coef_errors(args, match):
    with pytest.raises(ValueError, match=match):
        adaptive_kl_coef(*args)
