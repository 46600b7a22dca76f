"""Stage 5 of a step: the optimizer loops of the policy and of the critic over token-bounded micro-batches.

    packer = Packer(rollout, G, pad_id, cfg.train.micro_batch_tokens)
    old = frozen_logprobs(packer, engine.module, n_groups, temperature)     # before any update
    metrics = update_policy(cfg, engine, packer, targets, old, ref, seed)   # epochs x minibatches optimizer steps
    metrics |= update_critic(cfg, critic, packer, targets, seed)           # the same, over the critic's groups

Both loops walk `epochs` x `minibatches` optimizer steps over whole prompt groups, in micro-batches packed by
engine/batch.py and bounded by tokens. Every rank runs the same number of micro-batches (a rank with fewer adds
padding ones that weigh nothing), so DeepSpeed's collectives stay in step under any ZeRO stage. Micro-batch losses
are weighted by their share of the minibatch (engine/losses.py `micro_batch_share`) so that their gradients sum to
the minibatch loss's. A non-finite loss on any rank skips that optimizer step on every rank.

The policy's per-token loss is engine/losses.py's `policy_token_loss` (surrogate x rollout correction + KL +
entropy) on every row; the critic's is the clipped value loss, on the rows of the critic's groups only (the
groups of tasks whose advantage is gae), so the critic never sees a row that group advantages train.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import torch

from engine import device as dev
from engine import distributed as D
from engine.batch import MicroBatch, pack_groups, policy_logprobs, split_groups_by_tokens
from engine.config import Config
from engine.critic import token_values
from engine.losses import (aggregate_loss, clipped_value_loss, kl_penalty, micro_batch_share, mismatch_kl,
                           policy_token_loss, rollout_correction)
from engine.rollout import Rollout


@dataclass
class Targets:
    """What one step's update trains towards, per rollout row (N = groups x G rows, T = the longest completion)."""

    advantages: torch.Tensor                # (N, T) per token: a group row has its one advantage on every token
    weight: torch.Tensor                    # (N,) a row's weight in the losses: 0 keeps it out
    critic_groups: list[int]                # groups whose rows train the critic (tasks whose advantage is gae)
    values: torch.Tensor | None = None      # (N, T) the critic's values at sampling time (critic rows, 0 elsewhere)
    returns: torch.Tensor | None = None     # (N, T) the critic's targets (critic rows, 0 elsewhere)


@dataclass
class Packer:
    """Packs a step's prompt groups into micro-batches of at most `budget` tokens."""

    rollout: Rollout
    group_size: int
    pad_id: int
    budget: int

    @property
    def n_groups(self) -> int:
        return len(self.rollout.completion_ids) // self.group_size

    def lengths(self) -> list[int]:
        return [len(c) for c in self.rollout.completion_ids]

    def batches(self, groups: list[int]) -> Iterator[tuple[MicroBatch, bool, bool]]:
        """(micro-batch on the device, real, last); every rank yields the same number (padding ones: real False)."""
        G = self.group_size
        prompt_ids = [self.rollout.prompt_ids[j * G] for j in range(self.n_groups)]
        parts = split_groups_by_tokens(groups, [len(p) for p in prompt_ids], self.lengths(), G, self.budget)
        count = int(D.all_reduce([float(len(parts))], "max")[0])
        for i in range(count):
            real = i < len(parts)
            mb = pack_groups(parts[i] if real else [0], prompt_ids, self.rollout.completion_ids, G, self.pad_id)
            yield mb.to(dev.device()), real, i == count - 1


def per_row(packer: Packer, groups: list[int], forward) -> dict[int, torch.Tensor]:
    """`forward(mb) -> (rows, T)` run without gradients over the groups: {row: its completion's values (len,)}."""
    out, lengths = {}, packer.lengths()
    with torch.no_grad():
        for mb, real, _ in packer.batches(groups):
            values = forward(mb)
            if real:
                for j, row in enumerate(mb.rows):
                    out[row] = values[j, :lengths[row]].float().cpu()
    return out


def frozen_logprobs(packer: Packer, model, temperature: float) -> dict[int, torch.Tensor]:
    """Per row: the log-probs of its completion under a model that does not change during the update."""
    return per_row(packer, list(range(packer.n_groups)), lambda mb: policy_logprobs(model, mb, temperature)[0])


