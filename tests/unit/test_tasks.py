"""Tasks: determinism, disjoint splits, difficulty knobs, file loading, mixtures and the registry."""
from __future__ import annotations

import json
import logging
import re
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from graders.plugins import LoadError, NameClash
from tasks import Example, TaskMixture, UnknownTaskError, get_task_spec, task_names
from tasks import registry


def build(kind: str, seed: int = 0, name: str | None = None, **params):
    spec = get_task_spec(kind)
    return spec.build(spec.Params.model_validate(params), seed, name or kind)


# --- arithmetic -------------------------------------------------------------------------------------------


def test_arithmetic_is_deterministic_in_seed_and_index():
    a, b, c = build("arithmetic", seed=1), build("arithmetic", seed=1), build("arithmetic", seed=2)
    first = [a.train_example(i) for i in range(50)]
    assert all(isinstance(e, Example) and e.task == "arithmetic" for e in first)
    assert first == [b.train_example(i) for i in range(50)]
    assert [a.train_example(i) for i in reversed(range(50))] == first[::-1]  # no hidden cursor
    assert [c.train_example(i).prompt for i in range(50)] != [e.prompt for e in first]
    assert a.eval_examples() == c.eval_examples()  # the eval split follows eval_seed, not the run seed
    assert build("arithmetic", eval_seed=5).eval_examples() != a.eval_examples()


def test_arithmetic_train_never_overlaps_eval():
    task = build("arithmetic", max_digits=1, operators=["+", "-", "*"], eval_size=30)  # space: 300
    eval_expressions = {e.meta["expression"] for e in task.eval_examples()}
    assert len(eval_expressions) == 30
    train = [task.train_example(i).meta["expression"] for i in range(3000)]
    assert not eval_expressions & set(train)
    assert len({e.id for e in task.eval_examples()} | {f"arithmetic/train/{i}" for i in range(3000)}) == 3030


def test_arithmetic_knobs_and_answers():
    task = build(
        "arithmetic", min_digits=2, max_digits=3, operators=["*", "-"], min_terms=3, max_terms=4, allow_negative=True
    )
    examples = [task.train_example(i) for i in range(500)] + task.eval_examples()
    seen_ops, seen_terms, seen_digits = set(), set(), set()
    for example in examples:
        expression = example.meta["expression"]
        operands = re.findall(r"\d+", expression)
        seen_terms.add(len(operands))
        seen_digits |= {len(x) for x in operands}
        seen_ops |= set(re.findall(r" ([-+*]) ", expression))
        assert example.reference == {"answer": str(eval(expression))}
        assert example.prompt == f"What is {expression}? Answer with just the number."
    assert seen_terms == {3, 4} and seen_digits == {2, 3} and seen_ops == {"*", "-"}
    assert any(int(e.reference["answer"]) < 0 for e in examples)


def test_arithmetic_results_non_negative_unless_allowed():
    task = build("arithmetic", operators=["-"], max_terms=3)
    assert all(int(task.train_example(i).reference["answer"]) >= 0 for i in range(1000))


def test_arithmetic_system_prompt_and_template():
    task = build("arithmetic", system_prompt="Be brief.", prompt_template="Compute {expression}.")
    example = task.train_example(0)
    assert example.prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"Compute {example.meta['expression']}."},
    ]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"max_digitz": 3}, "max_digitz"),
        ({"operators": ["/"]}, "operators"),
        ({"prompt_template": "Solve {problem}"}, "prompt_template"),
        ({"min_digits": 3, "max_digits": 2}, "min_digits"),
        ({"max_digits": 1, "operators": ["+"]}, "eval_size"),  # 100 expressions: eval_size 200 cannot fit
    ],
)
def test_arithmetic_param_errors_name_the_field(params, field):
    with pytest.raises(ValidationError, match=field):
        get_task_spec("arithmetic").Params.model_validate(params)


