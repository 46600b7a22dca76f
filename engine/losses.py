"""Per-token policy-gradient and value losses, KL penalties and loss aggregation for GRPO- and PPO-style training.

Pure functions over tensors and floats (no I/O, no config, no devices, no dtype choices: they compute in the
dtype they are given; the trainer decides, e.g. fp32 logits for log-probs). Shapes: N sequences (B*G
completions), T completion tokens, V vocabulary.

Formulas and where they come from:

  clipped_surrogate   ratio = exp(logp - old_logp)
                      loss  = max(-A * ratio, -A * clip(ratio, 1 - clip_low, 1 + clip_high))
                      PPO's clipped objective (Schulman et al. 2017, arXiv:1707.06347) as GRPO uses it per token
                      (Shao et al. 2024, arXiv:2402.03300). clip_high > clip_low is DAPO's "clip-higher" (Yu et
                      al. 2025, arXiv:2503.14476), which lets low-probability tokens grow and keeps entropy up.
                      dual clip c > 1 (Ye et al. 2020, "Mastering Complex Control in MOBA Games", arXiv:1912.09729):
                      where A < 0, loss = min(loss, -A * c), which bounds the loss when ratio >> 1.
  kl_penalty          per-token estimates of KL(pi || pi_ref) from samples of pi, with log_ratio = logp - ref_logp
                      (Schulman 2020, "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html):
                      k1 = log_ratio                          unbiased, high variance, can be negative
                      k2 = 0.5 * log_ratio ** 2               biased, low variance, >= 0
                      k3 = exp(-log_ratio) - 1 + log_ratio    unbiased, low variance, >= 0 (GRPO's choice, eq. 4)
  entropy_from_logits H = -sum_v p_v log p_v, from log p = log_softmax(z)
  token_logprobs      log pi(y_t) = z_t[y_t] - logsumexp(z_t)
  rollout_correction  the sampler (vLLM, or transformers with top-p) and the trainer compute different
                      probabilities for the same tokens (kernels, dtypes, top-p, a stale weight copy), so rollouts
                      are slightly off-policy. With r_t = exp(train_logp_t - sampler_logp_t):
                        token modes     w_t = r_t                     per token
                        sequence modes  w_t = prod_s r_s              the sequence's ratio, on all its tokens
                      truncate: w = clamp(w, lo, hi) (truncated IS, TIS: Yao et al. 2025, "Your efficient RL
                      framework secretly brings you off-policy RL training"); mask: w = 0 where w is outside
                      [lo, hi] (masked IS; TRL's default is sequence_mask). The loss is w * surrogate, w detached.
  mismatch_kl         per-token k3 estimate of KL(sampler || trainer) from the sampled tokens:
                      exp(d) - 1 - d with d = train_logp - sampler_logp (>= 0; 0 when the two agree)
  aggregate_loss      token-mean               sum(l * m) / sum(m)                  (DAPO's token-level loss)
                      seq-mean-token-mean      mean_i (sum_t l*m / sum_t m)          (GRPO paper, eq. 3)
                      seq-mean-token-sum-norm  sum(l * m) / (N * norm_len)          (Dr. GRPO, arXiv:2503.20783)
                      The mode names are verl's (`loss_agg_mode`).
  clipped_value_loss  v_clip = old_V + clip(V - old_V, -clip, clip)
                      loss   = 0.5 * max((V - R)^2, (v_clip - R)^2)
                      PPO's value loss with value clipping, as in OpenAI baselines' ppo2, OpenRLHF and verl (not
                      in the PPO paper; Engstrom et al. 2020, arXiv:2005.12729, find it does not help in MuJoCo).
                      R are the GAE returns (engine/advantages.py gae); clip None gives 0.5 * (V - R)^2.
  explained_variance  1 - Var(R - V) / Var(R) over real tokens (population variance): 1 for a perfect critic, 0
                      for one that predicts the mean return, < 0 for worse. The trainer logs critic/explained_var.
  adaptive_kl_coef    e = clip(KL / target - 1, -0.2, 0.2);  coef <- coef * (1 + e * n_steps / horizon)
                      the adaptive KL controller of Ziegler et al. 2019, "Fine-Tuning Language Models from Human
                      Preferences" (arXiv:1909.08593): their K_beta (0.1) is n_steps / horizon here, the form of
                      their released code and of TRL's AdaptiveKLController.

Numerical guards (documented deviations from the bare formulas):
  - clipped_surrogate clamps logp - old_logp to [-20, 20] before exp (as verl does). A ratio that overflows to
    inf gives NaN gradients even on clipped tokens (0 * inf in backward). A token beyond the guard gets no
    gradient and is reported in the clipped mask; within it (ratio in [2e-9, 4.8e8]) the formula is exact.
  - kl_penalty's k3 clamps log_ratio to [-20, 20] (in both terms, so k3 stays >= 0) before exp; beyond it the
    estimate is constant and its gradient zero.
  - entropy_from_logits accepts -inf logits (masked vocabulary entries); they contribute zero.
  - aggregate_loss ignores whatever per_token holds at masked positions, NaN and inf included.

  - rollout_correction clamps the per-sequence log ratio to [-20, 20] before exp, like the surrogate.

What is not covered: sequence-level ratios (GSPO), entropy bonuses as a loss term (entropy_from_logits only
measures), the critic model and its optimiser (clipped_value_loss takes its values), a Huber value loss, and the
choice of estimator for the KL *gradient*: used as a loss on-policy, k2 gives an unbiased gradient of
KL(pi || pi_ref), k1 a zero-mean one, and k3 the gradient of the reverse direction KL(pi_ref || pi) (Tang & Munos
2025, arXiv:2506.09477). Old log-probs, advantages, reference log-probs, old values and returns are treated as
constants (detached).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
KL_ESTIMATORS = ("k1", "k2", "k3")
IS_CORRECTIONS = ("sequence_mask", "sequence_truncate", "token_mask", "token_truncate", "none")

_LOG_RATIO_LIMIT = 20.0


def clipped_surrogate(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
) -> tuple[Tensor, Tensor]:
    """PPO/GRPO clipped surrogate per token, to be minimised.

    logp, old_logp (N, T): per-token log-probs of the sampled tokens under the current / sampling policy.
    advantages (N,) (one per sequence, broadcast over tokens) or (N, T).
    Returns (loss (N, T), clipped (N, T) bool): clipped marks tokens whose gradient a clip cut to zero.

    >>> loss, clipped = clipped_surrogate(torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([1.0]), 0.2, 0.2)
    >>> loss, clipped   # ratio e clipped to 1.2 gives -1.2 * A
    (tensor([[-1.2000]]), tensor([[True]]))
    """
    if logp.dim() != 2:
        raise ValueError(f"logp must be (N, T), got shape {tuple(logp.shape)}")
    if old_logp.shape != logp.shape:
        raise ValueError(f"old_logp shape {tuple(old_logp.shape)} != logp shape {tuple(logp.shape)}")
    if advantages.shape not in (logp.shape[:1], logp.shape):
        raise ValueError(
            f"advantages must be (N,) or (N, T) = {tuple(logp.shape[:1])} or {tuple(logp.shape)}, "
            f"got {tuple(advantages.shape)}"
        )
    if not 0 <= clip_low < 1:
        raise ValueError(f"clip_low must be in [0, 1) so that 1 - clip_low > 0, got {clip_low}")
    if clip_high < 0:
        raise ValueError(f"clip_high must be >= 0, got {clip_high}")
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1 (Ye et al. use 3), or None to turn it off; got {dual_clip}")

    adv = advantages.detach()  # (N,) or (N, T)
    if adv.dim() == 1:
        adv = adv.unsqueeze(1)  # (N, 1) broadcasts over T
    log_ratio = logp - old_logp.detach()  # (N, T)
    ratio = torch.exp(log_ratio.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT))  # (N, T)
    unclipped = -adv * ratio  # (N, T)
    clipped = -adv * ratio.clamp(1 - clip_low, 1 + clip_high)  # (N, T)
    loss = torch.maximum(unclipped, clipped)  # (N, T)
    cut = ((adv > 0) & (ratio > 1 + clip_high)) | ((adv < 0) & (ratio < 1 - clip_low))  # (N, T)
    if dual_clip is not None:
        bound = -adv * dual_clip  # (N, 1) or (N, T)
        loss = torch.where(adv < 0, torch.minimum(loss, bound), loss)  # (N, T)
        cut = cut | ((adv < 0) & (ratio > dual_clip))  # (N, T)
    cut = cut | (log_ratio.detach().abs() > _LOG_RATIO_LIMIT)  # (N, T)
    return loss, cut


def kl_penalty(logp: Tensor, ref_logp: Tensor, estimator: str) -> Tensor:
    """Per-token estimate of KL(pi || pi_ref) from tokens sampled from pi: (N, T), (N, T) -> (N, T).

    >>> kl_penalty(torch.tensor([[-1.0]]), torch.tensor([[-2.0]]), "k1")
    tensor([[1.]])
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; valid: {', '.join(KL_ESTIMATORS)}")
    if logp.shape != ref_logp.shape:
        raise ValueError(f"ref_logp shape {tuple(ref_logp.shape)} != logp shape {tuple(logp.shape)}")
    log_ratio = logp - ref_logp.detach()  # (N, T)
    if estimator == "k1":
        return log_ratio  # (N, T)
    if estimator == "k2":
        return 0.5 * log_ratio**2  # (N, T)
    log_ratio = log_ratio.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)  # (N, T)
    return torch.exp(-log_ratio) - 1 + log_ratio  # (N, T)


