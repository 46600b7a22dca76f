"""`dataset` (first named `jsonl`): prompts and references from the rows of a data set.

    tasks:
      - name: dataset
        label: word-problems
        params: {path: data/problems.parquet, prompt_field: question, answer_field: final, eval_fraction: 0.05}

Rows come from tasks/sources.py: JSONL/JSON/parquet/CSV/TSV/Arrow files or globs of them, `save_to_disk`
folders, folders of data files, hub ids. Column mapping: `prompt_field` (a string, or chat messages
[{"role", "content"}, ...]); `answer_field` becomes reference["answer"] (a string, or a number made one);
`reference_fields` copies more columns as-is: a list of names, or {reference key: column} to rename.
`answer_field: null` with no `reference_fields` reads rows with just a prompt (reference {}): for tasks graded
only by graders that need no reference, such as reward_model; engine/config.py's TaskConfig checks that.
The standard formats (tasks/presets/: gsm8k, math, humaneval, mbpp, apps, code_contests, livecodebench) are
this task with their own row mapping (`RowFormat`) and prompt template.

Splits: `eval_path` (another source) and/or `eval_split` (a split of it, or of `path`: `eval_split: test` for
a hub id); training rows whose prompt also appears there are dropped (`task.dropped_overlap`). Or
`eval_fraction`: a row is held out when a hash of its prompt falls below the fraction, so the split is the same
across runs and seeds and duplicate prompts land on the same side. `eval_limit` keeps only the first N held-out
rows (with eval_fraction the others then train). Training cycles through the rows, reshuffled each epoch by the
seed; a row keeps its id ("<task>/train/<row>") across epochs.

Streaming (`streaming: true`, for data larger than memory): at start only the held-out rows are read (with
eval_fraction: one pass over the source, stopped at eval_limit) plus a first look that the columns are there;
epoch e is one pass over the source shuffled through a buffer of `shuffle_buffer` rows by (seed, e).
`train_example(i)` is still a function of (params, seed, i): the trainer asks in order (O(1) each); a resumed
run re-reads the source up to its cursor once.

Bad rows (missing column, wrong type, invalid JSON, a line that is not UTF-8, ...) are skipped and counted:
`task.skipped`, the first few `task.skip_reasons`, one warning line on the log (streaming: counted as they are
read). A source in which no row is usable is an error naming the column and the columns the first row has.

Prompt options: `prompt_template` ("...{prompt}...") rewrites a string prompt, or the last user message of a
chat prompt; `system_prompt` turns a string prompt into system + user messages, and is put in front of chat
prompts that have no system message.

For the contamination check (tasks/contamination.py) the task lists its training rows (`train_rows()`) and can
drop some (`drop_train(ids)`); each example's meta has `text`, the problem statement without any template or
instruction a preset adds.
Not covered: nested column paths (`meta.answer`), several hub configurations in one task, row weights.
Relative paths are relative to the working directory.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import random
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.base import Example, Prompt, TaskSpec, build_prompt, check_template, epoch_order
from tasks.sources import FileSource, Row, RowSource, SourceError, open_source

log = logging.getLogger(__name__)
MAX_REASONS = 5  # skip reasons kept for the error message and the warning
FIRST_LOOK = 1000  # streaming: rows read at start to check that some row is usable
HINT_ROWS = 100  # rows kept to say which columns a source has, when none is usable


class SourceParams(BaseModel):
    """Where the rows are, how to split them and how to format prompts (every dataset task and preset)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="The rows: a .jsonl/.json/.parquet/.csv/.tsv/.arrow file, a glob of such files, a "
                      "save_to_disk folder or a folder of data files, or a hub id org/name (when the hub is "
                      "reachable).")
    config_name: str | None = Field(None, description="Configuration of a hub dataset (e.g. `main` for openai/gsm8k).")
    split: str = Field("train", description="Split to train on, for hub ids and folders with splits (a file is one "
                       "split).")
    eval_path: str | None = Field(None, description="Held-out rows from another source (same kinds as path).")
    eval_split: str | None = Field(None, description="Held-out split, of eval_path if set, else of path (e.g. `test`).")
    eval_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="Share of rows held out for eval, chosen by a hash of the prompt.")
    eval_limit: int | None = Field(None, ge=1, description="Keep at most this many held-out rows (the first in source "
                                   "order); null: all.")
    prompt_template: str | None = Field(
        None, description="Rewrites each prompt; {prompt} is replaced by the row's prompt (literal braces: {{ }}).")
    system_prompt: str | None = Field(
        None, description="System message: string prompts become chat messages; chat prompts without one get it.")
    streaming: bool = Field(False, description="Read training rows as training needs them, never all at once (data "
                            "larger than memory); epochs are shuffled through a buffer.")
    shuffle_buffer: int = Field(10_000, ge=1, description="Rows held to shuffle each epoch when streaming.")

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, template: str | None) -> str | None:
        return None if template is None else check_template(template, "prompt")

    @model_validator(mode="after")
    def _one_split_rule(self) -> SourceParams:
        if (self.eval_path is not None or self.eval_split is not None) and self.eval_fraction > 0:
            raise ValueError("set eval_path/eval_split or eval_fraction, not both")
        return self


