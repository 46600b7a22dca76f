"""The one place that decides devices, dtypes and the distributed backend. Nothing else mentions `cuda`.

CPU: float32, gloo. GPU: bfloat16, nccl, one device per local rank.
"""
from __future__ import annotations

import os

import torch


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def on_gpu() -> bool:
    return device().type == "cuda"


def use_local_device() -> None:
    """Make this process's GPU (by LOCAL_RANK) the current one: object collectives (all_gather_object) over nccl
    run on the current device, and before DeepSpeed's engine sets it that is GPU 0 for every rank of a node."""
    if device().type == "cuda":
        torch.cuda.set_device(device())


def train_dtype(requested: str = "auto") -> torch.dtype:
    if requested == "auto":
        return torch.bfloat16 if device().type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[requested]


def dist_backend() -> str:
    return "nccl" if device().type == "cuda" else "gloo"