# --- jsonl ------------------------------------------------------------------------------------------------


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_jsonl_string_prompts_cycle_and_reshuffle(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"q{i}", "answer": i} for i in range(10)])
    task = build("jsonl", path=path, name="mine")
    epoch0 = [task.train_example(i) for i in range(10)]
    epoch1 = [task.train_example(i) for i in range(10, 20)]
    assert sorted(e.prompt for e in epoch0) == sorted(f"q{i}" for i in range(10))
    assert sorted(e.prompt for e in epoch1) == sorted(e.prompt for e in epoch0)
    assert [e.prompt for e in epoch1] != [e.prompt for e in epoch0]
    assert all(e.reference == {"answer": e.prompt[1:]} and e.task == "mine" for e in epoch0)
    assert epoch0[0].id == f"mine/train/{epoch0[0].meta['row']}"
    assert [build("jsonl", path=path, seed=0).train_example(i) for i in range(10)] == [
        build("jsonl", path=path, seed=0).train_example(i) for i in range(10)
    ]
    assert task.eval_examples() == []


def test_jsonl_chat_prompts_template_and_reference_fields(tmp_path):
    tests = {"kind": "call", "fn_name": "f", "cases": [{"args": [1], "kwargs": {}, "expected": 2}]}
    rows = [{"messages": [{"role": "user", "content": "write f"}], "tests": tests, "answer": "x"}]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    task = build(
        "jsonl", path=path, prompt_field="messages", answer_field=None, reference_fields=["tests"],
        prompt_template="Task: {prompt}", system_prompt="You write Python.",
    )
    example = task.train_example(0)
    assert example.prompt == [
        {"role": "system", "content": "You write Python."},
        {"role": "user", "content": "Task: write f"},
    ]
    assert example.reference == {"tests": tests}


def test_jsonl_rows_with_just_a_prompt(tmp_path):
    """answer_field: null and no reference_fields: examples with an empty reference (for reward-model tasks;
    whether the task's graders accept that is engine/config.py's check)."""
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"Write one sentence about topic {i}."} for i in range(40)]
                       + [{"question": "no prompt field"}])
    task = build("jsonl", path=path, answer_field=None, eval_fraction=0.25)
    train = list(task.train_rows())
    held = task.eval_examples()
    assert len(train) + len(held) == 40 and held and task.skipped == 1
    assert all(e.reference == {} for e in train + held)
    assert {e.prompt for e in train}.isdisjoint(e.prompt for e in held)


def test_jsonl_parquet_with_string_and_chat_prompts(tmp_path):
    pq.write_table(pa.Table.from_pylist([{"q": f"p{i}", "a": str(i)} for i in range(5)]), tmp_path / "s.parquet")
    task = build("jsonl", path=str(tmp_path / "s.parquet"), prompt_field="q", answer_field="a")
    assert sorted((task.train_example(i).prompt, task.train_example(i).reference["answer"]) for i in range(5)) == [
        (f"p{i}", str(i)) for i in range(5)
    ]
    chat = [{"prompt": [{"role": "user", "content": f"c{i}"}], "answer": i} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(chat), tmp_path / "c.parquet")
    task = build("jsonl", path=str(tmp_path / "c.parquet"), system_prompt="S")
    example = task.train_example(0)
    assert example.prompt[0] == {"role": "system", "content": "S"} and example.prompt[1]["role"] == "user"
    assert example.reference["answer"] == example.prompt[1]["content"][1:]


def test_jsonl_eval_fraction_is_disjoint_and_stable(tmp_path):
    rows = [{"prompt": f"q{i}", "answer": i} for i in range(2000)] + [{"prompt": "q7", "answer": 7}]  # a duplicate
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    task = build("jsonl", path=path, eval_fraction=0.1)
    eval_prompts = [e.prompt for e in task.eval_examples()]
    train_prompts = {task.train_example(i).prompt for i in range(4000)}
    assert 120 < len(eval_prompts) < 280 and not set(eval_prompts) & train_prompts
    assert len(set(eval_prompts)) + len(train_prompts) == 2000
    assert build("jsonl", path=path, eval_fraction=0.1, seed=9).eval_examples() == task.eval_examples()


