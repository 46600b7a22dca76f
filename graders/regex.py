"""The `regex` grader: 1.0 when the completion matches a regular expression, else 0.0.

The pattern is compiled when the config loads (a bad pattern fails there, naming the field). A pattern that
backtracks catastrophically on some completion is stopped by the pool's timeout like any slow grader.

    >>> from graders import Sample
    >>> regex_grader(Sample("Step 1: ... Step 2: ..."), Params(pattern=r"Step \\d+:.*Step \\d+:")).score
    1.0

Not covered: judging correctness (`correct` is None); use `exact` or `math` for answers.
"""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from graders.base import Grade, Sample, input_error
from graders.function import grader


class Params(BaseModel):
    """Options of the `regex` grader."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: str = Field(..., description="Python regular expression searched for in the completion.")
    full_match: bool = Field(False, description="Require the whole completion to match, not just a part.")
    ignore_case: bool = Field(False, description="Match case-insensitively.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern


@grader("regex", params=Params, description="1 if the completion matches `pattern` (search or full match)",
        needs_reference=False)
def regex_grader(sample: Sample, params: Params) -> Grade:
    """Grade one sample."""
    if error := input_error(sample):
        return Grade(0.0, error=error)
    compiled = re.compile(params.pattern, re.IGNORECASE if params.ignore_case else 0)
    match = (compiled.fullmatch if params.full_match else compiled.search)(sample.completion)
    return Grade(float(match is not None))
