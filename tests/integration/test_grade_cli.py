"""`rlvr grade` and `rlvr graders` run as a user would: a subprocess on a real JSONL file.

Run: pytest tests/integration/test_grade_cli.py    (a few seconds)
"""
import json
import os
import re
import signal
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
    timeout = graded[3]["error"]  # "timeout", or "timeout_cpu" / "timeout_wall" where the pool says which
    assert timeout.startswith("timeout")
    assert [(g.get("id"), g["score"], g["correct"], g["error"]) for g in graded] == [
        (1, 1.0, True, None), (2, 0.0, False, None), (3, 0.0, False, "completion_not_string:int"),
        (4, 0.0, None, timeout), (None, 0.0, None, "invalid_json_line")]
    assert graded[0]["answer"] == "0.5"  # input fields are kept
    assert "graded 5 samples" in result.stderr and "correct 1/3" in result.stderr
    assert f"error {timeout}: 1" in result.stderr


def _one_clear_line(result) -> str:
    """The error line of a misused `rlvr grade`: exit 2, no traceback, one line (argparse puts its usage first)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.splitlines()
    if lines[0].startswith("usage:"):
        lines = [line for line in lines if not line.startswith(("usage:", " "))]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "options, says",
    [
        (["--grader", "nope"], ["--grader nope: unknown grader 'nope'. Valid graders:", "math"]),
        (["--params", '{"strict": "maybe"}'], ["--params: params of grader 'math': strict"]),
        (["--params", '{"nope": 1}'], ["--params: params of grader 'math': unknown key 'nope' (valid keys:"]),
        (["--params", "notjson"], ["argument --params: not valid JSON", "pass a JSON object"]),
        (["--params", "[1]"], ["argument --params: must be a JSON object"]),
        (["--workers", "0"], ["argument --workers: must be a whole number >= 1, got '0'"]),
        (["--timeout", "0"], ["argument --timeout: must be a number of seconds > 0"]),
        (["--timeout", "-1"], ["argument --timeout: must be a number of seconds > 0"]),
    ],
)
def test_misuse_is_one_line_naming_the_option(tmp_path, options, says):
    source = tmp_path / "in.jsonl"
    source.write_text('{"completion": "1", "answer": "1"}\n')
    out = tmp_path / "out.jsonl"
    line = _one_clear_line(_run("grade", "--grader", "math", *options, str(source), "-o", str(out)))
    assert line.startswith("rlvr grade: ") and all(s in line for s in says), line
    assert not out.exists()


def test_unreadable_input_is_one_line_naming_it(tmp_path):
    line = _one_clear_line(_run("grade", "--grader", "math", str(tmp_path / "absent.jsonl")))
    assert "absent.jsonl" in line and "No such file" in line


@pytest.mark.parametrize("alias", ["same", "dot-slash", "hard link", "symlink"])
def test_output_that_is_the_input_is_refused(tmp_path, alias):
    source = tmp_path / "in.jsonl"
    content = b'{"completion": "1", "answer": "1"}\n'
    source.write_bytes(content)
    if alias == "hard link":
        (tmp_path / "link.jsonl").hardlink_to(source)
    elif alias == "symlink":
        (tmp_path / "link.jsonl").symlink_to(source)
    output = {"same": "in.jsonl", "dot-slash": "./in.jsonl"}.get(alias, "link.jsonl")
    line = _one_clear_line(_run("grade", "--grader", "math", "in.jsonl", "-o", output, cwd=tmp_path))
    assert f"-o {output} is the input file in.jsonl" in line
    assert source.read_bytes() == content


def test_stdout_appending_to_the_input_is_refused(tmp_path):
    source = tmp_path / "in.jsonl"
    content = b'{"completion": "1", "answer": "1"}\n'
    source.write_bytes(content)
    with source.open("ab") as same_file:  # the shell's `rlvr grade in.jsonl >> in.jsonl`
        result = subprocess.run([*RLVR, "grade", "--grader", "math", str(source)], stdout=same_file,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == f"rlvr grade: stdout is the input file {source}; write the graded lines to another file\n"
    assert source.read_bytes() == content


@pytest.mark.slow
def test_a_line_that_is_not_utf8_is_graded_as_an_error_line(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"completion": "2", "answer": "2"}\n'
                       b'{"completion": "caf\xe9 2", "answer": "2"}\n'
                       b'{"completion": "3", "answer": "3", "note": "\xc3\xa9t\xc3\xa9"}\n')
    out = tmp_path / "out.jsonl"
    result = _run("grade", "--grader", "exact", str(source), "-o", str(out))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    graded = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(g["score"], g["error"]) for g in graded] == [(1.0, None), (0.0, "invalid_utf8_line"), (1.0, None)]
    assert graded[1]["line"] == '{"completion": "caf\\xe9 2", "answer": "2"}'  # the bad byte, escaped
    assert graded[2]["note"] == "\u00e9t\u00e9"  # valid UTF-8 on other lines reads as before
    assert "error invalid_utf8_line: 1" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]  # no temporary file left


CRASH_GRADER = """
import os, signal
from graders import Grade, Sample, grader

@grader("crash_on_marker", description="test: SIGKILLs the `rlvr grade` process on the completion CRASH")
def crash_on_marker(sample: Sample, params) -> Grade:
    if sample.completion == "CRASH":
        os.kill(int(os.environ["RLVR_GRADE_PID"]), signal.SIGKILL)
    return Grade(1.0, correct=True)
"""


def install_crash_grader(root):
    """A real installed grader plugin (module + dist-info with an rlvr.graders entry point) under root."""
    (root / "crash_grader.py").write_text(CRASH_GRADER)
    info = root / "crash_grader-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crash-grader\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rlvr.graders]\ncrash_on_marker = crash_grader:crash_on_marker\n")


@pytest.mark.slow
def test_a_crash_mid_run_leaves_the_output_file_as_it_was(tmp_path):
    plugins, work = tmp_path / "plugins", tmp_path / "work"
    plugins.mkdir(), work.mkdir()
    install_crash_grader(plugins)
    lines = [{"completion": f"c{i % 7}", "i": i} for i in range(1100)]
    lines[1050]["completion"] = "CRASH"  # in the second chunk of 1024 lines: the first is already written
    (work / "in.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (work / "out.jsonl").write_text("results of an earlier run\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), os.environ.get("PYTHONPATH", "")])}
    # exec keeps the shell's pid, so the grader knows which process to kill
    script = 'RLVR_GRADE_PID=$$ exec "$@"'
    args = ["grade", "--grader", "crash_on_marker", "in.jsonl", "-o", "out.jsonl"]
    result = subprocess.run(["sh", "-c", script, "sh", *RLVR, *args], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert (work / "out.jsonl").read_text() == "results of an earlier run\n"
    leftovers = {p.name for p in work.iterdir()} - {"in.jsonl", "out.jsonl"}
    assert all(re.fullmatch(r"\.out\.jsonl\..+\.tmp", name) for name in leftovers), leftovers


def test_graders_lists_builtins_and_the_plugin():
    result = _run("graders")
    assert result.returncode == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "rlvr" in rows["math"] and "math-verify" in rows["math"]
    assert "rlvr-plugin-example 0.1.0" in rows["word_budget"]
