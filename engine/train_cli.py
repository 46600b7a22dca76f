"""`rlvr train` and `rlvr eval`: argument parsing, run directories, user-facing errors. Logic lives elsewhere.

    rlvr train                                # the embedded default: SmolLM2-135M on procedural arithmetic
    rlvr train configs/arithmetic.yaml train.steps=10 rollout.group_size=4
    rlvr train --resume runs/<name>           # continue exactly where the last checkpoint left off
    rlvr train --nproc 2 ...                  # data-parallel over 2 processes (torchrun underneath)
    rlvr eval runs/<name>/checkpoints/step-000060 [CONFIG] [key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a policy with GRPO", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="YAML config (default: the embedded one)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.steps=10")
    p.add_argument("--resume", metavar="RUN_DIR", help="resume the run in RUN_DIR from its last checkpoint")
    p.add_argument("--nproc", type=int, default=1, help="data-parallel processes on this machine")
    p.add_argument("--help-config", action="store_true", help="list every config key and exit")
    p.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)  # the deepspeed launcher's
    p.set_defaults(func=train_command)
    e = subparsers.add_parser("eval", help="evaluate a checkpoint on the held-out splits")
    e.add_argument("checkpoint", help="a checkpoint directory (…/checkpoints/step-N) or an HF model directory")
    e.add_argument("config", nargs="?", help="YAML config for tasks and eval settings (default: the run's)")
    e.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    e.set_defaults(func=eval_command)


def split_config_arg(config: str | None, overrides: list[str]) -> tuple[str | None, list[str]]:
    """argparse puts a leading key=value into `config`; move it back to the overrides."""
    if config is not None and "=" in config and not config.endswith((".yaml", ".yml")):
        return None, [config, *overrides]
    return config, overrides


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def train_command(args) -> int:
    from engine.config import ConfigError, config_reference, load_config
    from engine.models import ModelLoadError

    if args.help_config:
        print(config_reference())
        return 0
    config, overrides = split_config_arg(args.config, args.overrides)
    try:
        if args.resume:
            run_dir = Path(args.resume)
            if not (run_dir / "config.yaml").is_file():
                return fail(f"{run_dir} is not a run directory (no config.yaml); pass runs/<name>.")
            cfg = load_config(run_dir / "config.yaml", overrides)
        else:
            cfg = load_config(config, overrides)
            name = cfg.log.run_name or time.strftime("%Y%m%d-%H%M%S")
            run_dir = Path(cfg.log.output_dir) / name
            if (run_dir / "checkpoints").exists():
                return fail(f"{run_dir} already holds a run; resume it with --resume {run_dir} or pick another "
                            "log.run_name.")
            cfg.log.run_name = name
    except ConfigError as exc:
        return fail(str(exc))
    if args.nproc > 1 and "RANK" not in os.environ:
        return launch(args.nproc, cfg, run_dir, bool(args.resume))
    from engine.trainer import TrainingStopped, train
    try:
        summary = train(cfg, run_dir, resume=bool(args.resume))
    except (ModelLoadError, FileNotFoundError, TrainingStopped, ValueError) as exc:
        return fail(str(exc))
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(summary))
    return 0


def launch(nproc: int, cfg, run_dir: Path, resume: bool) -> int:
    """Re-run this command under torchrun with `nproc` processes (the run dir is fixed first, so all agree)."""
    from engine.config import dump_config

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    what = ["--resume", str(run_dir)] if resume else [str(run_dir / "config.yaml")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "engine.cli", "train", *what]
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(cmd, env={**os.environ, "OMP_NUM_THREADS": threads})


def eval_command(args) -> int:
    from engine.config import ConfigError, load_config
    from engine.models import ModelLoadError
    from engine.trainer import evaluate_checkpoint

    ckpt = Path(args.checkpoint)
    model_dir = ckpt / "hf" if (ckpt / "hf").is_dir() else ckpt
    run_config = ckpt.parent.parent / "config.yaml"
    config, overrides = split_config_arg(args.config, args.overrides)
    config = config or (str(run_config) if run_config.is_file() else None)
    try:
        cfg = load_config(config, [*overrides, f"model.path={model_dir}"])
        metrics = evaluate_checkpoint(cfg)
    except (ConfigError, ModelLoadError, FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    print(json.dumps(metrics))
    return 0