class DatasetParams(SourceParams):
    """A source plus the columns that hold the prompt and the reference."""

    prompt_field: str = Field("prompt", description="Column with the prompt: a string or chat messages.")
    answer_field: str | None = Field(
        "answer", description="Column copied into reference['answer'] as a string; null for none.")
    reference_fields: list[str] | dict[str, str] = Field(
        default_factory=list, description="More columns copied as-is into reference: a list of names (e.g. "
        "['tests']), or {reference key: column} to rename.")


# --------------------------------------------------------------------------------------------- row formats


class BadRow(Exception):
    """A row that is skipped; the message is the reason."""


@dataclass(frozen=True)
class Mapped:
    """A row as a task sees it: the prompt (text or chat messages, before any template), what graders read
    (`reference`), what to keep in the example's meta, the column the prompt came from (for errors), and the
    problem statement alone when the prompt adds instructions to it (`text`, for the contamination check)."""

    prompt: str | list[Any]
    reference: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    prompt_field: str = "prompt"
    text: str | None = None


@dataclass(frozen=True)
class RowFormat:
    """How rows become examples. `map_row(row, params)` returns a Mapped or raises BadRow; `columns(params)` lists
    (param naming it or None, column) for the columns every row needs, for the error when no row is usable."""

    name: str
    map_row: Callable[[dict[str, Any], Any], Mapped]
    columns: Callable[[Any], list[tuple[str | None, str]]]


def require(row: dict[str, Any], column: str) -> Any:
    if row.get(column) is None:
        raise BadRow(f"missing field {column!r}")
    return row[column]


def wrong_type(column: str, value: Any, expected: str) -> BadRow:
    return BadRow(f"field {column!r} is {type(value).__name__}, expected {expected}")


def reference_columns(params: DatasetParams) -> dict[str, str]:
    fields = params.reference_fields
    return dict(fields) if isinstance(fields, dict) else {name: name for name in fields}


def map_columns(row: dict[str, Any], p: DatasetParams) -> Mapped:
    raw = require(row, p.prompt_field)
    if not isinstance(raw, (str, list)):
        raise wrong_type(p.prompt_field, raw, "a string or a list of chat messages")
    reference = {key: require(row, column) for key, column in reference_columns(p).items()}
    if p.answer_field is not None:
        answer = require(row, p.answer_field)
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise wrong_type(p.answer_field, answer, "a string or a number")
        reference["answer"] = str(answer)
    return Mapped(raw, reference, prompt_field=p.prompt_field)


def mapped_columns(p: DatasetParams) -> list[tuple[str | None, str]]:
    needed = [("prompt_field", p.prompt_field)] + ([("answer_field", p.answer_field)] if p.answer_field else [])
    return needed + [("reference_fields", column) for column in reference_columns(p).values()]


COLUMNS = RowFormat("dataset", map_columns, mapped_columns)


# --------------------------------------------------------------------------------------------- prompts


def prompt_key(prompt: Any) -> str:
    """A stable digest of a row's raw prompt: the split key, and what held-out overlap is checked on."""
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def in_eval(key: str, fraction: float) -> bool:
    return int(key[:16], 16) / 2**64 < fraction


