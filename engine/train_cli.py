"""`rlvr train` and `rlvr eval`: argument parsing, run directories, user-facing errors. Logic lives elsewhere.

    rlvr train                                # the embedded default: SmolLM2-135M on procedural arithmetic
    rlvr train configs/arithmetic.yaml train.steps=10 rollout.group_size=4
    rlvr train --resume runs/<name>           # continue exactly where the last checkpoint left off
    rlvr train --nproc 2 ...                  # data-parallel over 2 processes (torchrun underneath)
    rlvr train --nnodes 2 --node-rank R --master-addr HOST [--master-port P] [--nproc N] CONFIG log.run_name=NAME
                                              # over 2 machines: the same command on each, with R = 0, 1
    rlvr eval runs/<name>/checkpoints/step-000060 [CONFIG] [key=value ...]
    rlvr eval CKPT_OR_MODEL SUITE [key=value ...] [--output DIR]   # an eval suite (engine/suite.py)

A run directory without a complete checkpoint (a run stopped before its first one) is started again from
scratch in place, by `rlvr train` with the same log.run_name or by `--resume`. Ctrl-C stops training within
seconds (grader workers and, under --nproc, every rank included), says where the last checkpoint is and how to
resume, and exits with status 130.

Several nodes (machines): every node runs the same command (same config, overrides and --nproc) with its own
--node-rank; ranks are numbered globally (node 1's first process is rank N with --nproc N). Node 0 hosts the
rendezvous at --master-addr:--master-port, creates the run directory and writes config.yaml; global rank 0 writes
the logs. The run directory must be on a filesystem every node shares, at the same path: every rank writes its
part of each checkpoint there. The ranks check both at start (a node that cannot see the run directory, or was
started with another config, stops the run with a message naming it). A fresh run needs an explicit
log.run_name, so that the nodes agree on the directory. Ctrl-C on one node stops that node's processes as above
and prints that node's resume command; the other nodes' processes then lose their peers and stop with an error
within seconds (on GPUs, nccl may take up to its collective timeout). `--resume` works as on one node, on every
node.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_MASTER_PORT = 29500  # torchrun's


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a policy with GRPO", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="YAML config (default: the embedded one)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.steps=10")
    p.add_argument("--resume", metavar="RUN_DIR", help="resume the run in RUN_DIR from its last checkpoint")
    p.add_argument("--nproc", type=int, default=1, help="data-parallel processes on this machine (node)")
    p.add_argument("--nnodes", type=int, default=1, help="machines in the run; start the same command on each")
    p.add_argument("--node-rank", type=int, default=0, help="this machine's number, 0 to NNODES-1 (node 0 hosts "
                   "the rendezvous and creates the run directory)")
    p.add_argument("--master-addr", metavar="HOST", help="node 0's address, reachable from every node")
    p.add_argument("--master-port", type=int, metavar="PORT",
                   help=f"a free TCP port on node 0 (default {DEFAULT_MASTER_PORT})")
    p.add_argument("--help-config", action="store_true", help="list every config key and exit")
    p.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)  # the deepspeed launcher's
    p.set_defaults(func=train_command)
    e = subparsers.add_parser("eval", help="evaluate a checkpoint on the held-out splits, or on an eval suite",
                              description=EVAL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.__class__ = OptionsAnywhereParser  # `rlvr eval MODEL --suite code defaults.n=4`
    e.add_argument("checkpoint", help="a checkpoint directory (…/checkpoints/step-N), an HF model directory, or "
                   "(with a suite) any model `model.path` takes, e.g. smollm2-135m")
    e.add_argument("config", nargs="?", help="YAML config for tasks and eval settings (default: the run's), or an "
                   "eval suite: a built-in suite's name or a YAML file with a top-level `sets:` list")
    e.add_argument("overrides", nargs="*", help="dotted key=value overrides (with a suite: sets./defaults. keys "
                   "change the suite, others the run config)")
    e.add_argument("--suite", metavar="NAME_OR_FILE", help="evaluate this suite; a CONFIG given as well is the run "
                   "config the model settings come from")
    e.add_argument("--output", metavar="DIR", help="where a suite writes eval.json, eval.md and samples.jsonl "
                   "(default: CKPT/eval-SUITE/ for a directory, else evals/MODEL/SUITE/)")
    e.set_defaults(func=eval_command)


class OptionsAnywhereParser(argparse.ArgumentParser):
    """Options between positionals: plain argparse gives the overrides after `--suite code` no positional left."""

    def parse_known_args(self, args=None, namespace=None):
        if getattr(self, "_intermixing", False):  # parse_known_intermixed_args calls back in here
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


EVAL_HELP = """Evaluate a checkpoint: on its run's held-out splits (greedy accuracy, pass@k with eval.k; JSON on
stdout), or on an eval suite (several sets, each with greedy accuracy, pass@k, maj@k for math, mean length,
truncation and grader errors; eval.json + eval.md written, the table printed).

    rlvr eval runs/<name>/checkpoints/step-000060                  # the run's tasks and eval settings
    rlvr eval runs/<name>/checkpoints/step-000060 code             # the built-in suite `code` (HumanEval + MBPP)
    rlvr eval smollm2-135m --suite code defaults.n=4 "defaults.k=[1,4]"
    rlvr eval CKPT my_suite.yaml sets.0.limit=20 --output evals/mine

