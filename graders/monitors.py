"""Reward-hacking monitors: cheap per-step statistics that move when a policy games its reward.

    metrics = reward_hacking_metrics(rewards, completion_lengths=[812, 95, ...], group_size=8)
    # {"hack/reward_length_corr": 0.41, "hack/hedging_rate": 0.0, "hack/zero_variance_groups": 0.25, ...}

- reward_length_corr: Pearson correlation of reward with completion length (rising: the policy pads);
- hedging_rate: fraction of samples a grader marked `hedging` (several answers offered to hit one);
- zero_variance_groups: fraction of groups whose rewards are all equal (they carry no GRPO signal);
- error_rate / timeout_rate: fraction of samples with any term error / a timeout of any kind (`timeout_cpu`,
  `timeout_wall`, a grader's own `timeout`): graders being fought.

For a learned reward (a reward model), `learned_reward_metrics` adds the two standard checks on the terms that
come from it (their keys in Reward.terms are given, e.g. {"reward_model"}):

    learned_reward_metrics(rewards, completion_lengths, group_size=8, learned={"reward_model"})
    # {"reward/rm_length_corr": 0.35, "reward/rm_verifier_disagreement": 0.1}

- rm_length_corr: Pearson correlation of the learned score with completion length (rising: the RM's length bias
  is being exploited);
- rm_verifier_disagreement: on samples graded by both a reward model and a verifier, how often the RM ranks a
  wrong answer at least as high as a right one from the same group (the RM and the checker disagree).
The ensemble spread is the reward_model grader's own metric (`reward/ensemble_std`).
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


def learned_reward_metrics(rewards: Sequence[Reward], completion_lengths: Sequence[int], group_size: int,
                           learned: set[str]) -> dict[str, float]:
    """Monitors of learned reward terms for one step; `rewards` are ordered group by group (`group_size`
    consecutive samples each), `learned` holds the keys of Reward.terms that come from a learned grader.

    A sample's RM score is the sum of its learned terms; a sample counts when it has at least one learned term
    and none of them errored (an errored term's 0 is no score).
    - `reward/rm_length_corr`: Pearson correlation of the RM score with completion length over the counted
      samples (0 when either is constant or fewer than two count).
    - `reward/rm_verifier_disagreement`: over the pairs (i, j) of counted samples in the same group whose
      verifier verdicts differ (Reward.correct is True for one and False for the other), the fraction where the
      RM score of the wrong one is >= the RM score of the right one (ties count as disagreement: the RM did not
      prefer the right answer). Omitted when there is no such pair, e.g. when no task mixes an RM with a checker.
    Both are omitted when no sample has a learned term.

    >>> rewards = [Reward(1.5, True, {"number": 1.0, "reward_model": 0.5}),
    ...            Reward(0.9, False, {"number": 0.0, "reward_model": 0.9})]
    >>> learned_reward_metrics(rewards, [10, 30], group_size=2, learned={"reward_model"})
    {'reward/rm_length_corr': 1.0, 'reward/rm_verifier_disagreement': 1.0}
    """
    rm: list[float | None] = [
        sum(r.terms[k] for k in learned if k in r.terms)
        if any(k in r.terms for k in learned) and not any(k in r.errors for k in learned) else None
        for r in rewards]
    counted = [i for i, score in enumerate(rm) if score is not None]
    if not counted:
        return {}
    out = {"reward/rm_length_corr": _pearson([rm[i] for i in counted],
                                             [float(completion_lengths[i]) for i in counted])}
    size = max(1, group_size)
    pairs = disagree = 0
    for start in range(0, len(rewards), size):
        judged = [i for i in range(start, min(start + size, len(rewards)))
                  if rm[i] is not None and rewards[i].correct is not None]
        for a, i in enumerate(judged):
            for j in judged[a + 1:]:
                if rewards[i].correct == rewards[j].correct:
                    continue
                right, wrong = (i, j) if rewards[i].correct else (j, i)
                pairs += 1
                disagree += rm[wrong] >= rm[right]
    if pairs:
        out["reward/rm_verifier_disagreement"] = disagree / pairs
    return out