def chat_messages(value: list[Any], column: str) -> list[dict[str, str]]:
    messages = []
    for i, message in enumerate(value):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):
            raise BadRow(f"field {column!r}: message {i} is not {{'role': str, 'content': str}}")
        messages.append({"role": message["role"], "content": message["content"]})
    if not messages:
        raise BadRow(f"field {column!r} is an empty list of messages")
    return messages


def format_prompt(raw: str | list[Any], params: SourceParams, column: str) -> Prompt:
    """Apply prompt_template and system_prompt to a row's prompt (see the module docstring)."""
    template, system = params.prompt_template, params.system_prompt
    if isinstance(raw, str):
        if not raw.strip():
            raise BadRow(f"field {column!r} is an empty string")
        return build_prompt(raw if template is None else template.format(prompt=raw), system)
    messages = chat_messages(raw, column)
    if template is not None:
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if not users:
            raise BadRow(f"field {column!r} has no user message for prompt_template")
        last = messages[users[-1]]
        last["content"] = template.format(prompt=last["content"])
    if system is not None and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def problem_text(raw: str | list[Any]) -> str:
    """The problem as plain text: a string prompt, or the contents of a chat prompt's non-system messages."""
    if isinstance(raw, str):
        return raw
    return "\n".join(m["content"] for m in raw if isinstance(m, dict) and m.get("role") != "system"
                     and isinstance(m.get("content"), str))


# --------------------------------------------------------------------------------------------- the task


class Parsed(NamedTuple):
    prompt_key: str  # prompt_key() of the raw prompt: the split key
    row_key: str  # the row's key in its source, the last part of the example id
    prompt: Prompt
    reference: dict[str, Any]
    meta: dict[str, Any]


