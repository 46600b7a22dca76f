"""The training loop: rollout -> rewards -> advantages -> clipped-surrogate update (and the critic's), every step.

    rlvr train configs/arithmetic.yaml            # or: python -m engine.cli train ...

One step, as in DESIGN.md's data-flow diagram (`rl_step`):
  1. examples   the task mixture's next `prompts_per_step` prompts (each rank keeps its share)
  2. rollout    G completions per prompt from the sampler (token ids, logprobs, finish reasons)
  3. rewards    each task's reward terms, graded in the worker pool (a hang or crash scores 0, never stops us) or,
                for a learned reward, in this process; plus the optional DAPO overlong penalty
  4. advantages per task (`advantage`): group estimators per group (grpo / dr_grpo / rloo) or per batch
                (reinforce_pp), or per token by GAE with the critic's values (gae: PPO, the fallback for learned
                rewards); one batch mixes both. With dynamic sampling, groups whose rewards are all equal are
                dropped and refilled with fresh prompts
  5. update     the critic's optimizer steps on its rows (gae tasks; value loss with clipping), then the policy's
                `epochs` x `minibatches` steps on every row (engine/update.py): micro-batches bounded by tokens,
                importance ratios against the policy that sampled (recomputed only when there is more than one
                update), each token's loss weighted by the rollout/trainer mismatch correction. The policy stays
                frozen for the first `critic.warmup_steps` steps
  6. sync       the sampler gets the new weights; every rollout's weight version is checked against the policy's

Deviations from the GRPO paper, on purpose: clip-higher (DAPO) by default; the KL term (beta > 0) is added to
the per-token loss as in GRPO, but beta defaults to 0 (no reference model is loaded then); with a single
optimizer step per batch the ratio is exactly 1 and `old_logp` is the detached current logp (as TRL does).
PPO rows may instead carry the KL in their reward (critic.kl_coef, fixed or adaptive), as InstructGPT does.
"""
from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from engine import checkpoint as ckpt
from engine import device as dev
from engine import distributed as D
from engine.advantages import gae, group_advantages, masked_whiten, overlong_penalty, token_rewards, \
    zero_variance_groups
from engine.config import Config, dump_config
from engine.critic import load_critic
from engine.evaluate import evaluate
from engine.losses import adaptive_kl_coef, explained_variance
from engine.metrics import MetricsLogger, plot_curves
from engine.models import load_policy, load_reference
from engine.progress import StepProgress
from engine.prompts import encode_prompt, prompt_text
from engine.rollout import Rollout, check_weight_version, make_sampler
from engine.update import Packer, Targets, critic_values, frozen_logprobs, padded, update_critic, update_policy
from graders.monitors import learned_reward_metrics, reward_hacking_metrics
from graders.rewards import Reward, RewardScorer, term_keys
from tasks.base import Example
from tasks.contamination import check_contamination
from tasks.mixture import TaskMixture
from tasks.registry import get_task_spec


class TrainingStopped(RuntimeError):
    """Training cannot go on (e.g. repeated non-finite losses); the last good checkpoint is kept."""


@dataclass
class Groups:
    """Rollout rows of a set of prompt groups, with their rewards. Rows are prompt-major (G per prompt)."""

    examples: list[Example]
    rollout: Rollout
    rewards: torch.Tensor                  # (B, G) total reward per completion
    correct: torch.Tensor                  # (B, G) 1.0 correct, 0.0 wrong or not judged
    graded: list[Reward]                   # per row: the grader verdicts (terms, errors) behind the reward
    empty: bool = False                    # dynamic sampling kept nothing: train on these with zero weight


@dataclass
class Clock:
    """Training time, carried across resumes so a time budget covers the whole run, not each process."""

    offset_s: float = 0.0                                  # time spent before this process resumed the run
    start: float = field(default_factory=time.monotonic)

    def elapsed_s(self) -> float:
        return self.offset_s + time.monotonic() - self.start


