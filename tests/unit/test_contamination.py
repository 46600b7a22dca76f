"""The contamination check: 13-gram overlap between training rows and held-out rows, per task pair, on a planted
overlap; the report file; dropping overlapping rows; the config keys."""
from __future__ import annotations

import json

import pytest

from engine.config import ConfigError, load_config
from tasks import Example, get_task_spec
from tasks.contamination import check_contamination, ngrams, overlap_report, words

import dataset_rows as rows

# 13 words shared with a held-out problem of another task, inside an otherwise different training problem
PLANTED = "a train leaves the station at noon travelling at sixty miles per hour toward the city"


def build(kind: str, name: str | None = None, **params):
    spec = get_task_spec(kind)
    return spec.build(spec.Params.model_validate(params), 0, name or kind)


def example(task: str, split: str, i: int, text: str) -> Example:
    return Example(f"{task}/{split}/{i}", task, text + "\nAnswer with a number.", {"answer": "1"})


def test_words_and_ngrams_follow_gpt3():
    assert words("What's 2+2? The ANSWER, is: 4!") == ["what", "s", "2", "2", "the", "answer", "is", "4"]
    assert list(ngrams(["a", "b", "c"], 2)) == [("a", "b"), ("b", "c")]
    assert list(ngrams(["a", "b"], 13)) == [("a", "b")] and list(ngrams([], 13)) == []


def test_a_planted_13_gram_is_found_and_12_words_are_not():
    held = {"math": [example("math", "eval", 0, "Puzzle: " + PLANTED.upper() + "; when does it arrive?"),
                     example("math", "eval", 1, "Something else entirely, nothing in common with any row.")],
            "gsm8k": [example("gsm8k", "eval", 0, "How many apples are left after eating two of five?")]}
    train = {"gsm8k": [example("gsm8k", "train", 0, "Unrelated words " + PLANTED + " and then more words"),
                       example("gsm8k", "train", 1, " ".join(PLANTED.split()[:12]) + " only twelve shared"),
                       example("gsm8k", "train", 2, "How many apples are left after eating two of five?")]}
    report = overlap_report(train, held, ngram=13)
    pairs = {(p["train_task"], p["eval_task"]): p for p in report["pairs"]}
    assert set(pairs) == {("gsm8k", "math"), ("gsm8k", "gsm8k")}  # every pair, overlapping or not
    cross = pairs["gsm8k", "math"]
    assert (cross["train_ids"], cross["eval_ids"]) == (["gsm8k/train/0"], ["math/eval/0"])
    assert (cross["train_rows"], cross["eval_rows"], cross["train_overlapping"]) == (3, 2, 1)
    assert cross["examples"][0]["ngram"] in {" ".join(PLANTED.split()[i:i + 13]) for i in range(4)}
    assert cross["max_coverage"] == cross["examples"][0]["coverage"] == round(4 / 13, 3)  # 4 of its 13 13-grams
    own = pairs["gsm8k", "gsm8k"]  # 10 words: shorter than 13, so matched as an identical text
    assert own["train_ids"] == ["gsm8k/train/2"] and own["eval_ids"] == ["gsm8k/eval/0"]
    assert overlap_report(train, held, ngram=17)["pairs"][0]["train_overlapping"] == 0  # 16 words are shared


def test_the_run_check_writes_the_report_and_drops_on_request(tmp_path):
    train_rows = [{"question": f"Problem {i}: how many marbles does box {i} hold?",
                   "answer": f"It holds {i}.\n#### {i}"} for i in range(20)]
    train_rows[7]["question"] = "Tell me: " + PLANTED + "?"
    gsm8k = build("gsm8k", path=rows.write_jsonl(tmp_path / "gsm8k.jsonl", train_rows))
    math = build("math", path=rows.write_jsonl(tmp_path / "math_train.jsonl", rows.math_rows()),
                 eval_path=rows.write_jsonl(tmp_path / "math_test.jsonl", [
                     {"problem": "Solve: " + PLANTED + ".", "solution": "$\\boxed{3}$"},
                     {"problem": "What is 1 + 1?", "solution": "$\\boxed{2}$"}]))
    arithmetic = build("arithmetic")
    tasks = {"gsm8k": gsm8k, "math": math, "arithmetic": arithmetic}
    report = check_contamination(tasks, tmp_path / "run", ngram=13)
    written = json.loads((tmp_path / "run" / "contamination.json").read_text())
    assert written == json.loads(json.dumps(report))
    assert written["not_checked"] == {"arithmetic": "no finite training set (procedural task)"}
    assert written["no_held_out_rows"] == ["gsm8k"]
    pairs = {(p["train_task"], p["eval_task"]): p for p in written["pairs"]}
    assert set(pairs) == {(a, b) for a in ("gsm8k", "math") for b in ("math", "arithmetic")}
    assert pairs["gsm8k", "math"]["train_ids"] == ["gsm8k/train/8"]  # line 8 of the file
    assert sum(p["train_overlapping"] for p in written["pairs"]) == 1 and written["dropped"] == {}
    assert len({gsm8k.train_example(i).id for i in range(40)}) == 20  # reporting alone drops nothing

    report = check_contamination(tasks, None, ngram=13, drop=True)
    assert report["dropped"] == {"gsm8k": 1} and gsm8k.dropped_contaminated == 1
    assert "gsm8k/train/8" not in {gsm8k.train_example(i).id for i in range(60)}
    assert check_contamination(tasks, tmp_path / "off", ngram=0) == {}
    assert not (tmp_path / "off").exists()


def test_streamed_tasks_are_checked_and_dropped_too(tmp_path):
    data = [{"prompt": f"row {i} of a long file", "answer": i} for i in range(30)] + [
        {"prompt": PLANTED, "answer": 0}]
    held = [{"prompt": "Held out: " + PLANTED, "answer": 0}]
    task = build("dataset", path=rows.write_jsonl(tmp_path / "t.jsonl", data), streaming=True, shuffle_buffer=4,
                 eval_path=rows.write_jsonl(tmp_path / "e.jsonl", held))
    report = check_contamination({"big": task}, None, drop=True)
    assert report["pairs"][0]["train_ids"] == ["dataset/train/31"] and report["dropped"] == {"big": 1}
    assert "dataset/train/31" not in {task.train_example(i).id for i in range(90)}


def test_config_keys(tmp_path):
    cfg = load_config(None)
    assert cfg.eval.contamination_ngram == 13 and cfg.eval.drop_contaminated is False
    assert load_config(None, ["eval.drop_contaminated=true"]).eval.drop_contaminated
    with pytest.raises(ConfigError, match="drop_contaminated needs the check"):
        load_config(None, ["eval.contamination_ngram=0", "eval.drop_contaminated=true"])
