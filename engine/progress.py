"""Training progress on stderr: step, reward, accuracy, KL, entropy, length, step time.

On a terminal, a rich live bar (with elapsed time and ETA). Anywhere else (CI logs, a file, a pipe) one plain line
per step, `step 3/100  reward 0.500  acc 0.25 ...`: a live display there would only leave a garbled last frame.
"""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

FIELDS = [("reward/mean", "reward", "{:.3f}"), ("reward/accuracy", "acc", "{:.2f}"), ("eval/accuracy", "eval", "{:.3f}"),
          ("kl", "kl", "{:.4f}"), ("entropy", "ent", "{:.3f}"), ("completion/length", "len", "{:.0f}"),
          ("time/step_s", "s/step", "{:.1f}")]


class StepProgress:
    def __init__(self, total: int, done: int, enabled: bool = True, fields: list[tuple[str, str, str]] = FIELDS):
        self.enabled, self.total, self.fields = enabled, total, fields
        self.values: dict[str, float] = {}
        self.bar = None
        if enabled and sys.stderr.isatty():
            self.bar = Progress(TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(),
                                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                                TimeRemainingColumn(), console=Console(stderr=True), refresh_per_second=2)
            self.task = self.bar.add_task("train", total=total, completed=done, info="")

    def __enter__(self) -> "StepProgress":
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def info(self) -> str:
        return "  ".join(f"{label} {fmt.format(self.values[key])}" for key, label, fmt in self.fields if key in self.values)

    def note(self, metrics: dict) -> None:
        self.values |= {k: v for k, v in metrics.items() if v is not None}
        if self.bar:
            self.bar.update(self.task, info=self.info())

    def update(self, step: int, metrics: dict) -> None:
        self.note(metrics)
        if self.bar:
            self.bar.update(self.task, completed=step)
        elif self.enabled:
            print(f"step {step}/{self.total}  {self.info()}", file=sys.stderr, flush=True)
