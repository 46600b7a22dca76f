"""Where a dataset task's rows come from, read one row at a time: local files, folders, or a hub id.

    source = open_source("data/gsm8k.jsonl", what="task 'gsm8k': params.path")
    for row in source.rows():          # Row(source="data/gsm8k.jsonl", number=1, key="1", value={...})
        ...                            # value: the parsed row, or the exception that replaced it

What `path` may be:
- a file: `.jsonl`/`.ndjson` (also `.gz`), read here line by line, so a line that is not UTF-8 or not JSON
  costs that row only (datasets' JSON reader fails the whole file); `.json`: a JSON array of objects, a single
  object (one row, like MATH's per-problem files) or JSON lines; `.parquet`/`.pq`, `.csv`, `.tsv`, `.arrow`:
  read in place by `datasets` in streaming mode (no Arrow copy in the cache); any other suffix: JSONL;
- a glob (`data/*.parquet`, `MATH/train/**/*.json`): every matching file, in sorted order;
- a folder written by `save_to_disk` (memory-mapped by `datasets.load_from_disk`; a DatasetDict's `split`), or
  any other folder of data files (`datasets.load_dataset(folder)`: a hub snapshot's `data/train-*.parquet`
  layout, splits by file name);
- a hub id `org/name` (`config_name`, `split`, `streaming` passed to `datasets.load_dataset`) when the hub is
  reachable; when it is not, a one-line error says so. With HF_HUB_OFFLINE=1 a copy in the local Hugging Face
  cache is used.

Each call of `rows()` starts a new pass, so a streaming task reads the data again each epoch. Row numbers are
1-based lines for JSONL, 0-based indices otherwise; `key` is unique within a source ("17", or
"algebra/1.json:0" when a glob matched several files).
Not covered: remote URLs (s3://, https://), JSON files with the rows under a key ({"data": [...]}), row-level
recovery inside parquet/CSV/Arrow files (a corrupt file is one error naming it), hub datasets with loading
scripts.
"""
from __future__ import annotations

import glob
import gzip
import json
import os
import re
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import urlparse

JSON_LINES = {".jsonl", ".ndjson"}
DATASETS_BUILDERS = {".parquet": ("parquet", {}), ".pq": ("parquet", {}), ".csv": ("csv", {}),
                     ".tsv": ("csv", {"sep": "\t"}), ".arrow": ("arrow", {})}
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
GLOB_CHARS = re.compile(r"[*?\[]")
HUB_PROBE_TIMEOUT_S = 3.0


