"""Evaluation suites: several sets in one `rlvr eval`, each with greedy accuracy, pass@k, maj@k, lengths, errors.

    rlvr eval runs/<name>/checkpoints/step-000060 code           # a built-in suite (engine/suites/code.yaml)
    rlvr eval smollm2-135m --suite code defaults.n=4 "defaults.k=[1,4]"
    rlvr eval CKPT my_suite.yaml sets.0.limit=20 --output evals/mine

A suite is a YAML file with a top-level `sets:` list (that key is how `rlvr eval` tells it from a run config).
Each set is a task, written as in a training config's `tasks:` (name, label, params, rewards; `weight` is
ignored), plus its evaluation options; `defaults:` gives the options every set takes unless it sets its own:

    description: HumanEval and MBPP from the bundled files
    defaults: {max_new_tokens: 512, n: 4, k: [1, 4], temperature: 0.8}
    sets:
      - task: {name: humaneval, params: {path: data/humaneval.jsonl}, rewards: [{grader: code}]}
      - task: {name: gsm8k, label: gsm8k-test, params: {path: gsm8k/test.parquet}, rewards: [{grader: math}]}
        limit: 200

A set's examples are its task's held-out split when it has one (eval_path / eval_split / eval_fraction, a
procedural task's eval split), else every row of its data (a file given as `path` alone), in source order; `limit`
keeps the first N. Relative `path`/`eval_path` params that name a file or folder next to the suite file are read
from there (so the built-in suites work from any directory); others are left as they are (relative to the
working directory, or a hub id). Overrides on the command line: keys under `sets.`/`defaults.`/`description`
change the suite, anything else the run config (`model.chat_template=false`, `rollout.generation_batch=16`,
`train.grader_workers=2`): model settings come from the checkpoint's run config when there is one.

Per set, eval.json holds: `examples`, `accuracy` (greedy), `pass@k` for each k (unbiased, over n samples at
`temperature`), `maj@k` for k > 1 on sets graded by `math`/`number` (engine/evaluate.py says how answers vote),
`reward` (mean greedy reward), `length` and `truncated` (greedy completions: mean tokens, share cut at
max_new_tokens; `sampled_*` the same for the samples), `errors` (grader errors by kind over all `graded`
completions), `prompts_truncated` (prompts cut to max_prompt_tokens). eval.md is the same as a markdown table,
also printed; samples.jsonl has each example's greedy completion and verdict and its samples' verdicts.
Generation uses the run config's rollout backend. `rollout.backend=vllm` (continuous batching) ran the `code`
suite's greedy pass 6.5x faster than `hf` on the 2-core CPU (same completions); with `hf`, prompts go in batches
of `rollout.generation_batch` sequences, each batch running until its longest completion ends.
Not covered: several processes (one process generates everything), averaging maj@k over all C(n, k) subsets,
stop strings (a completion runs to eos or max_new_tokens, explanations after the code included).
"""
from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.config import Config, ConfigError, TaskConfig, apply_override, check_unique_labels, describe_errors

SUITE_KEYS = ("sets", "defaults", "description")  # overrides under these change the suite, others the run config
PATH_PARAMS = ("path", "eval_path")


class SetOptions(BaseModel):
    """How one set is evaluated (a suite's `defaults`, or a set's own)."""

    model_config = ConfigDict(extra="forbid")
    limit: int | None = Field(None, ge=1, description="Evaluate the first N examples only; null: all.")
    n: int = Field(0, ge=0, description="Samples per example for pass@k (and maj@k); 0: greedy only.")
    k: list[int] = Field(default_factory=lambda: [1], min_length=1, description="The k of pass@k (and maj@k "
                         "for k > 1), each between 1 and n; used when n >= 1.")
    temperature: float = Field(0.8, gt=0, description="Sampling temperature of the n samples (Chen et al. used "
                               "0.8 for pass@k with k > 1); the accuracy column is always greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling of the n samples.")
    max_new_tokens: int = Field(512, ge=1, description="Completion cap, greedy and sampled.")
    max_prompt_tokens: int = Field(2048, ge=8, description="Longer prompts are left-truncated (and counted).")

    @field_validator("k")
    @classmethod
    def _positive(cls, ks: list[int]) -> list[int]:
        if any(k < 1 for k in ks):
            raise ValueError(f"every k must be >= 1 (got {ks})")
        return sorted(set(ks))


