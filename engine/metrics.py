"""Step metrics: `metrics.jsonl` (one JSON object per step), TensorBoard, optional wandb, and the PNG of curves.

Only rank 0 writes. On resume, lines logged after the checkpoint being resumed from are dropped, so the file
reads as one uninterrupted run.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

PLOTTED = [("reward/mean", "reward"), ("eval/accuracy", "held-out accuracy (greedy)"), ("kl", "KL to reference"),
           ("completion/length", "completion length (tokens)")]


class MetricsLogger:
    def __init__(self, run_dir: Path, tensorboard: bool, wandb_project: str | None, config: dict,
                 resume_step: int | None = None):
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.file = self.path.open("a")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
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

    def close(self) -> None:
        self.file.close()
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


def _clean(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(metrics_path: Path, png_path: Path) -> Path:
    """Reward, held-out accuracy, KL and length against step, one panel each."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (key, title) in zip(axes.flat, PLOTTED):
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