def critic_values(packer: Packer, critic, groups: list[int]) -> dict[int, torch.Tensor]:
    """Per row of the given groups: the critic's value of each completion token's prefix."""
    return per_row(packer, groups, lambda mb: token_values(critic, mb))


def padded(rows_values: dict[int, torch.Tensor], rows: list[int], width: int) -> torch.Tensor:
    """(len(rows), width) from per-row 1-D tensors, zero-padded (a missing row is all zeros)."""
    out = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        v = rows_values.get(r)
        if v is not None:
            out[i, :min(len(v), width)] = v[:width]
    return out


def minibatch_chunks(groups: list[int], cfg: Config, seed: int) -> Iterator[list[int]]:
    """`epochs` x `minibatches` shuffled chunks of the groups (seeded: a resumed run shuffles alike)."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(cfg.grpo.epochs):
        order = torch.tensor(groups)[torch.randperm(len(groups), generator=generator)] if groups else \
            torch.zeros(0, dtype=torch.long)
        for chunk in torch.tensor_split(order, cfg.grpo.minibatches):
            yield chunk.tolist()


@dataclass
class Steps:
    """One optimizer loop's steps: backward of finite losses, step or drop, and the gradient norms."""

    engine: object
    norms: list[float] = field(default_factory=list)
    skipped: int = 0

    def backward(self, loss: torch.Tensor) -> bool:
        """Backward the loss if it is finite on every rank; False (nothing done) otherwise."""
        if D.all_reduce([0.0 if math.isfinite(loss.item()) else 1.0], "max")[0]:
            return False
        self.engine.backward(loss)
        return True

    def finish(self, ok: bool) -> None:
        """Take the optimizer step, or after a non-finite loss drop the accumulated gradients."""
        if ok:
            self.norms.append(grad_norm(self.engine))
            self.engine.step()
        else:
            self.engine.zero_grad()
            self.engine.optimizer.zero_grad()
            self.skipped += 1

    def mean_loss(self, local_sum: float) -> float:
        """The mean over ranks and taken steps of the summed micro-batch losses."""
        return D.all_reduce([local_sum])[0] / D.world_size() / max(1, len(self.norms))

    @property
    def grad_norm(self) -> float:
        return sum(self.norms) / len(self.norms) if self.norms else float("nan")


