"""Accuracy of the `math` grader against math-verify called directly, on labelled (gold, completion, equal) pairs.

    python benchmarks/grading_accuracy.py [--show-disagreements]

Data: benchmarks/data/math_pairs.jsonl, every parametrised (gold, pred, expected) table of Math-Verify's own
test suite (github.com/huggingface/Math-Verify, tests/*.py, MIT licence; rebuilt by
benchmarks/data/math_pairs_build.py), and benchmarks/data/math_pairs_extra.jsonl, hand-labelled cases for the
failure classes math-verify does not target (hedging, answer tags, sets vs intervals), reported separately.
math-verify direct = `verify(parse(gold), parse(completion))`, and again with a bare reference wrapped in
`$...$` (`math-verify $gold$`); rlvr = the `math` grader run through
RewardScorer (2 workers, 10 s timeout), as in training; both with defaults except a row's own `params`
(precision, strict) where its source test sets them.
Not covered: agreement with human graders on real model outputs at scale.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from math_verify import parse, verify

from graders import Sample
from graders.rewards import RewardScorer, RewardTerm

DATA = Path(__file__).parent / "data"
SETS = {"Math-Verify test tables": DATA / "math_pairs.jsonl", "rlvr failure classes": DATA / "math_pairs_extra.jsonl"}


def math_verify_direct(gold: str, completion: str, params: dict) -> bool:
    return bool(verify(parse(gold), parse(completion), float_rounding=params.get("precision", 6),
                       strict=params.get("strict", True)))


def wrapped(gold: str) -> str:
    """The reference as one inline formula, as math-verify's README parses golds, unless it has delimiters."""
    return gold if "$" in gold or "\\(" in gold or "\\[" in gold else f"${gold}$"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-disagreements", action="store_true", help="print every case the two judge differently")
    args = parser.parse_args()
    with RewardScorer(workers=2, timeout_s=10.0) as scorer:
        for set_name, path in SETS.items():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            grades = [scorer.grade(RewardTerm(grader="math", params=r.get("params", {})),
                                   [Sample(r["completion"], {"answer": r["gold"]})])[0] for r in rows]
            hits = defaultdict(int)
            for row, grade in zip(rows, grades):
                direct = math_verify_direct(row["gold"], row["completion"], row.get("params", {}))
                ours = bool(grade.correct)
                hits["math-verify"] += direct == row["equal"]
                hits["math-verify $gold$"] += math_verify_direct(wrapped(row["gold"]), row["completion"],
                                                                 row.get("params", {})) == row["equal"]
                hits["rlvr math"] += ours == row["equal"]
                if args.show_disagreements and direct != ours:
                    print(f"  label={row['equal']} math-verify={direct} rlvr={ours} ({grade.error}) "
                          f"{row['source']}\n    gold={row['gold']!r}\n    completion={row['completion'][-160:]!r}")
            n = len(rows)
            print(f"{set_name} ({n} pairs): " + ", ".join(
                f"{name} {hits[name]}/{n} ({hits[name] / n:.1%})"
                for name in ("math-verify", "math-verify $gold$", "rlvr math")))


if __name__ == "__main__":
    main()