CONFIG is a suite when it names a built-in suite (code, arithmetic) or is a YAML file with a top-level `sets:`
key (a run config never has one); `--suite` says so explicitly. A suite file:

    description: what it measures
    defaults: {max_new_tokens: 512, n: 4, k: [1, 4], temperature: 0.8}    # options of every set
    sets:
      - task: {name: humaneval, params: {path: humaneval.jsonl}, rewards: [{grader: code}]}
        limit: 50                                                       # a set's own options win
      - task: {name: gsm8k, label: gsm8k-test, params: {path: test.parquet}, rewards: [{grader: math}]}

Set options: limit (first N examples), n (samples per example for pass@k/maj@k; 0: greedy only), k (list),
temperature, top_p, max_new_tokens, max_prompt_tokens. Relative data paths are read next to the suite file when
something of that name is there. Details: engine/suite.py.
"""


def split_config_arg(config: str | None, overrides: list[str]) -> tuple[str | None, list[str]]:
    """argparse puts a leading key=value into `config`; move it back to the overrides."""
    if config is not None and "=" in config and not config.endswith((".yaml", ".yml")):
        return None, [config, *overrides]
    return config, overrides


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def topology_problem(args) -> str | None:
    """What is wrong with --nproc, --nnodes, --node-rank, --master-addr and --master-port, if anything."""
    if args.nproc < 1:
        return f"--nproc must be at least 1, got {args.nproc}."
    if args.nnodes < 1:
        return f"--nnodes must be at least 1, got {args.nnodes}."
    if args.nnodes == 1 and (args.node_rank or args.master_addr or args.master_port is not None):
        return "--node-rank, --master-addr and --master-port are for a run over several machines; add --nnodes N."
    if not 0 <= args.node_rank < args.nnodes:
        return (f"--node-rank {args.node_rank} is out of range: with --nnodes {args.nnodes} it is 0 to "
                f"{args.nnodes - 1}.")
    if args.nnodes > 1 and not args.master_addr:
        return (f"--nnodes {args.nnodes} needs --master-addr HOST: the address of node 0 (the machine started with "
                "--node-rank 0), reachable from every node.")
    if args.master_port is not None and not 1 <= args.master_port <= 65535:
        return f"--master-port must be a TCP port number, 1 to 65535; got {args.master_port}."
    return None


def stop_on_ctrl_c() -> None:
    """Make Ctrl-C raise KeyboardInterrupt (once), the commands' way to stop cleanly; unless Ctrl-C is ignored, as
    in a shell's background job, which is honoured."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, stop_on_interrupt)
        sys.unraisablehook = redeliver_lost_interrupt


