"""The mixed-rewards demo's hidden gold rule and its preference data (benchmarks/gold_rule.py)."""
import doctest
import importlib.util
import json
from pathlib import Path

import pytest

from tasks.preferences import PreferenceParams, load_preferences

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gold_rule():
    """benchmarks/gold_rule.py, loaded from its path (benchmarks/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("gold_rule", REPO / "benchmarks" / "gold_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gold_rule_examples(gold_rule):
    assert doctest.testmod(gold_rule).failed == 0
    assert gold_rule.gold_score("") == 0.0
    # the tent: 0..PEAK distinct vivid words score 0..PEAK, each one beyond costs a point
    vivid = sorted(gold_rule.VIVID)
    assert [gold_rule.gold_score(" ".join(vivid[:h])) for h in range(8)] == [0, 1, 2, 3, 2, 1, 0, -1]
    assert gold_rule.gold_score("Golden, GOLDEN light.") == 1.0  # case-insensitive, distinct words


def test_preferences_are_labelled_by_the_rule_and_rarely_past_the_peak(gold_rule, tmp_path):
    rows = gold_rule.build_preferences(1000, seed=3)
    assert rows == gold_rule.build_preferences(1000, seed=3)  # deterministic in the seed
    assert all(gold_rule.gold_score(r["chosen"]) == r["gold_chosen"] > r["gold_rejected"]
               == gold_rule.gold_score(r["rejected"]) for r in rows)
    vivid = [len(set(gold_rule.words(r[side])) & gold_rule.VIVID) for r in rows for side in ("chosen", "rejected")]
    assert 0.005 < sum(h > gold_rule.PEAK for h in vivid) / len(vivid) < 0.05
    lengths = [len(gold_rule.words(r[side])) for r in rows for side in ("chosen", "rejected")]
    assert min(lengths) >= gold_rule.MIN_WORDS and 25 < sum(lengths) / len(lengths) < 35
    chosen_longer = sum(len(gold_rule.words(r["chosen"])) > len(gold_rule.words(r["rejected"])) for r in rows)
    assert 0.4 < chosen_longer / len(rows) < 0.6  # length carries no label
    path = tmp_path / "prefs.jsonl"
    gold_rule.write_jsonl(path, rows)
    data = load_preferences(PreferenceParams(path=str(path)), seed=0)  # what `rlvr rm train` reads
    assert data.skipped == 0 and len(list(data.train_rows())) + len(data.eval_examples()) == 1000


def test_the_demo_prompts_file_is_the_rules_prompts(gold_rule):
    rows = [json.loads(line) for line in (REPO / "configs/data/sentence_prompts.jsonl").read_text().splitlines()]
    assert rows == gold_rule.prompt_rows() and len({r["prompt"] for r in rows}) == len(rows)