class EvalSet(SetOptions):
    """One set of a suite: a task with its reward terms, and options (unset ones come from `defaults`)."""

    task: TaskConfig = Field(description="The task, as in a training config's `tasks:` entries (name, label, "
                             "params, rewards); `weight` is ignored.")

    @model_validator(mode="after")
    def _enough_samples(self) -> EvalSet:
        if self.n and max(self.k) > self.n:
            raise ValueError(f"set {self.label!r}: pass@{max(self.k)} needs n >= {max(self.k)} samples per "
                             f"example (n is {self.n}); raise n or drop that k")
        return self

    @property
    def label(self) -> str:
        return self.task.display_name


class Suite(BaseModel):
    """An evaluation suite: sets evaluated one after another, reported together."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field("", description="One line saying what the suite measures.")
    defaults: SetOptions = Field(default_factory=SetOptions, description="Options for every set that does not "
                                 "set its own.")
    sets: list[EvalSet] = Field(min_length=1, description="The sets, each a task plus its options.")

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, raw: Any) -> Any:
        """Each set takes `defaults` for the options it does not set (when the defaults themselves are valid;
        otherwise only their own error is reported)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("defaults"), dict) \
                or not isinstance(raw.get("sets"), list):
            return raw
        try:
            SetOptions.model_validate(raw["defaults"])
        except ValidationError:
            return raw
        sets = [{**raw["defaults"], **s} if isinstance(s, dict) else s for s in raw["sets"]]
        return {**raw, "sets": sets}

    @field_validator("sets")
    @classmethod
    def _unique_labels(cls, sets: list[EvalSet]) -> list[EvalSet]:
        check_unique_labels([s.label for s in sets], "set names must be unique; give each task a `label`")
        return sets


# ---------------------------------------------------------------------------------------------------------------
# Finding and loading suites

def suites_dir() -> Path:
    return Path(str(resources.files("engine") / "suites"))


def builtin_suites() -> list[str]:
    return sorted(p.stem for p in suites_dir().glob("*.yaml"))


def find_suite(name_or_path: str) -> Path | None:
    """The suite file `name_or_path` means: a built-in name, or a YAML file with a top-level `sets:`. None when
    it is neither (a run config, or nothing)."""
    path = Path(name_or_path)
    if path.is_file():
        try:
            raw = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError):
            return None
        return path if isinstance(raw, dict) and "sets" in raw else None
    builtin = suites_dir() / f"{name_or_path}.yaml"
    return builtin if "/" not in name_or_path and builtin.is_file() else None


def load_suite(path: Path, overrides: list[str] = ()) -> Suite:
    """Read a suite file, resolve data paths next to it, apply `sets.`/`defaults.` overrides, validate."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping with a `sets:` list, got {type(raw).__name__}.")
    for entry in raw.get("sets") or []:
        task = entry.get("task") if isinstance(entry, dict) else None
        params = task.get("params") if isinstance(task, dict) else None
        if isinstance(params, dict):
            for key in PATH_PARAMS:
                if key in params:
                    params[key] = beside(path.parent, params[key])
    for item in overrides:
        apply_override(raw, item)
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        message = describe_errors(exc, raw, str(path), schema=Suite, command="rlvr eval").rsplit("\n", 1)[0]
        raise ConfigError(f"{message}\nFix the keys above in the suite file or the key=value overrides; `rlvr eval "
                          f"--help` describes the suite format.") from None


def beside(folder: Path, value: Any) -> Any:
    """A relative path naming something in `folder`, made absolute; anything else unchanged."""
    if isinstance(value, str) and value and not Path(value).is_absolute() and (folder / value).exists():
        return str((folder / value).resolve())
    return value


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(suite overrides, run-config overrides)."""
    suite = [o for o in overrides if o.split("=", 1)[0].split(".", 1)[0] in SUITE_KEYS]
    return suite, [o for o in overrides if o not in suite]


def default_output(checkpoint: Path, suite_name: str) -> Path:
    """Next to the weights for a directory (`step-N/` for `step-N/hf`), else evals/<model>/ here."""
    if checkpoint.is_dir():
        return (checkpoint.parent if checkpoint.name == "hf" else checkpoint) / f"eval-{suite_name}"
    return Path("evals") / checkpoint.name.replace(":", "_") / suite_name


# ---------------------------------------------------------------------------------------------------------------
# Running

@dataclass
class Generated:
    """Per example, in order: greedy completion rows and n sampled ones (Rollout rows regrouped)."""

    texts: list[str]
    lengths: list[int]
    truncated: list[bool]


