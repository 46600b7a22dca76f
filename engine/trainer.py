"""The GRPO training loop: rollout -> rewards -> advantages -> clipped-surrogate update, every step.

    rlvr train configs/arithmetic.yaml            # or: python -m engine.cli train ...

One step, as in DESIGN.md's data-flow diagram (`rl_step`):
  1. examples   the task mixture's next `prompts_per_step` prompts (each rank keeps its share)
  2. rollout    G completions per prompt from the sampler (token ids, logprobs, finish reasons)
  3. rewards    each task's reward terms, graded in the worker pool (a hang or crash scores 0, never stops us),
                plus the optional DAPO overlong penalty
  4. advantages per group (grpo / dr_grpo / rloo) or per batch (reinforce_pp); with dynamic sampling, groups
                whose rewards are all equal are dropped and refilled with fresh prompts
  5. update     `epochs` x `minibatches` DeepSpeed optimizer steps; micro-batches bounded by tokens; importance
                ratios against the policy that sampled (recomputed only when there is more than one update), each
                token's loss weighted by the rollout/trainer mismatch correction (grpo.is_correction)
  6. sync       the sampler gets the new weights; every rollout's weight version is checked against the policy's

Deviations from the GRPO paper, on purpose: clip-higher (DAPO) by default; the KL term (beta > 0) is added to
the per-token loss as in GRPO, but beta defaults to 0 (no reference model is loaded then); with a single
optimizer step per batch the ratio is exactly 1 and `old_logp` is the detached current logp (as TRL does).
Not covered here: PPO with a critic for learned rewards.
"""
from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine import checkpoint as ckpt
from engine import device as dev
from engine import distributed as D
from engine.advantages import group_advantages, overlong_penalty, zero_variance_groups
from engine.batch import pack_groups, policy_logprobs, split_groups_by_tokens
from engine.config import Config, dump_config
from engine.evaluate import evaluate
from engine.losses import aggregate_loss, clipped_surrogate, kl_penalty, mismatch_kl, rollout_correction
from engine.metrics import MetricsLogger, plot_curves
from engine.models import load_policy, load_reference
from engine.progress import StepProgress
from engine.prompts import encode_prompt, prompt_text
from engine.rollout import Rollout, check_weight_version, make_sampler
from graders.base import Sample
from graders.monitors import reward_hacking_metrics
from graders.rewards import Reward, RewardScorer
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
    reference = load_reference(cfg.model.path, dtype).to(dev.device()) if cfg.grpo.beta > 0 else None
    clock = Clock()
    budget_s = cfg.train.time_budget_min * 60 if cfg.train.time_budget_min else None
    engine = D.build_engine(model, cfg, cfg.train.steps * cfg.grpo.epochs * cfg.grpo.minibatches,
                            lambda: clock.elapsed_s() / budget_s if budget_s else 0.0)
    sampler = make_sampler(cfg, engine.module, tokenizer,
                           synced_gpus=cfg.train.zero_stage == 3 and D.world_size() > 1)
    scorer = RewardScorer(workers=cfg.train.grader_workers, timeout_s=cfg.train.grader_timeout)
    run = Run(cfg, run_dir, engine, tokenizer, reference, sampler, mixture, tasks,
              {t.display_name: t.rewards for t in cfg.tasks}, scorer, None, clock)
    resume_step = None
    latest = ckpt.latest_checkpoint(run_dir) if resume else None  # the CLI refuses a new run over a checkpoint
    if latest:
        state = ckpt.load_checkpoint(latest, engine)
        mixture.load_state_dict(state["mixture"])
        run.step, run.history = state["step"], state.get("history", {})
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
        samples = [Sample(rollout.texts[i], rows[i].reference, prompt_text(rows[i].prompt)) for i in idx]
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
    parts, keeps = [first], [~zero_variance_groups(first.rewards)]
    rounds = 0
    while rounds < run.cfg.grpo.refill_rounds:
        short = wanted - sum(int(k.sum()) for k in keeps)
        if D.all_reduce([float(short > 0)], "max")[0] == 0:  # ranks agree, so their mixtures stay in step
            break
        extra = sample_groups(run, next_examples(run))
        keep = ~zero_variance_groups(extra.rewards)
        keep &= keep.cumsum(0) <= max(short, 0)
        parts.append(extra)
        keeps.append(keep)
        rounds += 1
    kept = concat_groups(parts, keeps)
    metrics = {"dynamic/kept_groups": float(len(kept.examples)), "dynamic/refill_rounds": float(rounds)}
    if not kept.examples:  # nothing informative on this rank: train on the first round with zero weight
        return first, first, {**metrics, "dynamic/empty": 1.0}
    return kept, first, metrics


