"""The small built-in graders, reward mixing and the reward-hacking and learned-reward monitors, against
hand-computed values.

Run: pytest tests/unit/test_graders_builtins.py
"""
import doctest
import importlib

import pytest

from graders import Grade, Sample
from graders.exact import Params as ExactParams, exact_grader
from graders.format import Params as FormatParams, format_grader
from graders.length import Params as LengthParams, length_grader
from graders.monitors import learned_reward_metrics, reward_hacking_metrics
from graders.number import Params as NumberParams, number_grader
from graders.regex import Params as RegexParams, regex_grader
from graders.rewards import Reward, RewardTerm, mix


@pytest.mark.parametrize("module", ["graders.math", "graders.number", "graders.exact", "graders.regex",
                                    "graders.format", "graders.length", "graders.extract", "graders.monitors",
                                    "rlvr_plugin_example.graders"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("completion,gold,equal", [
    ("Total: 1,234 apples.\n#### 1,234", "1234", True),
    ("so the answer is 18.", "#### 18", True),
    ("\\boxed{3/4}", "0.75", True),
    ("It costs $1,000,000.", "1000000", True),
    ("The answer is -5", "5", False),
    ("She has 12 then 13 left", "12", False),
    ("<answer>7.0</answer> (was 6 before)", "7", True),
])
def test_number(completion, gold, equal):
    assert number_grader(Sample(completion, {"answer": gold})).correct is equal


def test_number_tolerance_and_errors():
    assert number_grader(Sample("3.14", {"answer": "3.1416"}), NumberParams(abs_tol=0.01)).correct
    assert not number_grader(Sample("3.14", {"answer": "3.1416"})).correct
    assert number_grader(Sample("no digits", {"answer": "3"})).error == "no_answer"
    assert number_grader(Sample("3", {"answer": "three"})).error == "unparseable_reference"
    assert number_grader(Sample("3", {})).error == "missing_reference:answer"


def test_exact():
    assert exact_grader(Sample("The answer is $B$.", {"answer": "b"})).correct
    assert not exact_grader(Sample("The answer is B", {"answer": "b"}), ExactParams(case_sensitive=True)).correct
    assert exact_grader(Sample("\\boxed{Paris}", {"answer": ["paris", "Paris, France"]})).correct
    assert not exact_grader(Sample("\\boxed{Lyon}", {"answer": "Paris"})).correct


def test_regex_and_format_and_length():
    assert regex_grader(Sample("Step 1: go"), RegexParams(pattern=r"^Step \d")).score == 1.0
    assert regex_grader(Sample("step 1"), RegexParams(pattern=r"Step", full_match=True)).score == 0.0
    both = format_grader(Sample("<think>hm</think><answer>\\boxed{1}</answer>"), FormatParams(tags=("think", "answer")))
    assert both.score == 1.0 and both.correct is None
    twice = format_grader(Sample("<think>a</think><think>b</think>\\boxed{1}"), FormatParams(partial=True))
    assert twice.score == 0.5 and twice.metrics == {"tag:think": 0.0, "boxed": 1.0}
    box_before_think = format_grader(Sample("\\boxed{1}<think>x</think>"))
    assert box_before_think.metrics["boxed"] == 0.0
    assert length_grader(Sample("a" * 1500), LengthParams(target=1000)).score == -0.5
    assert length_grader(Sample("a" * 5000), LengthParams(target=1000)).score == -1.0
    assert length_grader(Sample("a" * 10), LengthParams(target=1000)).score == 0.0


def test_mix_weighted_sum_gate_and_correct():
    terms = [RewardTerm(grader="format", gate=True, weight=0.5), RewardTerm(grader="math", weight=2.0),
             RewardTerm(grader="length", weight=0.1, params={"target": 5})]
    passed = mix(terms, [Grade(1.0), Grade(1.0, correct=True), Grade(-0.5, metrics={"length": 9.0})])
    assert passed.score == pytest.approx(0.5 + 2.0 - 0.05) and passed.correct is True
    assert passed.metrics == {"length/length": 9.0}
    failed = mix(terms, [Grade(0.0), Grade(1.0, correct=True), Grade(0.0)])
    assert failed.score == 0.0 and failed.correct is True and failed.terms["math"] == 1.0
    timed_out = mix(terms, [Grade(1.0), Grade(0.0, error="timeout"), Grade(0.0)])
    assert timed_out.correct is False and timed_out.errors == {"math": "timeout"}


def test_reward_hacking_metrics_hand_computed():
    rewards = [Reward(s, None, {}) for s in (1.0, 0.0, 1.0, 1.0)]
    rewards[1].errors["math"] = "hedging"
    metrics = reward_hacking_metrics(rewards, completion_lengths=[10, 20, 30, 40], group_size=2)
    # scores (1,0,1,1) vs lengths (10,20,30,40): sum of products of deviations 5, of squares 0.75 and 500
    assert metrics["hack/reward_length_corr"] == pytest.approx(5 / (0.75 * 500) ** 0.5)
    assert metrics["hack/hedging_rate"] == 0.25
    assert metrics["hack/zero_variance_groups"] == 0.5
    assert metrics["hack/error_rate"] == 0.25 and metrics["hack/timeout_rate"] == 0.0


def test_learned_reward_metrics_hand_computed():
    rm_and_checker = [Reward(1.2, True, {"number": 1.0, "reward_model": 0.2}),
                      Reward(0.5, False, {"number": 0.0, "reward_model": 0.5}),
                      Reward(1.8, True, {"number": 1.0, "reward_model": 0.8})]
    checker_only = [Reward(1.0, True, {"number": 1.0}), Reward(0.0, False, {"number": 0.0}),
                    Reward(0.0, False, {"number": 0.0})]
    rm_failed = [Reward(0.0, False, {"number": 0.0, "reward_model": 0.0}, errors={"reward_model": "non_finite"}),
                 Reward(1.9, True, {"number": 1.0, "reward_model": 0.9}),
                 Reward(1.1, True, {"number": 1.0, "reward_model": 0.1})]
    rewards = rm_and_checker + checker_only + rm_failed
    lengths = [10, 30, 20] + [5, 6, 7] + [99, 40, 0]
    metrics = learned_reward_metrics(rewards, lengths, group_size=3, learned={"reward_model"})
    # counted: RM scores (0.2, 0.5, 0.8, 0.9, 0.1) vs lengths (10, 30, 20, 40, 0); means 0.5 and 20;
    # deviations (-.3, 0, .3, .4, -.4) and (-10, 10, 0, 20, -20): sxy 3 + 8 + 8 = 19, sxx 0.5, syy 1000
    assert metrics["reward/rm_length_corr"] == pytest.approx(19 / (0.5 * 1000) ** 0.5)
    # pairs with different verdicts: group 1 only (group 2 has no RM term, group 3's wrong one errored):
    # (0, 1): wrong 0.5 >= right 0.2, disagree; (1, 2): wrong 0.5 < right 0.8, agree
    assert metrics["reward/rm_verifier_disagreement"] == 0.5


def test_learned_reward_metrics_ties_sums_and_omissions():
    tie = [Reward(0.0, True, {"reward_model#0": 0.3, "reward_model#1": 0.2}),
           Reward(0.0, False, {"reward_model#0": 0.1, "reward_model#1": 0.4})]
    both = {"reward_model#0", "reward_model#1"}
    assert learned_reward_metrics(tie, [1, 2], 2, both)["reward/rm_verifier_disagreement"] == 1.0  # 0.5 >= 0.5
    assert learned_reward_metrics(tie, [1, 2], 2, {"reward_model#0"})["reward/rm_verifier_disagreement"] == 0.0
    rm_only = [Reward(s, None, {"reward_model": s}) for s in (0.1, 0.2, 0.3, 0.4)]
    assert learned_reward_metrics(rm_only, [4, 3, 2, 1], 2, {"reward_model"}) == {"reward/rm_length_corr": -1.0}
    checker_only = [Reward(1.0, True, {"number": 1.0}), Reward(0.0, False, {"number": 0.0})]
    assert learned_reward_metrics(checker_only, [1, 2], 2, {"reward_model"}) == {}
    assert learned_reward_metrics(rm_only, [1, 2, 3, 4], 2, set()) == {}
