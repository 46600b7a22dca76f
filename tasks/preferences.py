"""Preference data for reward-model training: rows in TRL's explicit-prompt format, read by the dataset task.

    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"}
    {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
     "rejected": [{"role": "assistant", "content": "Go away."}]}

    data = load_preferences(PreferenceParams(path="prefs.jsonl"), seed=0)
    data.train_rows()      # Examples: prompt (text or chat messages), reference {"chosen", "rejected"[, "margin"]}
    data.eval_examples()   # the held-out pairs (10% by default, chosen by a hash of the prompt)
    data.skipped, data.skip_reasons

Everything about sources, splits and bad rows is tasks/dataset.py's: JSONL/JSON/parquet/CSV/Arrow files, globs,
`save_to_disk` folders and hub ids; `eval_fraction` (default 0.1 here), `eval_path` or `eval_split`; pairs that
share a prompt land on the same side. Bad rows are skipped and counted (`skipped`, `skip_reasons`): a missing
field, a wrong type, chosen == rejected, invalid JSON, a line that is not UTF-8.

`chosen`/`rejected` are strings or one assistant message (TRL's conversational format); `margin_field` names an
optional numeric column (TRL's `margin`) used by the loss. Torch-free, like the rest of tasks/.
Not covered: TRL's implicit-prompt format (no `prompt` column, the prompt inside chosen/rejected), multi-message
completions (tool calls), streaming (the rows are read into memory).
"""
from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tasks.dataset import (BadRow, DatasetTask, Mapped, RowFormat, SourceParams, chat_messages, require,
                           wrong_type)


class PreferenceParams(SourceParams):
    """A source of preference pairs and the columns that hold them."""

    eval_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="Share of pairs held out for eval, chosen by a hash of the prompt (0 when "
        "eval_path or eval_split is set).")
    prompt_field: str = Field("prompt", description="Column with the prompt: a string or chat messages.")
    chosen_field: str = Field("chosen", description="Column with the preferred response: a string or one "
                              "assistant message.")
    rejected_field: str = Field("rejected", description="Column with the dispreferred response.")
    margin_field: str | None = Field(None, description="Optional numeric column: how much better chosen is "
                                     "(the loss becomes -logsigmoid(r_chosen - r_rejected - margin)).")

    @model_validator(mode="before")
    @classmethod
    def _explicit_split_wins(cls, data: Any) -> Any:
        """eval_path/eval_split replace the default eval_fraction instead of clashing with it."""
        if isinstance(data, dict) and (data.get("eval_path") or data.get("eval_split")) \
                and "eval_fraction" not in data:
            data = {**data, "eval_fraction": 0.0}
        return data

    @model_validator(mode="after")
    def _in_memory(self) -> PreferenceParams:
        if self.streaming:
            raise ValueError("streaming is not supported for preference data (the pairs are read into memory)")
        return self


def response_text(value: Any, column: str) -> str:
    """A response as text: a string as-is, or the content of a single assistant message."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise wrong_type(column, value, "a string or a list with one assistant message")
    messages = chat_messages(value, column)
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        raise BadRow(f"field {column!r}: expected one assistant message, got roles "
                     f"{[m['role'] for m in messages]}")
    return messages[0]["content"]


def map_preference(row: dict[str, Any], p: PreferenceParams) -> Mapped:
    prompt = require(row, p.prompt_field)
    if not isinstance(prompt, (str, list)):
        raise wrong_type(p.prompt_field, prompt, "a string or a list of chat messages")
    chosen = response_text(require(row, p.chosen_field), p.chosen_field)
    rejected = response_text(require(row, p.rejected_field), p.rejected_field)
    if chosen == rejected:
        raise BadRow(f"fields {p.chosen_field!r} and {p.rejected_field!r} are the same text")
    reference: dict[str, Any] = {"chosen": chosen, "rejected": rejected}
    if p.margin_field is not None:
        margin = require(row, p.margin_field)
        if isinstance(margin, bool) or not isinstance(margin, (int, float)):
            raise wrong_type(p.margin_field, margin, "a number")
        reference["margin"] = float(margin)
    return Mapped(prompt, reference, prompt_field=p.prompt_field)


def preference_columns(p: PreferenceParams) -> list[tuple[str | None, str]]:
    needed = [("prompt_field", p.prompt_field), ("chosen_field", p.chosen_field),
              ("rejected_field", p.rejected_field)]
    return needed + ([("margin_field", p.margin_field)] if p.margin_field else [])


PREFERENCES = RowFormat("preferences", map_preference, preference_columns)


def load_preferences(params: PreferenceParams, seed: int, name: str = "preferences") -> DatasetTask:
    """The pairs of a source, split into training and held-out rows (see the module docstring)."""
    return DatasetTask(params, seed, name=name, row_format=PREFERENCES)
