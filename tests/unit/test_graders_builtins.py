"""The small built-in graders, reward mixing and the reward-hacking monitors, against hand-computed values.

Run: pytest tests/unit/test_graders_builtins.py
"""
import doctest
import importlib

import pytest

from graders import Grade, Sample
from graders.exact import Params as ExactParams, exact_grader
from graders.format import Params as FormatParams, format_grader
from graders.length import Params as LengthParams, length_grader
from graders.monitors import reward_hacking_metrics
from graders.number import Params as NumberParams, number_grader
from graders.regex import Params as RegexParams, regex_grader
from graders.rewards import Reward, RewardTerm, mix


@pytest.mark.parametrize("module", ["graders.math", "graders.number", "graders.exact", "graders.regex",
                                    "graders.format", "graders.length", "graders.extract",
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