def update_policy(run: Run, groups: Groups, advantages: torch.Tensor, row_weight: torch.Tensor) -> dict:
    """Stage 5: `epochs` x `minibatches` optimizer steps over the groups (advantages, weights: (N,) per row)."""
    cfg, engine, device = run.cfg, run.engine, dev.device()
    G, rollout = cfg.rollout.group_size, groups.rollout
    n_groups = len(groups.examples)
    prompt_ids = [rollout.prompt_ids[j * G] for j in range(n_groups)]
    completion_len = [len(c) for c in rollout.completion_ids]
    prompt_len = [len(p) for p in prompt_ids]
    pad = run.tokenizer.pad_token_id

    def micro_batches(group_list: list[int]):
        """Packed micro-batches; every rank yields the same number (padding ones have `real` False)."""
        parts = split_groups_by_tokens(group_list, prompt_len, completion_len, G, cfg.train.micro_batch_tokens)
        count = int(D.all_reduce([float(len(parts))], "max")[0])
        for i in range(count):
            real = i < len(parts)
            mb = pack_groups(parts[i] if real else [0], prompt_ids, rollout.completion_ids, G, pad)
            yield mb.to(device), real, i == count - 1

    def frozen_logprobs(model) -> dict[int, torch.Tensor]:
        """Per row: log-probs (len,) of its completion under a model that does not change during the update."""
        out = {}
        with torch.no_grad():
            for mb, real, _ in micro_batches(list(range(n_groups))):
                logp, _ = policy_logprobs(model, mb, cfg.rollout.temperature)
                for j, row in enumerate(mb.rows):
                    out[row] = logp[j, :completion_len[row]]
        return out

    def padded(per_row: dict[int, torch.Tensor], rows: list[int]) -> torch.Tensor:
        return torch.nn.utils.rnn.pad_sequence([per_row[r] for r in rows], batch_first=True)  # (n, T)

    updates = cfg.grpo.epochs * cfg.grpo.minibatches
    old = frozen_logprobs(engine.module) if updates > 1 else None
    ref = frozen_logprobs(run.reference) if run.reference is not None else None
    sampled = {r: torch.tensor(lp, dtype=torch.float32) for r, lp in enumerate(rollout.logprobs)}
    stats = {"loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "entropy": 0.0, "tokens": 0.0}
    mismatch = {"kl": 0.0, "tokens": 0.0, "masked": 0.0, "units": 0.0, "diff_max": 0.0}
    generator = torch.Generator().manual_seed(cfg.train.seed * 1_000_003 + run.step)
    skipped, norms = 0, []
    for epoch in range(cfg.grpo.epochs):
        order = torch.randperm(n_groups, generator=generator)
        for chunk in torch.tensor_split(order, cfg.grpo.minibatches):
            chunk_groups = chunk.tolist()
            rows = [j * G + i for j in chunk_groups for i in range(G)]
            mask_total = sum(float(row_weight[r]) * completion_len[r] for r in rows)
            seqs_total = sum(1 for r in rows if row_weight[r] > 0)
            ok = True
            for mb, real, last in micro_batches(chunk_groups):
                engine.set_gradient_accumulation_boundary(last)
                logp, entropy = policy_logprobs(engine, mb, cfg.rollout.temperature, with_entropy=True)  # (n, T)
                w = row_weight[mb.rows].to(device) * float(real)                                        # (n,)
                mask = mb.mask * w[:, None]                                                             # (n, T)
                old_logp = padded(old, mb.rows) if old is not None else logp.detach()
                per_token, clipped = clipped_surrogate(logp, old_logp, advantages[mb.rows].to(device),
                                                       cfg.grpo.clip_low, cfg.grpo.clip_high, cfg.grpo.dual_clip)
                sampler_logp = padded(sampled, mb.rows).to(device)                                      # (n, T)
                is_weight, outside = rollout_correction(old_logp, sampler_logp, mask, cfg.grpo.is_correction,
                                                        cfg.grpo.is_ratio_min, cfg.grpo.is_ratio_max)
                per_token = per_token * is_weight
                if epoch == 0:  # the same weights every epoch: count each row once
                    count_mismatch(mismatch, old_logp, sampler_logp, mask, outside, cfg.grpo.is_correction)
                if ref is not None:
                    kl = kl_penalty(logp, padded(ref, mb.rows), cfg.grpo.kl_estimator)                 # (n, T)
                    per_token = per_token + cfg.grpo.beta * kl
                    stats["kl"] += float((kl.detach() * mask).sum())
                if cfg.grpo.entropy_coef:
                    per_token = per_token - cfg.grpo.entropy_coef * entropy
                loss = aggregate_loss(per_token, mask, cfg.grpo.loss_agg, cfg.rollout.max_new_tokens)
                loss = loss * share(mask, cfg.grpo.loss_agg, mask_total, seqs_total, len(rows))
                if D.all_reduce([0.0 if math.isfinite(loss.item()) else 1.0], "max")[0]:
                    ok = False
                    break
                engine.backward(loss)
                stats["loss"] += loss.item()
                stats["clip_fraction"] += float((clipped.float() * mask).sum())
                stats["entropy"] += float((entropy.detach() * mask).sum())
                stats["tokens"] += float(mask.sum())
            if ok:
                norms.append(grad_norm(engine))
                engine.step()
            else:
                engine.zero_grad()
                engine.optimizer.zero_grad()
                skipped += 1
    tokens = D.all_reduce([stats["tokens"]])[0] or 1.0
    sums = D.all_reduce([stats["clip_fraction"], stats["kl"], stats["entropy"]])
    kl_sum, kl_tokens, masked, units = D.all_reduce([mismatch[k] for k in ("kl", "tokens", "masked", "units")])
    return {"loss": D.all_reduce([stats["loss"]])[0] / D.world_size() / max(1, updates - skipped),
            "clip_fraction": sums[0] / tokens, "kl": sums[1] / tokens, "entropy": sums[2] / tokens,
            "grad_norm": sum(norms) / len(norms) if norms else float("nan"),
            "lr": engine.get_lr()[0], "skipped_updates": float(skipped),
            "rollout/mismatch_kl": kl_sum / (kl_tokens or 1), "rollout/is_masked_fraction": masked / (units or 1),
            "rollout/logprob_diff_max": D.all_reduce([mismatch["diff_max"]], "max")[0]}


def count_mismatch(totals: dict, train_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor,
                   outside: torch.Tensor, mode: str) -> None:
    """Add a micro-batch's sampler/trainer mismatch to `totals`: KL (token sum), the tokens or sequences the
    correction masked or truncated (`masked` of `units`) and the largest logprob difference."""
    real = mask > 0                                                                         # (n, T)
    totals["kl"] += float((mismatch_kl(train_logp, sampler_logp) * mask).sum())
    totals["tokens"] += float(mask.sum())
    if mode.startswith("sequence"):
        totals["masked"] += float((outside.any(1) & real.any(1)).sum())
        totals["units"] += float(real.any(1).sum())
    else:
        totals["masked"] += float(outside.sum())
        totals["units"] += float(real.sum())
    if real.any():
        totals["diff_max"] = max(totals["diff_max"], float((train_logp - sampler_logp)[real].abs().max()))


def grad_norm(engine) -> float:
    """Global gradient norm before clipping. ZeRO 0 keeps whole (already all-reduced) gradients on the
    parameters; ZeRO 1-3 report the norm DeepSpeed computes on the partitions."""
    if engine.zero_optimization_stage() == 0:
        grads = [p.grad for p in engine.module.parameters() if p.grad is not None]
        return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))) if grads \
            else 0.0
    norm = engine.get_global_grad_norm()
    return float(norm) if norm is not None else float("nan")


