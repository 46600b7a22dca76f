"""The `math` grader on equal / not-equal pairs, one table per failure class, plus its bad-input errors.

Run: pytest tests/unit/test_graders_math.py   (in-process, no pool: every case here is fast)
"""
import pytest

from graders import Sample
from graders.math import Params, math_grader

# (gold, completion, equal)
CASES = {
    "fractions": [
        ("\\frac{1}{2}", "The answer is $\\boxed{0.5}$", True),
        ("\\frac{1}{2}", "so we get \\boxed{\\dfrac{2}{4}}", True),
        ("1/2", "The final answer is $\\frac12$.", True),
        ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}", False),
        ("\\frac{3}{4}", "\\boxed{0.7}", False),
    ],
    "sqrt": [
        ("\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{1}{\\sqrt{2}}}", True),
        ("2\\sqrt{3}", "\\boxed{\\sqrt{12}}", True),
        ("\\sqrt{2}", "\\boxed{1.41421356}", True),
        ("\\sqrt{2}", "\\boxed{\\sqrt{3}}", False),
        ("2\\sqrt{3}", "\\boxed{3\\sqrt{2}}", False),
    ],
    "intervals": [
        ("[1,2)", "\\boxed{[1,2)}", True),
        ("(-\\infty, 3]", "\\boxed{(-\\infty,3]}", True),
        ("[1,2)", "\\boxed{(1,2]}", False),
        ("(0,1)", "\\boxed{[0,1]}", False),
    ],
    "sets_vs_tuples": [
        ("\\{1,2\\}", "\\boxed{\\{2,1\\}}", True),
        ("(1,2)", "\\boxed{(1,2)}", True),
        ("\\{1,2\\}", "\\boxed{(1,2)}", False),  # math-verify alone says equal (reads (1,2) as an interval)
        ("(1,2)", "\\boxed{\\{1,2\\}}", False),
        ("\\{1,2\\}", "\\boxed{\\{1,3\\}}", False),
    ],
    "matrices": [
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\boxed{\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}}", True),
        ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\boxed{\\begin{bmatrix}1\\\\2\\end{bmatrix}}", True),
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\boxed{\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}}", False),
    ],
    "units": [
        ("5", "\\boxed{5 \\text{ cm}}", True),
        ("12", "The answer is $12\\,\\mathrm{m}$", True),
        ("5", "\\boxed{6 \\text{ cm}}", False),
    ],
    "percent": [
        ("50\\%", "The answer is $50\\%$", True),
        ("50\\%", "\\boxed{50}", True),
        ("0.5", "\\boxed{50\\%}", True),
        ("50\\%", "\\boxed{40\\%}", False),
    ],
    "thousands_separators": [
        ("1234", "\\boxed{1,234}", True),
        ("1234567", "The answer is 1,234,567.", True),
        ("1,234", "\\boxed{1234}", True),
        ("1234", "\\boxed{1,243}", False),
    ],
    "equations": [
        ("x=2", "\\boxed{2}", True),
        ("2", "\\boxed{x=2}", True),
        ("y=2x+1", "\\boxed{y = 1 + 2x}", True),
        ("y=2x+1", "\\boxed{y = 2x - 1}", False),
        ("x=2", "\\boxed{x=3}", False),
    ],
    "hedging": [
        ("4", "\\boxed{4} and \\boxed{4} again", True),
        ("4", "It is \\boxed{3} or maybe \\boxed{4}", False),
        ("4", "<answer>3</answer> <answer>4</answer>", False),
        ("2", "\\boxed{2, 3}", False),
        ("2", "\\boxed{2 \\text{ or } 3}", False),
    ],
    "extraction": [
        ("3", "<answer>3</answer>", True),  # math-verify alone finds no answer in tags
        ("3", "Adding them up gives 3.\n#### 3", True),
        ("7", "I think the final answer is 7.", True),
        ("3", "The answer is 4.", False),
        ("1234", "Weng earns 12 per hour.\nSo Weng has 1,234 dollars in total.", True),  # plain closing line
        ("1000", "1 000", True),
        ("2", "AZYUK2A", False),
    ],
}
TABLE = [(cls, *case) for cls, cases in CASES.items() for case in cases]


@pytest.mark.parametrize("failure_class,gold,completion,equal", TABLE,
                         ids=[f"{c}-{i}" for c, cases in CASES.items() for i in range(len(cases))])
def test_math_pairs(failure_class, gold, completion, equal):
    grade = math_grader(Sample(completion, {"answer": gold}))
    assert grade.correct is equal, (failure_class, gold, completion, grade)
    assert grade.score == float(equal)


def test_hedging_is_reported_as_such():
    grade = math_grader(Sample("\\boxed{3} or \\boxed{4}", {"answer": "4"}))
    assert grade.error == "hedging"
    assert math_grader(Sample("\\boxed{3} or \\boxed{4}", {"answer": "4"}), Params(hedging=False)).correct


def test_options_change_the_verdict():
    assert math_grader(Sample("\\boxed{(1,2)}", {"answer": "\\{1,2\\}"}), Params(strict=False)).correct
    assert not math_grader(Sample("\\boxed{50}", {"answer": "50\\%"}), Params(percent="value")).correct
    assert math_grader(Sample("\\boxed{0.5}", {"answer": "50\\%"}), Params(percent="value")).correct
    assert not math_grader(Sample("\\boxed{3.14}", {"answer": "3.1416"})).correct
    assert math_grader(Sample("\\boxed{3.14}", {"answer": "3.1416"}), Params(precision=1)).correct


@pytest.mark.parametrize("completion,reference,error", [
    ("", {"answer": "1"}, "empty_completion"),
    ("   \n", {"answer": "1"}, "empty_completion"),
    (None, {"answer": "1"}, "completion_not_string:NoneType"),
    (42, {"answer": "42"}, "completion_not_string:int"),
    ("\\boxed{1}", {}, "missing_reference:answer"),
    ("\\boxed{1}", {"answer": ""}, "missing_reference:answer"),
    ("x" * 100_001, {"answer": "1"}, "completion_too_long"),
    ("(" * 10_000 + ")" * 10_000, {"answer": "1"}, "too_deeply_nested"),
    ("I do not know.", {"answer": "1"}, "no_answer"),
    ("\\boxed{x^2}", {"answer": "\\boxed{}"}, "unparseable_reference"),
])
def test_bad_input_scores_zero_with_specific_error(completion, reference, error):
    grade = math_grader(Sample(completion, reference))
    assert (grade.score, grade.error) == (0.0, error)
