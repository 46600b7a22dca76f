"""`rlvr grade` and `rlvr graders` run as a user would: a subprocess on a real JSONL file.

Run: pytest tests/integration/test_grade_cli.py    (a few seconds)
"""
import json
import subprocess
import sys

import pytest

RLVR = [sys.executable, "-m", "engine.cli"]


def _run(*args, cwd=None):
    return subprocess.run([*RLVR, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.slow
def test_grade_a_file(tmp_path):
    lines = [
        {"completion": "So \\boxed{\\frac{1}{2}}", "answer": "0.5", "id": 1},
        {"completion": "The answer is 3.", "answer": "4", "id": 2},
        {"completion": 17, "answer": "17", "id": 3},
        {"completion": "\\boxed{9^{9^{9^{9}}}}", "answer": "1", "id": 4},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    out = tmp_path / "out.jsonl"
    result = _run("grade", "--grader", "math", "--timeout", "2", str(source), "-o", str(out))
    assert result.returncode == 0, result.stderr
    graded = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(g.get("id"), g["score"], g["correct"], g["error"]) for g in graded] == [
        (1, 1.0, True, None), (2, 0.0, False, None), (3, 0.0, False, "completion_not_string:int"),
        (4, 0.0, None, "timeout"), (None, 0.0, None, "invalid_json_line")]
    assert graded[0]["answer"] == "0.5"  # input fields are kept
    assert "graded 5 samples" in result.stderr and "correct 1/3" in result.stderr
    assert "error timeout: 1" in result.stderr


def test_misuse_exits_nonzero_with_a_clear_message(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"completion": "1", "answer": "1"}\n')
    unknown = _run("grade", "--grader", "nope", str(source))
    assert unknown.returncode == 2 and "unknown grader 'nope'; valid graders:" in unknown.stderr
    bad = _run("grade", "--grader", "math", "--params", '{"strict": "maybe"}', str(source))
    assert bad.returncode == 2 and "params of grader 'math': strict" in bad.stderr
    missing = _run("grade", "--grader", "math", str(tmp_path / "absent.jsonl"))
    assert missing.returncode == 2 and "absent.jsonl" in missing.stderr


def test_graders_lists_builtins_and_the_plugin():
    result = _run("graders")
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "rlvr" in rows["math"] and "math-verify" in rows["math"]
    assert "rlvr-plugin-example 0.1.0" in rows["word_budget"]
