"""Turn a plain per-sample function (sync or async) into a Grader, and register it by name.

    from pydantic import BaseModel, ConfigDict, Field
    import graders

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        word: str = Field("please", description="The word a polite completion contains.")

    @graders.grader("polite", params=Params, description="1 if the completion says the word")
    def polite(sample: graders.Sample, params: Params) -> float:
        return float(params.word in sample.completion)

The function takes (sample, params) and returns a float or a Grade. An `async def` function is awaited
concurrently over the batch it is given (`batch_size` samples per call; the pool's timeout covers the call).
Exceptions become `Grade(0.0, error="grader_exception: ...")`, so a buggy function never breaks a run.
The function must live at module level in an importable module: worker processes re-import it by name.
Not covered: functions defined inside other functions or in notebooks (they cannot be re-imported).
"""
from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable, Sequence

from pydantic import BaseModel, ConfigDict

from graders import registry
from graders.base import Grade, Sample


class NoParams(BaseModel):
    """A grader without parameters."""

    model_config = ConfigDict(extra="forbid")


def as_grade(value: Any) -> Grade:
    """A Grade from what a function returned (Grade, bool or number); anything else is an error grade."""
    if isinstance(value, Grade):
        return value
    if isinstance(value, bool):
        return Grade(float(value), correct=value)
    if isinstance(value, (int, float)):
        return Grade(float(value))
    return Grade(0.0, error=f"grader_returned:{type(value).__name__}")


def error_grade(exc: BaseException) -> Grade:
    return Grade(0.0, error=f"grader_exception: {type(exc).__name__}: {str(exc)[:200]}")


class FunctionGrader:
    """A Grader wrapping `fn(sample, params)`; `batch_size` is how many samples a worker gets per call."""

    def __init__(self, fn: Callable, name: str, params: type[BaseModel], description: str, batch_size: int,
                 normalize: Callable[[str], str] | None, needs_reference: bool = True):
        self.fn, self.name, self.Params, self.description = fn, name, params, description
        self.is_async = inspect.iscoroutinefunction(fn)
        self.batch_size = batch_size
        self.needs_reference = needs_reference
        if normalize is not None:
            self.normalize = normalize

    def __call__(self, sample: Sample, params: BaseModel | None = None) -> Grade:
        """Grade one sample in this process (no timeout): for examples and tests."""
        return as_grade(self.fn(sample, params if params is not None else self.Params()))

    def grade(self, samples: Sequence[Sample], params: BaseModel) -> list[Grade]:
        if self.is_async:
            return asyncio.run(self._grade_async(samples, params))
        grades = []
        for sample in samples:
            try:
                grades.append(as_grade(self.fn(sample, params)))
            except Exception as exc:
                grades.append(error_grade(exc))
        return grades

    async def _grade_async(self, samples: Sequence[Sample], params: BaseModel) -> list[Grade]:
        results = await asyncio.gather(*(self.fn(s, params) for s in samples), return_exceptions=True)
        return [error_grade(r) if isinstance(r, BaseException) else as_grade(r) for r in results]


def grader(
    name: str, params: type[BaseModel] = NoParams, description: str = "", batch_size: int | None = None,
    normalize: Callable[[str], str] | None = None, needs_reference: bool = True,
) -> Callable[[Callable], FunctionGrader]:
    """Decorator: make `fn(sample, params)` a grader called `name` and register it in this process.

    batch_size: samples per worker call; defaults to 1 for sync functions (each sample gets its own timeout)
    and 64 for async ones (awaited concurrently).
    normalize: maps a completion to its cache key; two completions with the same key must get the same grade.
    Without it, only identical completions share a cached grade.
    needs_reference: False for a grader that reads no reference field (format, length): a task graded only by
    such graders may have rows with just a prompt.
    """

    def wrap(fn: Callable) -> FunctionGrader:
        if fn.__qualname__ != fn.__name__:
            raise ValueError(f"grader {name!r}: {fn.__qualname__} must be defined at module level, where worker "
                             "processes can import it")
        size = batch_size or (64 if inspect.iscoroutinefunction(fn) else 1)
        summary = description or (fn.__doc__ or "").strip().split("\n")[0]
        wrapped = FunctionGrader(fn, name, params, summary, size, normalize, needs_reference)
        registry.register_local(name, f"{fn.__module__}:{fn.__name__}")
        return wrapped

    return wrap
