"""Advantages for RL from verifiable rewards: per completion from group baselines, or per token from a critic.

The rollout samples G completions for each of B prompts, and a grader scores each one, giving rewards (B, G).
The critic-free estimators below turn that table into advantages (B, G) that the policy loss (engine/losses.py)
broadcasts over every token of a completion; PPO with a critic instead spreads each score over the tokens
(`token_rewards`) and runs GAE against the critic's values (`gae`), giving advantages (N, T) per token. They are
pure functions of tensors and floats: no I/O, no config, no devices.

Estimators (`group_advantages(rewards, estimator)`), for one group r_1..r_G of a prompt:

  grpo          A_i = (r_i - mean(r)) / (std(r) + eps)
                GRPO, Shao et al. 2024, "DeepSeekMath" (arXiv:2402.03300), sec. 4.1.2 (outcome supervision).
                std is the unbiased sample std (ddof=1), as TRL's GRPOTrainer and verl compute it.
  dr_grpo       A_i = r_i - mean(r)
                Dr. GRPO, Liu et al. 2025, "Understanding R1-Zero-Like Training" (arXiv:2503.20783): dividing by
                the group std up-weights prompts that are nearly always (or never) solved; they drop it.
  rloo          A_i = r_i - mean_{j != i} r_j = G / (G - 1) * (r_i - mean(r))
                RLOO, Ahmadian et al. 2024, "Back to Basics" (arXiv:2402.14740), after Kool et al. 2019: the
                leave-one-out baseline does not depend on r_i, so the estimator is unbiased.
  reinforce_pp  A = (r - mean(R)) / (std(R) + eps), mean and std (ddof=1) over the whole batch R of B * G rewards
                REINFORCE++, Hu 2025 (arXiv:2501.03262): global advantage normalisation instead of per-prompt.

A group whose rewards are all equal carries no learning signal under any group estimator; grpo returns an
exact 0 for it (not 0 / eps noise from rounding in the mean), and `zero_variance_groups` finds such groups so a
trainer can count them or filter them out (DAPO's dynamic sampling, Yu et al. 2025, arXiv:2503.14476).

Overlong shaping (`overlong_penalty`): DAPO's soft overlong punishment (Yu et al. 2025, sec. 3.4), a reward term
that ramps linearly from 0 to -factor over the last `buffer` tokens before `max_len`, and is -factor beyond.

Per-token advantages for PPO with a critic (N completions, T completion tokens, mask (N, T) 1 on real tokens,
which are a prefix of each row; a row may have none):

  token_rewards  r_t = -kl_coef * kl_t on every real token, plus the completion's score at its last real token
                 KL-in-reward shaping, Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences"
                 (arXiv:1909.08593), as InstructGPT (Ouyang et al. 2022, arXiv:2203.02155) uses it.
  gae            delta_t = r_t + gamma * V_{t+1} - V_t,   A_t = delta_t + gamma * lam * A_{t+1},   R_t = A_t + V_t
                 Generalised Advantage Estimation, Schulman et al. 2016 (arXiv:1506.02438), sec. 3. The episode
                 ends at the last real token: V and A after it are 0. A completion cut at the length cap is
                 treated as ended too (its tail is not bootstrapped from V), as TRL, OpenRLHF and verl do.
                 lam = 1 gives the Monte Carlo return minus V; lam = 0 the one-step TD error.
  masked_whiten  (x - mean) / (std + eps), mean and std (ddof=1, like grpo above and TRL's / verl's
                 masked_whiten) over the real tokens only: normalises GAE advantages across a batch.

What is not covered: per-token (process) rewards from a grader (the only per-token reward term is the KL
shaping), bootstrapping truncated completions from V, discounting across turns, and the critic itself (its
value loss and explained variance are in engine/losses.py; the model that produces V is the trainer's).
"""

from __future__ import annotations

import torch
from torch import Tensor

from graders.plugins import Registry


def zero_variance_groups(rewards: Tensor) -> Tensor:
    """Which groups have all-equal rewards (zero variance, no learning signal): (B, G) -> bool (B,).

    >>> zero_variance_groups(torch.tensor([[1.0, 1.0], [1.0, 0.0]]))
    tensor([ True, False])
    """
    _check_rewards(rewards)
    return (rewards == rewards[:, :1]).all(dim=1)  # (B,)


