"""Find graders by name: built-ins, third-party plugins (entry points), and decorated local functions.

Why: a reward config names graders as strings (`grader: math`); this module turns a name into a Grader object,
lazily, so a broken or slow plugin costs nothing to runs that do not use it.

    from graders import registry
    registry.get("math")            # imports graders.math on first use
    registry.entries()["math"]      # Entry(name, ref, package, version)

Sources, in one table built once per process:
- built-ins declared below as name -> "module:attr" (imported only when asked for);
- entry points in the group `rlvr.graders` (`name = "pkg.module:obj"`), discovered through importlib.metadata;
- functions wrapped with `@graders.grader("name", ...)` (graders/function.py), registered when their module is
  imported. A worker process re-imports that module through the entry's `ref`.
A name declared by two packages is an error naming both, raised only where that name is used. An unknown
name lists the valid ones.
Not covered: unloading or reloading plugins; versions of local (decorated) graders.
"""
from __future__ import annotations

import importlib
import importlib.metadata as metadata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

BUILTINS: dict[str, str] = {
    "math": "graders.math:math_grader",
    "number": "graders.number:number_grader",
    "exact": "graders.exact:exact_grader",
    "regex": "graders.regex:regex_grader",
    "format": "graders.format:format_grader",
    "length": "graders.length:length_grader",
    "code": "graders.code:grader",
    "reward_model": "engine.rm_grader:reward_model_grader",  # torch, never in the pool (runs_in_pool = False)
}
ENTRY_POINT_GROUP = "rlvr.graders"


class GraderNotFound(KeyError):
    """No grader has this name."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0])


class GraderLoadError(RuntimeError):
    """A grader exists but could not be imported or does not follow the Grader protocol."""


class DuplicateGrader(RuntimeError):
    """Two packages declare the same grader name."""


@dataclass(frozen=True)
class Entry:
    """Where a grader comes from: `ref` is "module:attr"; package and version name its distribution."""

    name: str
    ref: str
    package: str
    version: str


_local: dict[str, Entry] = {}


def _rlvr_version() -> str:
    try:
        return metadata.version("rlvr")
    except metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def _installed() -> tuple[dict[str, Entry], dict[str, str]]:
    """Built-ins plus entry points, and the names two packages declare (name -> error). Read once."""
    table = {name: Entry(name, ref, "rlvr", _rlvr_version()) for name, ref in BUILTINS.items()}
    clashes: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        entry = Entry(ep.name, ep.value, dist.name if dist else "unknown", dist.version if dist else "unknown")
        old = table.get(entry.name)
        if old is not None and old.ref != entry.ref:
            clashes[entry.name] = _clash(old, entry)
        else:
            table[entry.name] = entry
    return table, clashes


def _clash(old: Entry, new: Entry) -> str:
    return (f"grader name {new.name!r} is declared twice: by {old.package} ({old.ref}) and by "
            f"{new.package} ({new.ref}); uninstall one package or rename one grader")


def entries() -> dict[str, Entry]:
    """Every known grader by name (nothing is imported). Names declared twice are in clashes() instead."""
    return {**_installed()[0], **_local}


def clashes() -> dict[str, str]:
    """Grader names two installed packages declare: name -> error naming both. Only runs using them fail."""
    return dict(_installed()[1])


def register_local(name: str, ref: str) -> None:
    """Record a grader defined in an importable module (used by the `@grader` decorator)."""
    table = entries()
    if name in table and table[name].ref == ref:
        return  # a built-in or plugin registering itself as its module is imported
    entry = Entry(name, ref, ref.split(":", 1)[0].split(".")[0], "local")
    if name in table or name in clashes():
        raise DuplicateGrader(_clash(table.get(name) or Entry(name, "?", "another package", "?"), entry))
    _local[name] = entry


def entry(name: str) -> Entry:
    """The entry for `name`; DuplicateGrader if two packages declare it; GraderNotFound listing valid names."""
    if name in clashes():
        raise DuplicateGrader(clashes()[name])
    table = entries()
    if name not in table:
        raise GraderNotFound(f"unknown grader {name!r}; valid graders: {', '.join(sorted(table))}")
    return table[name]


def get(name: str) -> Any:
    """The grader object for `name`, imported on first use."""
    return load(entry(name).ref, name)


@lru_cache(maxsize=None)
def load(ref: str, name: str = "") -> Any:
    """Import "module:attr" and check it looks like a Grader. Errors name the grader and the cause."""
    module_name, _, attr = ref.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # a broken plugin fails only the runs that use it
        raise GraderLoadError(f"grader {name or ref!r} ({ref}) failed to load: {type(exc).__name__}: {exc}") from exc
    missing = [a for a in ("name", "grade", "Params") if not hasattr(obj, a)]
    if missing:
        raise GraderLoadError(f"grader {name or ref!r} ({ref}) is not a Grader: it lacks {', '.join(missing)}")
    return obj