class SourceError(ValueError):
    """A source that cannot be opened or read; the message names the config key and what to do."""


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a source: where it is (for errors and ids) and its value (a dict, or the error instead)."""

    source: str
    number: int
    key: str
    value: Any


class RowSource(Protocol):
    description: str

    def rows(self) -> Iterator[Row]:
        """Every row, in source order; each call is a new pass."""
        ...


def open_source(path: str, what: str, split: str = "train", config_name: str | None = None,
                streaming: bool = False, split_key: str = "split") -> RowSource:
    """The source `path` names (see the module docstring). `what` names the config key of the path in errors
    ("task 'gsm8k': params.path"), `split_key` that of the split. Raises FileNotFoundError or SourceError, one
    line each."""
    local = Path(path).expanduser()
    if local.is_file():
        return FileSource([str(local) if path.startswith("~") else path], what)
    if GLOB_CHARS.search(path):
        files = sorted(f for f in glob.glob(os.path.expanduser(path), recursive=True) if Path(f).is_file())
        if not files:
            raise FileNotFoundError(f"{what} = {path!r}: no file matches this pattern (looked from {Path.cwd()})")
        return FileSource(files, what)
    if local.is_dir():
        return folder_source(local, what, split, config_name, split_key)
    if path.startswith((".", "/", "~")) or local.suffix or not HUB_ID.fullmatch(path):
        raise FileNotFoundError(
            f"{what} = {path!r}: no such file (looked at {local.resolve()}); point it at an existing file, folder "
            "or glob, or at a hub id (org/name)")
    return HubSource(path, what, split, config_name, streaming)


# --------------------------------------------------------------------------------------------- files


class FileSource:
    """Local files, each read by its suffix."""

    def __init__(self, files: list[str], what: str):
        self.files, self.what = files, what
        self.description = files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
        base = os.path.commonpath([os.path.abspath(f) for f in files]) if len(files) > 1 else ""
        self._labels = [os.path.relpath(os.path.abspath(f), base) if base else "" for f in files]

    def rows(self) -> Iterator[Row]:
        for file, label in zip(self.files, self._labels):
            for number, value in file_rows(file, self.what):
                yield Row(file, number, f"{label}:{number}" if label else str(number), value)


def file_rows(file: str, what: str) -> Iterator[tuple[int, Any]]:
    suffixes = [s.lower() for s in Path(file).suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = (suffixes[-2] if compressed and len(suffixes) > 1 else suffixes[-1]) if suffixes else ""
    if suffix in DATASETS_BUILDERS and not compressed:
        builder, options = DATASETS_BUILDERS[suffix]
        return datasets_file_rows(file, builder, options, what)
    if suffix == ".json":
        return json_file_rows(file, compressed)
    return json_lines(file, compressed)


def json_lines(file: str, compressed: bool = False) -> Iterator[tuple[int, Any]]:
    """(line number, object) for each non-blank line; a line that is not UTF-8 or not JSON comes back as its
    UnicodeDecodeError or JSONDecodeError, so one bad byte costs one row, not the file."""
    with (gzip.open(file, "rb") if compressed else open(file, "rb")) as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    yield number, exc


def json_file_rows(file: str, compressed: bool) -> Iterator[tuple[int, Any]]:
    """A JSON array (one row per item), a single object (one row), or else JSON lines."""
    with (gzip.open(file, "rb") if compressed else open(file, "rb")) as f:
        data = f.read()
    try:
        whole = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return json_lines(file, compressed)
    return iter(enumerate(whole) if isinstance(whole, list) else [(0, whole)])


def datasets_file_rows(file: str, builder: str, options: dict, what: str) -> Iterator[tuple[int, Any]]:
    import datasets

    def read():
        return datasets.load_dataset(builder, data_files=[file], split="train", streaming=True, **options)

    return enumerate(checked_rows(read, f"{what}: could not read {file} as {builder}"))


def checked_rows(open_rows: Callable[[], Any], context: str) -> Iterator[Any]:
    """Iterate what `open_rows()` returns; any failure (opening, or mid-way) is one SourceError line."""
    try:
        yield from open_rows()
    except (FileNotFoundError, SourceError):
        raise
    except Exception as exc:
        raise SourceError(f"{context}: {one_line(exc)}") from None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


# --------------------------------------------------------------------------------------------- folders


def folder_source(folder: Path, what: str, split: str, config_name: str | None, split_key: str) -> RowSource:
    if (folder / "dataset_info.json").is_file() or (folder / "dataset_dict.json").is_file():
        return DiskSource(folder, what, split, split_key)
    return LoadedSource(str(folder), what, {"path": str(folder), "name": config_name, "split": split,
                                            "streaming": True})


class DiskSource:
    """A folder written by `save_to_disk`, memory-mapped (a DatasetDict's `split`)."""

    def __init__(self, folder: Path, what: str, split: str, split_key: str = "split"):
        import datasets

        self.description = str(folder)
        try:
            loaded = datasets.load_from_disk(str(folder))
        except Exception as exc:
            raise SourceError(f"{what} = {str(folder)!r}: not a readable save_to_disk folder: {one_line(exc)}") \
                from None
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise SourceError(f"{what} = {str(folder)!r} has no split {split!r} ({split_key}); its splits: "
                                  f"{', '.join(loaded)}. Set {split_key} to one of them.")
            loaded = loaded[split]
        self.dataset = loaded

    def rows(self) -> Iterator[Row]:
        for number, value in enumerate(self.dataset):
            yield Row(self.description, number, str(number), value)


class LoadedSource:
    """Rows of `datasets.load_dataset(**arguments)`, opened anew for each pass."""

    def __init__(self, description: str, what: str, arguments: dict):
        self.description, self.what, self.arguments = description, what, arguments
        self._dataset = self._load()  # fail at build time, not at the first training step

    def _load(self) -> Any:
        import datasets

        try:
            return datasets.load_dataset(**self.arguments)
        except Exception as exc:
            raise SourceError(self._failure(exc)) from None

    def _failure(self, exc: BaseException) -> str:
        return f"{self.what} = {self.description!r}: could not load it with datasets: {one_line(exc)}"

    def rows(self) -> Iterator[Row]:
        dataset = self._dataset
        for number, value in enumerate(checked_rows(lambda: dataset, f"{self.what}: reading {self.description!r} "
                                                    "failed")):
            yield Row(self.description, number, str(number), value)


# --------------------------------------------------------------------------------------------- the hub


class HubSource(LoadedSource):
    """A dataset on the Hugging Face hub (or in the local cache with HF_HUB_OFFLINE=1)."""

    def __init__(self, hub_id: str, what: str, split: str, config_name: str | None, streaming: bool):
        import datasets

        if not datasets.config.HF_HUB_OFFLINE and not hub_reachable(datasets.config.HF_ENDPOINT):
            raise SourceError(
                f"{what} = {hub_id!r} is not a local file or folder, and the Hugging Face hub "
                f"({datasets.config.HF_ENDPOINT}) is not reachable from here to load it as a dataset id: copy the "
                "data set to this machine (its parquet/JSONL files, or save_to_disk) and point the path there, or "
                "set HF_HUB_OFFLINE=1 to use a copy in the local Hugging Face cache")
        super().__init__(hub_id, what, {"path": hub_id, "name": config_name, "split": split,
                                        "streaming": streaming})

    def _failure(self, exc: BaseException) -> str:
        return (f"{self.what} = {self.description!r} is not a local file or folder, and loading it from the "
                f"Hugging Face hub failed: {one_line(exc)}")


@cache
def hub_reachable(endpoint: str) -> bool:
    """Whether a TCP connection to the hub opens within a few seconds (asked once per process)."""
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=HUB_PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False