def rollout_correction(
    train_logp: Tensor,
    sampler_logp: Tensor,
    mask: Tensor,
    mode: str,
    ratio_min: float,
    ratio_max: float,
) -> tuple[Tensor, Tensor]:
    """Importance weights that correct the loss for the sampler/trainer mismatch (module docstring).

    train_logp, sampler_logp (N, T): log-probs of the sampled tokens under the trainer's policy (the one the
    surrogate's ratio starts from) and as the sampler reported them; mask (N, T): 1 on real tokens.
    Returns (weights (N, T) detached, 0 off the mask; outside (N, T) bool: tokens whose ratio, or whose
    sequence's ratio, fell outside [ratio_min, ratio_max], i.e. were masked or truncated).

    >>> w, out = rollout_correction(torch.tensor([[0.0, 0.0]]), torch.log(torch.tensor([[0.5, 0.1]])),
    ...                             torch.ones(1, 2), "token_truncate", 0.0, 3.0)
    >>> w, out   # ratios 2 and 10: 10 truncated to 3
    (tensor([[2., 3.]]), tensor([[False,  True]]))
    """
    if mode not in IS_CORRECTIONS:
        raise ValueError(f"unknown rollout correction {mode!r}; valid: {', '.join(IS_CORRECTIONS)}")
    if train_logp.dim() != 2 or sampler_logp.shape != train_logp.shape or mask.shape != train_logp.shape:
        raise ValueError(f"train_logp, sampler_logp and mask must all be (N, T); got {tuple(train_logp.shape)}, "
                         f"{tuple(sampler_logp.shape)}, {tuple(mask.shape)}")
    if not 0 <= ratio_min < ratio_max:
        raise ValueError(f"need 0 <= ratio_min < ratio_max, got {ratio_min}, {ratio_max}")
    real = mask != 0  # (N, T)
    if mode == "none":
        return real.to(train_logp.dtype), torch.zeros_like(real)
    diff = torch.where(real, train_logp.detach() - sampler_logp.detach(), 0.0)  # (N, T) log r_t
    diff = torch.nan_to_num(diff, nan=0.0)  # a missing sampler logprob counts as agreement
    if mode.startswith("sequence"):
        diff = diff.sum(dim=1, keepdim=True).expand_as(diff)  # (N, T) log prod_s r_s on every token
    ratio = torch.exp(diff.clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT))  # (N, T)
    outside = ((ratio < ratio_min) | (ratio > ratio_max)) & real  # (N, T)
    if mode.endswith("truncate"):
        weights = ratio.clamp(ratio_min, ratio_max)  # (N, T)
    else:
        weights = torch.where(outside, torch.zeros_like(ratio), ratio)  # (N, T)
    return weights * real, outside


