"""`rlvr sandbox ...`: the isolation self-test and the local image build.

    rlvr sandbox check [--backend bwrap|docker|all] [--image IMAGE]   # exit 1 when a property fails
    rlvr sandbox build-image [--tag rlvr-sandbox:py3] [--force]        # debootstrap + docker import, no registry
"""
from __future__ import annotations

import argparse
import time

from sandbox.image import IMAGE


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="sandbox self-test and image build")
    commands = parser.add_subparsers(dest="sandbox_command", required=True)
    check = commands.add_parser("check", help="attack the sandbox and print one row per isolation property")
    check.add_argument("--backend", choices=["bwrap", "docker", "all"], default="all",
                       help="backend to test (default: all; the process backend has no isolation to test)")
    check.add_argument("--image", default=IMAGE, help="docker image (docker backend)")
    check.set_defaults(func=run_check)
    build = commands.add_parser("build-image", help="build the docker backend's python3 image locally")
    build.add_argument("--tag", default=IMAGE, help="image tag to create")
    build.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    build.set_defaults(func=run_build_image)


def run_check(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from sandbox.check import run_checks

    console = Console()
    failed = False
    for backend in (["bwrap", "docker"] if args.backend == "all" else [args.backend]):
        started = time.monotonic()
        table = Table(title=f"sandbox check: {backend}")
        for column in ("property", "result", "detail"):
            table.add_column(column)
        try:
            results = run_checks(backend, **({"image": args.image} if backend == "docker" else {}))
        except RuntimeError as exc:
            console.print(f"[red]{backend}: {exc}[/red]")
            failed = True
            continue
        for result in results:
            table.add_row(result.name, "[green]pass[/green]" if result.ok else "[red]FAIL[/red]", result.detail)
            failed = failed or not result.ok
        console.print(table)
        console.print(f"{backend}: {sum(r.ok for r in results)}/{len(results)} properties hold "
                      f"({time.monotonic() - started:.1f}s)")
    return 1 if failed else 0


def run_build_image(args: argparse.Namespace) -> int:
    from sandbox.image import build_image

    try:
        image_id = build_image(args.tag, force=args.force)
    except RuntimeError as exc:
        print(f"error: {exc}")
        return 1
    print(f"{args.tag}: {image_id}")
    return 0
