"""The `exact` grader: the final answer is exactly the reference string (after light normalisation).

For multiple choice (`B`), names, short strings. The final answer is the `<answer>` tag, the last
`\\boxed{}`, or the "answer is"/`####` line, else the whole completion; math delimiters and a trailing full
stop are dropped, and with `case_sensitive=False` case is ignored. A list reference accepts any of its items.

    >>> from graders import Sample
    >>> exact_grader(Sample("Comparing the options, the answer is (B)... no: \\\\boxed{b}", {"answer": "B"})).score
    1.0

Not covered: fuzzy matching, numeric equivalence (use `number` or `math`).
"""
from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field

from graders import extract
from graders.base import Grade, Sample, input_error
from graders.function import grader


class Params(BaseModel):
    """Options of the `exact` grader."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    answer_field: str = Field("answer", description="Reference field: a string, or a list of accepted strings.")
    case_sensitive: bool = Field(False, description="Whether `b` differs from `B`.")
    whole_completion: bool = Field(False, description="Compare the whole completion, not its final answer.")


def _norm(text: str, params: Params) -> str:
    text = " ".join(extract.strip_decoration(text).split())
    return text if params.case_sensitive else text.casefold()


@grader("exact", params=Params, normalize=str.strip,
        description="Final answer equals the reference string (case and whitespace normalised)")
def exact_grader(sample: Sample, params: Params) -> Grade:
    """Grade one sample."""
    if error := input_error(sample, params.answer_field):
        return Grade(0.0, correct=False, error=error)
    gold = sample.reference[params.answer_field]
    accepted = {_norm(str(g), params) for g in (gold if isinstance(gold, (list, tuple)) else [gold])}
    answer = sample.completion if params.whole_completion else extract.final_answer(sample.completion)
    if answer is None:
        answer = sample.completion
    ok = _norm(answer, params) in accepted
    return Grade(float(ok), correct=ok)
