"""Competitive-programming presets: `apps` (also TACO), `code_contests`, `livecodebench`, mapped onto the code
grader's `stdio` and `call` test specs, each compared the way its data set's own checker compares.

- apps (also TACO): prompt `question` (+ `starter_code`); tests from `input_output` (a JSON string): without
  `fn_name` stdio cases, number tokens within rel 1e-5 / abs 1e-8 (APPS's np.allclose); with `fn_name` call cases
  (args: each input list).
- code_contests: prompt `description`; stdio cases of `public_tests`, `private_tests`, `generated_tests`
  ({input: [...], output: [...]}) as chosen by `test_sets`; tokens compared case-insensitively, numbers within
  abs 1e-5 (CodeContests' OutputsMatch).
- livecodebench: prompt `question_content` (+ `starter_code`); `public_test_cases` / `private_test_cases` (JSON,
  or code_generation_lite's base64 zlib pickle of JSON): `stdin` cases -> stdio with numbers compared exactly
  ("1.50" = "1.5"); `functional` -> call of metadata's `func_name`, one JSON argument per input line.

    >>> io = json.dumps({"inputs": ["1 2\\n"], "outputs": ["3\\n"]})
    >>> tests = map_apps({"question": "Add.", "input_output": io}, ContestParams(path="apps.jsonl")).reference["tests"]
    >>> tests["kind"], tests["cases"], tests["rel_tol"], tests["abs_tol"]
    ('stdio', [{'input': '1 2\\n', 'output': '3\\n'}], 1e-05, 1e-08)

APPS and LiveCodeBench specs carry the imports their harnesses put before a solution (`preamble`), so a LeetCode
answer that uses `List` without importing it passes as it does there. Call cases: APPS stores a function's return
value wrapped in a one-element list (`[[3]]` for 3) and accepts either form, so a one-element expected list passes
as its element or as itself (`alternatives`). LeetCode-style `class Solution` code is called as
`Solution().fn_name(...)` (sandbox/zygote.py). Tuples pass for lists.
Deliberate differences from the original checkers: APPS also accepts the first element of a longer expected list,
outputs in any order (its set comparisons) and integers "close" under np.allclose; this harness compares stdout
token by token for all three, LiveCodeBench line by line (so a right answer split over other lines passes here).
Rows without test cases are skipped and counted. `max_cases` keeps the first cases of problems with many.
Not covered: special judges (problems with several right outputs), CodeContests' file input/output problems,
languages other than Python, APPS's dict-key conversion for dict arguments.
"""
from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from typing import Any, Literal

from pydantic import Field

from tasks.dataset import BadRow, Mapped, RowFormat, SourceParams, dataset_spec, require, wrong_type
from tasks.presets.code import CODE_TEMPLATE, string

# The imports each data set's harness runs before a solution (APPS's also has `import numpy as np`, left out:
# the sandbox's Python has only the standard library; LiveCodeBench's also raises the recursion limit).
APPS_PREAMBLE = ("import sys\nimport time\nimport itertools\nfrom itertools import accumulate, product, permutations, "
                 "combinations\nimport collections\nfrom collections import Counter, OrderedDict, deque, defaultdict, "
                 "ChainMap\nfrom functools import lru_cache\nimport math\nfrom math import sqrt, sin, cos, tan, ceil, "
                 "fabs, floor, gcd, exp, log, log2\nimport fractions\nfrom typing import List, Tuple\nimport random\n"
                 "import heapq\nfrom heapq import *")
LIVECODEBENCH_PREAMBLE = "\n".join(
    [f"from {m} import *" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math",
                                    "random", "statistics", "itertools", "functools", "operator", "io", "sys", "json",
                                    "builtins", "typing")]
    + [f"import {m}" for m in ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                               "statistics", "itertools", "functools", "operator", "io", "sys", "json")])
APPS_COMPARE = {"rel_tol": 1e-5, "abs_tol": 1e-8}  # APPS: np.allclose's defaults
CODE_CONTESTS_COMPARE = {"ignore_case": True, "abs_tol": 1e-5}  # CodeContests: lowercased tokens, |a-b| < 1e-5
LIVECODEBENCH_COMPARE = {"abs_tol": 0.0, "rel_tol": 0.0}  # LiveCodeBench: tokens equal as decimals
STDIN_NOTE = "Read the input from standard input and write the answer to standard output."


