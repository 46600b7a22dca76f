"""The grader contract: what a grader is given and what it returns.

A grader scores a batch of completions against the reference fields of their examples. It is pure (no torch,
no global state) and never raises on model output: bad output is `Grade(score=0.0, error="...")`.

    from graders import Sample, Grade
    Sample(completion="The answer is 42.", reference={"answer": "42"}, prompt="What is 6 * 7?")
    Grade(score=1.0, correct=True)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from pydantic import BaseModel

Prompt = str | list[dict[str, str]]  # a user message, or chat messages [{"role": ..., "content": ...}]


@dataclass(frozen=True)
class Sample:
    """One completion to grade. `reference` holds the example's reference fields (`answer`, `tests`, ...).
    `prompt` is the example's prompt as the policy got it: text, or chat messages (the reward_model grader renders
    them with its chat template). Training and evaluation build samples with `tasks.base.Example.sample`."""

    completion: str
    reference: Mapping[str, Any] = field(default_factory=dict)
    prompt: Prompt = ""


@dataclass
class Grade:
    """A grader's verdict on one sample.

    score: the reward term's value (usually in [0, 1]).
    correct: whether the answer is right, or None where the grader does not judge correctness (format, length).
    metrics: named sub-scores, logged per term.
    error: why the sample could not be graded normally (`timeout`, `no_answer`, `missing_reference:answer`...).
    mask: leave the sample out of the policy loss (its score is still reported): e.g. a reward-model ensemble
    that disagrees too much about it.
    """

    score: float
    correct: bool | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    mask: bool = False


class Grader(Protocol):
    """A named, batched grader. `Params` is a pydantic model with extra="forbid" (validated at config load)."""

    name: str
    description: str
    Params: type[BaseModel]

    def grade(self, samples: Sequence[Sample], params: BaseModel) -> list[Grade]: ...


def input_error(sample: Sample, field: str | None = None) -> str | None:
    """Why a sample cannot be graded at all: a completion that is not a string, or (when `field` is given) a
    reference without that field. None when it can be graded."""
    if not isinstance(sample.completion, str):
        return f"completion_not_string:{type(sample.completion).__name__}"
    if field is not None and (not isinstance(sample.reference, Mapping) or sample.reference.get(field) is None):
        return f"missing_reference:{field}"
    return None
