"""Task lookup by name: the built-ins, plus third-party tasks declared through entry points.

    spec = get_task_spec("arithmetic")
    params = spec.Params.model_validate({"max_digits": 3})   # pydantic ValidationError names a bad field
    task = spec.build(params, seed=0, name="arithmetic")

A plugin package declares its task in its pyproject.toml; the object is a `tasks.TaskSpec`:

    [project.entry-points."rlvr.tasks"]
    countdown = "rlvr_countdown:SPEC"

Discovery is lazy and happens once: built-in modules are imported, and plugin entry points loaded, only when
their name is looked up, so a broken plugin fails only the runs that use it. A name declared twice (by two
plugins, or by a plugin and a built-in) is an error naming both packages when that name is looked up.
"""
from __future__ import annotations

import difflib
import importlib
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from tasks.base import TaskSpec

GROUP = "rlvr.tasks"
BUILTIN = "rlvr (built-in)"
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


class UnknownTaskError(LookupError):
    """No task is registered under the requested name."""


@cache
def plugin_entry_points() -> dict[str, list[EntryPoint]]:
    """Entry points of the rlvr.tasks group by name, in discovery order (not loaded)."""
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, []).append(ep)
    return found


def task_names() -> list[str]:
    """Every task name that can be looked up, sorted."""
    return sorted(set(BUILTINS) | set(plugin_entry_points()))


def get_task_spec(name: str) -> TaskSpec:
    """The TaskSpec registered under `name`; an unknown name's error lists the valid ones."""
    plugins = plugin_entry_points().get(name, [])
    origins = ([BUILTIN] if name in BUILTINS else []) + [package_of(ep) for ep in plugins]
    if len(origins) > 1:
        raise ValueError(
            f"task name {name!r} is declared by more than one package: {' and '.join(origins)}; "
            "uninstall one of them or ask its author to rename the task"
        )
    if name in BUILTINS:
        return load_builtin(name)
    if plugins:
        return load_plugin(plugins[0])
    close = difflib.get_close_matches(name, task_names(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownTaskError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(task_names())}.")


@cache
def load_builtin(name: str) -> TaskSpec:
    module, attr = BUILTINS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def load_plugin(ep: EntryPoint) -> TaskSpec:
    where = f"entry point {ep.name} = {ep.value!r} of package {package_of(ep)}"
    try:
        spec = ep.load()
    except Exception as exc:
        raise ImportError(f"task {ep.name!r}: could not load {where}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"task {ep.name!r}: {where} is a {type(spec).__name__}, expected a tasks.TaskSpec")
    if spec.name != ep.name:
        raise ValueError(f"task {ep.name!r}: {where} is a TaskSpec named {spec.name!r}; the names must match")
    return spec


def package_of(ep: EntryPoint) -> str:
    return f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else f"the package providing {ep.value}"