class DatasetTask:
    """Rows of a source as examples; see the module docstring for splitting, streaming, skipping and prompts."""

    def __init__(self, params: SourceParams, seed: int, name: str = "dataset", row_format: RowFormat = COLUMNS):
        self.name = name
        self.params = params
        self.seed = seed
        self.format = row_format
        self.skipped = 0
        self.skip_reasons: list[str] = []
        self.dropped_overlap = 0  # training rows whose prompt is in the held-out source
        self.dropped_contaminated = 0  # training rows dropped by the contamination check
        self._noted: set[tuple[str, str]] = set()  # streaming: rows already counted (skipped or overlapping)
        self._dropped_ids: set[str] = set()
        self._warned = False
        self._train: list[Example] | None = None  # None when streaming
        p = params
        self._source = self._open(p.path, "path", p.split)
        eval_keys: set[str] = set()
        self._eval: list[Example] = []
        if p.eval_path is not None or p.eval_split is not None:
            param = "eval_path" if p.eval_path is not None else "eval_split"
            held = self._open(p.eval_path or p.path, param, p.eval_split or "train")
            parsed = self._usable(held, param, limit=p.eval_limit)
            eval_keys = {row.prompt_key for row in parsed}
            self._eval = [self._example(row, "eval") for row in parsed]
        self._check_overlap = bool(eval_keys)
        if p.streaming:
            if p.eval_fraction > 0:
                parsed = self._usable(self._source, "path", limit=p.eval_limit,
                                      keep=lambda row: in_eval(row.prompt_key, p.eval_fraction))
                eval_keys = {row.prompt_key for row in parsed}
                self._eval = [self._example(row, "eval") for row in parsed]
            self._eval_keys = eval_keys
            self._stream = StreamCursor(self._stream_pass, p.shuffle_buffer, seed, self._empty_message())
            self._usable(self._source, "path", limit=1, look=FIRST_LOOK)  # fail now if the columns are wrong
        else:
            rows = self._usable(self._source, "path")
            if p.eval_fraction > 0:
                held = [row for row in rows if in_eval(row.prompt_key, p.eval_fraction)][: p.eval_limit]
                eval_keys = {row.prompt_key for row in held}
                self._eval = [self._example(row, "eval") for row in held]
            train = [row for row in rows if row.prompt_key not in eval_keys]
            if self._check_overlap:
                self.dropped_overlap = len(rows) - len(train)
            self._train = [self._example(row, "train") for row in train]
            if not self._train:
                raise ValueError(self._empty_message())
        if self.skipped:
            log.warning("task %r: skipped %d bad rows (first: %s); the other rows are used",
                        name, self.skipped, self.skip_reasons[0])
        self._warned = True  # from here on (streaming), the first new bad row is the one warning

    # -- the Task protocol

    def train_example(self, index: int) -> Example:
        if self._train is None:
            return self._stream.get(index)
        epoch, position = divmod(index, len(self._train))
        return self._train[epoch_order(len(self._train), self.seed, epoch)[position]]

    def eval_examples(self) -> list[Example]:
        return list(self._eval)

    # -- for the contamination check

    def train_rows(self) -> Iterator[Example]:
        """Every training example once, in source order (streaming: one pass over the source)."""
        return iter(self._train) if self._train is not None else self._stream_pass()

    def drop_train(self, ids: Iterable[str]) -> int:
        """Drop these training examples; returns how many ids were new. An emptied task is an error."""
        new = set(ids) - self._dropped_ids
        self._dropped_ids |= new
        self.dropped_contaminated += len(new)
        if self._train is not None:
            self._train = [ex for ex in self._train if ex.id not in self._dropped_ids]
            if not self._train:
                raise ValueError(f"task {self.name!r}: every training row overlaps a held-out set; nothing is left "
                                 "to train on (set eval.drop_contaminated: false, or fix the data)")
        return len(new)

    # -- reading

    def _what(self, param: str) -> str:
        return f"task {self.name!r}: params.{param}"

    def _open(self, path: str, param: str, split: str) -> RowSource:
        """The source of `path` (param: "path", "eval_path", or "eval_split" for held-out rows of path)."""
        p = self.params
        split_key = "split" if param == "path" else "eval_split"
        source = open_source(path, self._what("eval_path" if param == "eval_path" else "path"), split,
                             p.config_name, p.streaming, f"params.{split_key}")
        if isinstance(source, FileSource) and split != "train":
            raise SourceError(
                f"task {self.name!r}: params.{split_key} = {split!r}, but {path!r} is a file, which has one split; "
                "splits apply to hub ids and dataset folders (for held-out rows in another file use eval_path)")
        return source

    def _parse(self, row: Row) -> Parsed:
        value = row.value
        if isinstance(value, UnicodeDecodeError):
            raise BadRow(f"not valid UTF-8 (byte 0x{value.object[value.start]:02x} at byte {value.start + 1} "
                         "of the line)")
        if isinstance(value, json.JSONDecodeError):
            raise BadRow(f"invalid JSON ({value.msg})")
        if not isinstance(value, dict):
            raise BadRow(f"not a JSON object but {type(value).__name__}")
        mapped = self.format.map_row(value, self.params)
        prompt = format_prompt(mapped.prompt, self.params, mapped.prompt_field)
        text = mapped.text if mapped.text is not None else problem_text(mapped.prompt)
        meta = {"source": row.source, "row": row.number, **mapped.meta, "text": text}
        return Parsed(prompt_key(mapped.prompt), row.key, prompt, mapped.reference, meta)

    def _skip(self, row: Row, reason: str) -> None:
        if self.params.streaming:  # every pass reads the row again: count it once
            if (row.source, row.key) in self._noted:
                return
            self._noted.add((row.source, row.key))
        self.skipped += 1
        if len(self.skip_reasons) < MAX_REASONS:
            self.skip_reasons.append(f"{row.source}:{row.number}: {reason}")
        if self._warned and self.skipped == 1:
            log.warning("task %r: skipping bad rows as they are read (first: %s)", self.name, self.skip_reasons[0])

    def _usable(self, source: RowSource, param: str, limit: int | None = None, look: int | None = None,
                keep: Callable[[Parsed], bool] = lambda row: True) -> list[Parsed]:
        """Parsed rows that `keep` accepts, up to `limit`, reading at most `look` rows; bad rows are counted.
        No usable row at all is an error that names the column to fix."""
        usable: list[Parsed] = []
        seen: list[Any] = []
        first_problem, parsed_any = None, False
        for count, row in enumerate(source.rows()):
            if look is not None and count >= look:
                break
            if len(seen) < HINT_ROWS:
                seen.append(row.value)
            try:
                parsed = self._parse(row)
            except BadRow as exc:
                first_problem = first_problem or f"{row.source}:{row.number}: {exc}"
                if look is None:  # a first look at a streamed source counts nothing (the passes will)
                    self._skip(row, str(exc))
                continue
            parsed_any = True
            if keep(parsed):
                usable.append(parsed)
                if limit is not None and len(usable) >= limit:
                    break
        if not parsed_any:
            raise ValueError(self._no_usable_rows(source.description, param, seen,
                                                  first_problem or "the source has no rows"))
        return usable

    def _stream_pass(self) -> Iterator[Example]:
        """One unshuffled pass over the training rows of a streamed source."""
        for row in self._source.rows():
            try:
                parsed = self._parse(row)
            except BadRow as exc:
                self._skip(row, str(exc))
                continue
            if parsed.prompt_key in self._eval_keys:
                if self._check_overlap and (row.source, "overlap:" + row.key) not in self._noted:
                    self._noted.add((row.source, "overlap:" + row.key))
                    self.dropped_overlap += 1
                continue
            example = self._example(parsed, "train")
            if example.id not in self._dropped_ids:
                yield example

    def _example(self, parsed: Parsed, split: str) -> Example:
        return Example(id=f"{self.name}/{split}/{parsed.row_key}", task=self.name, prompt=parsed.prompt,
                       reference=parsed.reference, meta=parsed.meta)

    def _empty_message(self) -> str:
        return (f"task {self.name!r}: no training rows left in {self.params.path} after the eval split "
                f"({len(self._eval)} eval rows); lower eval_fraction or check eval_path/eval_split")

    def _no_usable_rows(self, description: str, param: str, rows: list[Any], first: str) -> str:
        objects = [row for row in rows if isinstance(row, dict)]
        for setting, column in self.format.columns(self.params):
            if objects and not any(column in row for row in objects):
                present = ", ".join(repr(k) for k in objects[0]) or "none"
                fix = (f"Set params.{setting} to the field that holds it." if setting else
                       f"The {self.format.name} preset reads the columns "
                       f"{', '.join(repr(c) for _, c in self.format.columns(self.params))}; rename the columns, or "
                       "use the `dataset` task and name them with prompt_field/answer_field/reference_fields.")
                return (f"task {self.name!r}: no row of {description} (params.{param}) has the field {column!r}; "
                        f"the first row has: {present}. {fix}")
        return f"task {self.name!r}: no usable row in {description} (params.{param}); first problem: {first}"