@dataclass
class Run:
    """Everything built once at start-up."""

    cfg: Config
    run_dir: Path
    engine: object
    tokenizer: object
    reference: torch.nn.Module | None
    sampler: object
    mixture: TaskMixture
    tasks: dict[str, object]
    terms: dict[str, list]
    scorer: RewardScorer
    logger: MetricsLogger | None
    clock: Clock
    estimators: dict[str, str]             # task name -> its advantage estimator (`auto` resolved)
    learned_keys: set[str]                 # Reward.terms keys of learned terms (reward models), for the monitors
    critic: object = None                  # the critic's DeepSpeed engine, when a task's advantage is gae
    kl_coef: float = 0.0                   # KL-in-reward coefficient of the critic rows (adaptive: it moves)
    step: int = 0
    bad_steps: int = 0
    history: dict[str, float] = field(default_factory=dict)

    def encode(self, example: Example) -> list[int]:
        return encode_prompt(self.tokenizer, example.prompt, self.cfg.model.chat_template,
                             self.cfg.rollout.max_prompt_tokens)


# ---------------------------------------------------------------------------------------------------------------
# Set-up

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_tasks(cfg: Config) -> dict[str, object]:
    out = {}
    for t in cfg.tasks:
        spec = get_task_spec(t.name)
        out[t.display_name] = spec.build(spec.Params.model_validate(t.params), cfg.train.seed, t.display_name)
    return out


def build_run(cfg: Config, run_dir: Path, resume: bool) -> Run:
    D.init_distributed()
    if cfg.rollout.prompts_per_step % D.world_size():
        raise ValueError(f"rollout.prompts_per_step ({cfg.rollout.prompts_per_step}) must be divisible by the "
                         f"number of processes ({D.world_size()}).")
    seed_everything(cfg.train.seed + D.rank())
    tasks = build_tasks(cfg)
    check_contamination(tasks, run_dir if D.rank() == 0 else None, cfg.eval.contamination_ngram,
                        cfg.eval.drop_contaminated)
    mixture = TaskMixture(list(tasks.values()), [t.weight for t in cfg.tasks], cfg.train.seed)
    dtype = dev.train_dtype(cfg.model.dtype)
    model, tokenizer = load_policy(cfg.model.path, dtype)
    model.to(dev.device())
    kl_in_reward = cfg.uses_critic and cfg.critic.kl_coef > 0
    reference = load_reference(cfg.model.path, dtype).to(dev.device()) if cfg.grpo.beta > 0 or kl_in_reward \
        else None
    clock = Clock()
    budget_s = cfg.train.time_budget_min * 60 if cfg.train.time_budget_min else None
    optimizer_steps = cfg.train.steps * cfg.grpo.epochs * cfg.grpo.minibatches
    def time_fraction() -> float:
        return clock.elapsed_s() / budget_s if budget_s else 0.0
    engine = D.build_engine(model, cfg, optimizer_steps, time_fraction)
    critic = None
    if cfg.uses_critic:
        critic_model = load_critic(cfg.critic.init, cfg.model.path, cfg.critic_reward_model, dtype)
        critic = D.build_engine(critic_model.to(dev.device()), cfg, optimizer_steps, time_fraction, cfg.critic.lr)
    sampler = make_sampler(cfg, engine.module, tokenizer,
                           synced_gpus=cfg.train.zero_stage == 3 and D.world_size() > 1)
    scorer = RewardScorer(workers=cfg.train.grader_workers, timeout_s=cfg.train.grader_timeout)
    run = Run(cfg, run_dir, engine, tokenizer, reference, sampler, mixture, tasks,
              {t.display_name: t.rewards for t in cfg.tasks}, scorer, None, clock,
              {t.display_name: cfg.task_advantage(t) for t in cfg.tasks},
              {key for t in cfg.tasks for key, term in zip(term_keys(t.rewards), t.rewards) if term in t.learned_terms},
              critic, cfg.critic.kl_coef)
    resume_step = None
    latest = ckpt.latest_checkpoint(run_dir) if resume else None  # the CLI refuses a new run over a checkpoint
    if latest:
        state = ckpt.load_checkpoint(latest, engine, critic)
        mixture.load_state_dict(state["mixture"])
        run.step, run.history = state["step"], state.get("history", {})
        run.kl_coef = state.get("kl_coef", run.kl_coef)
        clock.offset_s = state.get("elapsed_s", 0.0)
        resume_step = run.step
    elif D.rank() == 0 and (resume or (run_dir / "metrics.jsonl").exists()):
        print(f"starting {run_dir} from scratch, in place (no complete checkpoint to resume from)", file=sys.stderr)
    sampler.sync_weights(engine.module, policy_version(run))  # from the policy's weights, a resumed run's too
    if D.rank() == 0:  # a run from scratch clears earlier logs; a resumed one cuts them back to its checkpoint
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.remove_partial(run_dir)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        run.logger = MetricsLogger(run_dir, cfg.log.tensorboard, cfg.log.wandb_project, cfg.model_dump(mode="json"),
                                   resume_step)
        if not any(task.eval_examples() for task in tasks.values()):
            print("no task has an eval split: nothing is evaluated, curves.png shows the training curves only",
                  file=sys.stderr)
    return run


