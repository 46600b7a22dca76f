"""Learned and programmatic rewards in one run: does the reward model's proxy score drag the hidden gold along?

    python benchmarks/mixed_rewards.py                                  # data, reward models, every run, figure
    python benchmarks/mixed_rewards.py --runs single ens-min ens-mstd   # a subset of the runs
    python benchmarks/mixed_rewards.py --rm-steps 150 --minutes 30 -- train.lr=3e-5   # overrides after `--`
    python benchmarks/mixed_rewards.py --report-only                    # re-read finished runs: figure + table

The synthetic-gold set-up of Gao et al. 2022 ("Scaling Laws for Reward Model Overoptimization") on this CPU:
1. benchmarks/gold_rule.py labels procedural preference pairs with a hidden gold rule (training pairs, and a
   separate test set with another seed);
2. `rlvr rm train` trains a reward model on them (K = 1, and a K = 4 ensemble for the ensemble runs), and
   `rlvr rm eval` measures its accuracy on the test pairs;
3. `rlvr train configs/mixed-rewards.yaml` trains SmolLM2-135M on a mixture of arithmetic (the `number` checker)
   and "Write one sentence about <topic>." (the reward model only), once per run variant, each under the same
   time budget (`--minutes`, so runs compare at equal wall time):
     single      one reward model, aggregate mean, the task's default advantage (auto: PPO with the critic
                 once the trainer resolves it so; the run's group estimator before that)
     ens-min     the K = 4 ensemble, aggregate min
     ens-mstd    the K = 4 ensemble, aggregate mean_minus_std (k = 1)
     grpo        as single, with `tasks.1.advantage=grpo` (group-relative advantages for the RM task too)
4. from each run's samples.jsonl (every completion of every step: log.samples_per_step = the batch), the gold
   score of the sentence task's completions (the rule applied after the fact) and the proxy (their
   `reward_model` term) per step; from metrics.jsonl, held-out arithmetic accuracy (greedy) before and after.
Outputs: --out (JSON), a PNG next to it (gold, proxy and arithmetic accuracy against steps, one line per run),
and a table on stdout. Progress lines go to stderr. "before" is step 1's samples (the untrained policy, about 32
completions: noisy), "after" the mean over the last three steps.
Not covered: the gold score on held-out prompts with greedy decoding (the training samples at temperature 0.7
are what is scored); several seeds per variant (one run each: differences of a few tenths are noise).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gold_rule import build_preferences, gold_score, write_jsonl

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "mixed-rewards.yaml"
RM_TASK = "sentences"        # the label of the reward-model task in configs/mixed-rewards.yaml (tasks.1)
ARITHMETIC = "arithmetic"
VARIANTS = {  # name: (reward model, aggregate, extra overrides)
    "single": ("rm", "mean", []),
    "ens-min": ("rm4", "min", []),
    "ens-mstd": ("rm4", "mean_minus_std", []),
    "grpo": ("rm", "mean", ["tasks.1.advantage=grpo"]),
}


def log(message: str) -> None:
    print(f"[mixed_rewards {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rlvr(*args: str, threads: int) -> str:
    """Run `rlvr ARGS` (this interpreter's engine.cli) in the repository; its stdout, or exit on failure."""
    cmd = [sys.executable, "-m", "engine.cli", *args]
    log(" ".join(["rlvr", *args]))
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise SystemExit(f"`rlvr {' '.join(args)}` failed with exit status {proc.returncode}")
    log(f"done in {time.time() - start:.0f} s")
    return proc.stdout


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def build_data(out: Path, pairs: int, test_pairs: int) -> tuple[Path, Path]:
    train, test = out / "prefs.jsonl", out / "prefs_test.jsonl"
    write_jsonl(train, build_preferences(pairs, seed=0))
    write_jsonl(test, build_preferences(test_pairs, seed=1))
    log(f"wrote {pairs} training pairs to {train} and {test_pairs} test pairs to {test}")
    return train, test


def train_rm(out: Path, name: str, prefs: Path, size: int, steps: int, threads: int) -> Path:
    """`rlvr rm train` into OUT/NAME (reused when its model/ exists); returns the model directory."""
    model = out / name / "model"
    if (model / "reward_model.json").is_file():
        log(f"reusing the reward model in {model}")
        return model
    rlvr("rm", "train", f"data.path={prefs}", f"log.output_dir={out}", f"log.run_name={name}",
         f"ensemble.size={size}", f"train.steps={steps}", "train.lr=3e-5", "eval.every=20",
         "eval.stats_samples=500", "log.progress=false", threads=threads)
    return model


def eval_rm(model: Path, test: Path, aggregate: str, threads: int) -> dict:
    """`rlvr rm eval` on the test pairs (kept next to the model: a report-only pass does not score them again)."""
    cached = model.parent / f"test_eval_{aggregate}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    result = last_json(rlvr("rm", "eval", str(model), str(test), "--aggregate", aggregate, threads=threads))
    cached.write_text(json.dumps(result))
    return result


def run_variant(out: Path, name: str, model: Path, aggregate: str, extra: list[str], minutes: float,
                steps: int, overrides: list[str], threads: int) -> Path:
    run_dir = out / name
    if (run_dir / "metrics.jsonl").is_file() and (run_dir / "samples.jsonl").is_file():
        log(f"reusing the run in {run_dir} (delete it to run again)")
        return run_dir
    rlvr("train", str(CONFIG), f"log.output_dir={out}", f"log.run_name={name}", "log.progress=false",
         f"tasks.1.rewards.0.params.path={model}", f"tasks.1.rewards.0.params.aggregate={aggregate}",
         f"train.time_budget_min={minutes}", f"train.steps={steps}", *extra, *overrides, threads=threads)
    return run_dir


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def curves(run_dir: Path) -> dict:
    """Per step: mean gold and proxy of the sentence task's sampled completions; arithmetic accuracy evals."""
    by_step: dict[int, list[tuple[float, float]]] = {}
    for row in read_jsonl(run_dir / "samples.jsonl"):
        if row["task"] == RM_TASK and "reward_model" in row["terms"] and "reward_model" not in row["errors"]:
            by_step.setdefault(row["step"], []).append((gold_score(row["completion"]), row["terms"]["reward_model"]))
    steps = sorted(by_step)
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    key = f"eval/{ARITHMETIC}/accuracy"
    evals = [(r["step"], r[key]) for r in metrics if r.get(key) is not None]
    return {"steps": steps,
            "gold": [sum(g for g, _ in by_step[s]) / len(by_step[s]) for s in steps],
            "proxy": [sum(p for _, p in by_step[s]) / len(by_step[s]) for s in steps],
            "samples": [len(by_step[s]) for s in steps],
            "arithmetic_evals": evals,
            "minutes": next((r["time/elapsed_min"] for r in reversed(metrics) if "time/elapsed_min" in r), None)}


def before_after(values: list[float], tail: int = 3) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return values[0], sum(values[-tail:]) / len(values[-tail:])


def plot(results: dict[str, dict], png: Path) -> None:
    """Gold, proxy and held-out arithmetic accuracy against steps, one line per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for name, res in results.items():
        c = res["curves"]
        axes[0].plot(c["steps"], smooth(c["gold"]), label=name)
        axes[1].plot(c["steps"], smooth(c["proxy"]), label=name)
        if c["arithmetic_evals"]:
            steps, acc = zip(*c["arithmetic_evals"])
            axes[2].plot(steps, [100 * a for a in acc], marker="o", label=name)
    titles = ("gold score (hidden rule), sentence task", "proxy: reward-model term (z-scored)",
              "arithmetic held-out accuracy, greedy (%)")
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("configs/mixed-rewards.yaml: SmolLM2-135M, arithmetic (checker) + sentences (reward model); "
                 "curves: 3-step running mean")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def smooth(values: list[float], window: int = 3) -> list[float]:
    return [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
            for i in range(len(values))]


def fmt(x: float | None, pct: bool = False) -> str:
    return "-" if x is None else (f"{100 * x:.1f}%" if pct else f"{x:+.2f}")


def table(results: dict[str, dict]) -> str:
    lines = [f"{'run':<10} {'RM test acc':>11} {'gold before':>11} {'gold after':>10} {'proxy before':>12} "
             f"{'proxy after':>11} {'arith before':>12} {'arith after':>11} {'steps':>5} {'minutes':>7}"]
    for name, res in results.items():
        c = res["curves"]
        g0, g1 = before_after(c["gold"])
        p0, p1 = before_after(c["proxy"])
        a0, a1 = (c["arithmetic_evals"][0][1], c["arithmetic_evals"][-1][1]) if c["arithmetic_evals"] else (None, None)
        minutes = f"{c['minutes']:.1f}" if c["minutes"] is not None else "-"
        lines.append(f"{name:<10} {fmt(res['rm_accuracy'], True):>11} {fmt(g0):>11} {fmt(g1):>10} {fmt(p0):>12} "
                     f"{fmt(p1):>11} {fmt(a0, True):>12} {fmt(a1, True):>11} {len(c['steps']):>5} {minutes:>7}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Runs: " + ", ".join(VARIANTS) + ". See the module docstring.")
    parser.add_argument("--runs", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out-dir", default="runs/mixed-rewards", help="data, reward models and runs go here")
    parser.add_argument("--pairs", type=int, default=2000, help="training preference pairs")
    parser.add_argument("--test-pairs", type=int, default=500, help="test preference pairs (another seed)")
    parser.add_argument("--rm-steps", type=int, default=60, help="optimizer steps of 16 pairs per reward-model "
                        "member (60: 89%% held-out accuracy, 13 minutes per member on a 2-core CPU)")
    parser.add_argument("--ensemble-rm-steps", type=int, default=None, help="optimizer steps per member of the "
                        "K = 4 ensemble (default: --rm-steps)")
    parser.add_argument("--minutes", type=float, default=40.0, help="time budget of each mixture run")
    parser.add_argument("--steps", type=int, default=200, help="step cap of each mixture run (the budget binds)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="OMP threads of every rlvr "
                        "process (two runs side by side: 1 each on this 2-core machine)")
    parser.add_argument("--report-only", action="store_true", help="only read finished runs: figure and table")
    parser.add_argument("--out", default="benchmarks/results/mixed_rewards.json")
    parser.add_argument("overrides", nargs="*", help="extra key=value overrides of every mixture run (after --)")
    args = parser.parse_args()
    threads = args.threads
    out_dir = (REPO / args.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    rm_names = {VARIANTS[name][0] for name in args.runs}
    models = {name: out_dir / name / "model" for name in rm_names}
    prefs, test = build_data(out_dir, args.pairs, args.test_pairs)  # deterministic and instant: always rebuilt
    if not args.report_only:
        for name in sorted(rm_names):
            ensemble = name == "rm4"
            steps = args.ensemble_rm_steps or args.rm_steps if ensemble else args.rm_steps
            models[name] = train_rm(out_dir, name, prefs, 4 if ensemble else 1, steps, threads)
    results: dict[str, dict] = {}
    for name in args.runs:
        rm_name, aggregate, extra = VARIANTS[name]
        rm_eval = eval_rm(models[rm_name], test, aggregate, threads) if models[rm_name].is_dir() else {}
        run_dir = out_dir / name
        if not args.report_only:
            run_dir = run_variant(out_dir, name, models[rm_name], aggregate, extra, args.minutes, args.steps,
                                  args.overrides, threads)
        if not (run_dir / "samples.jsonl").is_file():
            log(f"no finished run in {run_dir}; skipped")
            continue
        results[name] = {"run_dir": str(run_dir), "reward_model": str(models[rm_name]), "aggregate": aggregate,
                         "overrides": extra + args.overrides, "rm_accuracy": rm_eval.get("accuracy"),
                         "rm_eval": rm_eval, "curves": curves(run_dir)}
    if not results:
        raise SystemExit(f"no finished runs under {out_dir}")
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": results, "minutes_per_run": args.minutes,
                               "load_average_end": os.getloadavg()[0]}, indent=1))
    plot(results, out.with_suffix(".png"))
    print(table(results))
    print(f"results in {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
