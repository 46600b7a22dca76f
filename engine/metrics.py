"""Step metrics: `metrics.jsonl` (one JSON object per step), `samples.jsonl`, TensorBoard, optional wandb, and the
PNG of curves.

Only rank 0 writes. A resumed run drops what was logged after the checkpoint it resumes from (rows of both JSONL
files; TensorBoard events through the writer's `purge_step`), so the logs read as one uninterrupted run. A run
that starts from scratch in a directory that already has logs (one stopped before its first checkpoint) clears
them. wandb is not cut back.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

PLOTTED = [("reward/mean", "reward"), ("eval/accuracy", "held-out accuracy (greedy)"), ("kl", "KL to reference"),
           ("completion/length", "completion length (tokens)")]


class MetricsLogger:
    def __init__(self, run_dir: Path, tensorboard: bool, wandb_project: str | None, config: dict,
                 resume_step: int | None = None):
        """`resume_step`: the step of the checkpoint being resumed from; None for a run from scratch."""
        self.path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        cut_back(self.path, resume_step)
        cut_back(self.samples_path, resume_step)
        if resume_step is None:
            shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)
            (run_dir / "curves.png").unlink(missing_ok=True)
        self.file = self.path.open("a")
        self.samples = self.samples_path.open("a")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tensorboard"),
                                    purge_step=None if resume_step is None else resume_step + 1)
        self.wandb = None
        if wandb_project:
            import wandb  # optional dependency: pip install rlvr[wandb]
            self.wandb = wandb.init(project=wandb_project, name=run_dir.name, config=config,
                                    resume="allow", id=run_dir.name)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": step, **{k: _clean(v) for k, v in metrics.items()}}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(key, value, step)
            self.tb.flush()
        if self.wandb:
            self.wandb.log(metrics, step=step)

    def log_samples(self, rows: list[dict]) -> None:
        """Completions of a step, one JSON object each (each row has its `step`)."""
        self.samples.write("".join(json.dumps(row, default=str) + "\n" for row in rows))
        self.samples.flush()

    def close(self) -> None:
        self.file.close()
        self.samples.close()
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


def _clean(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def cut_back(path: Path, last_step: int | None) -> None:
    """Keep the rows of a JSONL log logged at steps up to `last_step` (none when None)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if last_step is not None and json.loads(line)["step"] <= last_step:
                kept.append(line + "\n")
        except ValueError:  # a line torn by a kill
            pass
    path.write_text("".join(kept))


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(metrics_path: Path, png_path: Path, panels: list[tuple[str, str]] = PLOTTED) -> Path:
    """Four metrics against step, one panel each (`panels`: (key, title); reward, accuracy, KL, length)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (key, title) in zip(axes.flat, panels):
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o" if key.startswith("eval/") else None, markersize=4)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(metrics_path.parent.name)
    fig.tight_layout()
    tmp = png_path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(png_path)
    return png_path
