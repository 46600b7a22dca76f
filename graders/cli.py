"""`rlvr grade` and `rlvr graders`: grade a JSONL file from the shell, list the graders this install knows.

    rlvr grade --grader math answers.jsonl -o graded.jsonl     # lines: {"completion": ..., "answer": ...}
    rlvr grade --grader number --params '{"abs_tol": 0.01}' answers.jsonl > graded.jsonl
    rlvr graders

Each output line is the input line plus `score`, `correct` and `error`; every field other than
`completion` and `prompt` is passed to the grader as a reference field. A summary (counts, mean score,
errors by kind, throughput) goes to stderr. Exit status 0 unless the command itself is misused (unknown
grader, bad params, unreadable input): bad lines are graded as errors, not fatal.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import IO, Iterator

from pydantic import ValidationError

from graders import registry
from graders.base import Grade, Sample
from graders.rewards import RewardScorer, RewardTerm

CHUNK = 1024


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    grade = subparsers.add_parser("grade", help="grade the completions of a JSONL file")
    grade.add_argument("input", help="JSONL file, one {\"completion\": ..., <reference fields>} per line")
    grade.add_argument("--grader", required=True, help="grader name (see `rlvr graders`)")
    grade.add_argument("--params", default="{}", help="grader parameters as a JSON object")
    grade.add_argument("-o", "--output", help="output JSONL file (default: stdout)")
    grade.add_argument("--workers", type=int, default=2, help="grading worker processes")
    grade.add_argument("--timeout", type=float, default=10.0, help="seconds allowed per sample")
    grade.set_defaults(func=run_grade)
    listing = subparsers.add_parser("graders", help="list the available graders")
    listing.set_defaults(func=run_graders)


def _samples(lines: list[str]) -> tuple[list[dict | None], list[Sample]]:
    records, samples = [], []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            records.append(None)
            continue
        reference = {k: v for k, v in record.items() if k not in ("completion", "prompt")}
        records.append(record)
        samples.append(Sample(record.get("completion"), reference, str(record.get("prompt", ""))))
    return records, samples


def _chunks(stream: IO[str]) -> Iterator[list[str]]:
    chunk = []
    for line in stream:
        if line.strip():
            chunk.append(line)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _summary(grades: list[Grade], seconds: float) -> str:
    n = len(grades)
    correct = sum(g.correct is True for g in grades)
    judged = sum(g.correct is not None for g in grades)
    errors = Counter((g.error or "").split(":")[0] for g in grades if g.error)
    lines = [f"graded {n} samples in {seconds:.2f}s ({n / max(seconds, 1e-9):.1f}/s)",
             f"correct {correct}/{judged}" + (f" ({correct / judged:.1%})" if judged else ""),
             f"mean score {sum(g.score for g in grades) / max(n, 1):.4f}"]
    lines += [f"error {kind}: {count}" for kind, count in errors.most_common()]
    return "\n".join(lines)


def run_grade(args: argparse.Namespace) -> int:
    try:
        term = RewardTerm(grader=args.grader, params=json.loads(args.params))
    except (ValidationError, json.JSONDecodeError) as exc:
        print(f"rlvr grade: {exc}", file=sys.stderr)
        return 2
    try:
        source = open(args.input, encoding="utf-8")
        sink = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    except OSError as exc:
        print(f"rlvr grade: {exc}", file=sys.stderr)
        return 2
    all_grades: list[Grade] = []
    start = time.perf_counter()
    with source, RewardScorer(workers=args.workers, timeout_s=args.timeout) as scorer:
        for lines in _chunks(source):
            records, samples = _samples(lines)
            grades = iter(scorer.grade(term, samples))
            for line, record in zip(lines, records):
                grade = next(grades) if record is not None else Grade(0.0, error="invalid_json_line")
                all_grades.append(grade)
                out = record if record is not None else {"line": line.rstrip("\n")}
                sink.write(json.dumps({**out, "score": grade.score, "correct": grade.correct,
                                       "error": grade.error}) + "\n")
    if sink is not sys.stdout:
        sink.close()
    print(_summary(all_grades, time.perf_counter() - start), file=sys.stderr)
    return 0


def run_graders(args: argparse.Namespace) -> int:
    rows = []
    for name, entry in sorted(registry.entries().items()):
        try:
            description = registry.get(name).description
        except registry.GraderLoadError as exc:
            description = f"(unavailable: {exc})"
        rows.append((name, f"{entry.package} {entry.version}", description))
    rows += [(name, "(clash)", f"(unavailable: {error})") for name, error in registry.clashes().items()]
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, origin, description in rows:
        print(f"{name:<{width[0]}}  {origin:<{width[1]}}  {description}")
    return 0
