"""Task lookup by name: the built-ins, plus third-party tasks declared through entry points.

    spec = get_task_spec("arithmetic")
    params = spec.Params.model_validate({"max_digits": 3})   # pydantic ValidationError names a bad field
    task = spec.build(params, seed=0, name="arithmetic")

A plugin package declares its task in its pyproject.toml; the object is a `tasks.TaskSpec` of the same name:

    [project.entry-points."rlvr.tasks"]
    countdown = "rlvr_countdown:SPEC"

The lookup is graders/plugins.py, shared with the grader registry: built-in modules are imported, and plugin
entry points loaded, only when their name is looked up, so a broken plugin fails only the runs that use it. A
name declared twice (by two plugins, or by a plugin and a built-in) is an error naming both packages when that
name is looked up; an unknown name suggests the closest one and lists the valid ones.
"""
from __future__ import annotations

from typing import Any

from graders.plugins import Registry, UnknownName
from tasks.base import TaskSpec

BUILTINS = {
    "arithmetic": "tasks.arithmetic:SPEC",
    "code_synth": "tasks.code_synth:SPEC",
    "dataset": "tasks.dataset:SPEC",
    "jsonl": "tasks.dataset:JSONL_SPEC",
    "gsm8k": "tasks.presets.math:GSM8K",
    "math": "tasks.presets.math:MATH",
    "humaneval": "tasks.presets.code:HUMANEVAL",
    "mbpp": "tasks.presets.code:MBPP",
    "apps": "tasks.presets.contests:APPS",
    "code_contests": "tasks.presets.contests:CODE_CONTESTS",
    "livecodebench": "tasks.presets.contests:LIVECODEBENCH",
}

UnknownTaskError = UnknownName


def not_a_task_spec(name: str, spec: Any) -> str | None:
    """Why `spec` cannot be the task called `name`, or None."""
    if not isinstance(spec, TaskSpec):
        return f"is a {type(spec).__name__}, expected a tasks.TaskSpec"
    if spec.name != name:
        return f"is a TaskSpec named {spec.name!r}; the names must match"
    return None


TASKS = Registry("task", BUILTINS, group="rlvr.tasks", check=not_a_task_spec)


def task_names() -> list[str]:
    """Every task name that can be looked up, sorted."""
    return sorted(TASKS.entries())


def get_task_spec(name: str) -> TaskSpec:
    """The TaskSpec registered under `name` (errors: graders.plugins' UnknownName, NameClash, LoadError)."""
    return TASKS.get(name)