def test_jsonl_eval_path_drops_overlapping_training_rows(tmp_path):
    train = write_jsonl(tmp_path / "t.jsonl", [{"prompt": f"q{i}", "answer": i} for i in range(10)])
    held = write_jsonl(tmp_path / "e.jsonl", [{"prompt": "q3", "answer": 3}, {"prompt": "new", "answer": 0}])
    task = build("jsonl", path=train, eval_path=held)
    assert [e.prompt for e in task.eval_examples()] == ["q3", "new"]
    assert task.dropped_overlap == 1 and "q3" not in {task.train_example(i).prompt for i in range(9)}


def test_jsonl_bad_rows_are_skipped_and_counted(tmp_path, caplog):
    rows = [
        {"prompt": "ok", "answer": "1"},
        {"prompt": "no answer"},
        "{not json",
        [1, 2],
        {"prompt": 5, "answer": "1"},
        {"prompt": "bool", "answer": True},
        {"prompt": [{"role": "user"}], "answer": "1"},
        {"prompt": " ", "answer": "1"},
        {"prompt": "ok2", "answer": 2.5},
    ]
    with caplog.at_level(logging.WARNING):
        task = build("jsonl", path=write_jsonl(tmp_path / "d.jsonl", rows))
    assert task.skipped == 7
    assert task.skip_reasons[0].endswith("d.jsonl:2: missing field 'answer'") and len(task.skip_reasons) == 5
    assert sorted(task.train_example(i).reference["answer"] for i in range(2)) == ["1", "2.5"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 7" in warnings[0].getMessage()


def test_jsonl_a_line_that_is_not_utf8_is_one_skipped_row(tmp_path, caplog):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"prompt": "ok", "answer": 1}\n'
                     b'{"prompt": "caf\xe9", "answer": 2}\n'  # Latin-1, not UTF-8
                     b'{"prompt": "\xc3\xa9t\xc3\xa9", "answer": 3}\n')
    with caplog.at_level(logging.WARNING):
        task = build("jsonl", path=str(path))
    assert task.skipped == 1
    assert task.skip_reasons == [f"{path}:2: not valid UTF-8 (byte 0xe9 at byte 16 of the line)"]
    assert sorted(task.train_example(i).prompt for i in range(2)) == ["ok", "\u00e9t\u00e9"]
    assert "skipped 1 bad rows" in caplog.text
    path.write_bytes(b"\xff\xfe{\x00}\x00\n")  # UTF-16: no row is usable, the error names file and line
    with pytest.raises(ValueError, match=r"no usable row in .*d\.jsonl \(params\.path\).*d\.jsonl:1: not valid UTF-8"):
        build("jsonl", path=str(path))


def test_jsonl_missing_file_names_path_and_param(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"params\.path = '.*nope\.jsonl'"):
        build("jsonl", path=str(tmp_path / "nope.jsonl"))
    existing = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "answer": 1}])
    with pytest.raises(FileNotFoundError, match=r"params\.eval_path"):
        build("jsonl", path=existing, eval_path=str(tmp_path / "nope.jsonl"))


def test_jsonl_missing_answer_field_lists_present_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "solution": "1"}, {"question": "r"}])
    with pytest.raises(ValueError, match=r"field 'answer'.*first row has: 'question', 'solution'"):
        build("jsonl", path=path, prompt_field="question")


@pytest.mark.parametrize(
    "params, field",
    [
        ({}, "path"),
        ({"path": "d.jsonl", "eval_fraction": 1.5}, "eval_fraction"),
        ({"path": "d.jsonl", "prompt_template": "no placeholder"}, "prompt_template"),
        ({"path": "d.jsonl", "eval_path": "e.jsonl", "eval_fraction": 0.1}, "eval_fraction"),
    ],
)
def test_jsonl_param_errors_name_the_field(params, field):
    with pytest.raises(ValidationError, match=field):
        get_task_spec("jsonl").Params.model_validate(params)


# --- mixture ----------------------------------------------------------------------------------------------


def mixture_tasks():
    return [build("arithmetic", name="small"), build("arithmetic", name="big", max_digits=4, seed=3)]