def update_policy(cfg: Config, engine, packer: Packer, targets: Targets, old: dict | None, ref: dict | None,
                  seed: int) -> dict:
    """`epochs` x `minibatches` policy optimizer steps over every group (old: per-row log-probs before the update,
    None when there is a single update; ref: the reference's, None without a KL term in the loss)."""
    G, lengths = packer.group_size, packer.lengths()
    sampled = {r: torch.tensor(lp, dtype=torch.float32) for r, lp in enumerate(packer.rollout.logprobs)}
    stats = {"loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "entropy": 0.0, "tokens": 0.0}
    mismatch = {"kl": 0.0, "tokens": 0.0, "masked": 0.0, "units": 0.0, "diff_max": 0.0}
    weight, steps = targets.weight, Steps(engine)
    n_chunks = cfg.grpo.minibatches
    for index, chunk in enumerate(minibatch_chunks(list(range(packer.n_groups)), cfg, seed)):
        rows = [j * G + i for j in chunk for i in range(G)]
        mask_total = sum(float(weight[r]) * lengths[r] for r in rows)
        seqs_total = sum(1 for r in rows if weight[r] > 0)
        ok = True
        for mb, real, last in packer.batches(chunk):
            engine.set_gradient_accumulation_boundary(last)
            logp, entropy = policy_logprobs(engine, mb, cfg.rollout.temperature, with_entropy=True,
                                            entropy_grad=cfg.grpo.entropy_coef != 0)                   # (n, T)
            T = logp.shape[1]
            mask = mb.mask * (weight[mb.rows].to(logp.device) * float(real))[:, None]                    # (n, T)
            old_logp = padded(old, mb.rows, T).to(logp.device) if old is not None else logp.detach()
            sampler_logp = padded(sampled, mb.rows, T).to(logp.device)                                  # (n, T)
            is_weight, outside = rollout_correction(old_logp, sampler_logp, mask, cfg.grpo.is_correction,
                                                    cfg.grpo.is_ratio_min, cfg.grpo.is_ratio_max)
            if index < n_chunks:  # the first epoch: count each row once
                count_mismatch(mismatch, old_logp, sampler_logp, mask, outside, cfg.grpo.is_correction)
            kl = None
            if ref is not None:
                kl = kl_penalty(logp, padded(ref, mb.rows, T).to(logp.device), cfg.grpo.kl_estimator)  # (n, T)
                stats["kl"] += float((kl.detach() * mask).sum())
            per_token, clipped = policy_token_loss(
                logp, old_logp, targets.advantages[mb.rows, :T].to(logp.device), is_weight,
                cfg.grpo.clip_low, cfg.grpo.clip_high, cfg.grpo.dual_clip, kl, cfg.grpo.beta, entropy,
                cfg.grpo.entropy_coef)
            loss = aggregate_loss(per_token, mask, cfg.grpo.loss_agg, cfg.rollout.max_new_tokens)
            loss = loss * micro_batch_share(mask, cfg.grpo.loss_agg, mask_total, seqs_total, len(rows))
            ok = steps.backward(loss)
            if not ok:
                break
            stats["loss"] += loss.item()
            stats["clip_fraction"] += float((clipped.float() * mask).sum())
            stats["entropy"] += float((entropy.detach() * mask).sum())
            stats["tokens"] += float(mask.sum())
        steps.finish(ok)
    tokens = D.all_reduce([stats["tokens"]])[0] or 1.0
    sums = D.all_reduce([stats["clip_fraction"], stats["kl"], stats["entropy"]])
    kl_sum, kl_tokens, masked, units = D.all_reduce([mismatch[k] for k in ("kl", "tokens", "masked", "units")])
    return {"loss": steps.mean_loss(stats["loss"]),
            "clip_fraction": sums[0] / tokens, "kl": sums[1] / tokens, "entropy": sums[2] / tokens,
            "grad_norm": steps.grad_norm, "lr": engine.get_lr()[0], "skipped_updates": float(steps.skipped),
            "rollout/mismatch_kl": kl_sum / (kl_tokens or 1), "rollout/is_masked_fraction": masked / (units or 1),
            "rollout/logprob_diff_max": D.all_reduce([mismatch["diff_max"]], "max")[0]}


def update_critic(cfg: Config, critic, packer: Packer, targets: Targets, seed: int) -> dict:
    """`epochs` x `minibatches` critic optimizer steps over the critic's groups (value loss, token-mean).
    Nothing happens in a step where no rank has a critic row."""
    if not D.all_reduce([float(len(targets.critic_groups))])[0]:
        return {}
    G, lengths, weight = packer.group_size, packer.lengths(), targets.weight
    stats, steps = {"loss": 0.0, "clipped": 0.0, "tokens": 0.0}, Steps(critic)
    for chunk in minibatch_chunks(targets.critic_groups, cfg, seed + 1):
        rows = [j * G + i for j in chunk for i in range(G)]
        mask_total = sum(float(weight[r]) * lengths[r] for r in rows)
        ok, any_batch = True, False
        for mb, real, last in packer.batches(chunk):
            any_batch = True
            critic.set_gradient_accumulation_boundary(last)
            values = token_values(critic, mb)                                                      # (n, T)
            T = values.shape[1]
            mask = mb.mask * (weight[mb.rows].to(values.device) * float(real))[:, None]           # (n, T)
            per_token, clipped = clipped_value_loss(values, targets.values[mb.rows, :T].to(values.device),
                                                    targets.returns[mb.rows, :T].to(values.device),
                                                    cfg.critic.value_clip)
            loss = aggregate_loss(per_token, mask, "token-mean")
            loss = loss * micro_batch_share(mask, "token-mean", mask_total, 0, len(rows))
            ok = steps.backward(loss)
            if not ok:
                break
            stats["loss"] += loss.item()
            stats["clipped"] += float((clipped.float() * mask).sum())
            stats["tokens"] += float(mask.sum())
        if any_batch:  # else no rank has a row in this chunk
            steps.finish(ok)
    clipped_sum, tokens = D.all_reduce([stats["clipped"], stats["tokens"]])
    return {"critic/value_loss": steps.mean_loss(stats["loss"]),
            "critic/value_clip_fraction": clipped_sum / (tokens or 1.0), "critic/grad_norm": steps.grad_norm,
            "critic/lr": critic.get_lr()[0], "critic/skipped_updates": float(steps.skipped)}


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
