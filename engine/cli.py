"""The `rlvr` command. No logic here: each sub-command parses its arguments and calls into a package.

    rlvr train [CONFIG.yaml] [key=value ...] [--resume RUN_DIR] [--nproc N]
    rlvr eval CHECKPOINT [CONFIG.yaml] [key=value ...]
    rlvr rm train [CONFIG.yaml] [key=value ...] | rlvr rm eval MODEL_DIR PREFS.jsonl     (engine/rm_cli.py)
    rlvr grade --grader NAME [--params JSON] INPUT.jsonl [-o OUTPUT.jsonl]     (graders/cli.py)
    rlvr graders                                                                (graders/cli.py)
    rlvr sandbox check|build-image ...                                          (sandbox/cli.py)

Each package's cli module exposes `add_commands(subparsers)`; a parser's `func(args) -> int` runs it.
"""
from __future__ import annotations

import argparse
import importlib
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlvr", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in ("engine.train_cli", "engine.rm_cli", "graders.cli", "sandbox.cli"):
        try:
            importlib.import_module(module).add_commands(subparsers)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
