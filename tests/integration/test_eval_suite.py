"""`rlvr eval MODEL SUITE`: a tiny model on a two-set suite (a math set from a small JSONL, two bundled HumanEval
problems graded in the real sandbox) writes eval.json, eval.md and samples.jsonl and prints the table; and a
scripted sampler (known completions: canonical solutions, wrong ones, voted answers) checks that the numbers are
the ones computed by hand, through the real graders."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from engine_helpers import byte_tokenizer, run_cli

REPO = Path(__file__).resolve().parents[2]
SUMS = [{"prompt": "What is 2 + 2?", "answer": "4"}, {"prompt": "What is 3 + 5?", "answer": "8"},
        {"prompt": "What is 7 + 1?", "answer": "8"}]


def humaneval_rows(n: int) -> list[dict]:
    return [json.loads(line) for line in (REPO / "benchmarks/data/code_humaneval.jsonl").read_text().splitlines()[:n]]


def write_suite(folder: Path, **options) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("sums.jsonl", SUMS), ("humaneval.jsonl", humaneval_rows(2))):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = {"description": "two tiny sets",
             "defaults": {"max_new_tokens": 8, "n": 4, "k": [1, 2], **options},
             "sets": [{"task": {"name": "dataset", "label": "sums", "params": {"path": "sums.jsonl"},
                                "rewards": [{"grader": "math"}]}},
                      {"task": {"name": "humaneval", "params": {"path": "humaneval.jsonl"},
                                "rewards": [{"grader": "code", "params": {"timeout_s": 5}}]},
                       "n": 2, "max_prompt_tokens": 128}]}
    (folder / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    return folder / "suite.yaml"


@pytest.mark.slow
def test_rlvr_eval_suite_writes_eval_json_and_a_markdown_table(tiny_model, tmp_path):
    suite = write_suite(tmp_path / "suite")
    out = tmp_path / "out"
    result = run_cli("eval", str(tiny_model), str(suite), "--output", str(out), "train.grader_workers=1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"suite suite ({suite}): sums, humaneval" in result.stderr
    assert "greedy: 3/3 prompts" in result.stderr and "4 samples each: 3/3 prompts" in result.stderr

    report = json.loads((out / "eval.json").read_text())
    assert report["model"] == str(tiny_model) and report["suite"] == "suite" and report["seconds"] > 0
    sums, code = report["sets"]["sums"], report["sets"]["humaneval"]
    assert {"accuracy", "pass@1", "pass@2", "maj@2", "reward", "length", "truncated", "sampled_length",
            "sampled_truncated", "errors", "graded", "prompts_truncated", "settings", "seconds"} <= set(sums)
    assert "maj@2" not in code and {"pass@1", "pass@2"} <= set(code)  # maj@k only where math/number grade
    assert (sums["examples"], sums["graded"], code["examples"], code["graded"]) == (3, 3 * 5, 2, 2 * 3)
    for metrics in (sums, code):
        for key in ("accuracy", "pass@1", "pass@2", "truncated", "sampled_truncated"):
            assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
        assert metrics["pass@1"] <= metrics["pass@2"]
        assert 0 < metrics["length"] <= 8 and sum(metrics["errors"].values()) <= metrics["graded"]
    assert sums["settings"] == {"n": 4, "k": [1, 2], "temperature": 0.8, "top_p": 1.0, "max_new_tokens": 8,
                                "limit": None}
    assert code["prompts_truncated"] == 2 and sums["prompts_truncated"] == 0  # byte tokens: HumanEval > 128

    table = (out / "eval.md").read_text()
    assert table.startswith("# suite on ")
    assert "| set | examples | accuracy (greedy) | pass@1 | pass@2 | maj@2 | mean length | truncated |" in table
    assert any(line.startswith("| sums | 3 | ") for line in table.splitlines())
    assert any(line.startswith("| humaneval | 2 | ") and "| – |" in line for line in table.splitlines())
    assert "| set | examples |" in result.stdout  # the table is printed too
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["set"] for r in rows] == ["sums"] * 3 + ["humaneval"] * 2
    assert len(rows[0]["sampled_correct"]) == 4 and rows[3]["task_id"] == "HumanEval/0"


@pytest.mark.slow
def test_suite_flags_and_errors(tiny_model, tmp_path):
    suite = write_suite(tmp_path / "suite")
    wrong = run_cli("eval", str(tiny_model), "--suite", str(suite), "sets.0.k=[1,8]")  # overrides after options
    assert wrong.returncode == 2 and "`sets.0`: set 'sums': pass@8 needs n >= 8 samples" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    missing = run_cli("eval", str(tiny_model), "--suite", "no-such-suite")
    assert missing.returncode == 2 and "no eval suite 'no-such-suite'" in missing.stderr and "code" in missing.stderr
    assert "--output is for eval suites" in run_cli("eval", str(tiny_model), "--output", str(tmp_path)).stderr


@pytest.mark.slow
def test_suite_on_the_vllm_backend_sizes_the_engine_for_its_prompts(tmp_path):
    """Prompts longer than the run config's sequence length (256 + 64 tokens) fit: the engine is sized for the
    suite's own lengths."""
    pytest.importorskip("vllm")
    from engine_helpers import make_vllm_tiny_model

    model = make_vllm_tiny_model(tmp_path / "model")
    suite = write_suite(tmp_path / "suite")
    out = tmp_path / "out"
    result = run_cli("eval", str(model), str(suite), "rollout.backend=vllm", "sets.1.max_prompt_tokens=400",
                     "train.grader_workers=1", "--output", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "eval.json").read_text())
    assert report["sets"]["humaneval"]["prompts_truncated"] == 2 and report["sets"]["sums"]["graded"] == 15
    assert all(0 < r["length"] <= 8 for r in report["sets"].values())


