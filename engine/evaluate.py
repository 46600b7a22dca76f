"""Held-out evaluation: greedy accuracy per task, unbiased pass@k / avg@k, and maj@k (the metric math).

pass@k uses the unbiased estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k) over n >= k samples with c
correct (during training n = k, so it reduces to "any of the k is correct"); avg@k is the mean correctness of the
k samples. An example counts as correct when the task's reward reports `correct=True` (graders that do not judge
correctness count as wrong). During training, examples are split across ranks; each rank gets the same number of
prompts (padded with repeats that are not counted), so collective generation under ZeRO-3 stays in step.

maj@k (Minerva's majority voting) for sets graded by `math` or `number`: the k samples vote with the answer each
one states (`vote_key`: the value the number grader reads; for math, the final-answer span, as an exact number
when it is one, so 0.5 and \\frac{1}{2} vote together). The most common answer wins and is right when the samples
that gave it were graded right; a tie counts the tied answers' mean (a random tie-break, in expectation); samples
without an answer, or whose grade has an error (hedging, no_answer, timeouts), abstain. With n samples, maj@k is
the mean over the n // k disjoint blocks of k (unbiased for one k-sample vote; it does not average over all
C(n, k) subsets). The key is an approximation of what the grader read: equal answers written differently as
expressions (`\\sqrt{2}/2`, `\\frac{\\sqrt2}{2}`) vote apart; only the graders' verdicts decide correctness.
"""
from __future__ import annotations

from math import comb
from typing import Callable, Hashable, Sequence

from engine import distributed as D
from engine.rollout import Sampler
from graders import extract
from graders.number import read_number
from graders.rewards import RewardScorer, RewardTerm
from tasks.base import Example


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k draws (without replacement) from n samples, c correct, is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_vote(keys: Sequence[Hashable | None], correct: Sequence[float]) -> float:
    """Correctness of the most common answer among `keys` (None abstains): the mean correctness of the samples
    that gave it; tied answers count their mean. 0 when every sample abstains."""
    votes: dict[Hashable, list[float]] = {}
    for key, ok in zip(keys, correct):
        if key is not None:
            votes.setdefault(key, []).append(float(ok))
    if not votes:
        return 0.0
    top = max(len(v) for v in votes.values())
    winners = [sum(v) / len(v) for v in votes.values() if len(v) == top]
    return sum(winners) / len(winners)


def maj_at_k(keys: Sequence[Hashable | None], correct: Sequence[float], k: int) -> float:
    """maj@k of one example from its n samples: the mean majority vote over the n // k disjoint blocks of k."""
    blocks = len(keys) // k
    if blocks < 1:
        raise ValueError(f"maj@{k} needs at least {k} samples, got {len(keys)}")
    return sum(majority_vote(keys[b * k:(b + 1) * k], correct[b * k:(b + 1) * k]) for b in range(blocks)) / blocks


VOTING_GRADERS = ("math", "number")


def vote_key(text: str, grader: str) -> Hashable | None:
    """The answer a completion votes for (see the module docstring); None when it states none."""
    if grader == "number":
        return read_number(text)
    span = extract.final_answer(text)
    if span is None:
        return extract.last_number(text, exact=True)
    written = extract.parse_written(span)
    return written.value if written else ("".join(extract.strip_decoration(span).split()) or None)


def evaluate(sampler: Sampler, encode: Callable[[Example], list[int]], examples: dict[str, Sequence[Example]],
             terms: dict[str, Sequence[RewardTerm]], scorer: RewardScorer, max_new_tokens: int, k: int,
             temperature: float) -> dict[str, float]:
    """Metrics `eval/<task>/accuracy`, `eval/accuracy` (all tasks pooled) and, for k > 1, pass@k and avg@k."""
    totals: dict[str, list[float]] = {}
    for task, task_examples in examples.items():
        mine, counted = rank_share(list(task_examples))
        prompts = [encode(ex) for ex in mine]
        greedy = correctness(sampler.generate(prompts, 1, max_new_tokens, greedy=True), mine, 1, terms[task],
                             scorer)
        sums = [sum(g[0] for g, keep in zip(greedy, counted) if keep), float(sum(counted))]
        if k > 1:
            sampled = correctness(sampler.generate(prompts, k, max_new_tokens, temperature=temperature), mine, k,
                                  terms[task], scorer)
            sums += [sum(pass_at_k(k, int(sum(c)), k) for c, keep in zip(sampled, counted) if keep),
                     sum(sum(c) / k for c, keep in zip(sampled, counted) if keep)]
        totals[task] = D.all_reduce(sums)
    out: dict[str, float] = {}
    for task, sums in totals.items():
        out[f"eval/{task}/accuracy"] = sums[0] / sums[1]
        if k > 1:
            out[f"eval/{task}/pass@{k}"], out[f"eval/{task}/avg@{k}"] = sums[2] / sums[1], sums[3] / sums[1]
    n = sum(s[1] for s in totals.values())
    out["eval/accuracy"] = sum(s[0] for s in totals.values()) / n
    if k > 1:
        out[f"eval/pass@{k}"] = sum(s[2] for s in totals.values()) / n
        out[f"eval/avg@{k}"] = sum(s[3] for s in totals.values()) / n
    return out


def rank_share(items: list) -> tuple[list, list[bool]]:
    """This rank's slice of `items`, padded to ceil(len / world) with repeats; flags say which ones count."""
    world, rank = D.world_size(), D.rank()
    per_rank = -(-len(items) // world)
    mine = items[rank::world]
    counted = [True] * len(mine)
    while len(mine) < per_rank:
        mine.append(items[0])
        counted.append(False)
    return mine, counted


def correctness(rollout, examples: list[Example], n: int, terms: Sequence[RewardTerm], scorer: RewardScorer
                ) -> list[list[float]]:
    """Per example, the n completions' correctness as 0/1."""
    samples = [ex.sample(text) for text, ex in zip(rollout.texts, (e for e in examples for _ in range(n)))]
    flags = [1.0 if r.correct else 0.0 for r in scorer.score(terms, samples)]
    return [flags[i * n:(i + 1) * n] for i in range(len(examples))]
