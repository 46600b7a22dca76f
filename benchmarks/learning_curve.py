"""Does `rlvr train` learn? Held-out accuracy before and after training, per seed, and the curves.

    python benchmarks/learning_curve.py                       # the default run, seeds 0 and 1, one after the other
    python benchmarks/learning_curve.py --seeds 0 1 --parallel  # both at once, threads split between them
    python benchmarks/learning_curve.py -- rollout.backend=vllm  # extra overrides after `--`
    python benchmarks/code_learning_curve.py                  # the same for configs/code-reasoner.yaml

Each seed runs exactly the given config (default: the embedded one, SmolLM2-135M on procedural arithmetic, with
its own time budget, `train.time_budget_min`), changing only `train.seed` and the run name. Accuracy is greedy
on the task's held-out problems (200 for the default; the same problems for every seed: the eval split has its
own seed). Results: a JSON summary (--out), a PNG of held-out accuracy against training minutes for every seed
next to it, and one table on stdout. Not covered: wall-clock noise from other work on the machine (the load
average during the run is recorded so a reader can judge; a busy machine gets fewer steps into the same minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TITLE = "rlvr train (default): SmolLM2-135M on arithmetic, 2-core CPU"


def run_seed(seed: int, config: str | None, out_dir: Path, threads: int,
             overrides: list[str]) -> tuple[subprocess.Popen, Path]:
    """Start the run of `seed`; returns the process and its run directory."""
    name = f"{Path(config).stem if config else 'learn'}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    cmd = [sys.executable, "-m", "engine.cli", "train", *([config] if config else []), f"train.seed={seed}",
           f"log.run_name={name}", f"log.output_dir={out_dir}", "log.progress=false", *overrides]
    print(f"seed {seed}: {' '.join(cmd[2:])}", file=sys.stderr)
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": str(threads)}), out_dir / name


def summarize(run_dir: Path) -> dict | None:
    """The run's evals and rewards so far; None when it logged no eval."""
    metrics = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.is_file() else []
    evals = [(r.get("time/elapsed_min", 0.0), r["step"], r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]
    if not evals:
        return None
    last = rows[-1]
    return {"run_dir": str(run_dir), "steps": last["step"], "minutes": last.get("time/elapsed_min"),
            "baseline_accuracy": evals[0][2], "final_accuracy": evals[-1][2],
            "gain_points": 100 * (evals[-1][2] - evals[0][2]), "evals": evals,
            "train_reward": [(r["step"], r["reward/mean"]) for r in rows if "reward/mean" in r]}


def finish(seed: int, proc: subprocess.Popen, run_dir: Path) -> dict | None:
    """The summary of `seed`'s run once it ends; a run that failed is summarized as far as it got (marked
    `failed`), or None if it logged no eval."""
    if proc.wait() == 0:
        return summarize(run_dir)
    code = proc.returncode
    failed = (f"rlvr train was killed by {signal.Signals(-code).name}" + (" (out of memory?)" if code == -9 else "")
              if code < 0 else f"rlvr train exited with status {code}")
    print(f"error: seed {seed}: {failed}; its output is in {run_dir}", file=sys.stderr)
    summary = summarize(run_dir)
    return summary and {**summary, "failed": failed}


def plot(results: dict[int, dict], png: Path, title: str, ylabel: str) -> None:
    """Held-out accuracy against training minutes, one line per seed (results: seed -> summary with `evals`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for seed, res in results.items():
        minutes, _, acc = zip(*res["evals"])
        ax.plot(minutes, [100 * a for a in acc], marker="o", label=f"seed {seed}")
    ax.set_xlabel("training minutes (evals included)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main(config: str | None = None, out: str = "benchmarks/results/learning_curve.json", title: str = TITLE,
         ylabel: str = "held-out accuracy, greedy (%)", description: str = __doc__) -> int:
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--parallel", action="store_true", help="run the seeds at once (threads split)")
    parser.add_argument("--config", default=config, help="the training config (default: %(default)s)")
    parser.add_argument("--runs", default="runs/benchmarks", help="where the run directories go")
    parser.add_argument("--out", default=out)
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides (after --)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    threads = max(1, cores // len(args.seeds)) if args.parallel else cores
    load_before = os.getloadavg()[0]
    ended: dict[int, dict | None] = {}
    started = {}
    for seed in args.seeds:
        started[seed] = run_seed(seed, args.config, REPO / args.runs, threads, args.overrides)
        if not args.parallel:
            ended[seed] = finish(seed, *started.pop(seed))
    for seed, (proc, run_dir) in started.items():
        ended[seed] = finish(seed, proc, run_dir)
    results = {seed: res for seed, res in ended.items() if res is not None}
    if not results:
        print("error: no seed's run got as far as its first eval; nothing to report", file=sys.stderr)
        return 1
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"config": args.config, "overrides": args.overrides, "seeds": results, "parallel": args.parallel,
              "threads_per_run": threads, "load_average_before": load_before,
              "load_average_after": os.getloadavg()[0],
              "mean_gain_points": sum(r["gain_points"] for r in results.values()) / len(results)}
    path.write_text(json.dumps(report, indent=1))
    if args.config != config:  # (the title describes the script's own config)
        title = f"rlvr train {args.config}, 2-core CPU"
    plot(results, path.with_suffix(".png"), title + (f"\n{' '.join(args.overrides)}" if args.overrides else ""),
         ylabel)
    print(f"{'seed':>4} {'steps':>5} {'minutes':>7} {'baseline':>8} {'final':>6} {'gain (points)':>13}")
    for seed, r in results.items():
        print(f"{seed:>4} {r['steps']:>5} {r['minutes']:>7.1f} {100 * r['baseline_accuracy']:>7.1f}% "
              f"{100 * r['final_accuracy']:>5.1f}% {r['gain_points']:>+13.1f}{'  (failed)' if 'failed' in r else ''}")
    print(f"mean gain: {report['mean_gain_points']:+.1f} points; results in {path} and {path.with_suffix('.png')}")
    return 0 if all(res is not None and "failed" not in res for res in ended.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
