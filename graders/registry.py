"""Find graders by name: built-ins, third-party plugins (entry points), and decorated local functions.

Why: a reward config names graders as strings (`grader: math`); this module turns a name into a Grader object,
lazily, so a broken or slow plugin costs nothing to runs that do not use it.

    from graders import registry
    registry.get("math")            # imports graders.math on first use
    registry.entries()["math"]      # Entry(name, ref, package, version)

Sources (the lookup itself is graders/plugins.py, shared with tasks/registry.py):
- built-ins declared below as name -> "module:attr" (imported only when asked for);
- entry points in the group `rlvr.graders` (`name = "pkg.module:obj"`), discovered through importlib.metadata;
- functions wrapped with `@graders.grader("name", ...)` (graders/function.py), registered when their module is
  imported. A worker process re-imports that module through the entry's `ref`.
A name declared by two packages is an error naming both, raised only where that name is used. An unknown
name suggests the closest one and lists the valid ones.
"""
from __future__ import annotations

from typing import Any

from graders.plugins import Entry, LoadError, NameClash, Registry, UnknownName

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

GraderNotFound, DuplicateGrader, GraderLoadError = UnknownName, NameClash, LoadError


def not_a_grader(name: str, obj: Any) -> str | None:
    """Why `obj` does not follow the Grader protocol (graders/base.py), or None."""
    missing = [a for a in ("name", "grade", "Params") if not hasattr(obj, a)]
    return f"is not a Grader: it lacks {', '.join(missing)}" if missing else None


GRADERS = Registry("grader", BUILTINS, group="rlvr.graders", check=not_a_grader)
entries, clashes, entry, get, load = GRADERS.entries, GRADERS.clashes, GRADERS.entry, GRADERS.get, GRADERS.load
register_local = GRADERS.register

__all__ = ["BUILTINS", "DuplicateGrader", "Entry", "GRADERS", "GraderLoadError", "GraderNotFound", "clashes",
           "entries", "entry", "get", "load", "register_local"]
