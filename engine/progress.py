"""A rich progress bar for training: step, reward, accuracy, KL, entropy, length, step time and ETA (stderr)."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

FIELDS = [("reward/mean", "reward", "{:.3f}"), ("reward/accuracy", "acc", "{:.2f}"), ("eval/accuracy", "eval", "{:.3f}"),
          ("kl", "kl", "{:.4f}"), ("entropy", "ent", "{:.3f}"), ("completion/length", "len", "{:.0f}"),
          ("time/step_s", "s/step", "{:.1f}")]


class StepProgress:
    def __init__(self, total: int, done: int, enabled: bool = True):
        self.enabled = enabled
        self.values: dict[str, float] = {}
        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console,
                                 disable=not enabled, refresh_per_second=2)
        self.task = self.progress.add_task("train", total=total, completed=done, info="")

    def __enter__(self) -> "StepProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def note(self, metrics: dict) -> None:
        self.values |= {k: v for k, v in metrics.items() if v is not None}
        info = "  ".join(f"{label} {fmt.format(self.values[key])}" for key, label, fmt in FIELDS if key in self.values)
        self.progress.update(self.task, info=info)

    def update(self, step: int, metrics: dict) -> None:
        self.note(metrics)
        self.progress.update(self.task, completed=step)
        if self.enabled and not self.console.is_terminal:  # CI logs: one line per step instead of a live bar
            self.console.print(f"step {step}  {self.progress.tasks[0].fields['info']}")
