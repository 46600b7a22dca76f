"""Dataset tasks: every preset on a file in its data set's real shape, the loader's formats, splits, streaming and
bad rows, and the offline hub error (no downloads: the hub is never reached from tests)."""
from __future__ import annotations

import base64
import gzip
import json
import logging
import pickle
import time
import zlib
from collections import Counter

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks import get_task_spec, task_names
from tasks.presets.contests import APPS_COMPARE, CODE_CONTESTS_COMPARE, LIVECODEBENCH_COMPARE
from tasks.sources import SourceError

import dataset_rows as rows

PRESETS = ["gsm8k", "math", "humaneval", "mbpp", "apps", "code_contests", "livecodebench"]


def build(kind: str, seed: int = 0, name: str | None = None, **params):
    spec = get_task_spec(kind)
    return spec.build(spec.Params.model_validate(params), seed, name or kind)


def everything(task) -> list:
    return [*task.train_rows(), *task.eval_examples()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return rows.preset_files(tmp_path_factory.mktemp("presets"))


def test_presets_are_registered_with_described_params():
    assert set(PRESETS) | {"dataset", "jsonl"} <= set(task_names())
    for name in PRESETS + ["dataset"]:
        spec = get_task_spec(name)
        assert spec.name == name and spec.description
        assert spec.Params.model_config["extra"] == "forbid"
        assert all(f.description for f in spec.Params.model_fields.values()), name


def test_gsm8k_takes_the_answer_after_hashes(files, caplog):
    with caplog.at_level(logging.WARNING):
        task = build("gsm8k", **files["gsm8k"])
    assert sorted(e.reference["answer"] for e in task.train_rows()) == ["10", "2700"]  # "#### 2,700" -> 2700
    [held] = task.eval_examples()
    assert held.reference == {"answer": "72"} and held.id == "gsm8k/eval/1"
    assert held.prompt.startswith("Natalia sold clips") and held.prompt.endswith("within \\boxed{}.")
    assert held.meta["text"].startswith("Natalia") and "boxed" not in held.meta["text"]
    assert task.skipped == 1 and "no '#### <final answer>' line" in task.skip_reasons[0]
    assert "skipped 1 bad rows" in caplog.text


def test_math_takes_the_last_boxed_answer_or_the_answer_column(files):
    task = build("math", **files["math"], prompt_template=None)
    answers = {e.prompt: e.reference["answer"] for e in task.train_rows()}
    assert sorted(answers.values()) == ["70", "\\frac{5}{6}", "\\sqrt{2}"]
    assert task.train_example(0).meta["level"].startswith("Level ")
    [held] = task.eval_examples()  # MATH-500 has an answer column next to the solution
    assert held.reference == {"answer": "\\left( 3, \\frac{\\pi}{2} \\right)"} and held.meta["subject"] == "Precalculus"
    assert task.skipped == 1 and "no \\boxed{} answer" in task.skip_reasons[0]
    big_math = rows.write_jsonl(files["math"]["path"].replace("math_train", "big_math"),
                                [{"problem": "p", "answer": 12, "source": "cn_k12", "llama8b_solve_rate": 0.3}])
    assert build("math", path=big_math).train_example(0).reference == {"answer": "12"}


def test_humaneval_maps_to_an_assert_spec_with_the_prompt(files):
    task = build("humaneval", **files["humaneval"])
    source = {r["task_id"]: r for r in rows.humaneval_rows()}
    for example in everything(task):
        row = source[example.meta["task_id"]]
        assert example.reference == {"tests": {"kind": "assert", "test": row["test"],
                                               "entry_point": row["entry_point"], "prompt": row["prompt"]}}
        assert row["prompt"] in example.prompt and example.prompt.startswith("Complete the following")


def test_mbpp_sanitized_and_original_shapes(files, tmp_path):
    task = build("mbpp", **files["mbpp"])
    first = next(e for e in task.train_rows() if e.meta["task_id"] == 2)
    assert first.reference["tests"]["entry_point"] == "similar_elements"
    assert first.reference["tests"]["test"].count("assert ") == 3
    assert first.prompt.count("assert ") == 1  # prompt_tests: 1
    original = {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given "
                "character from the string.", "code": "def remove_Occ(s,ch): \r\n    return s",
                "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"'],
                "test_setup_code": "import math", "challenge_test_list": ['assert remove_Occ("PHP","P") == "H"']}
    task = build("mbpp", path=rows.write_jsonl(tmp_path / "mbpp.jsonl", [original]), prompt_tests=2)
    example = task.train_example(0)
    assert example.reference["tests"] == {
        "kind": "assert", "entry_point": "remove_Occ",
        "test": 'import math\nassert remove_Occ("hello","l") == "heo"\nassert remove_Occ("abcda","a") == "bcd"'}
    assert "these tests:" in example.prompt and example.prompt.count("assert ") == 2 and "PHP" not in example.prompt


def test_apps_stdio_call_and_leetcode_rows(files):
    task = build("apps", **files["apps"])
    by_id = {e.meta["problem_id"]: e.reference["tests"] for e in everything(task)}
    assert by_id[0]["kind"] == "stdio" and by_id[0]["cases"][1] == {"input": "10 -3\n", "output": "7\n"}
    assert {k: by_id[1][k] for k in APPS_COMPARE} == APPS_COMPARE and "import sys" in by_id[1]["preamble"]
    assert by_id[2]["kind"] == "call" and by_id[2]["fn_name"] == "add_all"
    assert by_id[2]["cases"][0] == {"args": [[1, 2, 3]], "expected": 6, "alternatives": [[6]]}  # APPS wraps outputs
    assert by_id[3]["cases"][0]["expected"] == [0, 1] and "from typing import List" in by_id[3]["preamble"]
    leetcode = next(e for e in everything(task) if e.meta["problem_id"] == 3)
    assert "class Solution" in leetcode.prompt and "`twoSum`" in leetcode.prompt
    assert task.skipped == 1 and "no test cases" in task.skip_reasons[0]  # problem 4: empty input_output


def test_apps_lines_lists_max_cases_and_bad_specs(tmp_path):
    io = {"inputs": [["1", "2"], "3\n", "4\n"], "outputs": [["3"], "3\n", "4\n"]}
    good = {"question": "q", "input_output": json.dumps(io)}
    bad = [{"question": "q", "input_output": "{not json"},
           {"question": "q", "input_output": json.dumps({"inputs": ["1"], "outputs": []})}]
    task = build("apps", path=rows.write_jsonl(tmp_path / "apps.jsonl", [good, *bad]), max_cases=2)
    tests = task.train_example(0).reference["tests"]
    assert tests["cases"] == [{"input": "1\n2", "output": "3"}, {"input": "3\n", "output": "3\n"}]
    assert task.skipped == 2 and "not valid JSON" in task.skip_reasons[0] and "equal lengths" in task.skip_reasons[1]


def test_code_contests_parquet_test_sets(files):
    task = build("code_contests", **files["code_contests"])
    [example] = list(task.train_rows())
    tests = example.reference["tests"]
    assert [c["output"] for c in tests["cases"]] == ["YES\n", "NO\n"]  # public + private by default
    assert {k: tests[k] for k in CODE_CONTESTS_COMPARE} == CODE_CONTESTS_COMPARE
    assert example.meta["name"] == "1_A. Even or odd" and example.prompt.startswith("Print YES")
    task = build("code_contests", path=files["code_contests"]["path"], test_sets=["generated"], max_cases=1)
    assert task.train_example(0).reference["tests"]["cases"] == [{"input": "10\n", "output": "yes\n"}]
    with pytest.raises(ValueError, match="no test cases in generated_tests"):  # the held-out row has none
        build("code_contests", path=files["code_contests"]["eval_path"], test_sets=["generated"])


def test_livecodebench_public_and_pickled_private_cases(files):
    task = build("livecodebench", **files["livecodebench"])
    functional = task.train_example(0).reference["tests"]
    assert functional["kind"] == "call" and functional["fn_name"] == "maxSum"
    assert functional["cases"] == [{"args": [[1, 5, 3], 2], "expected": 8}, {"args": [[4], 1], "expected": 4}]
    [stdin] = task.eval_examples()
    assert stdin.reference["tests"]["cases"][1] == {"input": "3\n", "output": "4.50\n"}
    assert {k: stdin.reference["tests"][k] for k in LIVECODEBENCH_COMPARE} == LIVECODEBENCH_COMPARE
    task = build("livecodebench", **files["livecodebench"], test_sets=["public"])
    assert len(task.train_example(0).reference["tests"]["cases"]) == 1


class Exploit:  # a pickle that would run code when loaded by a plain pickle.loads
    def __reduce__(self):
        return (print, ("pwned",))


def test_livecodebench_refuses_pickles_of_anything_but_plain_values(tmp_path):
    row = rows.livecodebench_rows()[0]
    row["private_test_cases"] = base64.b64encode(zlib.compress(pickle.dumps(Exploit()))).decode()
    mixed = dict(rows.livecodebench_rows()[0], question_id="x",
                 public_test_cases=json.dumps([{"input": "1", "output": "1", "testtype": "stdin"},
                                               {"input": "1", "output": "1", "testtype": "functional"}]))
    good = rows.livecodebench_rows()[1]
    task = build("livecodebench", path=rows.write_jsonl(tmp_path / "lcb.jsonl", [row, mixed, good]))
    assert task.skipped == 2
    assert "neither JSON nor base64 zlib pickled JSON (UnpicklingError)" in task.skip_reasons[0]
    assert "expected all 'stdin' or all 'functional'" in task.skip_reasons[1]


def test_a_preset_on_a_file_without_its_columns_says_which_it_reads(tmp_path):
    path = rows.write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "answer": "1"}])
    with pytest.raises(ValueError, match=r"has the field 'question'.*first row has: 'prompt', 'answer'.*gsm8k preset "
                                         r"reads the columns 'question', 'answer'.*`dataset` task"):
        build("gsm8k", path=path)