class ContestParams(SourceParams):
    """A competitive-programming data set: where it is, how to split it, the prompt, how many cases."""

    prompt_template: str | None = Field(
        CODE_TEMPLATE, description="Rewrites each problem; {prompt} is the problem (literal braces: {{ }}).")
    max_cases: int | None = Field(None, ge=1, description="Keep at most this many test cases per problem (the "
                                  "first ones); null: all.")


class CodeContestsParams(ContestParams):
    """CodeContests: as every contest preset, plus which test sets grade."""

    test_sets: list[Literal["public", "private", "generated"]] = Field(
        default_factory=lambda: ["public", "private"], min_length=1,
        description="Which of CodeContests' test sets grade a completion (generated tests are many and slow).")


class LiveCodeBenchParams(ContestParams):
    """LiveCodeBench: as every contest preset, plus which test case sets grade."""

    test_sets: list[Literal["public", "private"]] = Field(
        default_factory=lambda: ["public", "private"], min_length=1,
        description="Which of LiveCodeBench's test case sets grade a completion.")


def json_column(row: dict[str, Any], column: str) -> Any:
    """A column holding JSON as a string (APPS, LiveCodeBench) or already parsed."""
    value = require(row, column)
    if isinstance(value, str):
        if not value.strip():
            raise BadRow(f"field {column!r} is empty (no test cases)")
        try:
            return json.loads(value)
        except ValueError as exc:
            raise BadRow(f"field {column!r} is not valid JSON ({exc})") from None
    return value


def as_text(value: Any, column: str) -> str:
    """A stdin/stdout value: a string, or a list of lines (APPS)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value)
    raise wrong_type(column, value, "strings or lists of lines")


def cap(cases: list[dict[str, Any]], params: ContestParams, column: str) -> list[dict[str, Any]]:
    if not cases:
        raise BadRow(f"no test cases in {column}")
    return cases[: params.max_cases]


def call_case(args: Any, expected: Any) -> dict[str, Any]:
    case = {"args": args if isinstance(args, list) else [args], "expected": expected}
    if isinstance(expected, list) and len(expected) == 1:  # APPS wraps return values: [[3]] means 3 (or [3])
        case = {"args": case["args"], "expected": expected[0], "alternatives": [expected]}
    return case


def call_prompt(fn_name: str, starter: str) -> str:
    if starter.strip():
        return (f"Complete this code; the tests call `{fn_name}` with their arguments and check what it returns:"
                f"\n```python\n{starter.rstrip()}\n```")
    return f"Write a Python function `{fn_name}`; the tests call it with their arguments and check what it returns."


def map_apps(row: dict[str, Any], params: ContestParams) -> Mapped:
    question = string(row, "question")
    spec = json_column(row, "input_output")
    inputs, outputs = (spec.get("inputs"), spec.get("outputs")) if isinstance(spec, dict) else (None, None)
    if not (isinstance(inputs, list) and isinstance(outputs, list) and len(inputs) == len(outputs)):
        raise BadRow("field 'input_output' is not {'inputs': [...], 'outputs': [...]} of equal lengths")
    fn_name = spec.get("fn_name")
    starter = row.get("starter_code") if isinstance(row.get("starter_code"), str) else ""
    if fn_name:
        tests = {"kind": "call", "fn_name": str(fn_name), "preamble": APPS_PREAMBLE,
                 "cases": cap([call_case(i, o) for i, o in zip(inputs, outputs)], params, "input_output")}
        note = call_prompt(str(fn_name), starter)
    else:
        cases = [{"input": as_text(i, "input_output"), "output": as_text(o, "input_output")}
                 for i, o in zip(inputs, outputs)]
        tests = {"kind": "stdio", "preamble": APPS_PREAMBLE, "cases": cap(cases, params, "input_output"),
                 **APPS_COMPARE}
        note = STDIN_NOTE
    meta = {key: row[key] for key in ("problem_id", "difficulty") if isinstance(row.get(key), (int, str))}
    return Mapped(f"{question.strip()}\n\n{note}", {"tests": tests}, meta, prompt_field="question", text=question)


def map_code_contests(row: dict[str, Any], params: CodeContestsParams) -> Mapped:
    description = string(row, "description")
    cases = []
    for name in params.test_sets:
        group = row.get(f"{name}_tests")
        if not isinstance(group, dict):
            continue
        inputs, outputs = group.get("input") or [], group.get("output") or []
        if len(inputs) != len(outputs):
            raise BadRow(f"field '{name}_tests' has {len(inputs)} inputs but {len(outputs)} outputs")
        cases += [{"input": as_text(i, f"{name}_tests"), "output": as_text(o, f"{name}_tests")}
                  for i, o in zip(inputs, outputs)]
    columns = ", ".join(f"{name}_tests" for name in params.test_sets)
    tests = {"kind": "stdio", "cases": cap(cases, params, columns), **CODE_CONTESTS_COMPARE}
    meta = {key: row[key] for key in ("name", "difficulty", "source") if isinstance(row.get(key), (int, str))}
    return Mapped(f"{description.strip()}\n\n{STDIN_NOTE}", {"tests": tests}, meta, prompt_field="description",
                  text=description)


class PlainUnpickler(pickle.Unpickler):
    """Unpickles plain values only (LiveCodeBench pickles a JSON string): any class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name}: only plain values are read")


