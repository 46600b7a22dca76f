"""The code grader's pure parts (no sandbox): code extraction, program assembly, test-spec validation, and the
tester's value codec and strict comparison."""
from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from graders.code import build_program, extract_code, grader, read_tests
from sandbox.zygote import decode, encode, same_value


def test_extracts_the_last_python_fence():
    text = "Try:\n```python\ndef f(): return 1\n```\nBetter:\n```py\ndef f(): return 2\n```\n```text\nout\n```"
    assert extract_code(text) == "def f(): return 2\n"
    assert extract_code("```\nprint(1)\n```") == "print(1)\n"
    assert extract_code("```python\ndef f():\n    return 3") == "def f():\n    return 3"  # truncated fence
    assert extract_code("def f(): return 4") == "def f(): return 4"


def test_program_continues_or_replaces_the_prompt():
    spec = {"kind": "assert", "test": "", "entry_point": "f", "prompt": "import math\ndef f(x):\n    \"\"\"Doc\"\"\"\n"}
    assert build_program("    return x\n", spec) == spec["prompt"] + "    return x\n"
    full = "def f(x):\n    return math.floor(x)\n"
    assert build_program(full, spec) == spec["prompt"] + "\n\n" + full
    assert build_program(full, {"kind": "call", "fn_name": "f", "cases": []}) == full


@pytest.mark.parametrize("reference, error", [
    ({}, "missing_reference:tests"),
    ({"tests": "{not json"}, "bad_tests:not_json"),
    ({"tests": {"kind": "fuzz"}}, "bad_tests:kind must be one of assert, call, stdio"),
    ({"tests": {"kind": "call", "cases": []}}, "bad_tests:missing fn_name"),
])
def test_malformed_tests_are_reported(reference, error):
    assert read_tests(reference, "tests") == (None, error)


def test_tests_may_be_json_text():
    spec, error = read_tests({"tests": '{"kind": "stdio", "cases": []}'}, "tests")
    assert error is None and spec == {"kind": "stdio", "cases": []}


def test_grader_contract():
    assert grader.name == "code" and grader.description
    with pytest.raises(ValidationError):
        grader.Params(timeout=3)
    for name, field in grader.Params.model_fields.items():
        assert field.description, name


def test_no_code_never_reaches_a_sandbox():
    from graders import Sample

    [g] = grader.grade([Sample("   ", {"tests": {"kind": "stdio", "cases": []}})], grader.Params(backend="bwrap"))
    assert (g.score, g.correct, g.error) == (0.0, False, "no_code")


def roundtrip(value):
    handles = []
    encoded = encode(value, lambda x: handles.append(x) or {"r": len(handles) - 1, "type": type(x).__name__})
    return decode(encoded, lambda ref: ("handle", ref["r"]))


def test_codec_keeps_plain_types_exactly():
    value = [1, 2.5, "s", None, True, (1, (2,)), {1: "a", (2, 3): [4]}, {5}, frozenset({6}), b"\x00", 1j, 10 ** 50]
    assert roundtrip(value) == value
    assert [type(v) for v in roundtrip(value)] == [type(v) for v in value]


def test_codec_unwraps_subclasses_and_hides_other_objects():
    from collections import Counter, OrderedDict, namedtuple

    class Liar(int):
        def __eq__(self, other):
            return True

    point = namedtuple("Point", "x y")(1, 2)
    decoded = roundtrip([Counter("aab"), OrderedDict(a=1), point, Liar(3), object()])
    assert decoded[:4] == [{"a": 2, "b": 1}, {"a": 1}, (1, 2), 3]
    assert [type(v) for v in decoded[:4]] == [dict, dict, tuple, int]
    assert decoded[4] == ("handle", 0)


def test_same_value_is_strict():
    assert same_value([1, [2, "x"]], [1, [2, "x"]])
    assert same_value((1, 2), [1, 2])  # JSON has no tuples
    assert same_value(2, 2.0) and same_value(math.nan, math.nan)
    assert not same_value(True, 1) and not same_value(1, True)
    assert not same_value(2.0, 2) and not same_value("1", 1)
    assert not same_value({"a": 1}, {"a": 1, "b": 2})


def test_process_backend_needs_explicit_consent_and_warns():
    from graders import Sample
    from sandbox import open_sandbox
    from sandbox.process import UnsandboxedWarning

    with pytest.raises(ValidationError, match="allow_unsandboxed"):
        grader.Params(backend="process")
    with pytest.raises(RuntimeError, match="allow_unsandboxed"):
        open_sandbox("process")
    with pytest.warns(UnsandboxedWarning):
        params = grader.Params(backend="process", allow_unsandboxed=True, workers=1)
        [g] = grader.grade([Sample("def add(a, b):\n    return a + b\n", {"tests": {
            "kind": "call", "fn_name": "add", "cases": [{"args": [1, 2], "expected": 3}]}})], params)
    assert g.score == 1.0
