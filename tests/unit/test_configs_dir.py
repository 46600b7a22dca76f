"""Every runnable config in configs/ validates (task params, grader params, cross-field rules)."""
from pathlib import Path

import pytest

from engine.config import load_config
from engine.trainer import build_tasks

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_validates(path, monkeypatch):
    monkeypatch.chdir(path.parents[1])  # data paths in configs are relative to the repository root
    cfg = load_config(path)
    tasks = build_tasks(cfg)  # data files exist and parse
    assert set(tasks) == {t.display_name for t in cfg.tasks}
    assert all(task.train_example(0).reference for task in tasks.values())


def test_there_are_configs():
    assert {"arithmetic.yaml", "mixture.yaml", "code.yaml"} <= {p.name for p in CONFIGS}