def share(mask: torch.Tensor, mode: str, mask_total: float, seqs_total: int, rows_total: int) -> float:
    """This micro-batch's weight in its minibatch, so summed micro-batch losses equal the minibatch loss."""
    if mode == "token-mean":
        return float(mask.sum()) / mask_total if mask_total else 0.0
    if mode == "seq-mean-token-mean":
        return float((mask.sum(1) > 0).sum()) / seqs_total if seqs_total else 0.0
    return mask.shape[0] / rows_total


def rl_step(run: Run) -> dict:
    """One training step, stages 1-5 of the module docstring."""
    cfg, t0 = run.cfg, time.perf_counter()
    groups, first, metrics = collect_groups(run)                                  # 1-3 examples, rollout, rewards
    t_rollout = time.perf_counter() - t0
    advantages = group_advantages(groups.rewards, cfg.grpo.estimator).flatten()  # 4 (B*G,)
    if cfg.grpo.estimator == "reinforce_pp" and D.world_size() > 1:
        advantages = batch_whitened(groups.rewards)
    row_weight = torch.ones_like(advantages)                                      # (B*G,)
    if cfg.grpo.mask_truncated:
        row_weight = row_weight * ~torch.tensor(groups.rollout.truncated)
    row_weight = row_weight * ~torch.tensor([r.mask for r in groups.graded], dtype=torch.bool)  # e.g. RM disagreement
    if metrics.get("dynamic/empty"):
        row_weight.zero_()
    metrics |= update_policy(run, groups, advantages, row_weight)                # 5
    t_sync = time.perf_counter()
    run.sampler.sync_weights(run.engine.module, policy_version(run))              # 6 the sampler gets the new weights
    metrics["time/sync_s"] = time.perf_counter() - t_sync
    metrics |= rollout_metrics(run, first)
    metrics |= run.scorer.take_metrics()  # in-process (learned) graders: time/<grader>_s, reward/ensemble_std
    metrics |= {"time/rollout_s": t_rollout, "time/step_s": time.perf_counter() - t0}
    write_samples(run, first)
    return metrics


