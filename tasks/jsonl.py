"""`jsonl`: prompts and reference answers from a JSONL or parquet file.

Each row gives a prompt (`prompt_field`: a string, or chat messages [{"role", "content"}, ...]) and reference
fields: `answer_field` becomes reference["answer"] (a string, or a number turned into one), and every name in
`reference_fields` is copied as-is (e.g. "tests" for the code grader). Parquet is read by extension
(.parquet, .pq), anything else as JSONL (one JSON object per line, blank lines ignored).

    tasks:
      - name: gsm8k
        kind: jsonl
        params: {path: data/gsm8k.jsonl, eval_fraction: 0.05, system_prompt: "Think, then answer."}

Splits: either `eval_path` (a second file; training rows whose prompt also appears there are dropped) or
`eval_fraction` (a row goes to eval when a hash of its prompt falls below the fraction, so the split is
stable across runs and seeds, and duplicate prompts always land on the same side). Training cycles through
the rows, reshuffled each epoch by the seed; a row keeps its id ("<task>/train/<line>") across epochs.

Bad rows (missing field, wrong type, invalid JSON, a line that is not UTF-8) are skipped and counted:
`task.skipped`, the first few `task.skip_reasons`, and one warning line on the log. A file in which no row has
a required field is an error naming the field and the fields the first row does have.

Prompt options: `prompt_template` ("...{prompt}...") rewrites a string prompt, or the last user message of a
chat prompt; `system_prompt` turns a string prompt into system + user messages, and is put in front of chat
prompts that have no system message.

Not covered: Hugging Face hub datasets, field paths into nested objects, files larger than memory (all rows
are read when the task is built). Relative paths are relative to the working directory.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.base import Example, Prompt, TaskSpec, build_prompt, check_template, epoch_order

log = logging.getLogger(__name__)
MAX_REASONS = 5  # skip reasons kept for the error message and the warning


class JsonlParams(BaseModel):
    """Where the rows are, which fields hold prompt and reference, how to split and format them."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Training data: a .jsonl file (one object per line) or a .parquet file.")
    prompt_field: str = Field("prompt", description="Row field with the prompt: a string or chat messages.")
    answer_field: str | None = Field(
        "answer", description="Row field copied into reference['answer'] as a string; null for none."
    )
    reference_fields: list[str] = Field(
        default_factory=list, description="More row fields copied as-is into reference (e.g. ['tests'])."
    )
    eval_path: str | None = Field(None, description="Held-out rows from a separate file (same format).")
    eval_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="Share of rows held out for eval, chosen by a hash of the prompt."
    )
    prompt_template: str | None = Field(
        None, description="Rewrites each prompt; {prompt} is replaced by the row's prompt (literal braces: {{ }})."
    )
    system_prompt: str | None = Field(
        None, description="System message: string prompts become chat messages; chat prompts without one get it."
    )

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, template: str | None) -> str | None:
        return None if template is None else check_template(template, "prompt")

    @model_validator(mode="after")
    def _consistent(self) -> JsonlParams:
        if self.eval_path is not None and self.eval_fraction > 0:
            raise ValueError("set eval_path or eval_fraction, not both")
        if self.answer_field is None and not self.reference_fields:
            raise ValueError("answer_field is null and reference_fields is empty: graders would get no reference")
        return self


def read_rows(path: Path) -> list[tuple[int, Any]]:
    """(row number, row) pairs: 1-based line numbers for JSONL, 0-based row indices for parquet.
    A JSONL line that is not UTF-8 or not valid JSON comes back as its UnicodeDecodeError or JSONDecodeError
    in place of the row: each line is decoded on its own, so one bad byte costs one row, not the file."""
    if path.suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist()))
    rows: list[tuple[int, Any]] = []
    with path.open("rb") as f:
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append((line_no, json.loads(line.decode("utf-8"))))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    rows.append((line_no, exc))
    return rows


def prompt_key(prompt: Any) -> str:
    """A stable digest of a row's raw prompt: the split key, and what eval_path overlap is checked on."""
    return hashlib.sha256(json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def in_eval(key: str, fraction: float) -> bool:
    return int(key[:16], 16) / 2**64 < fraction


class BadRow(Exception):
    """A row that is skipped; the message is the reason."""


def require(row: dict[str, Any], field: str) -> Any:
    if row.get(field) is None:
        raise BadRow(f"missing field {field!r}")
    return row[field]


def wrong_type(field: str, value: Any, expected: str) -> BadRow:
    return BadRow(f"field {field!r} is {type(value).__name__}, expected {expected}")


def chat_messages(value: list[Any], field: str) -> list[dict[str, str]]:
    messages = []
    for i, message in enumerate(value):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):
            raise BadRow(f"field {field!r}: message {i} is not {{'role': str, 'content': str}}")
        messages.append({"role": message["role"], "content": message["content"]})
    if not messages:
        raise BadRow(f"field {field!r} is an empty list of messages")
    return messages


def format_prompt(raw: str | list[Any], params: JsonlParams) -> Prompt:
    """Apply prompt_template and system_prompt to a row's prompt (see the module docstring)."""
    template, system = params.prompt_template, params.system_prompt
    if isinstance(raw, str):
        if not raw.strip():
            raise BadRow(f"field {params.prompt_field!r} is an empty string")
        return build_prompt(raw if template is None else template.format(prompt=raw), system)
    messages = chat_messages(raw, params.prompt_field)
    if template is not None:
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if not users:
            raise BadRow(f"field {params.prompt_field!r} has no user message for prompt_template")
        last = messages[users[-1]]
        last["content"] = template.format(prompt=last["content"])
    if system is not None and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system})
    return messages


