"""Reward-model training configuration (`rlvr rm train`): pydantic sections, YAML + dotted overrides.

    cfg = load_rm_config(None, ["data.path=prefs.jsonl", "ensemble.size=2"])
    cfg = load_rm_config("configs/rm.yaml", ["train.lr=1e-5"])

The machinery (overrides, one-paragraph errors with the closest valid key, `--help-config`) is engine/config.py's;
only the sections differ. `model` and `train` carry the fields `engine.distributed.build_engine` reads (lr,
weight_decay, warmup_steps, min_lr_ratio, grad_clip, zero_stage, gradient_checkpointing, dtype), so the policy's
DeepSpeed set-up serves the reward model unchanged. `data` is tasks/preferences.py's PreferenceParams.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from engine.config import ConfigError, Section, apply_override, describe_errors, read_sections
from tasks.preferences import PreferenceParams

COMMAND = "rlvr rm train"


class RMModelConfig(Section):
    path: str = Field("smollm2-135m", description="Backbone: a causal LM (local HF directory, .gguf file, hub id, or "
                      "the alias `smollm2-135m`); a one-output sequence-classification head is put on top.")
    chat_template: bool = Field(True, description="Render prompts with the tokenizer's chat template, as the "
                                "policy's prompts are (stored with the model: the reward_model grader does the same).")
    max_prompt_tokens: int = Field(256, ge=8, description="Prompts longer than this are left-truncated.")
    max_completion_tokens: int = Field(256, ge=2, description="Responses longer than this are right-truncated "
                                       "(before the end-of-turn token every response ends with).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="Training dtype: auto = bfloat16 "
                                                          "on GPU, float32 on CPU.")


class RMTrainConfig(Section):
    epochs: float = Field(1.0, gt=0, description="Passes over the training pairs per member (fractions allowed).")
    steps: int | None = Field(None, ge=1, description="Optimizer steps per member; overrides epochs when set.")
    batch_size: int = Field(16, ge=1, description="Pairs per optimizer step, all processes together.")
    micro_batch_size: int = Field(8, ge=1, description="Pairs per forward/backward in one process.")
    lr: float = Field(2e-5, gt=0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up optimizer steps, then cosine decay.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine floor as a fraction of lr.")
    grad_clip: float = Field(1.0, gt=0, description="Global gradient-norm clip.")
    zero_stage: Literal[0, 1, 2, 3] = Field(0, description="DeepSpeed ZeRO stage.")
    center_coef: float = Field(0.0, ge=0, description="Reward-centering term coef * mean((r_chosen + r_rejected)^2) "
                               "(TRL's center_rewards_coefficient, which suggests 0.01): keeps scores near 0.")
    seed: int = Field(0, description="Seed of data order, head initialisation and bootstrap (member m uses seed + m).")
    save_every: int = Field(50, ge=0, description="Checkpoint every N steps (0: none; a finished member is always "
                            "kept in model/).")
    keep_checkpoints: int = Field(2, ge=1, description="Most recent checkpoints kept on disk.")


class RMEnsembleConfig(Section):
    size: int = Field(1, ge=1, description="Members trained one after another into the same model/ directory, "
                      "each a full backbone + head with its own seed.")
    bootstrap: bool = Field(True, description="With size > 1, each member trains on its own resample (with "
                            "replacement) of the training pairs.")


class RMEvalConfig(Section):
    every: int = Field(50, ge=0, description="Evaluate on the held-out pairs every N steps (0: only at the end).")
    at_start: bool = Field(True, description="Evaluate the untrained first member (the baseline).")
    stats_samples: int = Field(2000, ge=2, description="Training responses scored after training to measure each "
                               "member's score mean/std (stored for the grader's z-score normalisation).")
    batch_size: int = Field(32, ge=1, description="Sequences per forward when scoring (eval, stats).")


class RMLogConfig(Section):
    run_name: str | None = Field(None, description="Run directory name under `output_dir` (default: timestamp).")
    output_dir: str = Field("runs", description="Where run directories are created.")
    tensorboard: bool = Field(True, description="Write TensorBoard event files.")
    wandb_project: str | None = Field(None, description="Log to this Weights & Biases project (needs wandb).")
    progress: bool = Field(True, description="Show a progress bar (a line per step when not on a terminal).")


class RMConfig(Section):
    model: RMModelConfig = Field(default_factory=RMModelConfig, description="Backbone and input rendering.")
    data: PreferenceParams = Field(description="Preference pairs {prompt, chosen, rejected} (tasks/preferences.py).")
    train: RMTrainConfig = Field(default_factory=RMTrainConfig, description="Optimisation and checkpoints.")
    ensemble: RMEnsembleConfig = Field(default_factory=RMEnsembleConfig, description="Ensemble of members.")
    eval: RMEvalConfig = Field(default_factory=RMEvalConfig, description="Held-out evaluation and score stats.")
    log: RMLogConfig = Field(default_factory=RMLogConfig, description="Outputs.")


def load_rm_config(path: str | Path | None, overrides: list[str] = ()) -> RMConfig:
    """Read YAML (or nothing: all defaults), apply `a.b=value` overrides, validate everything."""
    raw, source = (read_sections(Path(path)), str(path)) if path is not None else ({}, "the defaults")
    for item in overrides:
        apply_override(raw, item)
    try:
        return RMConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, raw, source, RMConfig, COMMAND)) from None