def policy_version(run: Run) -> int:
    """The policy's weight version: optimizer steps taken (DeepSpeed counts them and checkpoints restore them)."""
    return int(run.engine.global_steps)


def batch_whitened(rewards: torch.Tensor) -> torch.Tensor:
    """reinforce_pp across ranks: whiten with the global batch mean and std (rewards (B, G) -> (B*G,))."""
    flat = rewards.flatten().double()
    n, s, ss = D.all_reduce([float(flat.numel()), float(flat.sum()), float((flat ** 2).sum())])
    mean = s / n
    std = math.sqrt(max(ss / n - mean ** 2, 0.0) * n / max(n - 1, 1))
    return ((flat - mean) / (std + 1e-6)).float()


def rollout_metrics(run: Run, groups: Groups) -> dict:
    """Reward, accuracy, per-term, error, length and reward-hacking metrics of the sampled batch (all ranks)."""
    rewards = groups.rewards.flatten().tolist()
    lengths = [len(c) for c in groups.rollout.completion_ids]
    hack = reward_hacking_metrics(groups.graded, lengths, run.cfg.rollout.group_size)
    names = sorted({k for r in groups.graded for k in r.terms})
    error_kinds = sorted({e.split(":")[0] for r in groups.graded for e in r.errors.values()})
    local = [len(rewards), sum(rewards), float(groups.correct.sum()), sum(lengths),
             float(sum(groups.rollout.truncated)), float(zero_variance_groups(groups.rewards).sum()),
             float(len(groups.examples))]
    local += [sum(r.terms.get(k, 0.0) for r in groups.graded) for k in names]
    local += [float(sum(1 for r in groups.graded for e in r.errors.values() if e.split(":")[0] == kind))
              for kind in error_kinds]
    # ranks may see different term names / error kinds; gather the name lists, then sum aligned vectors
    all_names = sorted({k for ns in D.all_gather_objects(names) for k in ns})
    all_kinds = sorted({k for ks in D.all_gather_objects(error_kinds) for k in ks})
    vector = local[:7] + [local[7 + names.index(k)] if k in names else 0.0 for k in all_names] + \
        [local[7 + len(names) + error_kinds.index(k)] if k in error_kinds else 0.0 for k in all_kinds]
    total = D.all_reduce(vector)
    count = total[0] or 1.0
    out = {"reward/mean": total[1] / count, "reward/accuracy": total[2] / count,
           "completion/length": total[3] / count, "completion/truncated": total[4] / count,
           "reward/zero_variance_groups": total[5] / max(total[6], 1.0),
           "reward/std": float(groups.rewards.std()) if groups.rewards.numel() > 1 else 0.0}
    out |= {f"reward/term/{k}": total[7 + i] / count for i, k in enumerate(all_names)}
    out |= {f"grader_errors/{k}": total[7 + len(all_names) + i] for i, k in enumerate(all_kinds)}
    out |= hack
    return out


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
    state = {"mixture": run.mixture.state_dict(), "history": run.history, "elapsed_s": run.clock.elapsed_s()}
    ckpt.save_checkpoint(run.run_dir, run.step, run.engine, run.tokenizer, state, run.cfg.train.keep_checkpoints)


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
                if not math.isfinite(metrics["loss"]) or metrics["skipped_updates"]:
                    run.bad_steps += 1
                    print(f"step {run.step}: non-finite loss, update skipped ({run.bad_steps} in a row)",
                          file=sys.stderr)
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
    return {"run_dir": str(run_dir), "steps": run.step, **run.history}
