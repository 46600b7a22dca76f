"""Math presets: `gsm8k`, and `math` for MATH, MATH-500 and DeepScaleR/Big-Math-style `problem`/`answer` sets.

- gsm8k: prompt `question`; answer: what follows the last `####` of `answer`, thousands separators removed
  (`#### 1,000` -> `1000`).
- math: prompt `problem`; answer: the row's `answer` when it has a non-empty one (MATH-500, DeepScaleR,
  Big-Math), else the last `\\boxed{...}` of `solution` (MATH).

    >>> map_gsm8k({"question": "2 + 2?", "answer": "2 + 2 = 4\\n#### 4"}, None).reference
    {'answer': '4'}
    >>> map_math({"problem": "x?", "solution": "So $x = \\\\boxed{\\\\frac{1}{2}}$."}, None).reference
    {'answer': '\\\\frac{1}{2}'}

Rows without an answer to take (no `####`, no boxed answer) are skipped and counted like any bad row. MATH's
`level`, `type`/`subject` and the row's id go into the example's meta. The default prompt asks for a boxed final
answer, which the `math` grader reads (so does `number`). MATH's original layout, one JSON file per problem under
train/<subject>/, loads as a glob (`path: MATH/train/*/*.json`).
Not covered: answers in words; multiple-choice sets (use `dataset` with the `exact` grader).
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from graders.extract import boxed
from tasks.dataset import BadRow, Mapped, RowFormat, SourceParams, dataset_spec, require, wrong_type

BOXED_TEMPLATE = "{prompt}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
BARE_BOX = re.compile(r"\\boxed ([^\s$]+)")  # MATH writes a few answers as `\boxed 5`
META = ("id", "unique_id", "level", "type", "subject")


class MathParams(SourceParams):
    """A math data set: where it is, how to split it, the prompt."""

    prompt_template: str | None = Field(
        BOXED_TEMPLATE, description="Rewrites each problem; {prompt} is the problem (literal braces: {{ }}); "
        "the default asks for a \\boxed{} final answer.")


def text_column(row: dict[str, Any], column: str) -> str:
    value = require(row, column)
    if not isinstance(value, str):
        raise wrong_type(column, value, "a string")
    return value


def map_gsm8k(row: dict[str, Any], params: Any) -> Mapped:
    question, solution = text_column(row, "question"), text_column(row, "answer")
    if "####" not in solution:
        raise BadRow("field 'answer' has no '#### <final answer>' line")
    final = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not final:
        raise BadRow("field 'answer' has nothing after '####'")
    return Mapped(question, {"answer": final}, prompt_field="question")


def final_boxed(solution: str) -> str | None:
    """The last boxed answer of a worked solution (braces matched), or MATH's rare `\\boxed 5`."""
    boxes = [box.strip() for box in boxed(solution)]
    if boxes and boxes[-1]:
        return boxes[-1]
    bare = BARE_BOX.findall(solution)
    return bare[-1] if bare else None


def map_math(row: dict[str, Any], params: Any) -> Mapped:
    problem = text_column(row, "problem")
    answer = row.get("answer")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if not (isinstance(answer, str) and answer.strip()):
        solution = row.get("solution")
        if not isinstance(solution, str):
            raise BadRow("no 'answer' field, and no 'solution' field to take the boxed answer from")
        answer = final_boxed(solution)
        if answer is None:
            raise BadRow("no 'answer' field, and field 'solution' has no \\boxed{} answer")
    meta = {key: row[key] for key in META if isinstance(row.get(key), (str, int))}
    return Mapped(problem, {"answer": answer.strip()}, meta, prompt_field="problem")


GSM8K = dataset_spec(
    "gsm8k", "GSM8K (question, answer with '#### 42'): grade with `math` or `number`.", MathParams,
    RowFormat("gsm8k", map_gsm8k, lambda p: [(None, "question"), (None, "answer")]))
MATH = dataset_spec(
    "math", "MATH / MATH-500 / DeepScaleR / Big-Math (problem; answer, or the boxed answer of solution).",
    MathParams, RowFormat("math", map_math, lambda p: [(None, "problem")]))