def group_advantages(rewards: Tensor, estimator: str, eps: float = 1e-6) -> Tensor:
    """Advantages (B, G) from rewards (B, G) of B prompts x G completions; see the module docstring. `estimator`
    is a name in ESTIMATORS (an unknown one raises its LookupError, which suggests the closest name).

    `eps` guards the std division of grpo and reinforce_pp; the other estimators ignore it.

    >>> group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), "dr_grpo")
    tensor([[ 0.5000, -0.5000, -0.5000,  0.5000]])
    """
    compute = ESTIMATORS.get(estimator)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    _check_rewards(rewards)
    if not rewards.is_floating_point():
        rewards = rewards.to(torch.get_default_dtype())  # (B, G)
    return compute(rewards, eps)


def grpo(rewards: Tensor, eps: float) -> Tensor:
    """(r - mean) / (std + eps) per group (B, G) -> (B, G); zero-variance groups exactly 0."""
    std = _group_check(rewards, "grpo").std(dim=1, keepdim=True, correction=1)  # (B, 1)
    return _flat_to_zero(rewards, (rewards - rewards.mean(dim=1, keepdim=True)) / (std + eps))


def dr_grpo(rewards: Tensor, eps: float) -> Tensor:
    """r - mean per group (B, G) -> (B, G)."""
    return _flat_to_zero(rewards, _group_check(rewards, "dr_grpo") - rewards.mean(dim=1, keepdim=True))


def rloo(rewards: Tensor, eps: float) -> Tensor:
    """r_i - mean of the others = G / (G - 1) * (r_i - mean) per group (B, G) -> (B, G)."""
    G = _group_check(rewards, "rloo").shape[1]
    return _flat_to_zero(rewards, (rewards - rewards.mean(dim=1, keepdim=True)) * (G / (G - 1)))


def reinforce_pp(rewards: Tensor, eps: float) -> Tensor:
    """(r - mean) / (std + eps) over the whole batch (B, G) -> (B, G); an all-equal batch gives exact zeros."""
    if rewards.numel() < 2:
        raise ValueError(f"reinforce_pp needs at least 2 rewards in the batch for a std, got shape "
                         f"{tuple(rewards.shape)}")
    if (rewards == rewards.flatten()[0]).all():
        return torch.zeros_like(rewards)  # (B, G) all equal: exact zeros, not rounding noise / eps
    return (rewards - rewards.mean()) / (rewards.std(correction=1) + eps)  # (B, G)


ESTIMATORS = Registry("advantage estimator", {name: f"engine.advantages:{name}"
                                              for name in ("grpo", "dr_grpo", "rloo", "reinforce_pp")})


def _group_check(rewards: Tensor, estimator: str) -> Tensor:
    if rewards.shape[1] < 2:
        raise ValueError(
            f"{estimator} needs G >= 2 completions per prompt for a group baseline, got rewards of shape "
            f"{tuple(rewards.shape)}; sample more completions per prompt or use reinforce_pp (a batch-wide baseline)")
    return rewards


def _flat_to_zero(rewards: Tensor, centred: Tensor) -> Tensor:
    """Exact zeros for groups whose rewards are all equal (not 0 / eps rounding noise)."""
    flat = zero_variance_groups(rewards).unsqueeze(1)  # (B, 1)
    return torch.where(flat, torch.zeros_like(centred), centred)  # (B, G)


def overlong_penalty(lengths: Tensor, max_len: int, buffer: int, factor: float = 1.0) -> Tensor:
    """DAPO soft overlong punishment, a reward term per completion: lengths (N,) -> penalty (N,) float.

        0                                        if L <= max_len - buffer
        factor * ((max_len - buffer) - L) / buffer  if max_len - buffer < L <= max_len   (0 down to -factor)
        -factor                                  if L > max_len

    buffer = 0 disables the ramp: 0 up to max_len, -factor beyond.

    >>> overlong_penalty(torch.tensor([10, 17, 20, 21]), max_len=20, buffer=4)
    tensor([ 0.0000, -0.2500, -1.0000, -1.0000])
    """
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D (N,), got shape {tuple(lengths.shape)}")
    if lengths.dtype == torch.bool or lengths.is_complex():
        raise ValueError(f"lengths must be integer or real, got dtype {lengths.dtype}")
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if not 0 <= buffer <= max_len:
        raise ValueError(f"buffer must be in [0, max_len={max_len}], got {buffer}")
    if factor < 0:
        raise ValueError(f"factor must be >= 0 (it is the size of the penalty), got {factor}")
    dtype = lengths.dtype if lengths.is_floating_point() else torch.get_default_dtype()
    L = lengths.to(dtype)  # (N,)
    start = max_len - buffer
    penalty = torch.zeros_like(L)  # (N,)
    if buffer > 0:
        ramp = factor * (start - L) / buffer  # (N,)
        penalty = torch.where((L > start) & (L <= max_len), ramp, penalty)  # (N,)
    return torch.where(L > max_len, torch.full_like(L, -factor), penalty)  # (N,)