def decode_test_cases(value: Any, column: str) -> list[Any]:
    """LiveCodeBench test cases: a JSON list, or code_generation_lite's base64(zlib(pickle(JSON string)))."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise wrong_type(column, value, "a JSON string")
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        text = PlainUnpickler(io.BytesIO(zlib.decompress(base64.b64decode(value.encode())))).load()
        cases = json.loads(text)
    except Exception as exc:
        raise BadRow(f"field {column!r} is neither JSON nor base64 zlib pickled JSON ({type(exc).__name__})") \
            from None
    if not isinstance(cases, list):
        raise wrong_type(column, cases, "a list of test cases")
    return cases


def functional_case(case: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"args": [json.loads(line) for line in case["input"].split("\n") if line.strip()],
                "expected": json.loads(case["output"])}
    except ValueError as exc:
        raise BadRow(f"a functional test case is not one JSON value per line ({exc})") from None


def map_livecodebench(row: dict[str, Any], params: LiveCodeBenchParams) -> Mapped:
    content = string(row, "question_content")
    cases = [case for name in params.test_sets for case in decode_test_cases(row.get(f"{name}_test_cases"),
                                                                       f"{name}_test_cases")]
    if not all(isinstance(c, dict) and isinstance(c.get("input"), str) and isinstance(c.get("output"), str)
               for c in cases):
        raise BadRow("a test case is not {'input': str, 'output': str, 'testtype': ...}")
    kinds = {case.get("testtype") for case in cases}
    starter = row.get("starter_code") if isinstance(row.get("starter_code"), str) else ""
    columns = ", ".join(f"{name}_test_cases" for name in params.test_sets)
    if kinds == {"functional"}:
        metadata = json_column(row, "metadata") if row.get("metadata") else {}
        fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
        if not isinstance(fn_name, str):
            raise BadRow("functional test cases but no func_name in field 'metadata'")
        tests = {"kind": "call", "fn_name": fn_name, "preamble": LIVECODEBENCH_PREAMBLE,
                 "cases": cap([functional_case(c) for c in cases], params, columns)}
        note = call_prompt(fn_name, starter)
    elif kinds == {"stdin"}:
        tests = {"kind": "stdio", "preamble": LIVECODEBENCH_PREAMBLE,
                 "cases": cap([{"input": c["input"], "output": c["output"]} for c in cases], params, columns),
                 **LIVECODEBENCH_COMPARE}
        note = STDIN_NOTE
    else:
        raise BadRow(f"test cases of types {sorted(map(str, kinds)) or 'none'}; expected all 'stdin' or all "
                     "'functional'")
    meta = {key: row[key] for key in ("question_id", "platform", "difficulty", "contest_date")
            if isinstance(row.get(key), (int, str))}
    return Mapped(f"{content.strip()}\n\n{note}", {"tests": tests}, meta, prompt_field="question_content",
                  text=content)


APPS = dataset_spec(
    "apps", "APPS / TACO (question, input_output JSON: stdin/stdout or fn_name calls): grade with `code`.",
    ContestParams, RowFormat("apps", map_apps, lambda p: [(None, "question"), (None, "input_output")]))
CODE_CONTESTS = dataset_spec(
    "code_contests", "DeepMind CodeContests (description; public/private/generated stdin tests): grade with `code`.",
    CodeContestsParams, RowFormat("code_contests", map_code_contests, lambda p: [(None, "description")]))
LIVECODEBENCH = dataset_spec(
    "livecodebench", "LiveCodeBench code generation (question_content; public/private stdin or functional tests): "
    "grade with `code`.", LiveCodeBenchParams,
    RowFormat("livecodebench", map_livecodebench, lambda p: [(None, "question_content")]))
