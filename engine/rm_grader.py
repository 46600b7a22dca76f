"""The `reward_model` grader: scores (prompt, completion) with a reward model trained by `rlvr rm train`.

    tasks:
      - name: dataset
        params: {path: data/chat_prompts.jsonl, answer_field: null}
        rewards: [{grader: reward_model, params: {path: runs/rm/model, aggregate: mean_minus_std, k: 1.0}}]

    rlvr grade --grader reward_model --params '{"path": "runs/rm/model", "aggregate": "min"}' rows.jsonl

Why it lives in engine/ and not graders/: it is torch code, the one deliberate exception to "graders are
torch-free". It must not run in the grader pool (forked, torch-free, memory-capped workers), so it declares
`runs_in_pool = False` and graders/rewards.py's RewardScorer calls it in the trainer's process, one batched call
per step, on the trainer's device (engine/device.py), timing it as `time/reward_model_s`. This module itself
imports no torch (config validation and `rlvr graders` stay fast); engine/reward_model.py is loaded on the first
`grade` call, and the loaded model is kept for the process (module state: the other deliberate exception).

Scoring: the prompt is rendered with the chat template as the policy's prompts are (engine/prompts.py; a prompt
given as chat messages keeps its roles), then the completion and the end-of-turn token. Each member's score is
z-scored with the mean/std measured on its training data (`normalize`, default on), then the members are
combined (`aggregate`): `mean`, `min`, or `mean_minus_std` (mean - k * std across members). `clip` bounds the
result to [-clip, clip]. With K > 1 members each grade carries `ensemble_std` (the spread across members, in the
units being aggregated), logged as `reward/ensemble_std`; with `mask_std_above`, a sample whose spread exceeds it
is masked (`Grade.mask`: kept out of the policy loss, its score still reported) and `reward/masked` is logged.
`correct` is None: a reward model does not judge correctness. It reads no reference (`needs_reference = False`),
so a task graded only by reward models can be rows with just a prompt (`answer_field: null`, engine/config.py).
Not covered: a separate reward-model server process; scores are computed where the trainer runs. The spread of a
masked sample still counts in its group's baseline (only its own loss term is dropped).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from graders.base import Grade, Sample, input_error

MANIFEST = "reward_model.json"


def find_model_dir(path: str) -> Path:
    """The reward-model directory `path` names: a model/ directory, or the run directory holding it. ValueError
    (one line, what to pass instead) when there is none."""
    given = Path(path).expanduser()
    for candidate in (given, given / "model"):
        if (candidate / MANIFEST).is_file():
            return candidate
    what = "does not exist" if not given.exists() else f"has no {MANIFEST}"
    raise ValueError(f"no reward model at {path!r} ({what}); pass the model/ directory that `rlvr rm train` writes "
                     "(runs/<name>/model) or its run directory")


class Params(BaseModel):
    """Options of the `reward_model` grader."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(..., description="The reward model: runs/<name>/model from `rlvr rm train` (or the run dir).")
    aggregate: Literal["mean", "min", "mean_minus_std"] = Field(
        "mean", description="How an ensemble's member scores become one: mean, min, or mean - k * std.")
    k: float = Field(1.0, ge=0, description="The std multiplier of `mean_minus_std`.")
    normalize: bool = Field(True, description="z-score each member with the mean/std of its scores on its "
                            "training data before aggregating.")
    clip: float | None = Field(None, gt=0, description="Clip the score to [-clip, clip]; null: no clipping.")
    mask_std_above: float | None = Field(None, gt=0, description="Mask samples whose spread across members is "
                                         "above this (kept out of the policy loss); null: never.")
    batch_size: int = Field(32, ge=1, description="Sequences per forward pass.")

    @field_validator("path")
    @classmethod
    def _exists(cls, path: str) -> str:
        find_model_dir(path)  # a ValueError here is the config error, naming the key
        return path


@lru_cache(maxsize=4)
def load_model(path: str) -> Any:
    """The RewardModel at `path` (resolved), loaded once per process on the trainer's device."""
    from engine.reward_model import RewardModel  # torch: only when something is graded

    return RewardModel.load(path)


def prompt_of(sample: Sample) -> Any:
    """The prompt as the policy saw it: chat messages when given as such, else the text."""
    prompt = sample.prompt
    if isinstance(prompt, list) and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt):
        return prompt
    return prompt if isinstance(prompt, str) else str(prompt)


class RewardModelGrader:
    name = "reward_model"
    description = "Score of a trained reward model or ensemble (torch, batched on the trainer's device, not pooled)"
    Params = Params
    runs_in_pool = False
    learned = True   # `advantage: auto` trains its tasks with PPO and the critic
    needs_reference = False  # scores (prompt, completion) alone: a task graded only by it needs no reference column

    def grade(self, samples: Sequence[Sample], params: Params) -> list[Grade]:
        from engine.reward_model import aggregate_members, member_spread

        rm = load_model(str(find_model_dir(params.path).resolve()))
        grades = [Grade(0.0, error=input_error(s)) for s in samples]
        ok = [i for i, g in enumerate(grades) if g.error is None]
        raw = rm.member_scores([(prompt_of(samples[i]), samples[i].completion) for i in ok], params.batch_size)
        scores = rm.normalize(raw) if params.normalize else raw                               # (K, n)
        combined = aggregate_members(scores, params.aggregate, params.k)                      # (n,)
        if params.clip is not None:
            combined = combined.clamp(-params.clip, params.clip)
        spread = member_spread(scores)                                                        # (n,)
        for j, i in enumerate(ok):
            score, std = float(combined[j]), float(spread[j])
            if not math.isfinite(score):
                grades[i] = Grade(0.0, error="non_finite_score")
                continue
            metrics = {"ensemble_std": std} if rm.size > 1 else {}
            masked = params.mask_std_above is not None and std > params.mask_std_above
            if params.mask_std_above is not None:
                metrics["masked"] = float(masked)
            grades[i] = Grade(score, metrics=metrics, mask=masked)
        return grades


reward_model_grader = RewardModelGrader()