def mismatch_kl(train_logp: Tensor, sampler_logp: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(sampler || trainer) from tokens the sampler drew: (N, T), (N, T) -> (N, T).

    >>> mismatch_kl(torch.tensor([[0.0]]), torch.tensor([[-1.0]]))   # e - 1 - 1
    tensor([[0.7183]])
    """
    if train_logp.shape != sampler_logp.shape:
        raise ValueError(f"sampler_logp shape {tuple(sampler_logp.shape)} != train_logp shape "
                         f"{tuple(train_logp.shape)}")
    d = (train_logp.detach() - sampler_logp.detach()).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)  # (N, T)
    return torch.exp(d) - 1 - d  # (N, T)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy (nats) of softmax(logits) over the last dimension: (N, T, V) -> (N, T).

    >>> entropy_from_logits(torch.zeros(1, 1, 4))   # uniform over 4: log 4
    tensor([[1.3863]])
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (N, T, V), got shape {tuple(logits.shape)}")
    # -sum_v p_v log p_v from the log-softmax (no cancellation between two big terms); a -inf log-prob (a masked
    # entry) is clamped to a finite one, whose probability exp() still makes 0: 0 * finite, never 0 * -inf
    logp = torch.log_softmax(logits, dim=-1).clamp_min(torch.finfo(logits.dtype).min)  # (N, T, V)
    return -(logp.exp() * logp).sum(dim=-1)  # (N, T)


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """Log-probs of the given tokens: logits (N, T, V) with logits[:, t] predicting tokens[:, t] -> (N, T).

    Computed as gather - logsumexp, never materialising a (N, T, V) log-softmax.

    >>> token_logprobs(torch.log(torch.tensor([[[0.25, 0.75]]])), torch.tensor([[1]]))   # log 0.75
    tensor([[-0.2877]])
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (N, T, V), got shape {tuple(logits.shape)}")
    if tokens.shape != logits.shape[:2]:
        raise ValueError(
            f"tokens shape {tuple(tokens.shape)} != logits (N, T) {tuple(logits.shape[:2])}; "
            "shift logits so that logits[:, t] predicts tokens[:, t]"
        )
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be integer ids, got dtype {tokens.dtype}")
    V = logits.shape[-1]
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= V):
        raise ValueError(
            f"token ids must be in [0, {V}), got min {int(tokens.min())} max {int(tokens.max())}; "
            "replace ignore-index padding (e.g. -100) by a real id and mask it out"
        )
    picked = logits.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)  # (N, T)
    return picked - torch.logsumexp(logits, dim=-1)  # (N, T)


