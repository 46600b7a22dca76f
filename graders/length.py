"""The `length` grader: a penalty for completions longer than a target (0 within it, down to -1).

score = -min(1, max(0, length - target) / ramp): 0 up to `target`, then linearly down to -1 at
`target + ramp`. Give it a positive weight beside a correctness term to discourage rambling.

    >>> from graders import Sample
    >>> length_grader(Sample("word " * 150), Params(target=100, unit="words", ramp=100)).score
    -0.5

Not covered: token counts (graders do not load tokenizers; words or characters approximate them).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from graders.base import Grade, Sample, input_error
from graders.function import grader


class Params(BaseModel):
    """Options of the `length` grader."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    target: int = Field(..., gt=0, description="Length allowed without penalty.")
    unit: Literal["chars", "words"] = Field("chars", description="Count characters or whitespace-separated words.")
    ramp: int = Field(1000, gt=0, description="Excess length at which the penalty reaches -1.")


@grader("length", params=Params, description="Penalty in [-1, 0] for completions beyond a target length",
        needs_reference=False)
def length_grader(sample: Sample, params: Params) -> Grade:
    """Grade one sample."""
    if error := input_error(sample):
        return Grade(0.0, error=error)
    length = len(sample.completion.split()) if params.unit == "words" else len(sample.completion)
    excess = max(0, length - params.target)
    return Grade(-min(1.0, excess / params.ramp), metrics={"length": float(length)})
