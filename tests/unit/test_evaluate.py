"""pass@k (Chen et al. 2021, unbiased estimator) against hand-computed values; what graders get in evaluation."""
import pytest

from graders import Grade, Sample, grader  # torch-free: grading workers import this module for its grader


@pytest.mark.parametrize("n, c, k, expected", [
    (10, 0, 1, 0.0),
    (10, 3, 1, 0.3),                   # 1 - C(7,1)/C(10,1) = 1 - 7/10
    (10, 3, 2, 1 - 21 / 45),           # C(7,2) = 21, C(10,2) = 45
    (5, 1, 5, 1.0),                    # n - c < k: some draw must be the correct one
    (4, 2, 2, 1 - 1 / 6),              # C(2,2) = 1, C(4,2) = 6
])
def test_pass_at_k(n, c, k, expected):
    from engine.evaluate import pass_at_k
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_warmup_cosine_by_steps_and_by_time_budget():
    from engine.distributed import warmup_cosine
    assert warmup_cosine(0, 2, 10, 0.1) == 0.5                       # warm-up: (0 + 1) / 2
    assert warmup_cosine(2, 2, 10, 0.1) == pytest.approx(1.0)        # cosine starts at 1
    assert warmup_cosine(6, 2, 10, 0.1) == pytest.approx(0.55)       # halfway: 0.1 + 0.9 * 0.5
    assert warmup_cosine(10, 2, 10, 0.1) == pytest.approx(0.1)       # floor
    # a time budget half spent at step 3 of 100: progress is 0.5, not 0.01
    assert warmup_cosine(3, 2, 100, 0.1, time_fraction=0.5) == pytest.approx(0.55)
    assert warmup_cosine(3, 2, 100, 0.1, time_fraction=2.0) == pytest.approx(0.1)


# --------------------------------------------------------------------------------------------- maj@k


def test_majority_vote_hand_computed():
    from engine.evaluate import majority_vote
    assert majority_vote([3, 3, 4, None], [1, 1, 0, 0]) == 1.0      # 3 wins 2 votes to 1; None abstains
    assert majority_vote([3, 4, 4], [1, 0, 0]) == 0.0               # the wrong 4 wins
    assert majority_vote([3, 4], [1, 0]) == 0.5                     # a tie: the tied answers' mean
    assert majority_vote([3, 4, 5, 5, 6, 6], [0, 0, 1, 1, 0, 0]) == 0.5  # 5 and 6 tie at 2 votes
    assert majority_vote([None, None], [1, 1]) == 0.0               # nobody answered
    assert majority_vote(["a", "a", "b"], [1, 0, 1]) == 0.5         # the winner's samples disagree: their mean


def test_maj_at_k_averages_disjoint_blocks():
    from engine.evaluate import maj_at_k
    keys, correct = [3, 3, 4, 5], [1, 1, 0, 0]
    assert maj_at_k(keys, correct, 2) == 0.5        # blocks (3, 3) -> 1, (4, 5) -> tie of two wrong -> 0
    assert maj_at_k(keys, correct, 3) == 1.0        # one block (3, 3, 4); the 4th sample is left out
    assert maj_at_k(keys, correct, 4) == 1.0        # 3 has 2 votes of 4
    assert maj_at_k(keys, correct, 1) == 0.5        # each sample alone: its own correctness
    with pytest.raises(ValueError, match="maj@5 needs at least 5 samples"):
        maj_at_k(keys, correct, 5)


def test_vote_keys_group_equal_numbers_written_differently():
    from fractions import Fraction

    from engine.evaluate import vote_key
    assert vote_key("The answer is 0.5.", "math") == vote_key("so \\boxed{\\frac{1}{2}}", "math") == Fraction(1, 2)
    assert vote_key("\\boxed{x + 1}", "math") == vote_key("\\boxed{x+1}", "math") == "x+1"
    assert vote_key("She has 12 apples", "math") == 12            # no stated answer: the last number
    assert vote_key("no digits here", "math") is None
    assert vote_key("3 + 4 = 7", "number") == 7 and vote_key("none", "number") is None


# --------------------------------------------------------------------------------------------- grader inputs


@grader("test_evaluate_echo", description="correct when the completion repeats the prompt's last message")
def echo(sample: Sample, params) -> Grade:
    prompt = sample.prompt  # chat messages stay messages: a flattened prompt would join system and user
    return Grade(1.0, correct=sample.completion == (prompt if isinstance(prompt, str) else prompt[-1]["content"]))


class EchoSampler:
    """A sampler stand-in: prompt ids [i] get the completion texts[i], n times."""

    def __init__(self, texts: list[str]):
        self.texts = texts

    def generate(self, prompts, n, max_new_tokens, temperature=1.0, top_p=1.0, greedy=False):
        from engine.rollout import Rollout

        texts = [self.texts[ids[0]] for ids in prompts for _ in range(n)]
        return Rollout([], [], [], texts, ["stop"] * len(texts))


def test_evaluation_grades_with_the_prompt_as_given():
    from engine.evaluate import evaluate
    from graders.rewards import RewardScorer, RewardTerm
    from tasks.base import Example

    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]
    examples = [Example("echo/eval/0", "echo", chat, {}), Example("echo/eval/1", "echo", "Say bye.", {})]
    assert examples[0].sample("Say hi.") == Sample("Say hi.", {}, chat)
    sampler = EchoSampler(["Say hi.", "Say bye."])
    with RewardScorer(workers=1, timeout_s=10) as scorer:  # the messages travel to a grading worker as they are
        got = evaluate(sampler, lambda ex: [examples.index(ex)], {"echo": examples},
                       {"echo": [RewardTerm(grader="test_evaluate_echo")]}, scorer, 8, 2, 1.0)
    assert got["eval/echo/accuracy"] == got["eval/echo/pass@2"] == got["eval/accuracy"] == 1.0
