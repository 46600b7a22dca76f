"""code_synth: determinism, disjoint splits, well-formed prompts and tests, and (in the real bwrap sandbox) every
reference solution passes its hidden tests while wrong ones fail."""
from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from graders.base import Sample
from graders.code import grader
from tasks import get_task_spec
from tasks.code_synth import FAMILIES, CodeSynthParams, split_of


def build(seed: int = 0, **params):
    spec = get_task_spec("code_synth")
    return spec.build(spec.Params.model_validate(params), seed, "code_synth")


def test_deterministic_in_seed_and_index():
    a, b, c = build(seed=1), build(seed=1), build(seed=2)
    first = [a.train_example(i) for i in range(100)]
    assert first == [b.train_example(i) for i in range(100)]
    assert [a.train_example(i) for i in reversed(range(100))] == first[::-1]  # no hidden cursor
    assert [c.train_example(i).prompt for i in range(100)] != [e.prompt for e in first]
    assert a.eval_examples() == c.eval_examples()  # the eval split follows eval_seed, not the run seed
    assert build(eval_seed=3).eval_examples() != a.eval_examples()
    assert len({e.id for e in first}) == 100


def test_train_never_asks_for_a_held_out_function():
    task = build(eval_size=200)
    eval_keys = [e.meta["key"] for e in task.eval_examples()]
    assert len(set(eval_keys)) == 200  # distinct functions
    train_keys = {task.train_example(i).meta["key"] for i in range(5000)}
    assert not train_keys & set(eval_keys)
    # by construction, not by luck: the routing is a fixed function of the key, for every seed
    other = build(seed=7, eval_seed=9, eval_size=200)
    assert not {other.train_example(i).meta["key"] for i in range(2000)} & set(eval_keys)
    assert not {e.meta["key"] for e in other.eval_examples()} & train_keys
    assert {e.meta["family"] for e in task.eval_examples()} == set(FAMILIES)  # every family is held out in part
    assert split_of(("clamp", 1, 9), 0.2) == split_of(("clamp", 1, 9), 0.2)


def test_split_shares_follow_eval_fraction():
    routed = Counter(split_of(("k", i), 0.2) for i in range(10_000))
    assert 0.18 < routed["eval"] / 10_000 < 0.22


def test_prompt_examples_and_tests_are_consistent():
    task = build(shown_examples=2, hidden_tests=5, families=["filter_compare", "count_text"], eval_size=50)
    for example in [task.train_example(i) for i in range(50)] + task.eval_examples()[:50]:
        spec = example.reference["tests"]
        assert spec["kind"] == "call" and len(spec["cases"]) == 7
        assert example.meta["family"] in ("filter_compare", "count_text")
        assert example.prompt.startswith(f"Write a Python function `{spec['fn_name']}(")
        assert example.prompt.endswith("Reply with only the function in a ```python code block.")
        for case in spec["cases"][:2]:  # the shown examples, with their true outputs
            assert f"{spec['fn_name']}({case['args'][0]!r}) == {case['expected']!r}" in example.prompt
        namespace: dict = {}
        exec(example.meta["solution"], namespace)
        assert all(namespace[spec["fn_name"]](*c["args"]) == c["expected"] for c in spec["cases"])


def test_hidden_tests_go_beyond_the_shown_examples():
    """A lookup table of the prompt's examples must fail: some hidden input is new, and outputs vary."""
    task = build()
    examples = [task.train_example(i) for i in range(400)] + task.eval_examples()
    unseen = [e for e in examples
              if not {repr(c["args"]) for c in e.reference["tests"]["cases"][2:]} - {
                  repr(c["args"]) for c in e.reference["tests"]["cases"][:2]}]
    assert not unseen
    constant = [e for e in examples if len({repr(c["expected"]) for c in e.reference["tests"]["cases"]}) == 1]
    assert len(constant) <= len(examples) // 50  # a solution returning one constant almost never passes


def test_params_are_validated():
    with pytest.raises(ValidationError, match="unknown families"):
        CodeSynthParams(families=["sorting"])
    with pytest.raises(ValidationError, match="must not repeat"):
        CodeSynthParams(families=["clamp", "clamp"])
    with pytest.raises(ValidationError, match="eval_size"):
        CodeSynthParams(families=["count_long_words"], eval_size=50)
    with pytest.raises(ValidationError, match="placeholder"):
        CodeSynthParams(prompt_template="Write {function}")
    task = build(families=["slice_list"], eval_size=2, system_prompt="You write Python.")
    assert task.train_example(0).prompt[0] == {"role": "system", "content": "You write Python."}


def sandbox_unavailable() -> str | None:
    from sandbox.bwrap import unavailable_reason

    return unavailable_reason()


@pytest.mark.bwrap
def test_reference_solutions_pass_and_wrong_ones_fail_in_the_sandbox():
    reason = sandbox_unavailable()
    if reason:
        pytest.skip(reason)
    task = build(eval_size=64)
    by_family: dict[str, list] = {}
    for example in [task.train_example(i) for i in range(300)] + task.eval_examples():
        by_family.setdefault(example.meta["family"], []).append(example)
    sample = [e for examples in by_family.values() for e in examples[:4]]  # every family, train and held-out
    assert {e.meta["family"] for e in sample} == set(FAMILIES)
    params = grader.Params(backend="bwrap", timeout_s=10)

    def grade(completions: list[str]) -> list:
        return grader.grade([Sample(c, e.reference) for c, e in zip(completions, sample)], params)

    right = grade([f"Here you go:\n```python\n{e.meta['solution']}```\nIt works." for e in sample])
    assert [(e.meta["key"], g.error) for e, g in zip(sample, right) if not g.correct] == []
    # wrong: the examples shown in the prompt as a lookup table, else None
    def lookup(e) -> str:
        spec = e.reference["tests"]
        table = {repr(c["args"][0]): c["expected"] for c in spec["cases"][:2]}
        return (f"```python\ndef {spec['fn_name']}(x):\n    return {table!r}.get(repr(x))\n```")
    # wrong: another function of the same family (a held-out solution for a training problem and vice versa)
    def neighbour(e) -> str:
        others = [o for o in by_family[e.meta["family"]] if o.meta["key"] != e.meta["key"]]
        return f"```python\n{others[0].meta['solution']}```"
    for wrong in (lookup, neighbour):
        graded = grade([wrong(e) for e in sample])
        passed = [e.meta["key"] for e, g in zip(sample, graded) if g.correct]
        assert passed == [], wrong.__name__
        assert {g.error for g in graded} == {"wrong_answer"}