class ScriptedSampler:
    """Completions looked up by prompt: `script[prompt ids] = (greedy text, [sampled texts])`."""

    def __init__(self, script: dict):
        self.script = script

    def generate(self, prompts, n, max_new_tokens, temperature=1.0, top_p=1.0, greedy=False):
        from engine.rollout import Rollout

        out = Rollout([], [], [], [], [])
        for p in prompts:
            greedy_text, sampled = self.script[tuple(p)]
            for text in ([greedy_text] if greedy else sampled[:n]):
                out.prompt_ids.append(p)
                out.completion_ids.append(list(range(len(text))))
                out.logprobs.append([0.0] * len(text))
                out.texts.append(text)
                out.finish_reasons.append("length" if len(text) >= max_new_tokens else "stop")
        return out


def test_scripted_completions_give_the_hand_computed_numbers(tmp_path):
    from engine.config import load_config
    from engine.prompts import encode_prompt
    from engine.suite import encode_all, load_suite, run_set, set_examples
    from graders.rewards import RewardScorer

    suite = load_suite(write_suite(tmp_path / "suite", max_new_tokens=1000), ["sets.1.n=4", "sets.1.k=[1,2,4]"])
    cfg = load_config(None, ["train.grader_workers=1"])
    tok = byte_tokenizer()
    sums, code = suite.sets
    right, wrong = (humaneval_rows(2)[0]["prompt"] + body for body in (humaneval_rows(2)[0]["canonical"],
                                                                       "    return None\n"))
    fence = "```python\n{}```".format
    texts = {  # per example: greedy, then samples
        "sums/train/1": ("The answer is 4.", ["\\boxed{4}", "4.0 is the answer: \\boxed{4.0}", "\\boxed{5}", "hmm"]),
        "sums/train/2": ("It is 9.", ["\\boxed{9}", "\\boxed{9}", "\\boxed{8}", "\\boxed{8}"]),
        "sums/train/3": ("\\boxed{8}", ["\\boxed{6}", "\\boxed{7}", "\\boxed{8}", "\\boxed{6}"]),
        "humaneval/train/1": (fence(right), [fence(right), fence(wrong), fence(wrong), "no code at all"]),
        "humaneval/train/2": ("def nope(:", ["x"] * 4),
    }

    def script(s):
        examples = set_examples(s, 0)
        return examples, {tuple(encode_prompt(tok, ex.prompt, True, s.max_prompt_tokens)): texts[ex.id]
                          for ex in examples}

    with RewardScorer(workers=1, timeout_s=10) as scorer:
        (sum_examples, sum_script), (code_examples, code_script) = script(sums), script(code)
        got, rows = run_set(sums, sum_examples, encode_all(sum_examples, tok, True), cfg,
                            ScriptedSampler(sum_script), scorer)
        got_code, _ = run_set(code, code_examples, encode_all(code_examples, tok, True), cfg,
                              ScriptedSampler(code_script), scorer)
    # sums: greedy right, wrong, right. Samples correct: [1,1,0,0], [0,0,1,1], [0,0,1,0]
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert got["pass@1"] == pytest.approx((2 / 4 + 2 / 4 + 1 / 4) / 3)
    assert got["pass@2"] == pytest.approx(((1 - 1 / 6) + (1 - 1 / 6) + (1 - 3 / 6)) / 3)  # 1 - C(4-c,2)/C(4,2)
    # maj@2 over blocks (s1, s2), (s3, s4): ex1: 4 and 4.0 vote together -> 1; 5 alone (hmm abstains) -> 0
    # ex2: 9,9 -> 0; 8,8 -> 1.  ex3: 6 vs 7 tie, both wrong -> 0; 8 vs 6 tie -> 0.5
    assert got["maj@2"] == pytest.approx(((1 + 0) / 2 + (0 + 1) / 2 + (0 + 0.5) / 2) / 3)
    assert "maj@1" not in got and "maj@4" not in got  # maj@k for the set's k > 1 only
    assert got["errors"] == {"no_answer": 1} and got["graded"] == 15
    assert rows[1]["greedy"] == "It is 9." and rows[1]["correct"] is False
    assert rows[0]["sampled_correct"] == [1, 1, 0, 0]
    # code: greedy right, broken. Samples correct: [1,0,0,0], [0,0,0,0]
    assert got_code["accuracy"] == 0.5
    assert got_code["pass@1"] == pytest.approx((1 / 4 + 0) / 2)
    assert got_code["pass@2"] == pytest.approx((1 / 2 + 0) / 2)          # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert got_code["pass@4"] == pytest.approx((1 + 0) / 2)
    assert "maj@2" not in got_code and got_code["graded"] == 2 * 5
    assert got_code["errors"]["wrong_answer"] == 2 and got_code["errors"]["syntax_error"] >= 1, got_code["errors"]
