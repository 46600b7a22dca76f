"""The task contract: what a task hands the trainer, and the small helpers every task shares.

A task is a deterministic, infinite source of training examples plus a fixed held-out split:

    task = get_task_spec("arithmetic").build(params, seed=0, name="arithmetic")
    task.train_example(0)   # Example(id="arithmetic/train/0", prompt="What is 12 + 7? ...",
                            #         reference={"answer": "19"}, meta={"expression": "12 + 7"})
    task.eval_examples()    # the same list every time, never overlapping train

`train_example(i)` depends only on (params, seed, i), so the trainer's data cursor is a single integer per task
and a resumed run sees exactly the examples an uninterrupted one would have.

Helpers here: `build_prompt` (plain string or system + user chat messages), `check_template` (a pydantic
validator body for `prompt_template` fields), `epoch_order` (the per-epoch shuffle finite datasets cycle through).
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Protocol

from pydantic import BaseModel

from graders.base import Prompt, Sample


@dataclass(frozen=True)
class Example:
    """One prompt with what graders need to check a completion of it.

    id: stable and unique within its task ("arithmetic/train/1234"; a dataset row keeps its id across epochs).
    task: the task's name as configured (a mixture may hold two tasks built from the same spec).
    prompt: a user message, or chat messages [{"role": ..., "content": ...}] for the chat template.
    reference: what graders read: {"answer": "42"} for math/number graders, {"tests": {...}} for code.
    meta: anything else worth logging with samples (the expression, the source row); graders do not read it.
    """

    id: str
    task: str
    prompt: Prompt
    reference: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def sample(self, completion: str) -> Sample:
        """What graders get for a completion of this example: its reference, and its prompt as given (text or
        chat messages; the one place training and evaluation build grader samples)."""
        return Sample(completion, self.reference, self.prompt)


class Task(Protocol):
    """An infinite, seeded source of training examples and a fixed held-out split."""

    name: str

    def train_example(self, index: int) -> Example:
        """The index-th training example; deterministic in (params, seed, index). Finite datasets cycle,
        reshuffled each epoch by the seed."""
        ...

    def eval_examples(self) -> list[Example]:
        """The held-out split: the same list on every call, disjoint from every training example."""
        ...


@dataclass(frozen=True)
class TaskSpec:
    """A registered task kind: its name, a one-line description, its params model and its constructor.

    Params is a pydantic model with extra="forbid" and a description on every field; the config loader
    validates a task's params with `spec.Params.model_validate(params)` before any compute starts.
    build(params, seed, name) returns the Task; `name` is the task's name in the run's config.
    """

    name: str
    description: str
    Params: type[BaseModel]
    build: Callable[[Any, int, str], Task]


def build_prompt(text: str, system_prompt: str | None) -> Prompt:
    """The user text as-is, or [system, user] chat messages when a system prompt is set."""
    if system_prompt is None:
        return text
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": text}]


def check_template(template: str, placeholder: str) -> str:
    """Validate a str.format template that must use exactly one named placeholder (literal braces: {{ }})."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}); write literal braces as {{{{ and }}}}") from None
    if fields != {placeholder}:
        found = ", ".join(sorted("{" + name + "}" for name in fields)) or "none"
        raise ValueError(f"must contain the placeholder {{{placeholder}}} and no other (found: {found})")
    return template


@lru_cache(maxsize=8)
def epoch_order(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    """A permutation of range(n) for one pass over a finite dataset; cached, as cursors move epoch by epoch."""
    order = list(range(n))
    random.Random(f"epoch:{seed}:{epoch}").shuffle(order)
    return tuple(order)
