"""The `math` grader on equal / not-equal pairs, one table per failure class, plus its bad-input errors.

The last five classes (named constants, written digits, currency, scientific notation, variables read as
units) each hold cases the grader got wrong before issue 11: a wrong answer rewarded, or a right one not.
Run: pytest tests/unit/test_graders_math.py   (in-process, no pool: every case here is fast)
"""
from fractions import Fraction
from math import inf

import pytest

from graders import Sample
from graders.extract import Written, parse_written
from graders.math import Params, math_grader
from graders.number import number_grader

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
    # math-verify strips a trailing \mathrm{e} / \mathrm{i} as a unit: `3-\mathrm{e}` was read as 3
    "named_constants": [
        ("2+\\pi", "\\boxed{2-\\pi}", False),
        ("e^{2}-1", "\\boxed{e^{2}+1}", False),
        ("\\mathrm{e}-3", "\\boxed{3-\\mathrm{e}}", False),
        ("3-\\mathrm{e}", "\\boxed{3+\\mathrm{e}}", False),
        ("1-\\mathrm{e}", "The answer is $1+\\mathrm{e}$.", False),
        ("$1 - \\frac{1}{\\mathrm{e}}$", "$1 + \\frac{1}{\\mathrm{e}}$", False),
        ("1-\\frac{1}{\\mathrm{e}}", "\\boxed{1+\\frac{1}{\\mathrm{e}}}", False),
        ("\\mathrm{e}^{2}-1", "\\boxed{1-\\mathrm{e}^{2}}", False),
        ("2", "\\boxed{2\\mathrm{e}}", False),
        ("\\pi-\\mathrm{e}", "\\boxed{\\pi+\\mathrm{e}}", False),
        ("{\\rm e}+1", "\\boxed{{\\rm e}-1}", False),
        ("1-\\mathrm{i}", "\\boxed{1+\\mathrm{i}}", False),
        ("\\frac{\\pi}{2}-1", "\\boxed{1-\\frac{\\pi}{2}}", False),
        ("2+\\pi", "\\boxed{\\pi+2}", True),
        ("e^{2}-1", "\\boxed{-1+e^{2}}", True),
        ("\\mathrm{e}-3", "\\boxed{e-3}", True),
        ("\\mathrm{e}-3", "\\boxed{-3+\\mathrm{e}}", True),
        ("3-\\mathrm{e}", "\\boxed{-\\mathrm{e}+3}", True),
        ("1-\\frac{1}{\\mathrm{e}}", "\\boxed{\\frac{\\mathrm{e}-1}{\\mathrm{e}}}", True),
        ("\\text{e}^{2}-1", "\\boxed{(e-1)(e+1)}", True),
        ("{\\rm e}+1", "\\boxed{1+e}", True),
        ("1-3e", "\\boxed{-3e+1}", True),  # not -30: where the reference has e, e is Euler's number
    ],
    # a written number is never forgiven a wrong digit; a correct rounding of an exact value is
    "written_digits": [
        ("1234567", "\\boxed{1234567.001}", False),
        ("1234567", "The final answer is 1234567.001.", False),
        ("1234567", "So the total is 1234567.001", False),
        ("1234567", "#### 1,234,567.0001", False),
        ("12345678", "\\boxed{12345678.05}", False),
        ("123456789", "\\boxed{123456789.1}", False),
        ("1234567", "\\boxed{1234568.0}", False),
        ("1234567", "\\boxed{1234567.4}", False),
        ("0.5", "\\boxed{0.5000001}", False),
        ("\\frac{1}{3}", "\\boxed{0.3333334}", False),
        ("\\frac{1}{3}", "\\boxed{0.33}", False),
        ("\\frac{2}{3}", "\\boxed{0.666666}", False),  # truncated, not rounded
        ("\\sqrt{2}", "\\boxed{1.41421399}", False),  # math-verify rounds both to 6 places: equal
        ("1234567", "\\boxed{1234567.0}", True),
        ("1234567", "\\boxed{1,234,567.00}", True),
        ("\\frac{1}{3}", "\\boxed{0.333333}", True),
        ("\\frac{1}{3}", "\\boxed{0.3333333333}", True),
        ("\\frac{2}{3}", "\\boxed{0.666667}", True),
        ("\\sqrt{2}", "\\boxed{1.41421356}", True),
        ("e^{2}-1", "\\boxed{6.389056}", True),
        ("0.3", "\\boxed{0.30000000000000004}", True),  # past the 15th significant digit: float noise
        ("1234567", "\\boxed{1234567.0000000001}", True),
    ],
    "currency": [
        ("\\$18.90", "\\boxed{18.90}", True),
        ("\\$18.90", "18.90", True),
        ("\\$18.90", "\\boxed{18.9}", True),
        ("\\$18.90", "\\boxed{\\$18.90}", True),
        ("\\$18.90", "The answer is \\$18.90.", True),
        ("$18.90", "\\boxed{18.90}", True),
        ("18.90 dollars", "\\boxed{18.90}", True),
        ("18.90 dollars", "\\boxed{18.9}", True),
        ("$18.9", "\\boxed{\\$18.90}", True),
        ("\\$1,234.50", "\\boxed{1234.5}", True),
        ("\\$1,234.50", "#### 1,234.50", True),
        ("\\$18.90", "\\boxed{18.90 \\text{ dollars}}", True),
        ("\\$18.90", "\\boxed{18.91}", False),
        ("\\$18.90", "\\boxed{\\$18.09}", False),
        ("18.90 dollars", "\\boxed{18.91}", False),
        ("$18.9", "\\boxed{1890}", False),
        ("\\$1,234.50", "\\boxed{1234.05}", False),
    ],
    "scientific_notation": [
        ("1000", "\\boxed{1e3}", True),
        ("1500", "\\boxed{1.5\\times10^{3}}", True),
        ("1500", "\\boxed{1.5 \\cdot 10^3}", True),
        ("1500", "\\boxed{1.5 \\times 10^{3}}", True),
        ("0.0025", "\\boxed{2.5e-3}", True),
        ("1500", "\\boxed{1.5E3}", True),
        ("0.0025", "<answer>2.5\\times10^{-3}</answer>", True),
        ("602000000000000000000000", "\\boxed{6.02\\times10^{23}}", True),
        ("0.0025", "So it is $2.5e-3$", True),
        ("1500", "\\boxed{1.5\\times10^{4}}", False),
        ("1000", "\\boxed{1e4}", False),
        ("0.0025", "\\boxed{2.5e-4}", False),
        ("1500", "\\boxed{1.5E2}", False),
        ("1500", "\\boxed{1.6 \\cdot 10^3}", False),
    ],
    # math-verify strips t, h, m, s... after a number as units: `3+2t` was read as 5
    "variables_not_units": [
        ("5", "\\boxed{3+2t}", False),
        ("2\\pi", "\\boxed{2\\pi h}", False),
        ("3+2t", "\\boxed{2t+3}", True),
        ("5", "\\boxed{5 \\text{ cm}}", True),
        ("12", "The answer is $12\\,\\mathrm{m}$", True),
        ("\\sqrt{2}", "\\boxed{\\sqrt{2} \\text{ m}}", True),  # a unit in \text after an expression still goes
        ("4\\pi", "\\boxed{4\\pi \\text{ cm}^2}", True),
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


@pytest.mark.parametrize("gold,completion,precision,equal", [
    ("3.1416", "\\boxed{3.14}", 2, True),  # a rounding to 2 places is allowed at precision 2...
    ("3.1416", "\\boxed{3.14}", 3, False),  # ...not at 3
    ("3.1416", "\\boxed{3.1417}", 2, False),  # but a wrong digit that was written never is
    ("\\frac{1}{3}", "\\boxed{0.33}", 2, True),
    ("\\pi", "\\boxed{3.14}", 2, True),
    ("\\pi", "\\boxed{3.15}", 2, False),
    ("1234567", "\\boxed{1234567.4}", 0, True),  # precision 0: a rounding to a whole number is enough
    ("1234567", "\\boxed{1234567.6}", 0, False),
])
def test_precision_is_the_coarsest_rounding_allowed(gold, completion, precision, equal):
    assert math_grader(Sample(completion, {"answer": gold}), Params(precision=precision)).correct is equal


def test_currency_words_are_units():
    assert math_grader(Sample("\\boxed{18.9}", {"answer": "18.90 dollars"}), Params(units="keep")).correct is False
    assert math_grader(Sample("\\boxed{18.9}", {"answer": "\\$18.90"}), Params(units="keep")).correct is True


@pytest.mark.parametrize("text,written", [
    ("1234567", Written(Fraction(1234567), 0)),
    ("1,234,567.00", Written(Fraction(1234567), 2)),
    ("$18.9", Written(Fraction(189, 10), 1)),
    ("\\$1,234.50", Written(Fraction(2469, 2), 2)),
    ("18.90 dollars", Written(Fraction(189, 10), 2)),
    ("1.5\\times10^{3}", Written(Fraction(1500), -2)),
    ("1.5 \\cdot 10^3", Written(Fraction(1500), -2)),
    ("2.5e-3", Written(Fraction(1, 400), 4)),
    ("1E3", Written(Fraction(1000), -3)),
    ("-\\frac{1}{3}", Written(Fraction(-1, 3), inf)),
    ("0.30000000000000004", Written(Fraction(3, 10), 15)),
    ("1/0", None), ("50\\%", None), ("2e", None), ("x+1", None), ("1e999", None), ("9" * 1001, None),
])
def test_parse_written(text, written):
    assert parse_written(text) == written


@pytest.mark.parametrize("completion,gold,equal", [
    ("1234568", "1234567", False),  # rel_tol 1e-6 forgave this before
    ("12345678901234568", "12345678901234567", False),  # equal as floats
    ("The answer is 1234567.4", "1234567", False),
    ("1000.0005", "1000", False),
    ("1234567", "1,234,567", True),
    ("0.3333333", "0.33333333", True),  # abs_tol 1e-6 still forgives a rounding
])
def test_number_grader_never_forgives_a_different_integer(completion, gold, equal):
    assert number_grader(Sample(completion, {"answer": gold})).correct is equal


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
