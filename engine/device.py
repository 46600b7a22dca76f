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


def train_dtype(requested: str = "auto") -> torch.dtype:
    if requested == "auto":
        return torch.bfloat16 if device().type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[requested]


def dist_backend() -> str:
    return "nccl" if device().type == "cuda" else "gloo"
