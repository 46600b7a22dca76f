"""DeepSpeed and torch.distributed set-up: process group, engine, optimizer, schedule, cross-rank reductions.

One process or many (launched by `rlvr train --nproc N [--nnodes M ...]`, torchrun or the deepspeed launcher):
gloo on CPU, nccl on GPU. Ranks are numbered globally (RANK = node rank x processes per node + LOCAL_RANK); RANK 0
writes the run's files, LOCAL_RANK picks the GPU (engine/device.py). Over several nodes, `check_same_run` makes
sure at start that every rank trains the same config in the same run directory. The optimizer is torch's AdamW
handed to DeepSpeed (works with ZeRO 0-3 on CPU and GPU without compiling fused kernels); the schedule is linear
warm-up then cosine decay to `min_lr_ratio`.

Micro-batches are bounded by tokens, so their number varies per step; gradient accumulation boundaries are
therefore set by hand (`set_gradient_accumulation_boundary`) instead of a fixed accumulation count.
"""
from __future__ import annotations

import contextlib
import math
import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from engine import device as dev
from engine.config import Config

# DeepSpeed logs to stdout, which is for our commands' results: its log handler keeps the stream it is made with
with contextlib.redirect_stdout(sys.stderr):
    import deepspeed


def init_distributed() -> None:
    """Join (or, for a plain single process, create) the process group."""
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(free_port()))
    if not dist.is_initialized():
        dev.use_local_device()
        with contextlib.redirect_stdout(sys.stderr):  # (on CPU it prints a line as it builds its shared-memory op)
            deepspeed.init_distributed(dist_backend=dev.dist_backend(), verbose=False)


def shutdown() -> None:
    """Destroy the process group at a clean end, on every rank: a process that exits with gloo's worker threads
    still alive can abort in the interpreter's teardown ("terminate called without an active exception",
    SIGABRT) after a run that went well. Not on error paths, where peers may still be in a collective."""
    if dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def all_reduce(values: list[float], op: str = "sum") -> list[float]:
    """Reduce a few floats across ranks (sum or max)."""
    if world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=dev.device() if dev.dist_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t.tolist()


def all_gather_objects(obj):
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def lost_peer(exc: BaseException) -> bool:
    """Whether `exc` is a collective failing because another rank's process is gone (stopped or crashed)."""
    text = str(exc)
    return isinstance(exc, dist.DistError) or (isinstance(exc, RuntimeError) and "gloo" in text and any(
        m in text for m in ("Connection closed by peer", "Connection reset by peer", "Broken pipe")))


def check_same_run(run_dir: Path, cfg: Config, wait_s: float = 60.0) -> None:
    """Several nodes: raise ValueError (on every rank alike) unless each rank sees rank 0's run directory, i.e. a
    filesystem shared by all nodes at the same path (checkpoints are written there by every rank), and was started
    with rank 0's config. A file rank 0 writes may take a while to show on another node (NFS caches directory
    lookups), hence the wait before calling it unshared."""
    if world_size() == 1:
        return
    settings = flat_keys(cfg.model_dump(mode="json"))
    token = all_gather_objects(secrets.token_hex(8))[0]  # rank 0's
    probe = run_dir / f".node-check-{token}"
    if rank() == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text(token)
    barrier()
    deadline = time.monotonic() + wait_s
    while not (sees := probe.is_file() and probe.read_text() == token) and time.monotonic() < deadline:
        time.sleep(0.5)
    node = os.environ.get("GROUP_RANK", "?")
    views = all_gather_objects((node, socket.gethostname(), sees, settings))
    if rank() == 0:
        probe.unlink(missing_ok=True)
    first = views[0][3]  # rank 0's config
    for r, (node, host, sees, other) in enumerate(views):
        where = f"node {node} (rank {r}, host {host})"
        if not sees:
            raise ValueError(f"{where} cannot see the run directory {run_dir} that rank 0 writes to. Every node "
                             "must reach it at the same path on a filesystem they all share (NFS, Lustre, ...): "
                             "checkpoints are written there by every rank.")
        differ = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
        if differ:
            shown = "; ".join(f"{k}: {other.get(k)!r} there, {first.get(k)!r} on rank 0" for k in differ[:3])
            more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
            raise ValueError(f"{where} was started with a different config than rank 0: {shown}{more}. Start "
                             "every node with the same config file and overrides.")


def flat_keys(value, prefix: str = "") -> dict[str, object]:
    """{"train": {"lr": 0.1}, "tasks": [{"name": "arithmetic"}]} -> {"train.lr": 0.1, "tasks.0.name": "arithmetic"}"""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value:
        items = enumerate(value)
    else:
        return {prefix: value}
    return {k: v for key, item in items
            for k, v in flat_keys(item, f"{prefix}.{key}" if prefix else str(key)).items()}


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float, time_fraction: float = 0.0) -> float:
    """LR multiplier: linear 0 -> 1 over `warmup` steps, then cosine 1 -> min_ratio. Progress is the larger of
    the step fraction and `time_fraction` (the share of a time budget spent), so a run that the clock will stop
    still anneals by its end."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_engine(model: torch.nn.Module, cfg: Config, optimizer_steps: int,
                 time_fraction: Callable[[], float] = lambda: 0.0, lr: float | None = None):
    """Wrap a model (the policy, or the critic with its own `lr`) in a DeepSpeed engine with AdamW and the
    warm-up + cosine schedule."""
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr or cfg.train.lr, weight_decay=cfg.train.weight_decay,
                                  betas=(0.9, 0.99), foreach=True)  # batched kernels, also on CPU
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(
        s, cfg.train.warmup_steps, optimizer_steps, cfg.train.min_lr_ratio, time_fraction()))
    ds_config = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,          # boundaries are set by hand, see the module docstring
        "gradient_clipping": cfg.train.grad_clip,
        "zero_optimization": {"stage": cfg.train.zero_stage,
                              "stage3_gather_16bit_weights_on_model_save": True},
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": dev.train_dtype(cfg.model.dtype) == torch.bfloat16},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=schedule,
                                           config=ds_config)
    if world_size() == 1 and cfg.train.zero_stage == 0:
        engine.enable_backward_allreduce = False  # a lone process would all-reduce its gradients with itself
    return engine


def full_state_dict(engine) -> dict[str, torch.Tensor] | None:
    """The whole model's weights on rank 0 (gathered under ZeRO-3), None on other ranks."""
    if engine.zero_optimization_stage() == 3:
        return engine._zero3_consolidated_16bit_state_dict()
    return engine.module.state_dict() if rank() == 0 else None
