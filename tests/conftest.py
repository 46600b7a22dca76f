"""Shared fixtures: a tiny random Llama (tests/engine_helpers.py) and a fast config for it."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine_helpers import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def tiny_config(tmp_path, tiny_model):
    """Overrides for a fast run of the tiny model on arithmetic with a reward that varies on random text."""
    return [f"model.path={tiny_model}", f"log.output_dir={tmp_path / 'runs'}", "log.run_name=tiny",
            "tasks.0.rewards=[{grader: regex, params: {pattern: '[a-m]'}}]",
            "rollout.prompts_per_step=4", "rollout.group_size=4", "rollout.max_new_tokens=8",
            "train.lr=1e-2", "train.steps=2", "train.time_budget_min=null", "train.grader_workers=1",
            "eval.size=8", "eval.every=0",
            "log.tensorboard=false", "log.progress=false"]
