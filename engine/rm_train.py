"""Reward-model training (`rlvr rm train`): Bradley-Terry on preference pairs, one member or an ensemble.

    summary = train_reward_model(load_rm_config(None, ["data.path=prefs.jsonl"]), Path("runs/rm"))

Each member m = 0..K-1 is trained in turn, start to finish:
  1. model   the backbone with a fresh one-output head (seed + m) in a DeepSpeed engine (engine/distributed.py:
             AdamW, warm-up + cosine, ZeRO 0-3, CPU or GPU, one process or many)
  2. order   the training pairs in an order fixed by (seed, m): for K > 1 a bootstrap resample (with replacement),
             reshuffled every epoch
  3. steps   `batch_size` pairs per optimizer step, split evenly across ranks, `micro_batch_size` pairs per
             forward (chosen and rejected in one batch); loss = `bradley_terry_loss`
  4. eval    held-out accuracy, margin, loss and score/length correlation every `eval.every` steps and at the end
  5. save    the member's score mean/std on training responses, then model/member-m/ (member.json last)
Then model/reward_model.json (written once every member is), the ensemble's held-out metrics (K > 1, each
member z-scored with its own stats, then averaged) and curves.png.

Steps are numbered across members (member m's step s is global step m * S + s, S steps per member), so
metrics.jsonl, checkpoints and `--resume` work as in `rlvr train`: a resumed run skips finished members and
continues the current one from its last checkpoint exactly (weights, optimizer, schedule, RNG; the data order
is a function of (seed, m, step)). A finished member's checkpoints are deleted: model/ holds its weights.

Deviations from TRL's RewardTrainer: the last token read by the head is always the end-of-turn token we append
(TRL reads whatever the template ends with); pairs are truncated, never dropped, when too long; members of an
ensemble are independent full models (no shared backbone), trained one after another.
Not covered: a shared-backbone multi-head ensemble; token-bounded micro-batches (they are pair-bounded);
early stopping on the held-out split.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from engine import checkpoint as ckpt
from engine import device as dev
from engine import distributed as D
from engine.config import dump_config
from engine.metrics import MetricsLogger, plot_curves
from engine.progress import StepProgress
from engine.reward_model import (Rendering, aggregate_members, backbone_tokenizer, encode, finished_members,
                                 forward_scores, new_member, preference_metrics, save_member, score_sequences,
                                 write_manifest, z_stats)
from engine.rm_config import RMConfig
from engine.trainer import TrainingStopped, seed_everything
from engine.update import grad_norm
from tasks.base import Example, epoch_order
from tasks.preferences import load_preferences

PANELS = [("train/loss", "training loss (Bradley-Terry)"), ("eval/accuracy", "held-out pair accuracy"),
          ("eval/length_corr", "held-out corr(score, length)"), ("eval/margin", "held-out margin r_c - r_r")]
PROGRESS = [("member", "member", "{}"), ("train/loss", "loss", "{:.4f}"), ("train/accuracy", "acc", "{:.2f}"),
            ("eval/accuracy", "eval", "{:.3f}"), ("time/step_s", "s/step", "{:.1f}")]


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | None = None,
                       center_coef: float = 0.0) -> torch.Tensor:
    """Mean over pairs of -logsigmoid(r_chosen - r_rejected - margin), plus center_coef * mean((r_chosen +
    r_rejected)^2) (TRL's RewardTrainer, its `margin` column and center_rewards_coefficient). chosen, rejected,
    margin: (n,)."""
    diff = chosen - rejected - (margin if margin is not None else 0.0)                      # (n,)
    loss = -F.logsigmoid(diff).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen + rejected) ** 2).mean()
    return loss


@dataclass(frozen=True)
class Pair:
    """A preference pair as token ids (prompt + response + end of turn), with its margin (0 without one)."""

    chosen: list[int]
    rejected: list[int]
    margin: float


def encode_pairs(tokenizer, rendering: Rendering, examples: list[Example]) -> list[Pair]:
    return [Pair(encode(tokenizer, rendering, ex.prompt, ex.reference["chosen"]),
                 encode(tokenizer, rendering, ex.prompt, ex.reference["rejected"]),
                 float(ex.reference.get("margin", 0.0))) for ex in examples]


class PairOrder:
    """Which training pair comes at each position of member m's stream: a fixed pool (the pairs, or a bootstrap
    resample of them), walked epoch by epoch in an order shuffled by (seed, m, epoch)."""

    def __init__(self, n: int, seed: int, member: int, bootstrap: bool):
        self.key = seed * 1_000_003 + member
        rng = torch.Generator().manual_seed(self.key)
        self.pool = torch.randint(n, (n,), generator=rng).tolist() if bootstrap else list(range(n))

    def batch(self, step: int, size: int) -> list[int]:
        """The pairs of optimizer step `step` (0-based)."""
        n = len(self.pool)
        return [self.pool[epoch_order(n, self.key, p // n)[p % n]] for p in range(step * size, (step + 1) * size)]


def steps_per_member(cfg: RMConfig, n_train: int) -> int:
    return cfg.train.steps or max(1, math.ceil(cfg.train.epochs * n_train / cfg.train.batch_size))


# ---------------------------------------------------------------------------------------------------------------
# Scoring across ranks

def sharded_scores(model, seqs: list[list[int]], pad_id: int, batch_size: int) -> torch.Tensor:
    """Scores (n,) of every sequence, each rank scoring an equal share (padded with repeats, so collective
    forwards under ZeRO-3 stay in step), gathered on every rank."""
    world, rank = D.world_size(), D.rank()
    if not seqs:
        return torch.empty(0)
    share = math.ceil(len(seqs) / world)
    mine = [seqs[i] if i < len(seqs) else seqs[0] for i in range(rank * share, (rank + 1) * share)]
    was_training = model.training
    model.eval()
    scores = score_sequences(model, mine, pad_id, batch_size).tolist()
    model.train(was_training)
    gathered = [s for part in D.all_gather_objects(scores) for s in part]
    return torch.tensor(gathered[: len(seqs)])


def pair_scores(model, pairs: list[Pair], pad_id: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen scores, rejected scores), each (n,)."""
    scores = sharded_scores(model, [p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id, batch_size)
    return scores[: len(pairs)], scores[len(pairs):]


def eval_metrics(chosen: torch.Tensor, rejected: torch.Tensor, pairs: list[Pair], prompt_lens: list[int],
                 margins: bool) -> dict[str, float]:
    """Held-out accuracy, margin, loss and length correlation (lengths: response tokens)."""
    chosen_len = torch.tensor([len(p.chosen) - n for p, n in zip(pairs, prompt_lens)])
    rejected_len = torch.tensor([len(p.rejected) - n for p, n in zip(pairs, prompt_lens)])
    out = preference_metrics(chosen, rejected, chosen_len, rejected_len)
    margin = torch.tensor([p.margin for p in pairs]) if margins else None
    out["loss"] = float(bradley_terry_loss(chosen, rejected, margin)) if pairs else float("nan")
    return {f"eval/{k}": v for k, v in out.items()}


# ---------------------------------------------------------------------------------------------------------------
# One member

@dataclass
class Data:
    train: list[Pair]
    eval: list[Pair]
    eval_prompt_lens: list[int]
    skipped: int
    skip_reasons: list[str]


def load_data(cfg: RMConfig, tokenizer) -> Data:
    task = load_preferences(cfg.data, cfg.train.seed)
    rendering = rendering_of(cfg)
    train_examples, eval_examples = list(task.train_rows()), task.eval_examples()
    if not eval_examples and D.rank() == 0:
        print("no held-out pairs (data.eval_fraction is 0 and no eval_path/eval_split): eval metrics are not "
              "measured", file=sys.stderr)
    eval_pairs = encode_pairs(tokenizer, rendering, eval_examples)
    prompt_lens = [len(encode(tokenizer, rendering, ex.prompt, "")) - 1 for ex in eval_examples]
    return Data(encode_pairs(tokenizer, rendering, train_examples), eval_pairs, prompt_lens, task.skipped,
                task.skip_reasons)


def rendering_of(cfg: RMConfig) -> Rendering:
    return Rendering(cfg.model.chat_template, cfg.model.max_prompt_tokens, cfg.model.max_completion_tokens)


def optimizer_step(engine, pairs: list[Pair], cfg: RMConfig, pad_id: int) -> dict[str, float] | None:
    """Forward/backward over this rank's share of one batch, then one optimizer step. None (and no update) when
    the loss is not finite on some rank."""
    n = len(pairs)
    chunks = [pairs[i:i + cfg.train.micro_batch_size] for i in range(0, n, cfg.train.micro_batch_size)]
    use_margin = cfg.data.margin_field is not None
    loss_sum, correct, margin_sum = 0.0, 0.0, 0.0
    for i, mb in enumerate(chunks):
        engine.set_gradient_accumulation_boundary(i == len(chunks) - 1)
        scores = forward_scores(engine, [p.chosen for p in mb] + [p.rejected for p in mb], pad_id)      # (2m,)
        chosen, rejected = scores[: len(mb)], scores[len(mb):]                                         # (m,)
        margin = torch.tensor([p.margin for p in mb], device=chosen.device) if use_margin else None
        loss = bradley_terry_loss(chosen, rejected, margin, cfg.train.center_coef) * (len(mb) / n)
        if D.all_reduce([0.0 if math.isfinite(loss.item()) else 1.0], "max")[0]:
            engine.zero_grad()
            engine.optimizer.zero_grad()
            return None
        engine.backward(loss)
        loss_sum += loss.item()
        correct += float((chosen > rejected).sum())
        margin_sum += float((chosen - rejected).detach().sum())
    norm = grad_norm(engine)
    engine.step()
    total = D.all_reduce([loss_sum, correct, margin_sum, float(n)])
    return {"train/loss": total[0] / D.world_size(), "train/accuracy": total[1] / total[3],
            "train/margin": total[2] / total[3], "grad_norm": norm, "lr": engine.get_lr()[0]}


def train_member(cfg: RMConfig, run_dir: Path, data: Data, m: int, S: int, logger: MetricsLogger | None,
                 progress: StepProgress, resume_from: Path | None) -> dict:
    """Train member m (resuming from a checkpoint of it, if given), save it to model/member-m; its member.json."""
    seed = cfg.train.seed + m
    model, tokenizer = new_member(cfg.model.path, dev.train_dtype(cfg.model.dtype), seed)
    model.to(dev.device())
    engine = D.build_engine(model, cfg, S)
    pad = tokenizer.pad_token_id
    order = PairOrder(len(data.train), cfg.train.seed, m, cfg.ensemble.bootstrap and cfg.ensemble.size > 1)
    start, bad = 0, 0
    if resume_from is not None:
        start = ckpt.load_checkpoint(resume_from, engine)["member_step"]
    else:
        seed_everything(seed + 1_000 * D.rank())

    def log(step: int, metrics: dict, plot: bool = False) -> None:
        metrics = {"member": m, **metrics}
        progress.note(metrics)
        if logger:
            logger.log(m * S + step, metrics)
            if plot or any(k.startswith("eval/") for k in metrics):
                plot_curves(logger.path, run_dir / "curves.png", PANELS)

    def evaluate() -> tuple[dict, tuple[torch.Tensor, torch.Tensor]]:
        """Held-out metrics and the scores behind them (chosen, rejected)."""
        scores = pair_scores(engine.module, data.eval, pad, cfg.eval.batch_size)
        return eval_metrics(*scores, data.eval, data.eval_prompt_lens, cfg.data.margin_field is not None), scores

    if start == 0 and m == 0 and cfg.eval.at_start and data.eval:
        log(0, evaluate()[0])
    final_scores = None
    for step in range(start + 1, S + 1):
        t0 = time.perf_counter()
        batch = order.batch(step - 1, cfg.train.batch_size)[D.rank()::D.world_size()]
        metrics = optimizer_step(engine, [data.train[i] for i in batch], cfg, pad)
        if metrics is None:
            bad += 1
            print(f"member {m} step {step}: non-finite loss, update skipped ({bad} in a row)", file=sys.stderr)
            if bad >= 3:
                raise TrainingStopped(f"member {m} stopped at step {step}: {bad} consecutive non-finite losses; "
                                      "lower train.lr or raise train.grad_clip, then resume with --resume.")
            metrics = {"train/skipped": 1.0}
        else:
            bad = 0
        metrics["time/step_s"] = time.perf_counter() - t0
        if data.eval and (step == S or (cfg.eval.every and step % cfg.eval.every == 0)):
            evaluated, final_scores = evaluate()
            metrics |= evaluated
        log(step, metrics)
        progress.update(m * S + step, metrics)
        if cfg.train.save_every and step % cfg.train.save_every == 0 and step < S and bad == 0:
            ckpt.save_checkpoint(run_dir, m * S + step, engine, tokenizer, {"member": m, "member_step": step},
                                 cfg.train.keep_checkpoints)
    return finish_member(cfg, run_dir, data, m, S, engine, tokenizer, final_scores)


def finish_member(cfg: RMConfig, run_dir: Path, data: Data, m: int, S: int, engine, tokenizer,
                  eval_scores: tuple[torch.Tensor, torch.Tensor] | None) -> dict:
    """Score stats on training responses, then the member's directory (rank 0 writes) with its held-out metrics
    (`eval_scores`: the final eval's (chosen, rejected) scores; None when there are no held-out pairs)."""
    pad = tokenizer.pad_token_id
    sample = data.train[: max(1, cfg.eval.stats_samples // 2)]
    chosen, rejected = pair_scores(engine.module, sample, pad, cfg.eval.batch_size)
    mean, std = z_stats(torch.cat([chosen, rejected]))
    eval_c, eval_r = eval_scores if eval_scores is not None else (torch.empty(0), torch.empty(0))
    info = {"seed": cfg.train.seed + m, "steps": S, "mean": mean, "std": std,
            "bootstrap": cfg.ensemble.bootstrap and cfg.ensemble.size > 1,
            "eval": eval_metrics(eval_c, eval_r, data.eval, data.eval_prompt_lens,
                                 cfg.data.margin_field is not None) if data.eval else {}}
    weights = D.full_state_dict(engine)
    if D.rank() == 0:
        scores_dir = run_dir / "eval_scores"
        scores_dir.mkdir(exist_ok=True)
        (scores_dir / f"member-{m}.json").write_text(json.dumps({"chosen": eval_c.tolist(),
                                                                 "rejected": eval_r.tolist()}))
        save_member(run_dir / "model", m, engine.module, weights, tokenizer, info)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # model/member-m supersedes them
    D.barrier()
    return info


# ---------------------------------------------------------------------------------------------------------------
# The run

def ensemble_eval(run_dir: Path, members: list[dict], data: Data) -> dict[str, float]:
    """Held-out metrics of the members' z-scores averaged (what the grader's default `aggregate: mean` scores)."""
    stored = [json.loads((run_dir / "eval_scores" / f"member-{i}.json").read_text()) for i in range(len(members))]
    mean = torch.tensor([m["mean"] for m in members])[:, None]                                     # (K, 1)
    std = torch.tensor([max(m["std"], 1e-6) for m in members])[:, None]                           # (K, 1)
    chosen = (torch.tensor([s["chosen"] for s in stored]) - mean) / std                           # (K, n)
    rejected = (torch.tensor([s["rejected"] for s in stored]) - mean) / std                       # (K, n)
    metrics = eval_metrics(aggregate_members(chosen, "mean"), aggregate_members(rejected, "mean"), data.eval,
                           data.eval_prompt_lens, False)
    metrics.pop("eval/loss")
    spread = torch.cat([chosen, rejected], 1).std(0, correction=0).mean()
    return {k.replace("eval/", "eval/ensemble/"): v for k, v in metrics.items()} | {"eval/ensemble/std": float(spread)}


def train_reward_model(cfg: RMConfig, run_dir: Path, resume: bool = False) -> dict:
    """Train (or resume) every member; returns the summary printed by `rlvr rm train`."""
    D.init_distributed()
    if cfg.train.batch_size % D.world_size():
        raise ValueError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by the number of processes "
                         f"({D.world_size()}).")
    model_dir = run_dir / "model"
    done = finished_members(model_dir) if resume else []
    latest = ckpt.latest_checkpoint(run_dir) if resume else None
    state = json.loads((latest / "trainer_state.json").read_text()) if latest else None
    resume_ckpt = latest if state and state["member"] == len(done) else None
    data = load_data(cfg, backbone_tokenizer(cfg.model.path))
    if not data.train:
        raise ValueError(f"data.path = {cfg.data.path!r}: no training pairs")
    S = steps_per_member(cfg, len(data.train))
    logger = None
    if D.rank() == 0:
        if data.skipped:
            print(f"skipped {data.skipped} bad preference rows (first: {data.skip_reasons[0]})", file=sys.stderr)
        if not resume:
            shutil.rmtree(model_dir, ignore_errors=True)  # a run from scratch (the CLI refuses a finished one)
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.remove_partial(run_dir)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        resume_step = (len(done) * S + (state["member_step"] if resume_ckpt else 0)) if (done or resume_ckpt) \
            else None
        logger = MetricsLogger(run_dir, cfg.log.tensorboard, cfg.log.wandb_project, cfg.model_dump(mode="json"),
                               resume_step)
    D.barrier()
    K = cfg.ensemble.size
    progress = StepProgress(K * S, len(done) * S, enabled=cfg.log.progress and D.rank() == 0, fields=PROGRESS)
    try:
        with progress:
            for m in range(len(done), K):
                done.append(train_member(cfg, run_dir, data, m, S, logger, progress, resume_ckpt))
                resume_ckpt = None  # only the first member trained here can have a checkpoint to resume
            members = finished_members(model_dir) if D.rank() == 0 else done
            summary = {"model_dir": str(model_dir), "members": K, "steps_per_member": S,
                       "train_pairs": len(data.train), "eval_pairs": len(data.eval), "skipped_rows": data.skipped}
            final = members[-1]["eval"] if K == 1 else {}
            if K > 1 and data.eval and D.rank() == 0:
                final = ensemble_eval(run_dir, members, data)
                logger.log(K * S, final)
            if D.rank() == 0:
                write_manifest(model_dir, members, rendering_of(cfg),
                               {"backbone": cfg.model.path, "data": cfg.data.path, "eval": final,
                                "skipped_rows": data.skipped})
                plot_curves(logger.path, run_dir / "curves.png", PANELS)
    finally:
        if logger:
            logger.close()
    D.barrier()
    return summary | final