class JsonlTask:
    """Rows of a file as examples; see the module docstring for splitting, skipping and prompt options."""

    def __init__(self, params: JsonlParams, seed: int, name: str = "jsonl"):
        self.name = name
        self.params = params
        self.seed = seed
        self.skipped = 0
        self.skip_reasons: list[str] = []
        rows = self._parse(params.path, "path")
        if params.eval_path is not None:
            eval_rows = self._parse(params.eval_path, "eval_path")
            eval_keys = {key for key, _ in eval_rows}
            train_rows = [(key, ex) for key, ex in rows if key not in eval_keys]
            self.dropped_overlap = len(rows) - len(train_rows)  # training rows whose prompt is in eval_path
        else:
            eval_rows = [(key, ex) for key, ex in rows if in_eval(key, params.eval_fraction)]
            train_rows = [(key, ex) for key, ex in rows if not in_eval(key, params.eval_fraction)]
            self.dropped_overlap = 0
        self._train = [self._example(ex, "train") for _, ex in train_rows]
        self._eval = [self._example(ex, "eval") for _, ex in eval_rows]
        if not self._train:
            raise ValueError(
                f"task {name!r}: no training rows left in {params.path} after the eval split "
                f"({len(self._eval)} eval rows); lower eval_fraction or check eval_path"
            )
        if self.skipped:
            log.warning(
                "task %r: skipped %d bad rows (first: %s); the other rows are used",
                name, self.skipped, self.skip_reasons[0],
            )

    def train_example(self, index: int) -> Example:
        epoch, position = divmod(index, len(self._train))
        return self._train[epoch_order(len(self._train), self.seed, epoch)[position]]

    def eval_examples(self) -> list[Example]:
        return list(self._eval)

    def _parse(self, file: str, param: str) -> list[tuple[str, dict[str, Any]]]:
        """(prompt key, parsed row) for every usable row of one file; bad rows are counted in self.skipped."""
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(
                f"task {self.name!r}: params.{param} = {file!r}: no such file (looked at {path.resolve()}); "
                "point it at an existing .jsonl or .parquet file"
            )
        rows = read_rows(path)
        usable, reasons = [], []
        for row_no, row in rows:
            try:
                usable.append(self._parse_row(row, row_no, file))
            except BadRow as exc:
                reasons.append(f"{file}:{row_no}: {exc}")
        self.skipped += len(reasons)
        self.skip_reasons += reasons[: MAX_REASONS - len(self.skip_reasons)]
        if not usable:
            first = reasons[0] if reasons else "the file has no rows"
            raise ValueError(self._no_usable_rows(file, param, [row for _, row in rows], first))
        return usable

    def _parse_row(self, row: Any, row_no: int, file: str) -> tuple[str, dict[str, Any]]:
        if isinstance(row, UnicodeDecodeError):
            raise BadRow(f"not valid UTF-8 (byte 0x{row.object[row.start]:02x} at byte {row.start + 1} of the line)")
        if isinstance(row, json.JSONDecodeError):
            raise BadRow(f"invalid JSON ({row.msg})")
        if not isinstance(row, dict):
            raise BadRow(f"not a JSON object but {type(row).__name__}")
        p = self.params
        raw = require(row, p.prompt_field)
        if not isinstance(raw, (str, list)):
            raise wrong_type(p.prompt_field, raw, "a string or a list of chat messages")
        reference = {field: require(row, field) for field in p.reference_fields}
        if p.answer_field is not None:
            answer = require(row, p.answer_field)
            if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
                raise wrong_type(p.answer_field, answer, "a string or a number")
            reference["answer"] = str(answer)
        parsed = {"prompt": format_prompt(raw, p), "reference": reference, "row": row_no, "source": file}
        return prompt_key(raw), parsed

    def _example(self, parsed: dict[str, Any], split: str) -> Example:
        return Example(
            id=f"{self.name}/{split}/{parsed['row']}",
            task=self.name,
            prompt=parsed["prompt"],
            reference=parsed["reference"],
            meta={"source": parsed["source"], "row": parsed["row"]},
        )

    def _no_usable_rows(self, file: str, param: str, rows: list[Any], first: str) -> str:
        p = self.params
        required = [("prompt_field", p.prompt_field), ("answer_field", p.answer_field)]
        required += [("reference_fields", field) for field in p.reference_fields]
        objects = [row for row in rows if isinstance(row, dict)]
        for setting, field in required:
            if field is not None and objects and not any(field in row for row in objects):
                present = ", ".join(repr(k) for k in objects[0]) or "none"
                return (
                    f"task {self.name!r}: no row of {file} (params.{param}) has the field {field!r}; "
                    f"the first row has: {present}. Set params.{setting} to the field that holds it."
                )
        return f"task {self.name!r}: no usable row in {file} (params.{param}); first problem: {first}"


SPEC = TaskSpec(
    name="jsonl",
    description="Prompts and reference answers from a JSONL or parquet file (string or chat prompts).",
    Params=JsonlParams,
    build=JsonlTask,
)
