"""`rlvr rm train` and `rlvr rm eval`: reward models from preference pairs. Parsing and messages only.

    rlvr rm train data.path=prefs.jsonl                       # SmolLM2-135M backbone, 10% of pairs held out
    rlvr rm train configs/rm.yaml ensemble.size=3 log.run_name=rm3
    rlvr rm train --resume runs/rm3                           # skip finished members, continue the current one
    rlvr rm train --nproc 2 data.path=prefs.jsonl             # data-parallel (torchrun underneath)
    rlvr rm train --help-config                               # every key, its default and what it does
    rlvr rm eval runs/rm3/model test_prefs.jsonl [--aggregate min] [chosen_field=better ...]

`rlvr rm train` writes runs/<name>/: config.yaml, metrics.jsonl, curves.png, checkpoints/ (while a member trains),
eval_scores/, and model/ (the directory the `reward_model` grader and `rlvr rm eval` load). Its last stdout line
is a JSON summary. `rlvr rm eval` prints one JSON line: n, accuracy, margin, length_corr, skipped (bad rows),
ensemble_size and, for an ensemble, `aggregate` and the same metrics per member under `members` (the top-level
numbers are then the ensemble's: members z-scored with their training stats, then aggregated).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from engine.train_cli import fail, split_config_arg, stop_on_ctrl_c


def add_commands(subparsers) -> None:
    rm = subparsers.add_parser("rm", help="train and evaluate reward models", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = rm.add_subparsers(dest="rm_command", required=True)
    t = commands.add_parser("train", help="train a Bradley-Terry reward model (or an ensemble) on preference pairs")
    t.add_argument("config", nargs="?", help="YAML config (default: all defaults; data.path is required)")
    t.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. data.path=prefs.jsonl")
    t.add_argument("--resume", metavar="RUN_DIR", help="resume the run in RUN_DIR")
    t.add_argument("--nproc", type=int, default=1, help="data-parallel processes on this machine")
    t.add_argument("--help-config", action="store_true", help="list every config key and exit")
    t.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)  # the deepspeed launcher's
    t.set_defaults(func=train_command)
    e = commands.add_parser("eval", help="accuracy and length bias of a reward model on preference pairs")
    e.add_argument("model", help="a reward-model directory (runs/<name>/model) or its run directory")
    e.add_argument("prefs", help="preference rows {prompt, chosen, rejected}: JSONL/parquet/... (data.path kinds)")
    e.add_argument("options", nargs="*", help="data options as key=value, e.g. chosen_field=better")
    e.add_argument("--aggregate", choices=["mean", "min", "mean_minus_std"], default="mean",
                   help="how an ensemble's z-scored member scores combine (default: mean)")
    e.add_argument("--k", type=float, default=1.0, help="std multiplier of mean_minus_std")
    e.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass")
    e.set_defaults(func=eval_command)


def train_command(args) -> int:
    from engine.config import ConfigError, config_reference
    from engine.rm_config import RMConfig, load_rm_config

    if args.help_config:
        print(config_reference(RMConfig))
        return 0
    stop_on_ctrl_c()
    config, overrides = split_config_arg(args.config, args.overrides)
    try:
        if args.resume:
            run_dir = Path(args.resume)
            if not (run_dir / "config.yaml").is_file():
                return fail(f"{run_dir} is not a run directory (no config.yaml); pass runs/<name>.")
            cfg = load_rm_config(run_dir / "config.yaml", overrides)
        else:
            cfg = load_rm_config(config, overrides)
            cfg.log.run_name = cfg.log.run_name or time.strftime("%Y%m%d-%H%M%S")
            run_dir = Path(cfg.log.output_dir) / cfg.log.run_name
    except ConfigError as exc:
        return fail(str(exc))
    try:
        return train_or_launch(cfg, run_dir, args)
    except KeyboardInterrupt:
        return interrupted(run_dir, args.nproc)


def train_or_launch(cfg, run_dir: Path, args) -> int:
    from engine import distributed as D
    from engine.checkpoint import DiskFull, latest_checkpoint
    from engine.models import ModelLoadError
    from engine.reward_model import finished_members
    from engine.rm_grader import MANIFEST
    from engine.rm_train import train_reward_model
    from engine.train_cli import launch
    from engine.trainer import TrainingStopped

    if (run_dir / "model" / MANIFEST).is_file():
        return fail(f"{run_dir} holds a finished reward model ({run_dir / 'model'}); pick another log.run_name.")
    if not args.resume and (latest_checkpoint(run_dir) or finished_members(run_dir / "model")):
        return fail(f"{run_dir} already holds a reward-model run; resume it with `rlvr rm train --resume {run_dir}` "
                    "or pick another log.run_name.")
    if args.nproc > 1 and "RANK" not in os.environ:
        return launch(args.nproc, cfg, run_dir, bool(args.resume), ("rm", "train"))
    try:
        summary = train_reward_model(cfg, run_dir, resume=bool(args.resume))
    except (ModelLoadError, FileNotFoundError, TrainingStopped, DiskFull, ValueError) as exc:
        return fail(str(exc))
    D.shutdown()
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(summary))
    return 0


def interrupted(run_dir: Path, nproc: int) -> int:
    if int(os.environ.get("RANK", 0)) == 0:
        world = int(os.environ.get("WORLD_SIZE", nproc))
        command = f"rlvr rm train {f'--nproc {world} ' if world > 1 else ''}--resume {shlex.quote(str(run_dir))}"
        print(f"\ninterrupted; finished members are in {run_dir / 'model'}. Continue with:\n  {command}",
              file=sys.stderr)
    return 130


def eval_command(args) -> int:
    import yaml
    from pydantic import ValidationError

    from engine.config import param_problems
    from engine.models import ModelLoadError
    from tasks.preferences import PreferenceParams

    try:
        options = {}
        for item in args.options:
            key, sep, value = item.partition("=")
            if not sep:
                return fail(f"data option {item!r} must look like key=value (e.g. chosen_field=better)")
            options[key] = yaml.safe_load(value) if value else ""
        params = PreferenceParams.model_validate({"eval_fraction": 0.0, **options, "path": args.prefs})
    except ValidationError as exc:
        return fail(f"data options: {param_problems(exc, PreferenceParams)}")
    try:
        result = evaluate_model(args.model, params, args.aggregate, args.k, args.batch_size)
    except (ModelLoadError, FileNotFoundError, ValueError, OSError) as exc:
        return fail(str(exc))
    print(json.dumps(result))
    return 0


def evaluate_model(model_path: str, params, aggregate: str, k: float, batch_size: int) -> dict:
    """`rlvr rm eval`: every row of `params.path` scored by every member; metrics per member and combined."""
    import torch

    from engine.reward_model import RewardModel, aggregate_members, preference_metrics
    from tasks.preferences import load_preferences

    data = load_preferences(params, seed=0)
    rows = list(data.train_rows())
    rm = RewardModel.load(model_path)
    pairs = [(ex.prompt, ex.reference[side]) for side in ("chosen", "rejected") for ex in rows]
    raw = rm.member_scores(pairs, batch_size)                                                # (K, 2n)
    prompt_len = [len(rm.encode(ex.prompt, "")) for ex in rows] * 2
    lengths = torch.tensor([len(rm.encode(p, r)) - n for (p, r), n in zip(pairs, prompt_len)])  # (2n,)
    n = len(rows)

    def metrics(scores: torch.Tensor) -> dict:
        return preference_metrics(scores[:n], scores[n:], lengths[:n], lengths[n:])

    combined = aggregate_members(rm.normalize(raw), aggregate, k)
    out = {"n": n, **metrics(combined), "skipped": data.skipped, "ensemble_size": rm.size}
    if rm.size > 1:
        out |= {"aggregate": aggregate, "members": [metrics(raw[i]) for i in range(rm.size)]}
    if data.skipped:
        print(f"skipped {data.skipped} bad rows (first: {data.skip_reasons[0]})", file=sys.stderr)
    return out
