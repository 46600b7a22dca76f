"""Checkpoints that a killed run resumes from exactly.

    runs/<name>/checkpoints/step-000020/
        hf/                   the policy, Hugging Face format (safetensors) + tokenizer: loadable on its own
        ds/                   DeepSpeed state: module, optimizer, LR schedule (per rank under ZeRO)
        critic/               the critic's DeepSpeed state, the same way (runs with a PPO critic only)
        trainer_state.json    step, data-mixture cursor, counters
        rng-rank<r>.pt        python / numpy / torch RNG states of each rank

Atomic: everything is written into `step-000020.tmp/` and renamed when complete, so a run killed at any moment
(SIGKILL included) leaves either the whole checkpoint or none; `latest_checkpoint` ignores `.tmp` leftovers and
`remove_partial` deletes them when the run starts again. Only the `keep` most recent checkpoints are kept.
A write that fails on a full disk removes its partial checkpoint at once and raises `DiskFull`, whose message says
which checkpoint is kept, how much one takes and how to go on.
"""
from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from rich import filesize

from engine import distributed as D

DS_TAG = "state"
DISK_FULL = 64 * 2**20  # bytes left on the device below which a failed write is taken for a full disk


class DiskFull(RuntimeError):
    """A checkpoint could not be written for lack of space; the message says what was kept and how to go on."""


def disk_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:06d}"


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Finished checkpoints (`.tmp` leftovers excluded), oldest first."""
    found = [p for p in (run_dir / "checkpoints").glob("step-*") if re.fullmatch(r"step-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(run_dir: Path, step: int, engine, tokenizer, trainer_state: dict, keep: int,
                    critic=None) -> Path:
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if D.rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    D.barrier()
    weights = D.full_state_dict(engine)
    try:
        engine.save_checkpoint(str(tmp / "ds"), tag=DS_TAG)
        if critic is not None:
            critic.save_checkpoint(str(tmp / "critic"), tag=DS_TAG)
        torch.save(rng_state(), tmp / f"rng-rank{D.rank()}.pt")
        if D.rank() == 0:
            engine.module.save_pretrained(tmp / "hf", state_dict=weights, safe_serialization=True)
            tokenizer.save_pretrained(tmp / "hf")
            (tmp / "trainer_state.json").write_text(json.dumps({**trainer_state, "step": step}, indent=1))
    except Exception as exc:
        free = shutil.disk_usage(tmp.parent).free
        shutil.rmtree(tmp, ignore_errors=True)  # as big as a whole checkpoint, and useless
        if free >= DISK_FULL:
            raise
        last = latest_checkpoint(run_dir)
        kept = (f"the last complete one, {last.name}, is kept; each takes {filesize.decimal(disk_size(last))}" if last else
                "no checkpoint was complete yet")
        raise DiskFull(f"the disk is full: {final} could not be written ({filesize.decimal(free)} left there). The "
                       f"partial checkpoint is removed and {kept}. Free some space (or lower "
                       f"train.keep_checkpoints), then go on with --resume {run_dir}.") from exc
    D.barrier()
    if D.rank() == 0:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        prune(run_dir, keep)
    D.barrier()
    return final


def prune(run_dir: Path, keep: int) -> None:
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    remove_partial(run_dir)


def remove_partial(run_dir: Path) -> None:
    """Delete the `.tmp` leftovers of checkpoints a killed run did not finish (a whole model's size each)."""
    for leftover in (run_dir / "checkpoints").glob("step-*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


def load_checkpoint(ckpt: Path, engine, critic=None) -> dict:
    """Restore module, optimizer, schedule (the critic's too, when given) and this rank's RNG; return the trainer
    state."""
    if critic is not None and not (ckpt / "critic").is_dir():
        raise RuntimeError(f"{ckpt} has no critic/ state: it was written by a run without a critic, and this config "
                           "trains one (a task's advantage is gae). Resume with the config of that run.")
    for what, target in (("ds", engine), ("critic", critic)):
        if target is not None and target.load_checkpoint(str(ckpt / what), tag=DS_TAG)[0] is None:
            raise RuntimeError(f"DeepSpeed found no state in {ckpt / what}; the checkpoint is incomplete.")
    rng_file = ckpt / f"rng-rank{D.rank()}.pt"
    if not rng_file.is_file():
        raise RuntimeError(f"{rng_file} is missing: the checkpoint was written by a run with a different number "
                           "of processes. Resume with the same --nproc.")
    set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((ckpt / "trainer_state.json").read_text())


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
