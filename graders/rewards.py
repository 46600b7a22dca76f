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
  answers in a group are graded once, across steps too. Timeouts and crashes are not cached.
Not covered: learned reward models (a separate grader kind), per-term timeouts (one timeout per scorer).
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graders import registry
from graders.base import Grade, Sample
from graders.pool import Job, WorkerPool

TRANSIENT_ERRORS = ("timeout", "worker_crashed")


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
    )


def _cache_key(name: str, params_json: str, grader: Any, sample: Sample) -> tuple:
    completion = sample.completion
    if isinstance(completion, str):
        normalize = getattr(grader, "normalize", None)
        text = normalize(completion) if normalize else completion
    else:
        text = f"<{type(completion).__name__}>{completion!r:.10000}"
    reference = json.dumps(sample.reference, sort_keys=True, default=repr) if sample.reference else ""
    return name, params_json, reference, sample.prompt, text


class RewardScorer:
    """Scores samples against reward terms in a worker pool with a hard per-sample timeout and a cache.

    workers: grading processes; timeout_s: limit per grader call (built-ins: per sample); cache_size: graded
    (term, sample) results kept; memory_mb: address-space limit per worker (0: none).
    A grader whose params have their own `timeout_s` (the code grader's sandbox limit) is a backstop for it:
    its calls get timeout_s + params.timeout_s per sample, so the grader's own, more specific verdict wins.
    """

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, cache_size: int = 100_000, memory_mb: int = 4096):
        self.pool = WorkerPool(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb)
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, Grade] = OrderedDict()

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
        for (name, params_json), keys in by_term.items():
            grader, entry = registry.get(name), registry.entry(name)
            size = max(1, int(getattr(grader, "batch_size", 1)))
            own_limit = json.loads(params_json).get("timeout_s")
            for start in range(0, len(keys), size):
                chunk = keys[start:start + size]
                limit = self.timeout_s + own_limit * len(chunk) if isinstance(own_limit, (int, float)) else None
                jobs.append(Job(entry.ref, name, params_json, [todo[k] for k in chunk], limit))
                job_keys.append(chunk)
        results = self.pool.run(jobs)
        return {k: g for chunk, grades in zip(job_keys, results) for k, g in zip(chunk, grades)}

    def close(self) -> None:
        """Stop the worker pool."""
        self.pool.close()

    def __enter__(self) -> "RewardScorer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