def generate_all(sampler, prompts: list[list[int]], n: int, max_new_tokens: int, chunk: int, what: str,
                 greedy: bool, temperature: float = 1.0, top_p: float = 1.0) -> Generated:
    """n completions per prompt, in prompt-major order; prompts go in chunks of similar length (less padding),
    with a progress line on stderr per chunk."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    per_chunk = max(1, chunk // n)
    rows: dict[int, tuple] = {}
    start = time.monotonic()
    for at in range(0, len(order), per_chunk):
        part = order[at:at + per_chunk]
        out = sampler.generate([prompts[i] for i in part], n, max_new_tokens, temperature, top_p, greedy)
        for j, i in enumerate(part):
            rows[i] = tuple((out.texts[r], len(out.completion_ids[r]), out.truncated[r])
                            for r in range(j * n, (j + 1) * n))
        done = min(at + per_chunk, len(order))
        print(f"  {what}: {done}/{len(order)} prompts, {time.monotonic() - start:.0f}s", file=sys.stderr, flush=True)
    flat = [row for i in range(len(prompts)) for row in rows[i]]
    return Generated([r[0] for r in flat], [r[1] for r in flat], [r[2] for r in flat])


def set_examples(s: EvalSet, seed: int) -> list:
    """The set's examples: its task's held-out split when it has one, else every row of its data (module
    docstring), the first `limit` of them."""
    from tasks.registry import get_task_spec

    spec = get_task_spec(s.task.name)
    task = spec.build(spec.Params.model_validate(s.task.params), seed, s.label)
    examples = task.eval_examples()
    if not examples and hasattr(task, "train_rows"):
        examples = list(task.train_rows())
    if not examples:
        raise ValueError(f"set {s.label!r}: the task has no examples to evaluate")
    return examples[:s.limit]


def encode_all(examples: list, tokenizer, chat_template: bool) -> list[list[int]]:
    """Each example's whole prompt as token ids (run_set cuts them to the set's max_prompt_tokens)."""
    from engine.prompts import encode_prompt

    return [encode_prompt(tokenizer, ex.prompt, chat_template, 10**9) for ex in examples]


def run_set(s: EvalSet, examples: list, full: list[list[int]], cfg: Config, sampler, scorer
            ) -> tuple[dict, list[dict]]:
    """One set's metrics and per-example rows (`full`: the examples' encoded prompts, before truncation)."""
    from engine.evaluate import VOTING_GRADERS, maj_at_k, pass_at_k, vote_key

    t0 = time.monotonic()
    prompts = [ids[-s.max_prompt_tokens:] for ids in full]
    chunk = cfg.rollout.generation_batch

    def grade(texts: list[str], per: int):
        rows = [ex for ex in examples for _ in range(per)]
        return scorer.score(s.task.rewards, [ex.sample(t) for t, ex in zip(texts, rows)])

    print(f"{s.label}: {len(examples)} examples", file=sys.stderr, flush=True)
    greedy = generate_all(sampler, prompts, 1, s.max_new_tokens, chunk, "greedy", greedy=True)
    greedy_rewards = grade(greedy.texts, 1)
    sampled, sampled_rewards = None, []
    if s.n:
        sampled = generate_all(sampler, prompts, s.n, s.max_new_tokens, chunk, f"{s.n} samples each", greedy=False,
                               temperature=s.temperature, top_p=s.top_p)
        sampled_rewards = grade(sampled.texts, s.n)
    count = len(examples)
    out: dict[str, Any] = {"task": s.task.name, "examples": count,
                           "accuracy": sum(bool(r.correct) for r in greedy_rewards) / count}
    voter = next((t.grader for t in s.task.rewards if t.grader in VOTING_GRADERS), None)
    rows_correct = [[float(bool(r.correct)) for r in sampled_rewards[i * s.n:(i + 1) * s.n]] for i in range(count)]
    if s.n:
        for k in s.k:
            out[f"pass@{k}"] = sum(pass_at_k(s.n, int(sum(c)), k) for c in rows_correct) / count
        if voter:
            keys = [None if r.errors else vote_key(t, voter) for t, r in zip(sampled.texts, sampled_rewards)]
            for k in (k for k in s.k if k > 1):
                out[f"maj@{k}"] = sum(maj_at_k(keys[i * s.n:(i + 1) * s.n], rows_correct[i], k)
                                      for i in range(count)) / count
    out["reward"] = sum(r.score for r in greedy_rewards) / count
    out["length"] = sum(greedy.lengths) / count
    out["truncated"] = sum(greedy.truncated) / count
    if sampled:
        out["sampled_length"] = sum(sampled.lengths) / len(sampled.lengths)
        out["sampled_truncated"] = sum(sampled.truncated) / len(sampled.truncated)
    errors: dict[str, int] = {}
    for reward in [*greedy_rewards, *sampled_rewards]:
        for error in reward.errors.values():
            errors[error.split(":")[0]] = errors.get(error.split(":")[0], 0) + 1
    out["errors"] = dict(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0])))
    out["graded"] = len(greedy_rewards) + len(sampled_rewards)
    out["prompts_truncated"] = sum(len(f) > s.max_prompt_tokens for f in full)
    out["settings"] = {"n": s.n, "k": s.k if s.n else [], "temperature": s.temperature if s.n else None,
                       "top_p": s.top_p if s.n else None, "max_new_tokens": s.max_new_tokens, "limit": s.limit}
    out["seconds"] = round(time.monotonic() - t0, 1)
    rows = [{"set": s.label, "id": ex.id, **({"task_id": ex.meta["task_id"]} if "task_id" in ex.meta else {}),
             "greedy": greedy.texts[i], "finish": "length" if greedy.truncated[i] else "stop",
             "correct": bool(greedy_rewards[i].correct), "reward": greedy_rewards[i].score,
             "errors": greedy_rewards[i].errors, "sampled_correct": rows_correct[i] if s.n else []}
            for i, ex in enumerate(examples)]
    return out, rows


def run_suite(suite: Suite, cfg: Config) -> tuple[dict[str, dict], list[dict]]:
    """Every set's metrics (by label) and per-example rows, for the model `cfg.model.path`."""
    import numpy as np
    import torch

    from engine import device as dev
    from engine.models import load_policy
    from engine.rollout import make_sampler
    from graders.rewards import RewardScorer

    examples = {s.label: set_examples(s, cfg.train.seed) for s in suite.sets}  # data problems before the model
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed % 2**32)
    torch.manual_seed(cfg.train.seed)
    model, tokenizer = load_policy(cfg.model.path, dev.train_dtype(cfg.model.dtype))
    model.to(dev.device())
    prompts = {s.label: encode_all(examples[s.label], tokenizer, cfg.model.chat_template) for s in suite.sets}
    # (vllm) room for the longest prompt kept plus its completion cap: the suite's lengths, not the training run's
    cfg.vllm.max_model_len = max(min(max(map(len, prompts[s.label])), s.max_prompt_tokens) + s.max_new_tokens
                                 for s in suite.sets)
    sampler = make_sampler(cfg, model, tokenizer)
    results, rows = {}, []
    try:
        with RewardScorer(workers=cfg.train.grader_workers, timeout_s=cfg.train.grader_timeout) as scorer:
            for s in suite.sets:
                results[s.label], set_rows = run_set(s, examples[s.label], prompts[s.label], cfg, sampler, scorer)
                rows += set_rows
    finally:
        if hasattr(sampler, "close"):  # (vllm) free the engine
            sampler.close()
    return results, rows


