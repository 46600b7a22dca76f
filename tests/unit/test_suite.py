"""Eval suites (engine/suite.py): the file format and its errors, defaults, data paths beside the suite file, how
`rlvr eval` tells a suite from a run config, the built-in suites and their bundled data, the markdown table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine.config import ConfigError
from engine.suite import (builtin_suites, default_output, find_suite, load_suite, markdown_table, set_examples,
                          split_overrides)

REPO = Path(__file__).resolve().parents[2]
MATH_SET = {"task": {"name": "dataset", "label": "sums", "params": {"path": "sums.jsonl"},
                     "rewards": [{"grader": "math"}]}}


def write_suite(folder: Path, suite: dict) -> Path:
    (folder / "sums.jsonl").write_text("".join(json.dumps({"prompt": f"{i}+{i}?", "answer": str(2 * i)}) + "\n"
                                               for i in range(5)))
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_defaults_apply_where_a_set_does_not_say(tmp_path):
    other = {"task": {**MATH_SET["task"], "label": "sums-short"}, "max_new_tokens": 8, "n": 0}
    suite = load_suite(write_suite(tmp_path, {"defaults": {"n": 4, "k": [4, 1, 4], "max_new_tokens": 64},
                                              "sets": [MATH_SET, other]}))
    first, second = suite.sets
    assert (first.n, first.k, first.max_new_tokens, first.temperature) == (4, [1, 4], 64, 0.8)
    assert (second.n, second.max_new_tokens) == (0, 8)
    assert first.task.rewards[0].grader == "math" and first.label == "sums"


def test_relative_data_paths_are_read_beside_the_suite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # any other directory
    suite = load_suite(write_suite(tmp_path, {"sets": [MATH_SET]}))
    assert suite.sets[0].task.params["path"] == str((tmp_path / "sums.jsonl").resolve())
    assert [ex.reference["answer"] for ex in set_examples(suite.sets[0], 0)] == ["0", "2", "4", "6", "8"]
    hub = {"task": {**MATH_SET["task"], "params": {"path": "org/name"}}}  # nothing of that name there: kept
    assert load_suite(write_suite(tmp_path, {"sets": [hub]})).sets[0].task.params["path"] == "org/name"


def test_limit_keeps_the_first_examples_and_overrides_reach_the_suite(tmp_path):
    suite = load_suite(write_suite(tmp_path, {"sets": [MATH_SET]}), ["sets.0.limit=2", "defaults.n=3"])
    assert [ex.reference["answer"] for ex in set_examples(suite.sets[0], 0)] == ["0", "2"]
    assert suite.sets[0].n == 3  # overrides change the file's text, before defaults are applied
    assert split_overrides(["sets.0.limit=2", "defaults.n=3", "model.chat_template=false", "description=x"]) == (
        ["sets.0.limit=2", "defaults.n=3", "description=x"], ["model.chat_template=false"])


@pytest.mark.parametrize("suite, problem", [
    ({"sets": [{**MATH_SET, "n": 2, "k": [1, 4]}]}, "`sets.0`: set 'sums': pass@4 needs n >= 4 samples"),
    ({"sets": [{**MATH_SET, "lmit": 3}]}, "unknown key `sets.0.lmit`; did you mean `sets.0.limit`?"),
    ({"defaults": {"temprature": 1}, "sets": [MATH_SET]}, "did you mean `defaults.temperature`?"),
    ({"sets": [{"task": {**MATH_SET["task"], "name": "nope"}}]}, "`sets.0.task.name`: unknown task 'nope'"),
    ({"sets": [{**MATH_SET, "k": [0, 1]}]}, "every k must be >= 1"),
    ({"sets": [MATH_SET, MATH_SET]}, "set names must be unique; give each task a `label` (duplicated: sums)"),
    ({"sets": []}, "`sets`: List should have at least 1 item"),
])
def test_suite_errors_name_the_key(tmp_path, suite, problem):
    with pytest.raises(ConfigError) as info:
        load_suite(write_suite(tmp_path, suite))
    assert problem in str(info.value) and "rlvr eval --help" in str(info.value)


def test_a_suite_is_a_builtin_name_or_a_file_with_sets(tmp_path):
    assert find_suite("code") == REPO / "engine" / "suites" / "code.yaml"
    assert {"code", "arithmetic"} <= set(builtin_suites())
    assert find_suite(str(write_suite(tmp_path, {"sets": [MATH_SET]}))) == tmp_path / "suite.yaml"
    assert find_suite(str(REPO / "engine" / "default.yaml")) is None  # a run config: no `sets:`
    assert find_suite(str(REPO / "configs" / "arithmetic.yaml")) is None
    assert find_suite("no-such-suite") is None and find_suite("nowhere/code") is None


def test_outputs_go_next_to_the_weights(tmp_path):
    step = tmp_path / "runs" / "r" / "checkpoints" / "step-000004"
    (step / "hf").mkdir(parents=True)
    assert default_output(step, "code") == step / "eval-code"
    assert default_output(step / "hf", "code") == step / "eval-code"
    assert default_output(Path("smollm2-135m"), "code") == Path("evals/smollm2-135m/code")


def test_builtin_code_suite_reads_the_bundled_humaneval_and_mbpp_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = load_suite(find_suite("code"))
    humaneval, mbpp = (set_examples(s, 0) for s in suite.sets)
    assert (len(humaneval), len(mbpp)) == (164, 427)
    bundled = {}
    for name in ("code_humaneval.jsonl", "code_mbpp.jsonl"):
        for line in (REPO / "benchmarks" / "data" / name).read_text().splitlines():
            row = json.loads(line)
            bundled[row["task_id"]] = row
    first = humaneval[0]
    assert first.prompt.endswith(bundled["HumanEval/0"]["prompt"] + "```")
    assert first.reference["tests"] == {**bundled["HumanEval/0"]["tests"], "prompt": bundled["HumanEval/0"]["prompt"]}
    for ex in mbpp:  # graded on every assert (imports included) as bundled; the prompt shows the first assert
        tests = bundled[ex.meta["task_id"]]["tests"]
        assert ex.reference["tests"] == {"kind": "assert", "test": tests["test"], "entry_point": tests["entry_point"]}
    shown = "Your code should pass this test:\nassert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))"
    assert shown in mbpp[0].prompt
    volume = next(ex for ex in mbpp if "import math" in ex.reference["tests"]["test"])
    assert "import math" not in volume.prompt and "assert math.isclose(" in volume.prompt


def test_markdown_table_has_a_row_per_set_and_a_column_per_k():
    base = {"examples": 4, "accuracy": 0.25, "length": 31.5, "truncated": 0.5, "graded": 20, "seconds": 3.0,
            "prompts_truncated": 0, "settings": {"n": 4, "k": [1, 4], "temperature": 0.8, "top_p": 1.0,
                                                 "max_new_tokens": 64, "limit": None}}
    results = {"sums": {**base, "task": "dataset", "pass@1": 0.375, "pass@4": 0.75, "maj@4": 0.5,
                        "errors": {"no_answer": 3}},
               "humaneval": {**base, "task": "humaneval", "pass@1": 0.0, "errors": {},
                             "settings": {**base["settings"], "n": 0, "k": []}}}
    table = markdown_table(results).splitlines()
    assert table[0] == ("| set | examples | accuracy (greedy) | pass@1 | pass@4 | maj@4 | mean length | truncated "
                        "| grader errors |")
    assert table[2] == "| sums | 4 | 25.0% | 37.5% | 75.0% | 50.0% | 32 | 50.0% | no_answer 3 (of 20) |"
    assert table[3] == "| humaneval | 4 | 25.0% | 0.0% | – | – | 32 | 50.0% | none (of 20) |"
    assert any(line.startswith("- humaneval: humaneval, max_new_tokens 64, greedy only") for line in table)


@pytest.mark.parametrize("name", builtin_suites())
def test_every_builtin_suite_validates_and_has_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = load_suite(find_suite(name))
    assert suite.description and all(set_examples(s, 0) for s in suite.sets)
