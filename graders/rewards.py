"""Reward mixing: a task's reward terms, graded in the worker pool, combined into one Reward per sample.

    from graders import Sample
    from graders.rewards import RewardTerm, RewardScorer
    terms = [RewardTerm(grader="format", gate=True), RewardTerm(grader="math"),
             RewardTerm(grader="length", weight=0.1, params={"target": 2000})]
    with RewardScorer(workers=2, timeout_s=10.0) as scorer:
        [reward] = scorer.score(terms, [Sample("<think>..</think> \\\\boxed{4}", {"answer": "4"})])
    reward.score, reward.correct, reward.terms   # 1.0, True, {"format": 1.0, "math": 1.0, "length": 0.0}

- A RewardTerm is checked when the config loads: the grader must exist and its params validate.
- score = sum(weight * term score). A `gate` term must pass (correct, or score > 0 for graders that do not
  judge correctness) for the other terms to count; when a gate fails only the gate terms are summed.
- correct comes from the first term whose grader judges correctness (False if grading timed out).
- Grading is deduplicated and cached by (grader, params, reference, prompt, normalised completion): repeated
  answers in a group are graded once, across steps too. Timeouts (`timeout_cpu`, `timeout_wall`, a grader's
  own `timeout`) and crashes are not cached: they may say more about the machine than about the answer.
- The limit per grader call is CPU time (`timeout_s`), with a wall-clock backstop of max(`wall_factor` x
  timeout_s, `wall_min_s`) (graders/pool.py): a machine busy with training does not turn correct answers into
  timeouts.
- A grader that declares `runs_in_pool = False` (a learned reward model: torch, engine/rm_grader.py) is called in
  this process instead, one batched call per term: no pool timeout applies to it. Its time is summed as
  `time/<grader>_s` and its per-sample metrics are averaged as `reward/<metric>` until `take_metrics()`.
- A grade's `mask` (the sample stays out of the policy loss) makes the Reward's `mask`.
Not covered: per-term timeouts (one timeout per scorer).
"""
from __future__ import annotations

import json
import math
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graders import registry
from graders.base import Grade, Sample
from graders.pool import WALL_FACTOR, WALL_MIN_S, Job, WorkerPool

TRANSIENT_ERRORS = ("timeout", "worker_crashed")  # prefixes: timeout_cpu, timeout_wall, worker_crashed: signal 9


class RewardTerm(BaseModel):
    """One term of a task's reward: a grader by name, its weight and params."""

    model_config = ConfigDict(extra="forbid")
    grader: str = Field(..., description="Grader name (`rlvr graders` lists them).")
    weight: float = Field(1.0, description="Multiplier of this term's score in the reward sum.")
    params: dict[str, Any] = Field(default_factory=dict, description="The grader's parameters (its Params).")
    gate: bool = Field(False, description="If true, the other terms count only when this term passes.")

    @model_validator(mode="after")
    def _grader_and_params(self) -> "RewardTerm":
        try:
            grader = registry.get(self.grader)
        except (registry.GraderNotFound, registry.GraderLoadError, registry.DuplicateGrader) as exc:
            raise ValueError(str(exc)) from None
        try:
            params = grader.Params.model_validate(self.params)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(params)'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"params of grader {self.grader!r}: {problems}") from None
        self.params = params.model_dump(mode="json")
        return self


@dataclass
class Reward:
    """The mixed reward of one sample. terms: raw per-term scores; errors: per-term errors where any;
    metrics: per-term sub-scores as "term/metric"."""

    score: float
    correct: bool | None
    terms: dict[str, float]
    errors: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    mask: bool = False


def term_keys(terms: Sequence[RewardTerm]) -> list[str]:
    """Names of terms in Reward.terms: the grader name, or "name#i" (i = position) where a name repeats."""
    names = [t.grader for t in terms]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def _passes(grade: Grade) -> bool:
    return grade.correct if grade.correct is not None else grade.score > 0


def mix(terms: Sequence[RewardTerm], grades: Sequence[Grade]) -> Reward:
    """Combine one sample's grades (one per term, in order) into its Reward."""
    keys = term_keys(terms)
    gates_pass = all(_passes(g) for t, g in zip(terms, grades) if t.gate)
    score = sum(t.weight * g.score for t, g in zip(terms, grades) if gates_pass or t.gate)
    correct = next((g.correct for g in grades if g.correct is not None), None)
    if correct is None and any((g.error or "").startswith(TRANSIENT_ERRORS) for g in grades):
        correct = False  # the judging term timed out or crashed: not counted as correct
    return Reward(
        score=float(score), correct=correct,
        terms={k: g.score for k, g in zip(keys, grades)},
        errors={k: g.error for k, g in zip(keys, grades) if g.error},
        metrics={f"{k}/{m}": v for k, g in zip(keys, grades) for m, v in g.metrics.items()},
        mask=any(g.mask for g in grades),
    )


def _cache_key(name: str, params_json: str, grader: Any, sample: Sample) -> tuple:
    completion = sample.completion
    if isinstance(completion, str):
        normalize = getattr(grader, "normalize", None)
        text = normalize(completion) if normalize else completion
    else:
        text = f"<{type(completion).__name__}>{completion!r:.10000}"
    reference = json.dumps(sample.reference, sort_keys=True, default=repr) if sample.reference else ""
    prompt = sample.prompt if isinstance(sample.prompt, str) else json.dumps(sample.prompt, default=repr)
    return name, params_json, reference, prompt, text