def stop_on_interrupt(signum, frame) -> None:
    """Ctrl-C: stop now. Later ones (a second Ctrl-C, the launcher forwarding it) must not cut the clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def redeliver_lost_interrupt(unraisable) -> None:
    """A Ctrl-C that lands while Python runs a finalizer (a weakref callback or a __del__; matplotlib's plots run
    thousands) raises its KeyboardInterrupt there, where Python prints it and drops it: the run would train on,
    deaf to Ctrl-C. Send it again to the main thread, as the terminal did (a blocking call there returns early),
    from a timer thread, so that it lands after this hook has returned."""
    if unraisable.exc_type is not KeyboardInterrupt:
        return sys.__unraisablehook__(unraisable)
    signal.signal(signal.SIGINT, stop_on_interrupt)
    threading.Timer(0.1, signal.pthread_kill, args=(threading.main_thread().ident, signal.SIGINT)).start()


def interrupted(run_dir: Path, args) -> int:
    """Say where the run can be picked up again (the first process of each interrupted node says it); 130 is the
    shell's status for a Ctrl-C."""
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        hint = resume_hint(run_dir, args)
        print(f"\ninterrupted: {hint[0].lower()}{hint[1:]}", file=sys.stderr)
    return 130


def lost_peers(run_dir: Path, args, exc: BaseException) -> int:
    """Another rank's process is gone (Ctrl-C or a crash, on this node or another): say so, and how to resume."""
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        reason = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).strip().splitlines()[0]).split(". ")[0]
        print(f"error: lost contact with the other ranks ({reason}): a process of this run stopped or failed, on "
              f"another node if not here (its output says why). {resume_hint(run_dir, args)}", file=sys.stderr)
    return 1


def resume_hint(run_dir: Path, args) -> str:
    from engine.checkpoint import latest_checkpoint

    command, nnodes, node = resume_command(run_dir, args)
    on = f", on every node (this is --node-rank {node} of {nnodes})" if nnodes > 1 else ""
    last = latest_checkpoint(run_dir)
    where = f"The last checkpoint is {last}" if last else "There is no checkpoint yet (resuming starts afresh)"
    return f"{where}. Continue with{on}:\n  {command}"


def resume_command(run_dir: Path, args) -> tuple[str, int, int]:
    """The command that resumes the run on this node, the number of nodes and this node's rank: from the
    arguments in the launcher, from torchrun's environment in a rank."""
    env = os.environ
    if "RANK" in env:
        nproc = int(env.get("LOCAL_WORLD_SIZE", env.get("WORLD_SIZE", 1)))
        nnodes, node = int(env.get("GROUP_WORLD_SIZE", 1)), int(env.get("GROUP_RANK", 0))
        addr, port = env.get("MASTER_ADDR"), env.get("MASTER_PORT")
    else:
        nproc, nnodes, node = args.nproc, args.nnodes, args.node_rank
        addr, port = args.master_addr, args.master_port or DEFAULT_MASTER_PORT
    words = ["rlvr", "train"] + (["--nproc", str(nproc)] if nproc > 1 else [])
    if nnodes > 1:
        words += ["--nnodes", str(nnodes), "--node-rank", str(node), "--master-addr", addr, "--master-port", str(port)]
    return shlex.join([*words, "--resume", str(run_dir)]), nnodes, node