# --- the loader: formats, splits, streaming ---------------------------------------------------------------


QA = [{"q": f"question {i}", "a": i} for i in range(6)]


def test_formats_all_give_the_same_rows(tmp_path):
    table = pa.Table.from_pylist(QA)
    pq.write_table(table, tmp_path / "d.parquet")
    (tmp_path / "d.csv").write_text("q,a\n" + "".join(f"{r['q']},{r['a']}\n" for r in QA))
    (tmp_path / "d.tsv").write_text("q\ta\n" + "".join(f"{r['q']}\t{r['a']}\n" for r in QA))
    (tmp_path / "d.json").write_text(json.dumps(QA))
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in QA))
    with pa.OSFile(str(tmp_path / "d.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    datasets.Dataset.from_list(QA).save_to_disk(str(tmp_path / "saved"))
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(3):
        (shards / f"part{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in QA[2 * i:2 * i + 2]))
    expected = sorted((r["q"], str(r["a"])) for r in QA)
    for path in ["d.parquet", "d.csv", "d.tsv", "d.json", "d.jsonl.gz", "d.arrow", "saved", "shards/*.jsonl"]:
        task = build("dataset", path=str(tmp_path / path), prompt_field="q", answer_field="a")
        got = sorted((e.prompt, e.reference["answer"]) for e in task.train_rows())
        assert got == expected, path
    shard_task = build("dataset", path=str(shards / "*.jsonl"), prompt_field="q", answer_field="a")
    ids = {e.id for e in shard_task.train_rows()}
    assert "dataset/train/part1.jsonl:2" in ids  # several files: the id names the file and its line


def test_single_object_json_files_and_renamed_reference_columns(tmp_path):
    for subject in ("algebra", "geometry"):
        (tmp_path / subject).mkdir()
        (tmp_path / subject / "1.json").write_text(json.dumps(
            {"problem": f"A {subject} problem?", "level": "Level 1", "type": subject,
             "solution": "So $\\boxed{1}$."}, indent=4))
    task = build("math", path=str(tmp_path / "*" / "*.json"))  # MATH's original one-file-per-problem layout
    assert sorted(e.id for e in task.train_rows()) == ["math/train/algebra/1.json:0", "math/train/geometry/1.json:0"]
    spec = {"kind": "stdio", "cases": [{"input": "", "output": "1"}]}
    path = rows.write_jsonl(tmp_path / "c.jsonl", [{"prompt": "p", "test_spec": spec}])
    task = build("dataset", path=path, answer_field=None, reference_fields={"tests": "test_spec"})
    assert task.train_example(0).reference == {"tests": spec}


def test_splits_of_a_dataset_folder(tmp_path):
    train = datasets.Dataset.from_list([{"prompt": f"t{i}", "answer": i} for i in range(4)] + [{"prompt": "shared",
                                                                                                 "answer": 9}])
    test = datasets.Dataset.from_list([{"prompt": "e0", "answer": 0}, {"prompt": "shared", "answer": 9}])
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dd"))
    task = build("dataset", path=str(tmp_path / "dd"), eval_split="test")
    assert [e.prompt for e in task.eval_examples()] == ["e0", "shared"] and task.dropped_overlap == 1
    assert sorted(e.prompt for e in task.train_rows()) == ["t0", "t1", "t2", "t3"]
    assert [e.prompt for e in build("dataset", path=str(tmp_path / "dd"), split="test").train_rows()] == ["e0",
                                                                                                          "shared"]
    with pytest.raises(SourceError, match=r"params\.path = '.*dd' has no split 'validation' \(params\.eval_split\); "
                                          r"its splits: train, test"):
        build("dataset", path=str(tmp_path / "dd"), eval_split="validation")
    path = rows.write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "answer": 1}])
    with pytest.raises(SourceError, match=r"params\.eval_split = 'test', but .*d\.jsonl' is a file"):
        build("dataset", path=path, eval_split="test")


