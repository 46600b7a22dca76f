"""`rlvr grade` and `rlvr graders`: grade a JSONL file from the shell, list the graders this install knows.

    rlvr grade --grader math answers.jsonl -o graded.jsonl     # lines: {"completion": ..., "answer": ...}
    rlvr grade --grader number --params '{"abs_tol": 0.01}' answers.jsonl > graded.jsonl
    rlvr graders

Each output line is the input line plus `score`, `correct` and `error`; every field other than
`completion` and `prompt` is passed to the grader as a reference field. A summary (counts, mean score,
errors by kind, throughput) goes to stderr. Exit status 0 unless the command itself is misused (unknown
grader, bad params or options, unreadable input, `-o` naming the input file): each misuse is one line on
stderr naming the option, exit status 2. Bad lines are graded as errors, not fatal: a line that is not UTF-8
gets `error="invalid_utf8_line"`, one that is not a JSON object `error="invalid_json_line"`; either way the
output keeps one line per non-blank input line.

`-o FILE` is written to a temporary file beside FILE and renamed onto it at the end, so a crash leaves FILE
as it was (after a SIGKILL a stray `.FILE.*.tmp` may remain beside it); stdout, and `-o` naming something
that is not a regular file (`/dev/null`, a FIFO), are written as grading goes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import stat
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, Iterator

from pydantic import ValidationError

from graders import registry
from graders.base import Grade, Sample
from graders.rewards import RewardScorer, RewardTerm

CHUNK = 1024


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    grade = subparsers.add_parser("grade", help="grade the completions of a JSONL file")
    grade.add_argument("input", help="JSONL file, one {\"completion\": ..., <reference fields>} per line")
    grade.add_argument("--grader", required=True, help="grader name (see `rlvr graders`)")
    grade.add_argument("--params", type=json_object, default="{}", help="grader parameters as a JSON object")
    grade.add_argument("-o", "--output", help="output JSONL file (default: stdout); must not be the input")
    grade.add_argument("--workers", type=positive_int, default=2, help="grading worker processes")
    grade.add_argument("--timeout", type=positive_seconds, default=10.0,
                       help="CPU seconds allowed per sample (a wall-clock backstop also applies)")
    grade.set_defaults(func=run_grade)
    listing = subparsers.add_parser("graders", help="list the available graders")
    listing.set_defaults(func=run_graders)


def json_object(text: str) -> dict[str, Any]:
    """argparse type of --params: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({exc.msg} at character {exc.pos + 1}); pass a JSON object, e.g. '{{\"abs_tol\": 0.01}}'"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object ({{\"key\": value, ...}}), got a JSON {type(value).__name__}"
        )
    return value