def token_rewards(scores: Tensor, mask: Tensor, kl: Tensor | None, kl_coef: float) -> Tensor:
    """Per-token rewards for PPO with a critic: scores (N,), mask (N, T), kl (N, T) or None -> rewards (N, T).

    -kl_coef * kl_t on every real token, plus scores[i] on row i's last real token; 0 off the mask. A row with no
    real tokens gets all zeros (its score is dropped). kl None or kl_coef 0: the score alone. kl is a per-token
    estimate of KL(pi || pi_ref) (engine/losses.py kl_penalty); whatever it holds off the mask is ignored. The
    result is a constant (detached): rewards are targets, not part of the graph.

    >>> token_rewards(torch.tensor([1.0, 2.0]), torch.tensor([[1, 1, 0], [1, 1, 1]]), torch.full((2, 3), 0.5), 0.1)
    tensor([[-0.0500,  0.9500,  0.0000],
            [-0.0500, -0.0500,  1.9500]])
    """
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-D (N,), one per completion, got shape {tuple(scores.shape)}")
    if mask.dim() != 2 or mask.shape[0] != scores.shape[0]:
        raise ValueError(f"mask must be (N, T) with N = len(scores) = {scores.shape[0]}, got {tuple(mask.shape)}")
    if kl is not None and kl.shape != mask.shape:
        raise ValueError(f"kl shape {tuple(kl.shape)} != mask shape {tuple(mask.shape)}")
    if kl is not None and not kl.is_floating_point():
        raise ValueError(f"kl must be a floating-point tensor, got dtype {kl.dtype}")
    if not kl_coef >= 0:
        raise ValueError(f"kl_coef must be >= 0 (the weight of the KL penalty; 0 turns it off), got {kl_coef}")
    if scores.dtype == torch.bool or scores.is_complex():
        raise ValueError(f"scores must be integer or real, got dtype {scores.dtype}")
    real = _real_tokens(mask)  # (N, T) bool
    use_kl = kl is not None and kl_coef != 0
    dtype = scores.dtype if scores.is_floating_point() else torch.get_default_dtype()
    if use_kl:
        dtype = torch.promote_types(dtype, kl.dtype)
    s = scores.detach().to(dtype)  # (N,)
    has_tokens = real[:, 0] if real.shape[1] else torch.zeros_like(s, dtype=torch.bool)  # (N,) prefix: first is real
    if not torch.isfinite(s[has_tokens]).all():
        raise ValueError("scores contain NaN or inf for completions that have tokens; check the grader outputs")
    after = torch.cat([real[:, 1:], torch.zeros_like(real[:, :1])], dim=1)  # (N, T) is token t+1 real?
    is_last = real & ~after  # (N, T) one True per non-empty row
    out = torch.where(is_last, s.unsqueeze(1), 0.0)  # (N, T)
    if use_kl:
        kl_real = torch.where(real, kl.detach().to(dtype), 0.0)  # (N, T) garbage off the mask -> 0
        if not torch.isfinite(kl_real).all():
            raise ValueError("kl contains NaN or inf on real tokens; compute it with kl_penalty (k3 is clamped)")
        out = out - kl_coef * kl_real  # (N, T)
    return out


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised Advantage Estimation per token: rewards, values, mask (N, T) -> (advantages, returns) (N, T).

    values[:, t] is the critic's V(s_t) for the state in which token t is sampled (the position whose logits give
    logp[:, t]). The episode ends at each row's last real token: V after it is 0, so a completion cut at the
    length cap is treated as ended too (not bootstrapped). returns = advantages + values are the critic's targets.
    Both outputs are 0 off the mask and constants (detached); rewards and values off the mask are ignored, NaN
    included. A row with no real tokens gives zeros.

    >>> adv, ret = gae(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]), torch.ones(1, 2), 1.0, 1.0)
    >>> adv, ret   # lam = gamma = 1: reward-to-go 1 minus V 0.5; returns are the reward-to-go
    (tensor([[0.5000, 0.5000]]), tensor([[1., 1.]]))
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (N, T) per-token rewards (see token_rewards), got {tuple(rewards.shape)}")
    if values.shape != rewards.shape or mask.shape != rewards.shape:
        raise ValueError(f"rewards, values and mask must all be (N, T); got {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)}, {tuple(mask.shape)}")
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma (discount) must be in [0, 1], got {gamma}; PPO for LLMs usually uses 1.0")
    if not 0 <= lam <= 1:
        raise ValueError(f"lam (GAE lambda) must be in [0, 1], got {lam}; 1 = Monte Carlo, 0 = one-step TD")
    real = _real_tokens(mask)  # (N, T) bool
    dtype = torch.result_type(rewards, values)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    r = torch.where(real, rewards.detach().to(dtype), 0.0)  # (N, T) garbage off the mask -> 0
    v = torch.where(real, values.detach().to(dtype), 0.0)  # (N, T) so V after the last real token is 0
    if not (torch.isfinite(r).all() and torch.isfinite(v).all()):
        raise ValueError("rewards or values contain NaN or inf on real tokens; check the critic and the scores")
    m = real.to(dtype)  # (N, T)
    N, T = r.shape
    advantages = torch.zeros_like(r)  # (N, T)
    next_value = r.new_zeros(N)  # (N,) V after the end: 0
    next_adv = r.new_zeros(N)  # (N,)
    for t in reversed(range(T)):
        delta = r[:, t] + gamma * next_value - v[:, t]  # (N,)
        next_adv = (delta + gamma * lam * next_adv) * m[:, t]  # (N,) 0 off the mask
        advantages[:, t] = next_adv
        next_value = v[:, t]  # (N,) 0 off the mask, so the last real token bootstraps from 0
    return advantages, advantages + v  # (N, T), (N, T)