def aggregate_loss(per_token: Tensor, mask: Tensor, mode: str, norm_len: int | None = None) -> Tensor:
    """Reduce a per-token loss (N, T) to a scalar over the tokens where mask (N, T) is 1.

    norm_len is used only by seq-mean-token-sum-norm (e.g. the max new tokens). An all-zero mask gives a zero
    that is still connected to per_token, so backward() runs and yields zero gradients.

    >>> aggregate_loss(torch.tensor([[1.0, 3.0], [5.0, 7.0]]), torch.tensor([[1, 1], [1, 0]]), "token-mean")
    tensor(3.)
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")
    if per_token.dim() != 2:
        raise ValueError(f"per_token must be (N, T), got shape {tuple(per_token.shape)}")
    if mask.shape != per_token.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != per_token shape {tuple(per_token.shape)}")
    if mode == "seq-mean-token-sum-norm" and (norm_len is None or norm_len < 1):
        raise ValueError(f"seq-mean-token-sum-norm needs norm_len >= 1 (e.g. max new tokens), got {norm_len}")

    m = mask.to(per_token.dtype)  # (N, T)
    masked = torch.where(m != 0, per_token * m, torch.zeros_like(per_token))  # (N, T) garbage off-mask -> 0
    if mode == "token-mean":
        count = m.sum()  # ()
        return masked.sum() / torch.where(count > 0, count, torch.ones_like(count))  # ()
    if mode == "seq-mean-token-sum-norm":
        return masked.sum() / (per_token.shape[0] * norm_len)  # ()
    counts = m.sum(dim=1)  # (N,)
    has_tokens = counts > 0  # (N,)
    seq_means = masked.sum(dim=1) / torch.where(has_tokens, counts, torch.ones_like(counts))  # (N,)
    n_seqs = has_tokens.sum().clamp_min(1)  # ()
    return seq_means.sum() / n_seqs  # ()


def clipped_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, clip: float | None
) -> tuple[Tensor, Tensor]:
    """PPO value loss with value clipping, per token, to be minimised (module docstring).

    values (N, T): the critic's current values; old_values (N, T): its values at rollout time; returns (N, T): the
    targets (GAE advantages + old values). old_values and returns are constants (detached).
    Returns (loss (N, T), clipped (N, T) bool): clipped marks tokens where the clipped term is strictly larger,
    which cuts their gradient to zero. Both are computed on every position; reduce the loss with aggregate_loss
    and count clipped tokens under the mask, since whatever sits off the mask gives garbage there.

    >>> loss, clipped = clipped_value_loss(torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[3.0]]), 0.5)
    >>> loss, clipped   # v_clip = 0.5: 0.5 * max((2 - 3)^2, (0.5 - 3)^2) = 0.5 * 6.25
    (tensor([[3.1250]]), tensor([[True]]))
    """
    if values.dim() != 2:
        raise ValueError(f"values must be (N, T), got shape {tuple(values.shape)}")
    if old_values.shape != values.shape or returns.shape != values.shape:
        raise ValueError(f"old_values {tuple(old_values.shape)} and returns {tuple(returns.shape)} must have the "
                         f"shape of values {tuple(values.shape)}")
    if clip is not None and not clip > 0:
        raise ValueError(f"value clip must be > 0 (e.g. 0.2), or None to turn value clipping off; got {clip}")
    R = returns.detach()  # (N, T)
    unclipped = (values - R) ** 2  # (N, T)
    if clip is None:
        return 0.5 * unclipped, torch.zeros_like(values, dtype=torch.bool)
    old = old_values.detach()  # (N, T)
    v_clip = old + (values - old).clamp(-clip, clip)  # (N, T)
    clipped = (v_clip - R) ** 2  # (N, T)
    return 0.5 * torch.maximum(unclipped, clipped), (clipped > unclipped).detach()  # (N, T), (N, T)


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float:
    """1 - Var(R - V) / Var(R) over the entries where mask (N, T) is nonzero, population variances (ddof=0).

    NaN when there are fewer than 2 masked entries or all masked returns are equal (Var(R) = 0: nothing to
    explain). Whatever values and returns hold off the mask is ignored. A logging metric: returns a float.

    >>> explained_variance(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 3.0]]), torch.ones(1, 2))   # V = R - 1
    1.0
    """
    if values.dim() != 2 or returns.shape != values.shape or mask.shape != values.shape:
        raise ValueError(f"values, returns and mask must all be (N, T); got {tuple(values.shape)}, "
                         f"{tuple(returns.shape)}, {tuple(mask.shape)}")
    real = mask != 0  # (N, T)
    if int(real.sum()) < 2:
        return float("nan")
    R = returns.detach()[real]  # (n,)
    V = values.detach()[real]  # (n,)
    if not R.is_floating_point():
        R = R.to(torch.get_default_dtype())
    if (R == R[0]).all():
        return float("nan")
    return float(1 - (R - V).var(correction=0) / R.var(correction=0))


def adaptive_kl_coef(coef: float, observed_kl: float, target: float, n_steps: int, horizon: int) -> float:
    """The next KL coefficient from Ziegler et al.'s adaptive controller (module docstring).

    observed_kl: the mean KL(pi || pi_ref) per completion in the last batch; target: the KL to hold; n_steps:
    the samples since the last update (e.g. the batch size); horizon: samples over which a 20% error is corrected
    (10000 in Ziegler et al.). One update moves coef by at most 20% * n_steps / horizon.

    >>> adaptive_kl_coef(0.1, observed_kl=9.0, target=6.0, n_steps=256, horizon=10000)   # error +0.5 -> +0.2
    0.100512
    """
    if not coef >= 0:
        raise ValueError(f"coef must be >= 0, got {coef}")
    if not target > 0:
        raise ValueError(f"target KL must be > 0, got {target}; use a fixed kl_coef for no target")
    if not horizon > 0:
        raise ValueError(f"horizon must be > 0 (samples; Ziegler et al. use 10000), got {horizon}")
    if not n_steps >= 0:
        raise ValueError(f"n_steps (samples since the last update) must be >= 0, got {n_steps}")
    if not 0.2 * n_steps / horizon < 1:
        raise ValueError(f"n_steps / horizon = {n_steps}/{horizon} must be < 5, or one update can make coef <= 0; "
                         "raise horizon")
    if not math.isfinite(observed_kl):
        raise ValueError(f"observed_kl must be finite, got {observed_kl}")
    error = min(max(observed_kl / target - 1, -0.2), 0.2)
    return coef * (1 + error * n_steps / horizon)


def policy_token_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    is_weight: Tensor,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
    kl: Tensor | None = None,
    beta: float = 0.0,
    entropy: Tensor | None = None,
    entropy_coef: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """The policy's per-token loss (N, T), to be aggregated: the clipped surrogate weighted by the rollout
    correction's importance weights, plus beta x the KL estimate, minus entropy_coef x the entropy.
    Returns (loss (N, T), clipped (N, T) bool) as `clipped_surrogate`.

    >>> loss, _ = policy_token_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([1.0]),
    ...                             torch.tensor([[1.0, 0.5]]), 0.2, 0.2, kl=torch.ones(1, 2), beta=0.1)
    >>> loss   # -A * ratio * w + beta * kl
    tensor([[-0.9000, -0.4000]])
    """
    per_token, clipped = clipped_surrogate(logp, old_logp, advantages, clip_low, clip_high, dual_clip)  # (N, T)
    per_token = per_token * is_weight.detach()                                                            # (N, T)
    if kl is not None and beta:
        per_token = per_token + beta * kl                                                                 # (N, T)
    if entropy is not None and entropy_coef:
        per_token = per_token - entropy_coef * entropy                                                    # (N, T)
    return per_token, clipped


def micro_batch_share(mask: Tensor, mode: str, mask_total: float, seqs_total: int, rows_total: int) -> float:
    """A micro-batch's weight in its minibatch, so that the sum of its micro-batches' aggregated losses equals
    the minibatch's: its share of the minibatch's masked tokens (token-mean), of its sequences with a token
    (seq-mean-token-mean), or of its rows (seq-mean-token-sum-norm). mask (n, T) is the micro-batch's.

    >>> micro_batch_share(torch.ones(2, 3), "token-mean", mask_total=12.0, seqs_total=4, rows_total=4)
    0.5
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")
    if mode == "token-mean":
        return float(mask.sum()) / mask_total if mask_total else 0.0
    if mode == "seq-mean-token-mean":
        return float((mask.sum(1) > 0).sum()) / seqs_total if seqs_total else 0.0
    return mask.shape[0] / rows_total if rows_total else 0.0
