"""`rlvr train` and `rlvr eval`: argument parsing, run directories, user-facing errors. Logic lives elsewhere.

    rlvr train                                # the embedded default: SmolLM2-135M on procedural arithmetic
    rlvr train configs/arithmetic.yaml train.steps=10 rollout.group_size=4
    rlvr train --resume runs/<name>           # continue exactly where the last checkpoint left off
    rlvr train --nproc 2 ...                  # data-parallel over 2 processes (torchrun underneath)
    rlvr eval runs/<name>/checkpoints/step-000060 [CONFIG] [key=value ...]

A run directory without a complete checkpoint (a run stopped before its first one) is started again from
scratch in place, by `rlvr train` with the same log.run_name or by `--resume`. Ctrl-C stops training within
seconds (grader workers and, under --nproc, every rank included), says where the last checkpoint is and how to
resume, and exits with status 130.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
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


def stop_on_interrupt(signum, frame) -> None:
    """Ctrl-C: stop now. Later ones (a second Ctrl-C, the launcher forwarding it) must not cut the clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def interrupted(run_dir: Path, nproc: int) -> int:
    """Say where the run can be picked up again; 130 is the shell's status for a Ctrl-C."""
    from engine.checkpoint import latest_checkpoint

    if int(os.environ.get("RANK", 0)) == 0:
        world = int(os.environ.get("WORLD_SIZE", nproc))
        command = f"rlvr train {f'--nproc {world} ' if world > 1 else ''}--resume {shlex.quote(str(run_dir))}"
        last = latest_checkpoint(run_dir)
        where = f"the last checkpoint is {last}" if last else "there is no checkpoint yet (resuming starts afresh)"
        print(f"\ninterrupted: {where}. Continue with:\n  {command}", file=sys.stderr)
    return 130


def train_command(args) -> int:
    from engine.config import ConfigError, config_reference, load_config

    if args.help_config:
        print(config_reference())
        return 0
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # (a shell's background jobs ignore Ctrl-C)
        signal.signal(signal.SIGINT, stop_on_interrupt)
    config, overrides = split_config_arg(args.config, args.overrides)
    try:
        if args.resume:
            run_dir = Path(args.resume)
            if not (run_dir / "config.yaml").is_file():
                return fail(f"{run_dir} is not a run directory (no config.yaml); pass runs/<name>.")
            cfg = load_config(run_dir / "config.yaml", overrides)
        else:
            cfg = load_config(config, overrides)
            cfg.log.run_name = cfg.log.run_name or time.strftime("%Y%m%d-%H%M%S")
            run_dir = Path(cfg.log.output_dir) / cfg.log.run_name
    except ConfigError as exc:
        return fail(str(exc))
    try:  # (torch) whole before `interrupted` needs it: an import cut short by a Ctrl-C cannot be retried
        from engine.checkpoint import latest_checkpoint
    except KeyboardInterrupt:
        return 130
    if not args.resume and latest_checkpoint(run_dir):
        return fail(f"{run_dir} already holds a run; resume it with --resume {run_dir} or pick another "
                    "log.run_name.")
    try:
        return train_or_launch(cfg, run_dir, args)
    except KeyboardInterrupt:
        return interrupted(run_dir, args.nproc)


def train_or_launch(cfg, run_dir: Path, args) -> int:
    """Train (or resume) in this process, or launch `args.nproc` of them."""
    if args.nproc > 1 and "RANK" not in os.environ:
        return launch(args.nproc, cfg, run_dir, bool(args.resume))
    from engine.models import ModelLoadError
    from engine.trainer import TrainingStopped, train
    try:
        summary = train(cfg, run_dir, resume=bool(args.resume))
    except (ModelLoadError, FileNotFoundError, TrainingStopped, ValueError) as exc:
        return fail(str(exc))
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(summary))
    return 0


def launch(nproc: int, cfg, run_dir: Path, resume: bool, command: tuple[str, ...] = ("train",)) -> int:
    """Re-run this command under torchrun with `nproc` processes (the run dir is fixed first, so all agree).

    torchrun's agent runs in this process: it forwards a Ctrl-C to the ranks (which torchrun starts in their own
    sessions, out of the terminal's reach), waits for them and raises; rank 0 has said how to resume by then."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from engine.config import dump_config

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    what = ["--resume", str(run_dir)] if resume else [str(run_dir / "config.yaml")]
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        run(parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "engine.cli", *command, *what]))
    except SignalException:  # a Ctrl-C once the ranks run (before that, it is a KeyboardInterrupt)
        return 130
    except ChildFailedError as exc:  # the rank has printed its error
        rank, failure = exc.get_first_failure()
        if failure.exitcode > 0:
            return failure.exitcode
        return fail(f"rank {rank} was killed by {failure.signal_name()}")
    return 0


def eval_command(args) -> int:
    from engine.config import ConfigError, load_config
    from engine.models import ModelLoadError
    from engine.trainer import evaluate_checkpoint

    ckpt = Path(args.checkpoint)
    model_dir = ckpt / "hf" if (ckpt / "hf").is_dir() else ckpt
    config, overrides = split_config_arg(args.config, args.overrides)
    config = config or run_config(ckpt)
    try:
        cfg = load_config(config, [*overrides, f"model.path={model_dir}"])
        tasks = ", ".join(t.display_name for t in cfg.tasks)
        print(f"eval: {model_dir}; config {config or 'built-in default'}; tasks {tasks}", file=sys.stderr)
        metrics = evaluate_checkpoint(cfg)
    except (ConfigError, ModelLoadError, FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    print(json.dumps(metrics))
    return 0


def run_config(path: Path) -> str | None:
    """The config.yaml of the run a checkpoint path (runs/<name>/checkpoints/step-N[/hf]) belongs to, if any."""
    for up in path.resolve().parents:
        if up.name == "checkpoints" and (up.parent / "config.yaml").is_file():
            return str(up.parent / "config.yaml")
    return None