# ---------------------------------------------------------------------------------------------------------------
# One step

def sample_groups(run: Run, examples: list[Example]) -> Groups:
    """Rollout + rewards for a set of prompts (stages 2 and 3)."""
    cfg, G = run.cfg, run.cfg.rollout.group_size
    rollout = run.sampler.generate([run.encode(ex) for ex in examples], G, cfg.rollout.max_new_tokens,
                                   cfg.rollout.temperature, cfg.rollout.top_p)
    check_weight_version(rollout, policy_version(run), cfg.rollout.max_weight_lag)
    rows = [ex for ex in examples for _ in range(G)]
    graded: list[Reward] = [None] * len(rows)
    for task in {ex.task for ex in examples}:
        idx = [i for i, ex in enumerate(rows) if ex.task == task]
        samples = [rows[i].sample(rollout.texts[i]) for i in idx]
        for i, reward in zip(idx, run.scorer.score(run.terms[task], samples)):
            graded[i] = reward
    rewards = torch.tensor([r.score for r in graded])                                    # (B*G,)
    correct = torch.tensor([float(bool(r.correct)) for r in graded])                     # (B*G,)
    if cfg.grpo.overlong_buffer:
        lengths = torch.tensor([len(c) for c in rollout.completion_ids])
        rewards = rewards + overlong_penalty(lengths, cfg.rollout.max_new_tokens, cfg.grpo.overlong_buffer,
                                             cfg.grpo.overlong_factor)
    return Groups(examples, rollout, rewards.view(-1, G), correct.view(-1, G), graded)


def concat_groups(parts: list[Groups], keep: list[torch.Tensor]) -> Groups:
    """The kept groups of several rounds, in order."""
    G = parts[0].rewards.shape[1]
    examples, rewards, correct, graded = [], [], [], []
    out = Rollout([], [], [], [], [], weight_version=min(part.rollout.weight_version for part in parts))
    for part, mask in zip(parts, keep):
        for b in mask.nonzero().flatten().tolist():
            examples.append(part.examples[b])
            rewards.append(part.rewards[b])
            correct.append(part.correct[b])
            for i in range(b * G, (b + 1) * G):
                for name in ("prompt_ids", "completion_ids", "logprobs", "texts", "finish_reasons"):
                    getattr(out, name).append(getattr(part.rollout, name)[i])
                graded.append(part.graded[i])
    empty = torch.zeros(0, G)
    return Groups(examples, out, torch.stack(rewards) if rewards else empty,
                  torch.stack(correct) if correct else empty, graded)


