"""Name -> object lookup for what a config names by string (graders, tasks, advantage estimators); torch-free.

    GRADERS = Registry("grader", {"math": "graders.math:math_grader"}, group="rlvr.graders", check=not_a_grader)
    GRADERS.get("math")          # imports graders.math on first use, then returns the cached object
    GRADERS.entries()["math"]    # Entry(name, ref, package, version); nothing is imported
    ESTIMATORS = Registry("advantage estimator", {"grpo": "engine.advantages:grpo"})  # a fixed table

Names come from the built-in "module:attr" table, the entry points of `group` (read once, at the first lookup)
and `register()` calls (the `@grader` decorator). Nothing is imported before its name is used, so a broken
plugin fails only the runs that use it. The errors are LookupErrors that say what to do: UnknownName suggests
the closest name and lists the valid ones; NameClash names both packages declaring a name (only lookups of that
name fail); LoadError names the ref and why it could not be imported or `check` refused its object.
Not covered: unloading or reloading a plugin; versions of objects registered locally (shown as "local").
"""
from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata as metadata
from dataclasses import dataclass
from typing import Any, Callable, Mapping


class UnknownName(LookupError):
    """No entry has this name."""


class NameClash(LookupError):
    """Two packages declare the same name."""


class LoadError(LookupError):
    """The name exists, but its object could not be imported or is not the kind of object expected."""


@dataclass(frozen=True)
class Entry:
    """Where a named object comes from: `ref` is "module:attr"; package and version name its distribution."""

    name: str
    ref: str
    package: str
    version: str


class Registry:
    """The named objects of one kind; `kind` is the word errors use ("grader", "task", "advantage estimator").

    builtins: name -> "module:attr". group: the entry-point group plugins declare names in (None: builtins only).
    check(name, obj): why a loaded object cannot serve as `name` (a phrase such as "is not a Grader: ..."),
    or None when it can.
    """

    def __init__(self, kind: str, builtins: Mapping[str, str], group: str | None = None,
                 check: Callable[[str, Any], str | None] | None = None):
        self.kind, self.builtins, self.group, self.check = kind, dict(builtins), group, check
        self._local: dict[str, Entry] = {}
        self._scanned: tuple[dict[str, Entry], dict[str, tuple[Entry, Entry]]] | None = None
        self._loaded: dict[tuple[str, str], Any] = {}

    def _installed(self) -> tuple[dict[str, Entry], dict[str, tuple[Entry, Entry]]]:
        """Built-ins plus entry points, and the names two of them declare (name -> the first two). Read once."""
        if self._scanned is None:
            version = _rlvr_version()
            table = {name: Entry(name, ref, "rlvr", version) for name, ref in self.builtins.items()}
            clashes: dict[str, tuple[Entry, Entry]] = {}
            for ep in (metadata.entry_points(group=self.group) if self.group else ()):
                dist = ep.dist
                new = Entry(ep.name, ep.value, dist.name if dist else "unknown", dist.version if dist else "unknown")
                old = table.setdefault(new.name, new)
                if old.ref != new.ref:
                    clashes.setdefault(new.name, (old, new))
            self._scanned = {n: e for n, e in table.items() if n not in clashes}, clashes
        return self._scanned

    def entries(self) -> dict[str, Entry]:
        """Every name that can be looked up, and where it comes from (nothing is imported); not the clashes."""
        return {**self._installed()[0], **self._local}

    def clashes(self) -> dict[str, str]:
        """Names two packages declare: name -> the error naming both."""
        return {name: self._clash(*pair) for name, pair in self._installed()[1].items()}

    def entry(self, name: str) -> Entry:
        """The entry for `name`: NameClash if two packages declare it, UnknownName if none does."""
        clash = self._installed()[1].get(name)
        if clash:
            raise NameClash(self._clash(*clash))
        table = self.entries()
        if name not in table:
            close = difflib.get_close_matches(name, table, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownName(f"unknown {self.kind} {name!r}.{hint} Valid {self.kind}s: {', '.join(sorted(table))}.")
        return table[name]

    def get(self, name: str) -> Any:
        """The object called `name`, imported on first use."""
        return self.load(self.entry(name).ref, name)

    def load(self, ref: str, name: str) -> Any:
        """Import "module:attr" once and check it (worker processes load a grader by its entry's ref)."""
        if (ref, name) not in self._loaded:
            module, _, attr = ref.partition(":")
            try:
                obj = functools.reduce(getattr, attr.split("."), importlib.import_module(module))
            except Exception as exc:  # a broken plugin fails only the lookups of its own names
                raise LoadError(f"{self.kind} {name!r} ({ref}) failed to load: {type(exc).__name__}: {exc}") from exc
            problem = self.check(name, obj) if self.check else None
            if problem:
                raise LoadError(f"{self.kind} {name!r} ({ref}) {problem}")
            self._loaded[ref, name] = obj
        return self._loaded[ref, name]

    def register(self, name: str, ref: str) -> None:
        """Add `name` -> `ref`, defined in an importable module; NameClash if something else has the name."""
        clashes = self._installed()[1]
        taken = self.entries().get(name) or (clashes[name][0] if name in clashes else None)
        if taken is not None and taken.ref == ref:
            return  # a built-in or plugin registering itself as its module is imported
        new = Entry(name, ref, ref.split(":")[0].split(".")[0], "local")
        if taken is not None:
            raise NameClash(self._clash(taken, new))
        self._local[name] = new

    def rescan(self) -> None:
        """Read the entry points again at the next lookup (a package was installed while this process ran)."""
        self._scanned = None

    def _clash(self, first: Entry, second: Entry) -> str:
        return (f"{self.kind} name {first.name!r} is declared twice: by {first.package} {first.version} "
                f"({first.ref}) and by {second.package} {second.version} ({second.ref}); uninstall one package "
                f"or rename one {self.kind}")


def _rlvr_version() -> str:
    try:
        return metadata.version("rlvr")
    except metadata.PackageNotFoundError:
        return "unknown"
