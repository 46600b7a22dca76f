"""Advantages for RL from verifiable rewards: one scalar per completion, from scalar rewards.

The rollout samples G completions for each of B prompts, and a grader scores each one, giving rewards (B, G).
These functions turn that table into advantages (B, G) that the policy loss (engine/losses.py) broadcasts over
every token of a completion. They are pure functions of tensors and floats: no I/O, no config, no devices.

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

What is not covered: per-token (process) rewards, value-function baselines and GAE (this engine is critic-free),
discounting across turns, and REINFORCE++'s KL-in-reward shaping (the KL term lives in engine/losses.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

ESTIMATORS = ("grpo", "dr_grpo", "rloo", "reinforce_pp")


def zero_variance_groups(rewards: Tensor) -> Tensor:
    """Which groups have all-equal rewards (zero variance, no learning signal): (B, G) -> bool (B,).

    >>> zero_variance_groups(torch.tensor([[1.0, 1.0], [1.0, 0.0]]))
    tensor([ True, False])
    """
    _check_rewards(rewards)
    return (rewards == rewards[:, :1]).all(dim=1)  # (B,)


def group_advantages(rewards: Tensor, estimator: str, eps: float = 1e-6) -> Tensor:
    """Advantages (B, G) from rewards (B, G) of B prompts x G completions; see the module docstring.

    `eps` guards the std division of grpo and reinforce_pp; the other estimators ignore it.

    >>> group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), "dr_grpo")
    tensor([[ 0.5000, -0.5000, -0.5000,  0.5000]])
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    _check_rewards(rewards)
    B, G = rewards.shape
    if not rewards.is_floating_point():
        rewards = rewards.to(torch.get_default_dtype())  # (B, G)

    if estimator == "reinforce_pp":
        if B * G < 2:
            raise ValueError(f"reinforce_pp needs at least 2 rewards in the batch for a std, got shape {(B, G)}")
        if (rewards == rewards.flatten()[0]).all():
            return torch.zeros_like(rewards)  # (B, G) all equal: exact zeros, not rounding noise / eps
        centred = rewards - rewards.mean()  # (B, G)
        return centred / (rewards.std(correction=1) + eps)  # (B, G)

    if G < 2:
        raise ValueError(
            f"{estimator} needs G >= 2 completions per prompt for a group baseline, got rewards of shape {(B, G)}; "
            "sample more completions per prompt or use reinforce_pp (a batch-wide baseline)"
        )
    mean = rewards.mean(dim=1, keepdim=True)  # (B, 1)
    if estimator == "dr_grpo":
        centred = rewards - mean  # (B, G)
    elif estimator == "rloo":
        centred = (rewards - mean) * (G / (G - 1))  # (B, G)  r_i - (G*mean - r_i)/(G-1)
    else:  # grpo
        std = rewards.std(dim=1, keepdim=True, correction=1)  # (B, 1)
        centred = (rewards - mean) / (std + eps)  # (B, G)
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


def _check_rewards(rewards: Tensor) -> None:
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be 2-D (B prompts, G completions), got shape {tuple(rewards.shape)}")
    if rewards.numel() == 0:
        raise ValueError(f"rewards is empty, shape {tuple(rewards.shape)}")
    if rewards.is_floating_point() and not torch.isfinite(rewards).all():
        raise ValueError("rewards contain NaN or inf; check the grader outputs")