# ---------------------------------------------------------------------------------------------------------------
# Reporting

def percent(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def markdown_table(results: dict[str, dict]) -> str:
    """One row per set: examples, greedy accuracy, pass@k and maj@k for every k any set has, mean length,
    truncation, grader errors."""
    def ks(prefix: str) -> list[int]:
        return sorted({int(key.split("@")[1]) for r in results.values() for key in r if key.startswith(prefix)})

    passes, majs = ks("pass@"), ks("maj@")
    head = ["set", "examples", "accuracy (greedy)", *(f"pass@{k}" for k in passes), *(f"maj@{k}" for k in majs),
            "mean length", "truncated", "grader errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in results.items():
        errors = ", ".join(f"{kind} {count}" for kind, count in r["errors"].items()) or "none"
        cells = [label, str(r["examples"]), percent(r["accuracy"]),
                 *(percent(r.get(f"pass@{k}")) for k in passes), *(percent(r.get(f"maj@{k}")) for k in majs),
                 f"{r['length']:.0f}", percent(r["truncated"]), f"{errors} (of {r['graded']})"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    for label, r in results.items():
        st = r["settings"]
        sampled = (f"pass@k from n={st['n']} samples at temperature {st['temperature']}" + (
            f", top_p {st['top_p']}" if st["top_p"] != 1 else "")) if st["n"] else "greedy only"
        notes.append(f"- {label}: {r['task']}, max_new_tokens {st['max_new_tokens']}, {sampled}; {r['seconds']:.0f} s"
                     + (f"; {r['prompts_truncated']} prompts truncated" if r["prompts_truncated"] else ""))
    return "\n".join(lines) + "\n\nLengths in tokens (greedy completions); truncated: cut at max_new_tokens; " \
        "grader errors over every graded completion (greedy and sampled).\n\n" + "\n".join(notes) + "\n"


def write_report(out_dir: Path, header: dict, results: dict[str, dict], rows: list[dict]) -> str:
    """eval.json, eval.md and samples.jsonl in `out_dir`; returns the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps({**header, "sets": results}, indent=2) + "\n")
    table = markdown_table(results)
    title = f"# {header['suite']} on {header['model']}\n\n"
    (out_dir / "eval.md").write_text(title + table)
    with (out_dir / "samples.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return table