def test_eval_limit_keeps_the_first_held_out_rows_and_trains_on_the_rest(tmp_path):
    path = rows.write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"q{i}", "answer": i} for i in range(400)])
    full = build("dataset", path=path, eval_fraction=0.2)
    limited = build("dataset", path=path, eval_fraction=0.2, eval_limit=10)
    assert limited.eval_examples() == full.eval_examples()[:10]
    assert len(list(limited.train_rows())) == 390


def test_streaming_reads_the_same_rows_in_a_seeded_order(tmp_path):
    data = [{"prompt": f"q{i}", "answer": i} for i in range(50)] + ["{broken", {"prompt": "no answer"}]
    (tmp_path / "d.jsonl").write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in data))
    path = str(tmp_path / "d.jsonl")
    memory = build("dataset", path=path, eval_fraction=0.2)
    stream = build("dataset", path=path, eval_fraction=0.2, streaming=True, shuffle_buffer=8)
    assert stream.eval_examples() == memory.eval_examples()
    n = len(list(memory.train_rows()))
    epochs = [[stream.train_example(i) for i in range(e * n, (e + 1) * n)] for e in range(3)]
    assert all(Counter(e.id for e in epoch) == Counter(e.id for e in memory.train_rows()) for epoch in epochs)
    assert epochs[0] != epochs[1] and [e.id for e in epochs[0]] != [e.id for e in memory.train_rows()]
    again = build("dataset", path=path, eval_fraction=0.2, streaming=True, shuffle_buffer=8)
    assert again.train_example(2 * n + 3) == epochs[2][3]  # a resumed cursor sees what the first run saw
    assert [again.train_example(i) for i in range(5)] == epochs[0][:5]  # going back restarts the pass
    assert stream.skipped == 2 and again.skipped == 2  # counted once, however many passes read them