def masked_whiten(x: Tensor, mask: Tensor, eps: float = 1e-8, shift_mean: bool = True) -> Tensor:
    """Whiten x (N, T) over the entries where mask (N, T) is nonzero: (x - mean) / (std + eps); 0 off the mask.

    mean and std are over the masked entries only; std is the unbiased one (ddof=1), like grpo above and TRL's
    and verl's masked_whiten. shift_mean=False adds the mean back (spread normalised, mean kept), as theirs
    does. Fewer than 2 masked entries: no std, x is returned unscaled on the mask (0 off it). All masked entries
    equal: exact 0 (x itself with shift_mean=False), not rounding noise / eps. Differentiable in x; whatever x
    holds off the mask is ignored, NaN included.

    >>> masked_whiten(torch.tensor([[1.0, 3.0, 99.0]]), torch.tensor([[1, 1, 0]]), eps=0.0)   # mean 2, std sqrt 2
    tensor([[-0.7071,  0.7071,  0.0000]])
    """
    if x.shape != mask.shape or x.dim() != 2:
        raise ValueError(f"x and mask must both be (N, T); got {tuple(x.shape)} and {tuple(mask.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    real = mask != 0  # (N, T)
    xs = torch.where(real, x, 0.0)  # (N, T) garbage off the mask -> 0
    if not torch.isfinite(xs).all():
        raise ValueError("x contains NaN or inf on masked entries")
    n = int(real.sum())
    if n < 2:
        return xs  # (N, T) no std from fewer than 2 entries
    if (x[real] == x[real][0]).all():
        return xs if not shift_mean else torch.zeros_like(xs)  # (N, T) no spread: exact, not noise / eps
    mean = xs.sum() / n  # ()
    centred = torch.where(real, xs - mean, 0.0)  # (N, T)
    std = ((centred**2).sum() / (n - 1)).sqrt()  # () ddof=1
    out = centred / (std + eps)  # (N, T)
    if not shift_mean:
        out = out + mean  # (N, T)
    return torch.where(real, out, 0.0)  # (N, T)


def _real_tokens(mask: Tensor) -> Tensor:
    """mask (N, T) -> bool (N, T), checking that the real tokens are a prefix of each row (1..1 0..0)."""
    real = mask != 0  # (N, T)
    gaps = real[:, 1:] & ~real[:, :-1]  # (N, T-1) a real token right after padding
    if gaps.any():
        row = int(gaps.any(dim=1).nonzero()[0])
        raise ValueError(
            f"mask row {row} has a real token after padding; real tokens must be a prefix of each row (1..1 0..0): "
            "pass the completion mask (right-padded), not the prompt+completion or a left-padded one"
        )
    return real


def _check_rewards(rewards: Tensor) -> None:
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be 2-D (B prompts, G completions), got shape {tuple(rewards.shape)}")
    if rewards.numel() == 0:
        raise ValueError(f"rewards is empty, shape {tuple(rewards.shape)}")
    if rewards.is_floating_point() and not torch.isfinite(rewards).all():
        raise ValueError("rewards contain NaN or inf; check the grader outputs")
