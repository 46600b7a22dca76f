"""The `number` grader: a lenient final-number match, for small models and GSM8K-style answers.

The predicted number is the last number in the final-answer span (`<answer>` tag, `\\boxed{}`, `#### 42`,
"the answer is 42"), else the last number anywhere in the completion. Thousands separators (`1,234`),
decimals, signs and `a/b` fractions are read; a reference like `#### 1,234` works too. Equal within
`abs_tol` (default 1e-6) or `rel_tol` (default 0), compared exactly: a different integer is never forgiven
(12345678 is not 12345679, however large), and neither are integers past float precision.

    >>> from graders import Sample
    >>> number_grader(Sample("She pays 3 * 4 = 12 dollars, so the answer is $1,212.", {"answer": "1212"})).score
    1.0
    >>> number_grader(Sample("About 3.14", {"answer": "3.1416"}), Params(abs_tol=0.01)).score
    1.0

Not covered: expressions (`2\\sqrt{3}`: use `math`), numbers in words, scientific notation.
"""
from __future__ import annotations

from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

from graders import extract
from graders.base import Grade, Sample, input_error
from graders.function import grader


class Params(BaseModel):
    """Options of the `number` grader."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    answer_field: str = Field("answer", description="Reference field holding the gold number.")
    rel_tol: float = Field(0.0, ge=0, description="Relative tolerance of the comparison (0: none, so a "
                                                   "different large integer is never forgiven).")
    abs_tol: float = Field(1e-6, ge=0, description="Absolute tolerance of the comparison.")


def read_number(text: str) -> Fraction | float | None:
    """The number a text ends on, exactly: last number of its final-answer span, else its last number.
    (A float only for numbers over extract.MAX_WRITTEN_CHARS characters.)"""
    span = extract.final_answer(text)
    if span is not None:
        value = extract.parse_number(extract.strip_decoration(span), exact=True)
        if value is not None:
            return value
        value = extract.last_number(span, exact=True)
        if value is not None:
            return value
    return extract.last_number(text, exact=True)


def close(a: Fraction | float, b: Fraction | float, rel_tol: float, abs_tol: float) -> bool:
    """math.isclose without first rounding the values to floats."""
    gap = abs(a - b)
    return gap <= abs_tol or gap <= rel_tol * max(abs(a), abs(b))


@grader("number", params=Params, normalize=str.strip,
        description="Final number equals `answer` within a tolerance (lenient, for GSM8K-style tasks)")
def number_grader(sample: Sample, params: Params) -> Grade:
    """Grade one sample."""
    if error := input_error(sample, params.answer_field):
        return Grade(0.0, correct=False, error=error)
    gold = sample.reference[params.answer_field]
    gold_value = read_number(str(gold))
    if gold_value is None:
        return Grade(0.0, correct=False, error="unparseable_reference")
    value = read_number(sample.completion)
    if value is None:
        return Grade(0.0, correct=False, error="no_answer")
    ok = close(value, gold_value, params.rel_tol, params.abs_tol)
    return Grade(float(ok), correct=ok)