def test_streaming_checks_the_columns_at_start(tmp_path):
    path = rows.write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": 1}])
    with pytest.raises(ValueError, match=r"has the field 'prompt'.*Set params\.prompt_field"):
        build("dataset", path=path, streaming=True)


def test_a_hub_id_without_a_reachable_hub_is_one_line(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: never the network
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        build("gsm8k", path="rlvr-tests/no-such-dataset")
    message = str(info.value)
    assert "\n" not in message and time.monotonic() - started < 10
    assert message.startswith("task 'gsm8k': params.path = 'rlvr-tests/no-such-dataset' is not a local file or "
                              "folder") and "hub" in message
    assert "not reachable" in message and "HF_HUB_OFFLINE=1" in message
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # offline mode: only the local cache is tried
    with pytest.raises(SourceError, match=r"^task 'gsm8k': params\.path = 'rlvr-tests/no-such-dataset' is not a "
                                          r"local file or folder, and loading it from the Hugging Face hub failed: "
                                          r"[^\n]*$"):
        build("gsm8k", path="rlvr-tests/no-such-dataset")
    with pytest.raises(FileNotFoundError, match=r"params\.path = 'data/missing\.parquet': no such file"):
        build("gsm8k", path="data/missing.parquet")  # a path, not an id: never sent to the hub
