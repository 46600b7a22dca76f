"""A weighted mixture of tasks: which task each batch slot comes from, and each task's data cursor.

    mixture = TaskMixture([arithmetic, gsm8k], weights=[3, 1], seed=0)
    batch = mixture.next_batch(8)      # each slot: a task drawn with probability weight / sum(weights),
                                       # then that task's next training example (its cursor advances)
    state = mixture.state_dict()       # JSON-serialisable; goes into the checkpoint
    mixture.load_state_dict(state)     # the next batches are exactly those of an uninterrupted run

The draw for slot k (counting every slot ever drawn) comes from a hash of (seed, k), not from a stateful RNG,
so the whole state is two integers' worth: the number of draws so far and one cursor per task. Weights and
the seed are configuration, not state: resuming with other weights continues with the new mix.
Not covered: per-epoch balancing or stratified batches (slots are drawn independently).
"""
from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from typing import Any, Sequence

from tasks.base import Example, Task


def unit_draw(seed: int, k: int) -> float:
    """A uniform float in [0, 1) determined by (seed, k)."""
    digest = hashlib.blake2b(f"mixture:{seed}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class TaskMixture:
    """Draws each batch slot's task by weight and serves that task's next training example."""

    def __init__(self, tasks: Sequence[Task], weights: Sequence[float], seed: int):
        if not tasks:
            raise ValueError("a task mixture needs at least one task")
        if len(weights) != len(tasks):
            raise ValueError(f"{len(tasks)} tasks but {len(weights)} weights; give one weight per task")
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"task weights must be finite, >= 0 and not all 0 (got {list(weights)})")
        names = [task.name for task in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names in a mixture must be unique (got {names}); rename one in the config")
        self.tasks = list(tasks)
        self.weights = [float(w) for w in weights]
        self.seed = seed
        self._drawable = [i for i, w in enumerate(weights) if w > 0]  # zero-weight tasks are never drawn
        self._bounds = list(itertools.accumulate(weights[i] / sum(weights) for i in self._drawable))
        self._draws = 0
        self._cursors = [0] * len(tasks)

    def next_batch(self, n: int) -> list[Example]:
        batch = []
        for _ in range(n):
            u = unit_draw(self.seed, self._draws)
            slot = min(bisect.bisect_right(self._bounds, u), len(self._bounds) - 1)  # min(): rounding near 1.0
            i = self._drawable[slot]
            self._draws += 1
            batch.append(self.tasks[i].train_example(self._cursors[i]))
            self._cursors[i] += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"draws": self._draws, "cursors": {task.name: c for task, c in zip(self.tasks, self._cursors)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = [task.name for task in self.tasks]
        saved = state["cursors"]
        if sorted(saved) != sorted(names):
            raise ValueError(
                f"the saved data cursors are for tasks {sorted(saved)} but this run has tasks {sorted(names)}; "
                "resume with the task list the checkpoint was written with"
            )
        self._draws = int(state["draws"])
        self._cursors = [int(saved[name]) for name in names]
