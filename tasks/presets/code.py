"""Function-level code presets: `humaneval` and `mbpp`, mapped onto the code grader's `assert` test spec.

- humaneval: prompt `prompt` (signature + docstring); tests {kind: assert, test: `test` (defines
  check(candidate)), entry_point: `entry_point`, prompt: `prompt`}.
- mbpp: prompt `text` (original MBPP) or `prompt` (sanitized), then the first `prompt_tests` asserts of
  `test_list`; tests {kind: assert, test: `test_imports` or `test_setup_code`, then `test_list`, entry_point}.

    >>> row = {"text": "Add two numbers.", "test_list": ["assert add(1, 2) == 3"], "code": "def add(a, b): ..."}
    >>> map_mbpp(row, MbppParams(path="mbpp.jsonl")).reference["tests"]
    {'kind': 'assert', 'test': 'assert add(1, 2) == 3', 'entry_point': 'add'}

The sandbox runs HumanEval's `check(candidate)` as one case and each MBPP assert as a case (partial credit).
With HumanEval's prompt in the spec, a completion that defines the whole function is appended to the prompt, one
that continues the body is joined to it (graders/code.py). MBPP's entry point is the function the tests call:
the last function `code` defines that the tests name, else the first non-builtin function the first test calls.
Both also read rlvr's own form of these sets (benchmarks/data/code_*.jsonl, the built-in `code` eval suite):
`prompt` plus a `tests` column that already holds the assert spec, graded as is; MBPP's prompt then shows the
first `prompt_tests` lines of the spec's test that start with `assert`.
Not covered: MBPP's `challenge_test_list` (not part of the standard evaluation), HumanEval variants in other
languages (MultiPL-E), HumanEval+/MBPP+ extra tests in their own columns (map them with `dataset`).
"""
from __future__ import annotations

import ast
import builtins
from typing import Any

from pydantic import Field

from tasks.dataset import BadRow, Mapped, RowFormat, SourceParams, dataset_spec, require, wrong_type

CODE_TEMPLATE = "{prompt}\n\nReply with one Python code block."
HUMANEVAL_TEMPLATE = ("Complete the following Python function. Reply with one Python code block that holds the "
                      "whole function.\n```python\n{prompt}```")


class CodeParams(SourceParams):
    """A function-level code data set: where it is, how to split it, the prompt."""

    prompt_template: str | None = Field(
        CODE_TEMPLATE, description="Rewrites each problem; {prompt} is the problem (literal braces: {{ }}).")


class HumanEvalParams(SourceParams):
    """HumanEval: where it is, how to split it, the prompt."""

    prompt_template: str | None = Field(
        HUMANEVAL_TEMPLATE, description="Rewrites each problem; {prompt} is HumanEval's prompt (the signature and "
        "docstring to complete; literal braces: {{ }}).")


class MbppParams(CodeParams):
    """MBPP: where it is, how to split it, the prompt."""

    prompt_tests: int = Field(1, ge=0, description="How many of test_list's asserts the prompt shows (they give the "
                              "function's name and signature; every assert is graded; MBPP's paper shows all 3).")


def string(row: dict[str, Any], column: str) -> str:
    value = require(row, column)
    if not isinstance(value, str):
        raise wrong_type(column, value, "a string")
    return value


def own_spec(row: dict[str, Any], column: str) -> dict[str, Any] | None:
    """The assert spec of a row in rlvr's own form (no `column`, a `tests` spec instead), else None."""
    spec = row.get("tests")
    if column in row or not isinstance(spec, dict) or spec.get("kind") != "assert":
        return None
    return spec if isinstance(spec.get("test"), str) and isinstance(spec.get("entry_point"), str) else None


def map_humaneval(row: dict[str, Any], params: Any) -> Mapped:
    spec = own_spec(row, "test")
    prompt = string(row, "prompt")
    test, entry_point = (spec["test"], spec["entry_point"]) if spec else (string(row, "test"),
                                                                          string(row, "entry_point"))
    tests = {"kind": "assert", "test": test, "entry_point": entry_point, "prompt": prompt}
    meta = {"task_id": row["task_id"]} if isinstance(row.get("task_id"), str) else {}
    return Mapped(prompt, {"tests": tests}, meta, prompt_field="prompt")


def called_function(tests: list[str], code: Any) -> str | None:
    """The function MBPP's tests exercise: the last one `code` defines that the tests name, else the first
    non-builtin function the first test calls."""
    if isinstance(code, str):
        try:
            defined = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
        except (SyntaxError, ValueError):
            defined = []
        named = [name for name in reversed(defined) if name in " ".join(tests)]
        if named:
            return named[0]
    try:
        calls = [n.func.id for n in ast.walk(ast.parse(tests[0]))
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and not hasattr(builtins, n.func.id)]
    except (SyntaxError, ValueError):
        return None
    return calls[0] if calls else None


def map_mbpp(row: dict[str, Any], params: MbppParams) -> Mapped:
    column = "text" if isinstance(row.get("text"), str) else "prompt"  # original MBPP / sanitized MBPP
    text = string(row, column)
    spec = own_spec(row, "test_list")
    if spec:  # rlvr's form: the spec's test is graded as is; its `assert` lines are what the prompt shows
        test, entry_point = spec["test"], spec["entry_point"]
        test_list = [line for line in test.splitlines() if line.startswith("assert")]
    else:
        test_list = require(row, "test_list")
        if not (isinstance(test_list, list) and test_list and all(isinstance(t, str) for t in test_list)):
            raise wrong_type("test_list", test_list, "a non-empty list of assert strings")
        entry_point = called_function(test_list, row.get("code"))
        if entry_point is None:
            raise BadRow("field 'test_list': its first test calls no function to name as the entry point")
        imports = row.get("test_imports") if isinstance(row.get("test_imports"), list) else []
        setup = row.get("test_setup_code") if isinstance(row.get("test_setup_code"), str) else ""
        test = "\n".join(line for line in [*imports, setup, *test_list] if isinstance(line, str) and line.strip())
    shown = test_list[: params.prompt_tests]
    prompt = text.strip() + ("\nYour code should pass " + ("this test:\n" if len(shown) == 1 else "these tests:\n")
                             + "\n".join(shown) if shown else "")
    meta = {"task_id": row["task_id"]} if isinstance(row.get("task_id"), (int, str)) else {}
    return Mapped(prompt, {"tests": {"kind": "assert", "test": test, "entry_point": entry_point}}, meta,
                  prompt_field=column, text=text)


HUMANEVAL = dataset_spec(
    "humaneval", "HumanEval (prompt, test with check(candidate), entry_point): grade with `code`.", HumanEvalParams,
    RowFormat("humaneval", map_humaneval, lambda p: [(None, "prompt"), (None, "test"), (None, "entry_point")]))
MBPP = dataset_spec(
    "mbpp", "MBPP, original or sanitized (text/prompt, test_list asserts): grade with `code`.", MbppParams,
    RowFormat("mbpp", map_mbpp, lambda p: [(None, "test_list")]))