def next_examples(run: Run) -> list[Example]:
    """This rank's share of the mixture's next global batch (every rank draws it, so cursors stay in step)."""
    batch = run.mixture.next_batch(run.cfg.rollout.prompts_per_step)
    return batch[D.rank()::D.world_size()]


def collect_groups(run: Run) -> tuple[Groups, Groups, dict]:
    """Stages 1-3, with dynamic sampling: (groups to train on, the first round as sampled, metrics)."""
    first = sample_groups(run, next_examples(run))
    if not run.cfg.grpo.drop_zero_variance:
        return first, first, {}
    wanted = len(first.examples)
    parts, keeps = [first], [informative(run, first)]
    rounds = 0
    while rounds < run.cfg.grpo.refill_rounds:
        short = wanted - sum(int(k.sum()) for k in keeps)
        if D.all_reduce([float(short > 0)], "max")[0] == 0:  # ranks agree, so their mixtures stay in step
            break
        extra = sample_groups(run, next_examples(run))
        keep = informative(run, extra)
        keep &= keep.cumsum(0) <= max(short, 0)
        parts.append(extra)
        keeps.append(keep)
        rounds += 1
    kept = concat_groups(parts, keeps)
    metrics = {"dynamic/kept_groups": float(len(kept.examples)), "dynamic/refill_rounds": float(rounds)}
    if not kept.examples:  # nothing informative on this rank: train on the first round with zero weight
        return replace(first, empty=True), first, {**metrics, "dynamic/empty": 1.0}
    return kept, first, metrics


def informative(run: Run, groups: Groups) -> torch.Tensor:
    """Groups worth training on (B,): those whose rewards differ, and every group the critic trains on (its
    advantages come from values, so equal rewards still carry signal)."""
    critic = torch.tensor([run.estimators[ex.task] == "gae" for ex in groups.examples], dtype=torch.bool)
    return ~zero_variance_groups(groups.rewards) | critic


def rl_step(run: Run) -> dict:
    """One training step, stages 1-6 of the module docstring."""
    cfg, t0 = run.cfg, time.perf_counter()
    groups, first, metrics = collect_groups(run)                                  # 1-3 examples, rollout, rewards
    t_rollout = time.perf_counter() - t0
    packer = Packer(groups.rollout, cfg.rollout.group_size, run.tokenizer.pad_token_id, cfg.train.micro_batch_tokens)
    kl_in_reward = run.critic is not None and cfg.critic.kl_coef > 0
    updates = cfg.grpo.epochs * cfg.grpo.minibatches
    old = frozen_logprobs(packer, run.engine.module, cfg.rollout.temperature) if updates > 1 or kl_in_reward \
        else None
    ref = frozen_logprobs(packer, run.reference, cfg.rollout.temperature) if run.reference is not None else None
    targets, advantage_metrics = compute_targets(run, groups, packer, old, ref)   # 4
    metrics |= advantage_metrics
    seed = cfg.train.seed * 1_000_003 + run.step
    if run.critic is not None:
        metrics |= update_critic(cfg, run.critic, packer, targets, seed)         # 5 the critic
    if run.critic is not None and run.step <= cfg.critic.warmup_steps:
        metrics["policy/frozen"] = 1.0                                            # critic warm-up: no policy step
    else:
        metrics |= update_policy(cfg, run.engine, packer, targets, old, ref if cfg.grpo.beta > 0 else None, seed)
        t_sync = time.perf_counter()
        run.sampler.sync_weights(run.engine.module, policy_version(run))          # 6 the sampler gets the weights
        metrics["time/sync_s"] = time.perf_counter() - t_sync
    metrics |= rollout_metrics(run, first)
    metrics |= run.scorer.take_metrics()  # in-process (learned) graders: time/<grader>_s, reward/ensemble_std
    metrics |= {"time/rollout_s": t_rollout, "time/step_s": time.perf_counter() - t0}
    write_samples(run, first)
    return metrics