def test_mixture_follows_weights_and_cursors():
    mixture = TaskMixture(mixture_tasks(), weights=[3.0, 1.0], seed=0)
    batch = mixture.next_batch(8000)
    counts = Counter(e.task for e in batch)
    assert abs(counts["small"] / 8000 - 0.75) < 0.02
    small = [e.id for e in batch if e.task == "small"]
    assert small == [f"small/train/{i}" for i in range(counts["small"])]  # each task's own cursor
    assert {e.task for e in TaskMixture(mixture_tasks(), [0.0, 2.0], seed=0).next_batch(200)} == {"big"}


def test_mixture_state_dict_round_trip_gives_the_same_batches():
    uninterrupted = TaskMixture(mixture_tasks(), [1.0, 2.0], seed=4)
    uninterrupted.next_batch(7)
    state = json.loads(json.dumps(uninterrupted.state_dict()))
    expected = [uninterrupted.next_batch(5) for _ in range(3)]
    resumed = TaskMixture(mixture_tasks(), [1.0, 2.0], seed=4)
    resumed.load_state_dict(state)
    assert [resumed.next_batch(5) for _ in range(3)] == expected
    with pytest.raises(ValueError, match="task list"):
        TaskMixture([build("arithmetic", name="other")], [1.0], seed=4).load_state_dict(state)


@pytest.mark.parametrize("weights", [[1.0], [0.0, 0.0], [-1.0, 2.0], [float("nan"), 1.0]])
def test_mixture_rejects_bad_weights(weights):
    with pytest.raises(ValueError, match="weight"):
        TaskMixture(mixture_tasks(), weights, seed=0)


# --- registry ---------------------------------------------------------------------------------------------


def test_registry_builtins_and_unknown_name():
    assert {"arithmetic", "jsonl"} <= set(task_names())
    spec = get_task_spec("arithmetic")
    assert spec.name == "arithmetic" and spec.description
    for kind in ("arithmetic", "jsonl"):
        Params = get_task_spec(kind).Params
        assert Params.model_config["extra"] == "forbid"
        assert all(f.description for f in Params.model_fields.values())
    with pytest.raises(UnknownTaskError, match=r"'arithmatic'.*Did you mean 'arithmetic'.*jsonl"):
        get_task_spec("arithmatic")


def install_plugin(root, dist: str, module: str, entries: dict[str, str], body: str):
    """A real installed distribution on sys.path: a module and a dist-info with entry points."""
    (root / f"{module}.py").write_text(body)
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[rlvr.tasks]\n{lines}")


PLUGIN = """
from tasks import TaskSpec
from tasks.arithmetic import ArithmeticParams, ArithmeticTask
SPEC = TaskSpec(name="sums", description="plugin", Params=ArithmeticParams, build=ArithmeticTask)
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.TASKS.rescan()
    yield tmp_path
    registry.TASKS.rescan()


def test_registry_loads_entry_point_plugins(plugin_dir):
    install_plugin(plugin_dir, "rlvr_sums", "rlvr_sums", {"sums": "rlvr_sums:SPEC", "broken": "rlvr_sums:NOPE"}, PLUGIN)
    assert {"sums", "broken"} <= set(task_names())
    assert build("sums").train_example(0).task == "sums"
    with pytest.raises(LoadError, match=r"task 'broken' \(rlvr_sums:NOPE\) failed to load: AttributeError"):
        get_task_spec("broken")


def test_registry_duplicate_names_name_both_packages(plugin_dir):
    install_plugin(plugin_dir, "plug_a", "plug_a", {"arithmetic": "plug_a:SPEC", "sums": "plug_a:SPEC"}, PLUGIN)
    install_plugin(plugin_dir, "plug_b", "plug_b", {"sums": "plug_b:SPEC"}, PLUGIN)
    with pytest.raises(NameClash, match=r"'arithmetic' is declared twice: by rlvr \S+ \(tasks.arithmetic:SPEC\) and "
                                        r"by plug_a 1\.0"):
        get_task_spec("arithmetic")
    with pytest.raises(NameClash, match=r"by plug_a 1\.0 .* and by plug_b 1\.0|by plug_b 1\.0 .* and by plug_a 1\.0"):
        get_task_spec("sums")
    assert get_task_spec("jsonl").name == "jsonl"
