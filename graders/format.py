"""The `format` grader: does the completion have the required shape (tags, a boxed answer)?

Each listed tag must appear exactly once as `<tag>...</tag>` with non-empty content, in the listed order;
with `boxed=True` a `\\boxed{...}` must come inside or after the last tag. Score 1.0 when every requirement
holds, or the fraction that holds with `partial=True`; each requirement is also reported as a metric.

    >>> from graders import Sample
    >>> format_grader(Sample("<think>2+2 is 4</think> so \\\\boxed{4}")).score
    1.0
    >>> format_grader(Sample("\\\\boxed{4}"), Params(partial=True)).metrics
    {'tag:think': 0.0, 'boxed': 1.0}

Not covered: correctness (`correct` is None), nested or attribute-carrying tags.
"""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from graders import extract
from graders.base import Grade, Sample, input_error
from graders.function import grader


class Params(BaseModel):
    """Options of the `format` grader."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tags: tuple[str, ...] = Field(("think",), description="Tags that must each appear once, in this order.")
    boxed: bool = Field(True, description="Require a \\boxed{...} answer in or after the last tag.")
    partial: bool = Field(False, description="Score the fraction of requirements met instead of all-or-nothing.")


def _checks(text: str, params: Params) -> dict[str, float]:
    checks, position = {}, 0
    for tag in params.tags:
        once = text.count(f"<{tag}>") == 1 and text.count(f"</{tag}>") == 1  # checked first: no regex blow-up
        pattern = re.compile(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", re.DOTALL)
        match = pattern.search(text, position) if once else None
        ok = match is not None and bool(match.group(1).strip())
        checks[f"tag:{tag}"] = float(ok)
        position = match.start(1) if match else position
    if params.boxed:
        checks["boxed"] = float(bool(extract.boxed(text[position:])))
    return checks


@grader("format", params=Params, description="Required tags (e.g. <think>) and a \\boxed{} answer are present",
        needs_reference=False)
def format_grader(sample: Sample, params: Params) -> Grade:
    """Grade one sample."""
    if error := input_error(sample):
        return Grade(0.0, error=error)
    checks = _checks(sample.completion, params)
    met = sum(checks.values())
    score = met / len(checks) if params.partial and checks else float(met == len(checks))
    return Grade(score, metrics=checks)