def train_command(args) -> int:
    from engine.config import ConfigError, config_reference, load_config

    if args.help_config:
        print(config_reference())
        return 0
    if problem := topology_problem(args):
        return fail(problem)
    stop_on_ctrl_c()
    config, overrides = split_config_arg(args.config, args.overrides)
    try:
        if args.resume:
            run_dir = Path(args.resume)
            if not (run_dir / "config.yaml").is_file():
                return fail(f"{run_dir} is not a run directory (no config.yaml); pass runs/<name>.")
            # (the ranks of a node other than 0 read their launcher's config, checked against rank 0's at start)
            own = config if config and "RANK" in os.environ else run_dir / "config.yaml"
            cfg = load_config(own, overrides)
        else:
            cfg = load_config(config, overrides)
            if args.nnodes > 1 and not cfg.log.run_name:
                return fail(f"--nnodes {args.nnodes} needs log.run_name=NAME, the same on every node, so that all "
                            "nodes write to one run directory.")
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
        return interrupted(run_dir, args)


def train_or_launch(cfg, run_dir: Path, args) -> int:
    """Train (or resume) in this process, or launch `args.nproc` of them (on each of `args.nnodes` nodes)."""
    if (args.nproc > 1 or args.nnodes > 1) and "RANK" not in os.environ:
        return launch(args.nproc, cfg, run_dir, bool(args.resume), nnodes=args.nnodes, node_rank=args.node_rank,
                      master_addr=args.master_addr, master_port=args.master_port)
    from engine import distributed as D
    from engine.checkpoint import DiskFull
    from engine.models import ModelLoadError
    from engine.trainer import TrainingStopped, train
    try:
        if int(os.environ.get("WORLD_SIZE", 1)) > 1:
            D.init_distributed()
            D.check_same_run(run_dir, cfg)
        summary = train(cfg, run_dir, resume=bool(args.resume))
    except (ModelLoadError, FileNotFoundError, TrainingStopped, DiskFull, ValueError) as exc:
        return fail(str(exc))
    except RuntimeError as exc:
        if not D.lost_peer(exc):
            raise
        return lost_peers(run_dir, args, exc)
    D.shutdown()
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(summary))
    return 0


def launch(nproc: int, cfg, run_dir: Path, resume: bool, command: tuple[str, ...] = ("train",), nnodes: int = 1,
           node_rank: int = 0, master_addr: str | None = None, master_port: int | None = None) -> int:
    """Re-run this command under torchrun with `nproc` processes on this node (the run dir is fixed first, so all
    agree), over `nnodes` nodes that meet at `master_addr`:`master_port` (torchrun's static rendezvous, hosted by
    node 0; each launcher waits up to 10 minutes for the others). Node 0 creates the run directory and writes its
    config.yaml, which its ranks read; another node's ranks read this launcher's config from a temporary file, and
    compare it with rank 0's at start (`check_same_run`).

    torchrun's agent runs in this process: it forwards a Ctrl-C to the ranks (which torchrun starts in their own
    sessions, out of the terminal's reach), waits for them and raises; the node's first rank has said how to resume
    by then."""
    from torch.distributed import DistError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from engine.config import dump_config

    if node_rank == 0:  # (atomically: on --resume, other nodes' launchers may be reading it)
        run_dir.mkdir(parents=True, exist_ok=True)
        config_file = run_dir / "config.yaml"
        config_file.with_suffix(".yaml.tmp").write_text(dump_config(cfg))
        config_file.with_suffix(".yaml.tmp").replace(config_file)
        what = ["--resume", str(run_dir)] if resume else [str(config_file)]
    else:
        fd, name = tempfile.mkstemp(prefix="rlvr-node-config-", suffix=".yaml")
        os.close(fd)
        config_file = Path(name)
        config_file.write_text(dump_config(cfg))
        what = ["--resume", str(run_dir), name] if resume else [name]
    if nnodes > 1:
        where = [f"--nnodes={nnodes}", f"--node-rank={node_rank}", f"--master-addr={master_addr}",
                 f"--master-port={master_port or DEFAULT_MASTER_PORT}"]
    else:
        where = ["--standalone"]
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    try:
        run(parse_args([*where, f"--nproc-per-node={nproc}", "-m", "engine.cli", *command, *what]))
    except SignalException:  # a Ctrl-C once the ranks run (before that, it is a KeyboardInterrupt)
        return 130
    except ChildFailedError as exc:  # the rank has printed its error
        rank, failure = exc.get_first_failure()
        if failure.exitcode > 0:
            return failure.exitcode
        return fail(f"rank {rank} was killed by {failure.signal_name()}")
    except DistError as exc:  # the rendezvous: this launcher and the others did not meet
        reason = str(exc).strip().splitlines()[0].rstrip(".")
        return fail(f"the {nnodes} nodes did not all meet at {master_addr}:{master_port or DEFAULT_MASTER_PORT} "
                    f"({reason}). Start the same command on every node, each with its own --node-rank, and check "
                    "that node 0 is reachable at that address and port from every node.")
    finally:
        if node_rank:
            config_file.unlink(missing_ok=True)
    return 0