def compute_targets(run: Run, groups: Groups, packer: Packer, old: dict | None, ref: dict | None
                    ) -> tuple[Targets, dict]:
    """Stage 4: every row's per-token advantages and loss weight; for the critic's rows (tasks whose advantage is
    gae) also the values at sampling time and the value targets (`critic_targets`)."""
    cfg, G = run.cfg, run.cfg.rollout.group_size
    lengths = torch.tensor(packer.lengths())                                          # (N,)
    mask = (torch.arange(max(int(lengths.max()), 1))[None, :] < lengths[:, None]).float()  # (N, T)
    kinds = [run.estimators[ex.task] for ex in groups.examples]                      # per group
    per_row = torch.zeros(len(lengths))                                               # (N,)
    for estimator in sorted(set(run.estimators.values()) - {"gae"}):                 # the same order on every rank
        chosen = [j for j, kind in enumerate(kinds) if kind == estimator]
        rewards = groups.rewards[chosen]                                              # (b, G)
        if estimator == "reinforce_pp" and D.world_size() > 1:
            advantages = batch_whitened(rewards.flatten())                            # a collective: every rank
        elif chosen:
            advantages = group_advantages(rewards, estimator).flatten()
        else:
            continue
        per_row[[j * G + i for j in chosen for i in range(G)]] = advantages
    weight = torch.ones(len(lengths))                                                 # (N,)
    if cfg.grpo.mask_truncated:
        weight = weight * ~torch.tensor(groups.rollout.truncated)
    weight = weight * ~torch.tensor([r.mask for r in groups.graded], dtype=torch.bool)  # e.g. RM disagreement
    if groups.empty:
        weight.zero_()
    critic_groups = [j for j, kind in enumerate(kinds) if kind == "gae"]
    targets = Targets(per_row[:, None] * mask, weight, critic_groups)
    metrics = critic_targets(run, groups, packer, targets, mask, old, ref) if run.critic is not None else {}
    return targets, metrics | advantage_metrics(run, groups, targets, mask)


def critic_targets(run: Run, groups: Groups, packer: Packer, targets: Targets, mask: torch.Tensor,
                   old: dict | None, ref: dict | None) -> dict:
    """GAE advantages, values and value targets of the critic's rows, written into `targets`; the critic's
    sampling-time metrics. Every rank takes part (the critic's forward and the whitening are collectives)."""
    cfg, G = run.cfg.critic, run.cfg.rollout.group_size
    N, T = mask.shape
    is_critic = torch.zeros(N, dtype=torch.bool)
    is_critic[[j * G + i for j in targets.critic_groups for i in range(G)]] = True
    critic_mask = mask * is_critic[:, None]                                                  # (N, T)
    all_rows = list(range(N))
    values = padded(critic_values(packer, run.critic.module, targets.critic_groups), all_rows, T) * critic_mask
    real = critic_mask > 0
    if D.all_reduce([float(not torch.isfinite(values[real]).all())], "max")[0]:
        # a broken critic (NaN/inf values on any rank): its rows sit this step out, the critic is not updated, and
        # the step counts as a skipped update (train.max_bad_steps in a row stop the run)
        targets.weight[is_critic] = 0.0
        targets.critic_groups = []
        return {"critic/nonfinite_values": 1.0, "critic/skipped_updates": 1.0}
    kl = None
    if cfg.kl_coef > 0:                                                                       # k1 per token
        kl = (padded(old, all_rows, T) - padded(ref, all_rows, T)) * critic_mask              # (N, T)
    rewards = token_rewards(groups.rewards.flatten(), critic_mask, kl, run.kl_coef)          # (N, T)
    advantages, _ = gae(rewards, values, critic_mask, cfg.gamma, cfg.lam_policy)
    _, returns = gae(rewards, values, critic_mask, cfg.gamma, cfg.lam_value)
    if cfg.whiten_advantages:  # statistics over the rows that train: a masked row (weight 0) stays out of them
        advantages[real] = across_ranks_whitened(advantages[real], (targets.weight > 0)[:, None].expand(N, T)[real])
    targets.advantages = torch.where(is_critic[:, None], advantages, targets.advantages)
    targets.values, targets.returns = values, returns
    (all_values, _), (all_returns, _) = gathered(values[real]), gathered(returns[real])
    ones = torch.ones(1, len(all_values))
    metrics = {"critic/explained_var": explained_variance(all_values[None], all_returns[None], ones),
               "critic/values_mean": float(all_values.mean()) if len(all_values) else float("nan"),
               "critic/returns_mean": float(all_returns.mean()) if len(all_returns) else float("nan")}
    if kl is not None:
        kl_sum, tokens, sequences = D.all_reduce([float(kl.sum()), float(critic_mask.sum()), float(is_critic.sum())])
        metrics |= {"critic/kl": kl_sum / (tokens or 1.0), "critic/kl_coef": run.kl_coef}
        if cfg.kl_target is not None and tokens:
            run.kl_coef = adaptive_kl_coef(run.kl_coef, kl_sum / tokens, cfg.kl_target, int(sequences),
                                           cfg.kl_horizon)
    return metrics


