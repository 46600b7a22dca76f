"""Does the code reasoner learn? Held-out pass@1 before and after training, per seed, and the curves.

    python benchmarks/code_learning_curve.py                         # seeds 0 and 1, one after the other
    python benchmarks/code_learning_curve.py --seeds 0 1 --parallel  # both at once, threads split between them
    python benchmarks/code_learning_curve.py -- train.lr=3e-5        # extra overrides after `--`

Each seed runs `rlvr train configs/code-reasoner.yaml` (SmolLM2-135M-Instruct writing small Python functions,
tasks/code_synth.py, graded by hidden unit tests in the bubblewrap sandbox, 20-minute budget), changing only
`train.seed` and the run name. pass@1 is greedy on the task's 128 held-out problems: functions no training
prompt asks for, the same problems for every seed (the eval split has its own seed). Results: a JSON summary
(--out), a PNG of held-out pass@1 against training minutes for every seed next to it, and one table on stdout.
Not covered: wall-clock noise from other work on the machine (the load average is recorded so a reader can
judge; a busy machine gets fewer steps into the same 20 minutes), per-family breakdowns (see the run's
samples.jsonl).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from learning_curve import plot  # the same figure: held-out accuracy against minutes, per seed

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/code-reasoner.yaml"


def run_seed(seed: int, config: str, out_dir: Path, threads: int, overrides: list[str]) -> subprocess.Popen:
    name = f"code-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    cmd = [sys.executable, "-m", "engine.cli", "train", config, f"train.seed={seed}", f"log.run_name={name}",
           f"log.output_dir={out_dir}", "log.progress=false", *overrides]
    print(f"seed {seed}: {' '.join(cmd[2:])}", file=sys.stderr)
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": str(threads)})


def summarize(run_dir: Path) -> dict:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [(r.get("time/elapsed_min", 0.0), r["step"], r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]
    rewards = [(r["step"], r["reward/mean"]) for r in rows if "reward/mean" in r]
    last = rows[-1]
    return {"run_dir": str(run_dir), "steps": last["step"], "minutes": last.get("time/elapsed_min"),
            "baseline_pass@1": evals[0][2], "final_pass@1": evals[-1][2],
            "gain_points": 100 * (evals[-1][2] - evals[0][2]), "evals": evals, "train_reward": rewards}


def finish(seed: int, proc: subprocess.Popen) -> dict:
    stdout, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed}: rlvr train failed with exit status {proc.returncode}")
    return summarize(Path(json.loads(stdout.strip().splitlines()[-1])["run_dir"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--parallel", action="store_true", help="run the seeds at once (threads split)")
    parser.add_argument("--config", default=CONFIG, help="the training config (default: %(default)s)")
    parser.add_argument("--runs", default="runs/benchmarks", help="where the run directories go")
    parser.add_argument("--out", default="benchmarks/results/code_learning_curve.json")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides (after --)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    threads = max(1, cores // len(args.seeds)) if args.parallel else cores
    load_before = os.getloadavg()[0]
    results: dict[int, dict] = {}
    procs = {}
    for seed in args.seeds:
        procs[seed] = run_seed(seed, args.config, REPO / args.runs, threads, args.overrides)
        if not args.parallel:
            results[seed] = finish(seed, procs.pop(seed))
    for seed, proc in procs.items():
        results[seed] = finish(seed, proc)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"config": args.config, "overrides": args.overrides, "seeds": results, "parallel": args.parallel,
              "threads_per_run": threads, "load_average_before": load_before,
              "load_average_after": os.getloadavg()[0],
              "mean_gain_points": sum(r["gain_points"] for r in results.values()) / len(results)}
    out.write_text(json.dumps(report, indent=1))
    plot(results, out.with_suffix(".png"), "held-out pass@1, greedy (%)",
         "rlvr train configs/code-reasoner.yaml: SmolLM2-135M on code_synth, 2-core CPU")
    print(f"{'seed':>4} {'steps':>5} {'minutes':>7} {'baseline':>8} {'final':>6} {'gain (points)':>13}")
    for seed, r in results.items():
        print(f"{seed:>4} {r['steps']:>5} {r['minutes']:>7.1f} {100 * r['baseline_pass@1']:>7.1f}% "
              f"{100 * r['final_pass@1']:>5.1f}% {r['gain_points']:>+13.1f}")
    print(f"mean gain: {report['mean_gain_points']:+.1f} points; results in {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
