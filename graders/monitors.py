"""Reward-hacking monitors: cheap per-step statistics that move when a policy games its reward.

    metrics = reward_hacking_metrics(rewards, completion_lengths=[812, 95, ...], group_size=8)
    # {"hack/reward_length_corr": 0.41, "hack/hedging_rate": 0.0, "hack/zero_variance_groups": 0.25, ...}

- reward_length_corr: Pearson correlation of reward with completion length (rising: the policy pads);
- hedging_rate: fraction of samples a grader marked `hedging` (several answers offered to hit one);
- zero_variance_groups: fraction of groups whose rewards are all equal (they carry no GRPO signal);
- error_rate / timeout_rate: fraction of samples with any term error / a timeout of any kind (`timeout_cpu`,
  `timeout_wall`, a grader's own `timeout`): graders being fought.
Not covered: judging whether a trend is hacking; that needs a human looking at samples.
"""
from __future__ import annotations

import math
from typing import Sequence

from graders.rewards import Reward


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def reward_hacking_metrics(rewards: Sequence[Reward], completion_lengths: Sequence[int],
                           group_size: int) -> dict[str, float]:
    """Monitors for one step; `rewards` are ordered group by group (`group_size` consecutive samples each)."""
    n = len(rewards)
    if n == 0:
        return {}
    scores = [r.score for r in rewards]
    groups = [scores[i:i + group_size] for i in range(0, n, max(1, group_size))]
    return {
        "hack/reward_length_corr": _pearson(scores, [float(x) for x in completion_lengths]),
        "hack/hedging_rate": sum("hedging" in r.errors.values() for r in rewards) / n,
        "hack/zero_variance_groups": sum(max(g) - min(g) < 1e-12 for g in groups) / len(groups),
        "hack/error_rate": sum(bool(r.errors) for r in rewards) / n,
        "hack/timeout_rate": sum(any(e.startswith("timeout") for e in r.errors.values()) for r in rewards) / n,
    }
