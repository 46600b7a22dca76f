"""Accuracy of the `math` grader against math-verify called directly, on labelled (gold, completion, equal) pairs.

    python benchmarks/grading_accuracy.py [--show-disagreements]

Data, one labelled set per file, each reported on its own:
- benchmarks/data/math_pairs.jsonl: every parametrised (gold, pred, expected) table of Math-Verify's own test
  suite (github.com/huggingface/Math-Verify, tests/*.py, MIT licence; rebuilt by
  benchmarks/data/math_pairs_build.py). Three upstream labels record math-verify's behaviour rather than
  whether the answer is right, and are corrected here (LABEL_FIXES, each with its reason): `1 - 1/e` is not
  `1 + 1/e` (upstream strips a trailing `\\mathrm{e}` as a unit), and `Answer $ \\n 9 \\n $` (and with
  `\\( \\)`) does answer 9 for the reference 9 (upstream tests that its extractor skips inline math spanning
  line breaks: an extraction policy, not a wrong answer);
- benchmarks/data/math_pairs_extra.jsonl: hand-labelled cases for the failure classes math-verify does not
  target (hedging, answer tags, sets vs intervals, bare references, thousands separators);
- benchmarks/data/math_pairs_trust.jsonl: hand-labelled cases for the classes that cost trust in a reward
  (named constants whose terms differ in sign, written digits vs an exact reference, currency, scientific
  notation, variables read as units), each with equal and not-equal rows.
Judges: math-verify direct = `verify(parse(gold), parse(completion))`; `math-verify $gold$` = the same with a
bare reference wrapped in `$...$`; rlvr = the `math` grader run through RewardScorer (2 workers, 10 s timeout),
as in training; all with defaults except a row's own `params` (precision, strict).
Per set and judge: accuracy, false positives (a not-equal pair judged equal: a wrong answer rewarded) and
false negatives (an equal pair judged not equal: a right answer unrewarded).
Not covered: agreement with human graders on real model outputs at scale.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from math_verify import parse, verify

from graders import Sample
from graders.rewards import RewardScorer, RewardTerm

DATA = Path(__file__).parent / "data"
SETS = {"Math-Verify test tables": DATA / "math_pairs.jsonl", "rlvr failure classes": DATA / "math_pairs_extra.jsonl",
        "rlvr trust classes": DATA / "math_pairs_trust.jsonl"}
LABEL_FIXES = {  # (gold, completion): label, where upstream's label is not about the answer being right
    ("$1 - \\frac{1}{\\mathrm{e}}$", "$1 + \\frac{1}{\\mathrm{e}}$"): False,  # a different number
    ("$9$", "Answer $ \n 9 \n $"): True,  # the only answer written is 9
    ("$9$", "Answer \\( \n 9 \n \\)"): True,  # same, other delimiters
}
JUDGES = ("math-verify", "math-verify $gold$", "rlvr math")


def math_verify_direct(gold: str, completion: str, params: dict) -> bool:
    return bool(verify(parse(gold), parse(completion), float_rounding=params.get("precision", 6),
                       strict=params.get("strict", True)))


def wrapped(gold: str) -> str:
    """The reference as one inline formula, as math-verify's README parses golds, unless it has delimiters."""
    return gold if "$" in gold or "\\(" in gold or "\\[" in gold else f"${gold}$"


def load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        label = LABEL_FIXES.get((row["gold"], row["completion"]), row["equal"])
        row["corrected"], row["equal"] = label != row["equal"], label
    return rows


def tally(verdicts: list[bool], labels: list[bool]) -> str:
    """`accuracy (hits/n), FP f, FN g` for one judge on one set."""
    fp = sum(v and not label for v, label in zip(verdicts, labels))
    fn = sum(label and not v for v, label in zip(verdicts, labels))
    n = len(labels)
    return f"{n - fp - fn}/{n} ({(n - fp - fn) / n:.1%}), FP {fp}, FN {fn}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-disagreements", action="store_true",
                        help="print every case where a judge and the label differ")
    args = parser.parse_args()
    with RewardScorer(workers=2, timeout_s=10.0) as scorer:
        for set_name, path in SETS.items():
            rows = load(path)
            grades = [scorer.grade(RewardTerm(grader="math", params=r.get("params", {})),
                                   [Sample(r["completion"], {"answer": r["gold"]})])[0] for r in rows]
            verdicts = {name: [] for name in JUDGES}
            for row, grade in zip(rows, grades):
                params = row.get("params", {})
                judged = {"math-verify": math_verify_direct(row["gold"], row["completion"], params),
                          "math-verify $gold$": math_verify_direct(wrapped(row["gold"]), row["completion"], params),
                          "rlvr math": bool(grade.correct)}
                for name, verdict in judged.items():
                    verdicts[name].append(verdict)
                if args.show_disagreements and len(set(judged.values()) | {row["equal"]}) > 1:
                    print(f"  label={row['equal']} " + " ".join(f"{k}={v}" for k, v in judged.items())
                          + f" ({grade.error}) {row['source'][:70]}\n    gold={row['gold']!r}\n"
                          f"    completion={row['completion'][-160:]!r}")
            labels = [row["equal"] for row in rows]
            fixed = sum(r["corrected"] for r in rows)
            print(f"{set_name} ({len(rows)} pairs, {sum(labels)} equal"
                  + (f", {fixed} labels corrected" if fixed else "") + "):")
            for name in JUDGES:
                print(f"  {name:<20} {tally(verdicts[name], labels)}")


if __name__ == "__main__":
    main()
