"""Rebuild benchmarks/data/math_pairs.jsonl from a checkout of Math-Verify's test suite (MIT licence).

    git clone https://github.com/huggingface/Math-Verify /tmp/Math-Verify
    python benchmarks/data/math_pairs_build.py /tmp/Math-Verify > benchmarks/data/math_pairs.jsonl

Every `@pytest.mark.parametrize` table whose argument names include gold, pred and expected/result becomes
one JSONL line per row: {"gold", "completion", "equal", "source", "params"}, where params carries a row's
`precision` and `strict` options (both graders are run with them). Rows testing allow_set_relation_comp=True
(an option the `math` grader does not expose) are left out; rows written for an expr-only extraction are kept:
their label states the mathematical truth the test asserts. Not covered: tests written as plain asserts.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

FILES = ["test_all.py", "test_boxed.py", "test_numina_cases.py", "test_open_thoughts.py", "test_strict.py",
         "test_yujianll.py"]
OPTIONS = ("precision", "strict")


def tables(path: Path):
    tree = ast.parse(path.read_text())
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for deco in fn.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                continue
            names = [s.strip() for s in ast.literal_eval(deco.args[0]).split(",")]
            if not {"gold", "pred"} <= set(names):
                continue
            for row in deco.args[1].elts:
                try:
                    values = dict(zip(names, ast.literal_eval(row)))
                except ValueError:  # a pytest.param(...) or a computed value
                    continue
                yield fn.name, values


def main(repo: str) -> None:
    for name in FILES:
        for test, row in tables(Path(repo) / "tests" / name):
            if row.get("allow_set_relation_comp"):
                continue
            label = row.get("expected", row.get("result"))
            print(json.dumps({"gold": row["gold"], "completion": row["pred"], "equal": bool(label),
                              "source": f"Math-Verify tests/{name}::{test}",
                              "params": {k: row[k] for k in OPTIONS if k in row}}))


if __name__ == "__main__":
    main(sys.argv[1])