def gathered(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """A 1-D tensor's values from every rank, concatenated in rank order, and where this rank's part starts."""
    parts = D.all_gather_objects(x.cpu()) if D.world_size() > 1 else [x]
    return torch.cat([p.reshape(-1) for p in parts]), sum(len(p) for p in parts[:D.rank()])


def across_ranks_whitened(x: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """A 1-D tensor whitened with the mean and std of every rank's values where `counted` (bool, like x) is set:
    this rank's part returned, 0 where not counted."""
    everything, offset = gathered(x)
    flags, _ = gathered(counted.float())
    return masked_whiten(everything[None], flags[None])[0, offset:offset + len(x)]


def advantage_metrics(run: Run, groups: Groups, targets: Targets, mask: torch.Tensor) -> dict:
    """Mean and std of the advantages of each task's tokens (every rank, every task: the same vector)."""
    G, names = run.cfg.rollout.group_size, sorted(run.estimators)
    tasks = [ex.task for ex in groups.examples for _ in range(G)]
    local = []
    for name in names:
        rows = [r for r, task in enumerate(tasks) if task == name]
        values = targets.advantages[rows][mask[rows] > 0]
        local += [float(values.numel()), float(values.sum()), float((values.double() ** 2).sum())]
    total = D.all_reduce(local)
    out = {}
    for i, name in enumerate(names):
        n, s, ss = total[3 * i:3 * i + 3]
        if n:
            out[f"advantage/{name}/mean"] = s / n
            out[f"advantage/{name}/std"] = math.sqrt(max(ss / n - (s / n) ** 2, 0.0))
    return out


def policy_version(run: Run) -> int:
    """The policy's weight version: optimizer steps taken (DeepSpeed counts them and checkpoints restore them)."""
    return int(run.engine.global_steps)


def batch_whitened(rewards: torch.Tensor) -> torch.Tensor:
    """reinforce_pp across ranks: whiten with the mean and std (ddof 1) of every rank's rewards (N,) -> (N,)."""
    flat = rewards.double()
    n, s, ss = D.all_reduce([float(flat.numel()), float(flat.sum()), float((flat ** 2).sum())])
    if not n:
        return flat.float()
    mean = s / n
    std = math.sqrt(max(ss / n - mean ** 2, 0.0) * n / max(n - 1, 1))
    return ((flat - mean) / (std + 1e-6)).float()


def rollout_metrics(run: Run, groups: Groups) -> dict:
    """Reward, accuracy, per-term (averaged over the samples that have the term), error, length, reward-hacking
    and learned-reward metrics of the sampled batch (all ranks)."""
    rewards = groups.rewards.flatten().tolist()
    lengths = [len(c) for c in groups.rollout.completion_ids]
    G = run.cfg.rollout.group_size
    monitors = reward_hacking_metrics(groups.graded, lengths, G) | \
        learned_reward_metrics(groups.graded, lengths, G, run.learned_keys)
    names = sorted({k for r in groups.graded for k in r.terms})
    error_kinds = sorted({e.split(":")[0] for r in groups.graded for e in r.errors.values()})
    base = [len(rewards), sum(rewards), float(groups.correct.sum()), sum(lengths),
            float(sum(groups.rollout.truncated)), float(zero_variance_groups(groups.rewards).sum()),
            float(len(groups.examples))]
    terms = {k: [sum(r.terms[k] for r in groups.graded if k in r.terms),
                 float(sum(k in r.terms for r in groups.graded))] for k in names}
    errors = {kind: float(sum(1 for r in groups.graded for e in r.errors.values() if e.split(":")[0] == kind))
              for kind in error_kinds}
    # ranks may see different term names / error kinds; gather the name lists, then sum aligned vectors
    all_names = sorted({k for ns in D.all_gather_objects(names) for k in ns})
    all_kinds = sorted({k for ks in D.all_gather_objects(error_kinds) for k in ks})
    vector = base + [x for k in all_names for x in terms.get(k, [0.0, 0.0])] + [errors.get(k, 0.0) for k in all_kinds]
    total = D.all_reduce(vector)
    count, n = total[0] or 1.0, len(base)
    out = {"reward/mean": total[1] / count, "reward/accuracy": total[2] / count,
           "completion/length": total[3] / count, "completion/truncated": total[4] / count,
           "reward/zero_variance_groups": total[5] / max(total[6], 1.0),
           "reward/std": float(groups.rewards.std()) if groups.rewards.numel() > 1 else 0.0}
    out |= {f"reward/term/{k}": total[n + 2 * i] / (total[n + 2 * i + 1] or 1.0) for i, k in enumerate(all_names)}
    out |= {f"grader_errors/{k}": total[n + 2 * len(all_names) + i] for i, k in enumerate(all_kinds)}
    return out | monitors


def write_samples(run: Run, groups: Groups) -> None:
    if not run.logger:
        return
    G, rows = run.cfg.rollout.group_size, []
    for i in range(min(run.cfg.log.samples_per_step, len(groups.rollout.texts))):
        ex = groups.examples[i // G]
        rows.append({"step": run.step, "task": ex.task, "id": ex.id, "prompt": prompt_text(ex.prompt),
                     "completion": groups.rollout.texts[i], "reference": ex.reference,
                     "reward": float(groups.rewards.flatten()[i]), "terms": groups.graded[i].terms,
                     "errors": groups.graded[i].errors, "finish": groups.rollout.finish_reasons[i]})
    run.logger.log_samples(rows)


# ---------------------------------------------------------------------------------------------------------------
# The loop

def run_eval(run: Run) -> dict:
    return eval_tasks(run.cfg, run.tasks, run.sampler, run.encode, run.terms, run.scorer)


def eval_tasks(cfg: Config, tasks: dict, sampler, encode, terms: dict, scorer: RewardScorer) -> dict:
    examples = {name: task.eval_examples()[:cfg.eval.size] for name, task in tasks.items()}
    examples = {name: exs for name, exs in examples.items() if exs}
    if not examples:
        return {}
    return evaluate(sampler, encode, examples, terms, scorer, cfg.eval.max_new_tokens or cfg.rollout.max_new_tokens,
                    cfg.eval.k, cfg.eval.temperature)


def evaluate_checkpoint(cfg: Config) -> dict:
    """`rlvr eval`: the held-out metrics of `cfg.model.path`, single process, no optimizer."""
    seed_everything(cfg.train.seed)
    model, tokenizer = load_policy(cfg.model.path, dev.train_dtype(cfg.model.dtype))
    model.to(dev.device())
    sampler = make_sampler(cfg, model, tokenizer)
    def encode(ex: Example) -> list[int]:
        return encode_prompt(tokenizer, ex.prompt, cfg.model.chat_template, cfg.rollout.max_prompt_tokens)
    with RewardScorer(workers=cfg.train.grader_workers, timeout_s=cfg.train.grader_timeout) as scorer:
        return eval_tasks(cfg, build_tasks(cfg), sampler, encode, {t.display_name: t.rewards for t in cfg.tasks},
                          scorer)


def save(run: Run) -> None:
    state = {"mixture": run.mixture.state_dict(), "history": run.history, "elapsed_s": run.clock.elapsed_s(),
             "kl_coef": run.kl_coef}
    ckpt.save_checkpoint(run.run_dir, run.step, run.engine, run.tokenizer, state, run.cfg.train.keep_checkpoints,
                         run.critic)


def log(run: Run, metrics: dict, plot: bool = False) -> None:
    """Log a step's metrics; redraw curves.png after an eval or when asked (checkpoints, the end of the run)."""
    if run.logger:
        run.logger.log(run.step, metrics)
        if plot or any(k.startswith("eval/") for k in metrics):
            plot_curves(run.logger.path, run.run_dir / "curves.png")


def out_of_time(cfg: Config, clock: Clock) -> bool:
    """Whether the time budget is spent; every rank takes rank 0's answer, so all stop at the same step."""
    spent = cfg.train.time_budget_min is not None and clock.elapsed_s() >= cfg.train.time_budget_min * 60
    return bool(D.all_reduce([float(spent) if D.rank() == 0 else 0.0])[0])


def train(cfg: Config, run_dir: Path, resume: bool = False) -> dict:
    """Run (or resume) training; returns the summary (baseline and final eval accuracy, run dir)."""
    run = build_run(cfg, run_dir, resume)
    progress = StepProgress(cfg.train.steps, run.step, enabled=cfg.log.progress and D.rank() == 0)
    try:
        with progress:
            if run.step == 0 and cfg.eval.at_start:
                metrics = run_eval(run)
                run.history["baseline_accuracy"] = metrics.get("eval/accuracy")
                log(run, metrics)
                progress.note(metrics)
            final = run.step >= cfg.train.steps
            while not final:
                run.step += 1
                metrics = rl_step(run)
                if not math.isfinite(metrics.get("loss", 0.0)) or metrics.get("skipped_updates") or \
                        metrics.get("critic/skipped_updates"):
                    run.bad_steps += 1
                    print(f"step {run.step}: non-finite loss or critic values, update skipped ({run.bad_steps} in "
                          "a row)", file=sys.stderr)
                    if run.bad_steps >= cfg.train.max_bad_steps:
                        log(run, metrics, plot=True)
                        last = ckpt.latest_checkpoint(run_dir)
                        raise TrainingStopped(
                            f"stopped at step {run.step}: {run.bad_steps} consecutive non-finite losses. The last "
                            f"good checkpoint is {last or '(none yet)'}; lower train.lr or raise train.grad_clip, "
                            f"then resume with `rlvr train --resume {run_dir}`.")
                else:
                    run.bad_steps = 0
                final = run.step == cfg.train.steps or out_of_time(cfg, run.clock)
                if final or (cfg.eval.every and run.step % cfg.eval.every == 0):
                    metrics |= run_eval(run)
                    if "eval/accuracy" in metrics:
                        run.history["final_accuracy"] = metrics["eval/accuracy"]
                metrics["time/elapsed_min"] = run.clock.elapsed_s() / 60  # training time, resumes included
                due = final or (cfg.train.save_every and run.step % cfg.train.save_every == 0)
                log(run, metrics, plot=due)
                progress.update(run.step, metrics)
                if due and run.bad_steps == 0:  # never checkpoint in the middle of a non-finite streak
                    save(run)
    finally:
        run.scorer.close()
        if run.logger:
            run.logger.close()
    if hasattr(run.sampler, "close"):  # (vllm) its engine and process groups go before the trainer's (D.shutdown)
        run.sampler.close()
    return {"run_dir": str(run_dir), "steps": run.step, **run.history}