class StreamCursor:
    """The training examples of a streamed source in order: epoch e is one pass over the source, shuffled through
    a buffer by (seed, e). Asking for the next index costs O(1); an earlier index restarts from the beginning."""

    def __init__(self, one_pass: Callable[[], Iterator[Example]], buffer: int, seed: int, empty_message: str):
        self.one_pass, self.buffer, self.seed, self.empty_message = one_pass, buffer, seed, empty_message
        self._examples: Iterator[Example] | None = None
        self._position = 0

    def get(self, index: int) -> Example:
        if self._examples is None or index < self._position:
            self._examples, self._position = self._all_epochs(), 0
        for _ in range(index - self._position):
            next(self._examples)
        self._position = index + 1
        return next(self._examples)

    def _all_epochs(self) -> Iterator[Example]:
        for epoch in itertools.count():
            count = 0
            for example in buffered_shuffle(self.one_pass(), self.buffer, random.Random(f"stream:{self.seed}:{epoch}")):
                count += 1
                yield example
            if not count:
                raise ValueError(self.empty_message)


def buffered_shuffle(items: Iterable[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Items in an order shuffled through a buffer of `size` (each output drawn from the buffer, then refilled)."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = rng.randrange(size)
        yield buffer[j]
        buffer[j] = item
    rng.shuffle(buffer)
    yield from buffer


def dataset_spec(name: str, description: str, params: type[SourceParams], row_format: RowFormat) -> TaskSpec:
    """A TaskSpec for a dataset task with its own params and row format (how the presets register)."""
    return TaskSpec(name=name, description=description, Params=params, build=partial(DatasetTask,
                                                                                      row_format=row_format))


SPEC = dataset_spec("dataset", "Prompts and references from a data set's columns: JSONL/JSON/parquet/CSV/Arrow "
                    "files, save_to_disk folders, hub ids.", DatasetParams, COLUMNS)
JSONL_SPEC = dataset_spec("jsonl", "The `dataset` task under its first name (same params).", DatasetParams, COLUMNS)