def positive_int(text: str) -> int:
    """argparse type of --workers: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type of --timeout: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0 (e.g. 10 or 0.5), got {text!r}")
    return value


class Misuse(Exception):
    """The command was misused; the message is the one line printed to stderr (exit status 2)."""


def reward_term(grader: str, params: dict[str, Any]) -> RewardTerm:
    """The term `rlvr grade` scores, with errors that name the option at fault."""
    try:
        Params = registry.get(grader).Params
    except (registry.GraderNotFound, registry.GraderLoadError, registry.DuplicateGrader) as exc:
        raise Misuse(f"--grader {grader}: {exc}") from None
    try:
        Params.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(_param_problem(error, Params) for error in exc.errors())
        raise Misuse(f"--params: params of grader {grader!r}: {problems}") from None
    return RewardTerm(grader=grader, params=params)


def _param_problem(error: dict[str, Any], Params: Any) -> str:
    where = ".".join(map(str, error["loc"])) or "(params)"
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
        known = ", ".join(Params.model_fields) or "none"
        return f"unknown key {where!r} (valid keys: {known})"
    return f"{where}: {error['msg']}"


def check_not_input(input_path: str, output_path: str | None) -> None:
    """Refuse an output that is the input file, compared by inode: `-o ./X`, a hard link or a symlink to X
    count, and so does stdout (`rlvr grade X >> X`)."""
    try:
        source = os.stat(input_path)
        sink = os.stat(output_path) if output_path is not None else os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):  # no such output yet, or stdout is not a file; an unreadable input is reported later
        return
    if stat.S_ISREG(sink.st_mode) and os.path.samestat(source, sink):
        where = "stdout" if output_path is None else f"-o {output_path}"
        raise Misuse(f"{where} is the input file {input_path}; write the graded lines to another file")


def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object on one input line, or None and the error its output line gets."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "invalid_utf8_line"
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None, "invalid_json_line"
    if not isinstance(record, dict):
        return None, "invalid_json_line"
    return record, None


def _sample(record: dict[str, Any]) -> Sample:
    reference = {k: v for k, v in record.items() if k not in ("completion", "prompt")}
    prompt = record.get("prompt", "")
    prompt = prompt if isinstance(prompt, list) else str(prompt)  # chat messages stay messages (reward_model)
    return Sample(record.get("completion"), reference, prompt)


def _chunks(stream: BinaryIO) -> Iterator[list[bytes]]:
    chunk = []
    for line in stream:
        if line.strip():
            chunk.append(line)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def graded_lines(scorer: RewardScorer, term: RewardTerm, lines: list[bytes]) -> Iterator[tuple[dict, Grade]]:
    """(output object without the grade fields, grade) for each input line, in order."""
    parsed = [parse_line(line) for line in lines]
    grades = iter(scorer.grade(term, [_sample(record) for record, _ in parsed if record is not None]))
    for line, (record, error) in zip(lines, parsed):
        if record is not None:
            yield record, next(grades)
        else:
            yield {"line": line.decode("utf-8", "backslashreplace").rstrip("\r\n")}, Grade(0.0, error=error)


@contextmanager
def input_stream(path: str) -> Iterator[BinaryIO]:
    """The input file, read as bytes: each line is decoded on its own (see parse_line)."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise Misuse(f"cannot read the input file {path}: {exc.strerror}") from None
    with f:
        yield f


@contextmanager
def output_stream(path: str | None) -> Iterator[IO[str]]:
    """Where graded lines go: stdout, or a regular file that appears whole or not at all (see the docstring)."""
    if path is None:
        yield sys.stdout
        return
    target = Path(path).resolve()  # through a symlink: the link stays and points at the new content
    if target.is_dir():
        raise Misuse(f"-o {path} is a directory; name the output file, e.g. -o {Path(path) / 'graded.jsonl'}")
    try:
        f, tmp = _open_output(target)
    except OSError as exc:
        raise Misuse(f"-o {path}: cannot write there ({exc.strerror}); the output goes to a temporary file in "
                     "the same directory, then is renamed, so that directory must exist and be writable") from None
    try:
        with f:
            yield f
            if tmp is not None:
                f.flush()
                os.fsync(f.fileno())
        if tmp is not None:
            os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def _open_output(target: Path) -> tuple[IO[str], str | None]:
    """The file to write and, for a regular file, the temporary path that is renamed onto target at the end.
    Something that is not a regular file (/dev/null, a FIFO) is written directly: there is nothing to rename."""
    if target.exists() and not target.is_file():
        return open(target, "w", encoding="utf-8"), None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.fchmod(fd, _new_file_mode(target))
    return os.fdopen(fd, "w", encoding="utf-8"), tmp


def _new_file_mode(target: Path) -> int:
    """The replaced file's permissions, or what open() would give a new file (mkstemp's are 0600)."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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
    files = ExitStack()
    try:
        term = reward_term(args.grader, args.params)
        check_not_input(args.input, args.output)
        source = files.enter_context(input_stream(args.input))
        sink = files.enter_context(output_stream(args.output))
    except Misuse as exc:
        files.close()
        print(f"rlvr grade: {exc}", file=sys.stderr)
        return 2
    all_grades: list[Grade] = []
    start = time.perf_counter()
    with files, RewardScorer(workers=args.workers, timeout_s=args.timeout) as scorer:
        for lines in _chunks(source):
            for out, grade in graded_lines(scorer, term, lines):
                all_grades.append(grade)
                sink.write(json.dumps({**out, "score": grade.score, "correct": grade.correct,
                                       "error": grade.error}) + "\n")
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