def eval_command(args) -> int:
    from engine.config import ConfigError, load_config
    from engine.models import ModelLoadError
    from engine.suite import find_suite

    ckpt = Path(args.checkpoint)
    model_dir = ckpt / "hf" if (ckpt / "hf").is_dir() else ckpt
    config, overrides = split_config_arg(args.config, args.overrides)
    if args.suite is not None or (config is not None and find_suite(config)):
        return eval_suite_command(args, ckpt, model_dir, config, overrides)
    if args.output is not None:
        return fail("--output is for eval suites (pass a suite: a built-in name, a file with `sets:`, or --suite).")
    from engine.trainer import evaluate_checkpoint
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


def eval_suite_command(args, ckpt: Path, model_dir: Path, config: str | None, overrides: list[str]) -> int:
    """`rlvr eval CKPT SUITE` / `--suite`: run the suite, write eval.json, eval.md and samples.jsonl, print the
    table. Model settings (chat template, dtype, batch, grader workers, seed) come from the run config."""
    from engine.config import ConfigError, load_config
    from engine.models import ModelLoadError
    from engine.suite import (builtin_suites, default_output, find_suite, load_suite, run_suite, split_overrides,
                              write_report)

    name, run_cfg = (args.suite, config) if args.suite is not None else (config, None)
    path = find_suite(name)
    if path is None:
        return fail(f"no eval suite {name!r}: pass a built-in suite ({', '.join(builtin_suites())}) or a YAML file "
                    "with a top-level `sets:` list.")
    run_cfg = run_cfg or run_config(ckpt)
    suite_overrides, config_overrides = split_overrides(overrides)
    try:
        suite = load_suite(path, suite_overrides)
        cfg = load_config(run_cfg, [*config_overrides, f"model.path={model_dir}"])
    except ConfigError as exc:
        return fail(str(exc))
    out_dir = Path(args.output) if args.output else default_output(ckpt, path.stem)
    print(f"eval: {model_dir}; suite {path.stem} ({path}): {', '.join(s.label for s in suite.sets)}; model "
          f"settings from {run_cfg or 'the built-in defaults'}; writing to {out_dir}/", file=sys.stderr)
    start = time.monotonic()
    try:
        results, rows = run_suite(suite, cfg)
    except (ModelLoadError, FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    header = {"model": str(model_dir), "suite": path.stem, "suite_file": str(path), "run_config": run_cfg,
              "overrides": overrides, "seed": cfg.train.seed, "seconds": round(time.monotonic() - start, 1)}
    print(write_report(out_dir, header, results, rows))
    print(f"wrote {out_dir / 'eval.json'}, eval.md and samples.jsonl ({header['seconds']:.0f} s)", file=sys.stderr)
    return 0


def run_config(path: Path) -> str | None:
    """The config.yaml of the run a checkpoint path (runs/<name>/checkpoints/step-N[/hf]) belongs to, if any."""
    for up in path.resolve().parents:
        if up.name == "checkpoints" and (up.parent / "config.yaml").is_file():
            return str(up.parent / "config.yaml")
    return None