class RewardScorer:
    """Scores samples against reward terms in a worker pool with a hard per-sample limit and a cache.

    workers: grading processes; timeout_s: CPU seconds per grader call (built-ins: per sample), counted over
    the worker's process tree; wall_factor, wall_min_s: the wall-clock backstop for calls that sleep or wait,
    max(wall_factor x timeout_s, wall_min_s) seconds; cache_size: graded (term, sample) results kept;
    memory_mb: address-space limit per worker (0: none).
    A grader whose params have their own `timeout_s` (the code grader's sandbox limit, wall-clock) runs model
    code in other processes under its own limits: its calls get no CPU limit from the pool and a wall-clock
    backstop of the above plus params.timeout_s per sample, so the grader's own verdict wins.
    """

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, cache_size: int = 100_000, memory_mb: int = 4096,
                 wall_factor: float = WALL_FACTOR, wall_min_s: float = WALL_MIN_S):
        self.pool = WorkerPool(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb, wall_factor=wall_factor,
                               wall_min_s=wall_min_s)
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, Grade] = OrderedDict()
        self._in_process: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # key: [sum, count]

    def grade(self, term: RewardTerm, samples: Sequence[Sample]) -> list[Grade]:
        """One term's grades for every sample (deduplicated, cached, run in the pool)."""
        return self._grade_terms([term], samples)[0]

    def score(self, terms: Sequence[RewardTerm], samples: Sequence[Sample]) -> list[Reward]:
        """The Reward of every sample under `terms`. Never raises because of model output."""
        per_term = self._grade_terms(terms, samples)
        return [mix(terms, [grades[i] for grades in per_term]) for i in range(len(samples))]

    def _grade_terms(self, terms: Sequence[RewardTerm], samples: Sequence[Sample]) -> list[list[Grade]]:
        keys: list[list[tuple]] = []
        todo: dict[tuple, Sample] = {}
        for term in terms:
            grader = registry.get(term.grader)
            params_json = json.dumps(term.params, sort_keys=True)
            term_keys_ = [_cache_key(term.grader, params_json, grader, s) for s in samples]
            keys.append(term_keys_)
            for key, sample in zip(term_keys_, samples):
                if key not in self._cache and key not in todo:
                    todo[key] = sample
        fresh = self._run(todo)
        for key, grade in fresh.items():
            if not (grade.error or "").startswith(TRANSIENT_ERRORS):
                self._cache[key] = grade
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return [[fresh[k] if k in fresh else self._lookup(k) for k in term_keys_] for term_keys_ in keys]

    def _lookup(self, key: tuple) -> Grade:
        self._cache.move_to_end(key)
        return self._cache[key]

    def _run(self, todo: dict[tuple, Sample]) -> dict[tuple, Grade]:
        """Grade the unique uncached (term, sample) pairs: one pool job per grader batch."""
        jobs, job_keys = [], []
        by_term: dict[tuple, list[tuple]] = {}
        for key in todo:
            by_term.setdefault(key[:2], []).append(key)
        here: dict[tuple, Grade] = {}
        for (name, params_json), keys in by_term.items():
            grader, entry = registry.get(name), registry.entry(name)
            if not getattr(grader, "runs_in_pool", True):
                here |= self._run_here(name, grader, params_json, keys, todo)
                continue
            size = max(1, int(getattr(grader, "batch_size", 1)))
            own_limit = json.loads(params_json).get("timeout_s")
            for start in range(0, len(keys), size):
                chunk = keys[start:start + size]
                own = isinstance(own_limit, (int, float)) and not isinstance(own_limit, bool)
                cpu_s, wall_s = ((math.inf, self.pool.wall_limit(self.timeout_s) + own_limit * len(chunk))
                                 if own else (None, None))
                jobs.append(Job(entry.ref, name, params_json, [todo[k] for k in chunk], cpu_s, wall_s))
                job_keys.append(chunk)
        results = self.pool.run(jobs) if jobs else []
        return here | {k: g for chunk, grades in zip(job_keys, results) for k, g in zip(chunk, grades)}

    def _run_here(self, name: str, grader: Any, params_json: str, keys: list[tuple],
                  todo: dict[tuple, Sample]) -> dict[tuple, Grade]:
        """A grader that must not run in the pool: one batched call in this process, timed."""
        start = time.perf_counter()
        grades = grader.grade([todo[k] for k in keys], grader.Params.model_validate(json.loads(params_json)))
        self._in_process[f"time/{name}_s"][0] += time.perf_counter() - start
        for grade in grades:
            for metric, value in grade.metrics.items():
                total = self._in_process[f"reward/{metric}"]
                total[0] += value
                total[1] += 1
        return dict(zip(keys, grades))

    def take_metrics(self) -> dict[str, float]:
        """Since the last call: seconds in in-process graders (`time/<grader>_s`) and the mean of their
        per-sample metrics (`reward/<metric>`, e.g. `reward/ensemble_std`). Empty when none ran."""
        out = {key: total if key.startswith("time/") else total / count
               for key, (total, count) in self._in_process.items() if key.startswith("time/") or count}
        self._in_process.clear()
        return out

    def close(self) -> None:
        """Stop the worker pool."""
        self.pool.close()

    def __enter__(self) -> "RewardScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
