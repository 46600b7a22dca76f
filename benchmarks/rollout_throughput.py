"""Rollout throughput: the `vllm` backend against the `hf` backend (transformers generate), same run, this CPU.

    python benchmarks/rollout_throughput.py                          # 3 alternating rounds, 8 prompts x 8 x 128
    python benchmarks/rollout_throughput.py --rounds 1 --max-new-tokens 64
    flock /tmp/rlvr-bench.lock python benchmarks/rollout_throughput.py   # the way figures are taken here

What it measures: completion tokens per second of `Sampler.generate(prompts, n=G)` for each backend, on
SmolLM2-135M-Instruct (fp32, rlvr's `load_policy`), the default config's arithmetic prompts through the chat
template, temperature 1.0, top_p 1, stop on eos (so lengths vary; the mean length of each side is reported). Both
samplers live in one process and take turns (hf, vllm, hf, vllm, ...), with the same torch thread count, so load
from other jobs hits both alike; one untimed warm-up call each first. The vLLM engine is built the way training
builds it (`VLLMSampler.from_config`, eager, 1 GiB KV cache); its start-up time and one weight sync are reported.
Also reported: the largest difference between each backend's sampled logprobs and the trainer's recomputation.
Output: a JSON summary on stdout (and in `--out`), progress on stderr.

Not covered: GPU, bf16, the `compiled` execution mode, the rest of a training step (see grpo_step_vs_trl.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def logprob_diff_max(model, tok, rollout, group: int) -> float:
    """Largest |sampler logprob - trainer logprob| over the rollout's tokens (the trainer's packed forward)."""
    import torch

    from engine.batch import pack_groups, policy_logprobs

    prompts = rollout.prompt_ids[::group]
    worst = 0.0
    for j in range(len(prompts)):  # one group per forward: small attention masks
        mb = pack_groups([j], prompts, rollout.completion_ids, group, tok.pad_token_id)
        with torch.no_grad():
            logp, _ = policy_logprobs(model, mb, 1.0)  # (G, T)
        sampled = torch.nn.utils.rnn.pad_sequence(
            [torch.tensor(rollout.logprobs[r]) for r in mb.rows], batch_first=True)  # (G, T)
        worst = max(worst, float(((logp - sampled) * mb.mask).abs().max()))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rollout_throughput.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    import torch

    torch.set_num_threads(args.threads)
    from engine.config import load_config
    from engine.models import load_policy
    from engine.prompts import encode_prompt
    from engine.rollout import HFSampler
    from engine.trainer import build_tasks
    from engine.vllm_sampler import VLLMSampler
    from tasks.mixture import TaskMixture

    cfg = load_config(None, ["rollout.backend=vllm", f"rollout.max_new_tokens={args.max_new_tokens}",
                             "model.dtype=float32", "vllm.kv_cache_gib=1"])
    model, tok = load_policy(cfg.model.path, torch.float32)
    model.eval()
    tasks = build_tasks(cfg)
    mixture = TaskMixture(list(tasks.values()), [t.weight for t in cfg.tasks], cfg.train.seed)
    batches = [[encode_prompt(tok, ex.prompt, True, cfg.rollout.max_prompt_tokens)
                for ex in mixture.next_batch(args.prompts)] for _ in range(args.rounds + 1)]
    start = time.perf_counter()
    vllm = VLLMSampler.from_config(cfg, tok)
    startup_s = time.perf_counter() - start
    assert torch.get_num_threads() == args.threads, "the engine changed the trainer's thread count"
    start = time.perf_counter()
    vllm.sync_weights(model, 0)
    sync_s = time.perf_counter() - start
    samplers = {"hf": HFSampler(model, tok, batch_size=args.prompts * args.group), "vllm": vllm}
    log(f"vLLM start-up {startup_s:.1f} s, sync {sync_s:.2f} s; warming up")
    for sampler in samplers.values():
        sampler.generate(batches[0], args.group, args.max_new_tokens)

    runs: dict[str, list[dict]] = {name: [] for name in samplers}
    for r in range(args.rounds):
        for name, sampler in samplers.items():
            torch.manual_seed(r)
            start = time.perf_counter()
            rollout = sampler.generate(batches[r + 1], args.group, args.max_new_tokens)
            seconds = time.perf_counter() - start
            tokens = sum(len(c) for c in rollout.completion_ids)
            runs[name].append({"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
                               "logprob_diff_max": logprob_diff_max(model, tok, rollout, args.group)})
            log(f"round {r + 1} {name}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.0f} tok/s")

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    ratios = [v["tokens_per_s"] / h["tokens_per_s"] for v, h in zip(runs["vllm"], runs["hf"])]
    diffs = {name: max(run["logprob_diff_max"] for run in runs[name]) for name in runs}
    summary = {
        "setup": {"prompts": args.prompts, "group": args.group, "max_new_tokens": args.max_new_tokens,
                  "rounds": args.rounds, "threads": args.threads, "dtype": "float32",
                  "load_average_before": load_before},
        "vllm_startup_s": startup_s, "vllm_sync_s": sync_s,
        "tokens_per_s": {name: median(name, "tokens_per_s") for name in runs},
        "mean_completion_len": {name: median(name, "tokens") / (args.prompts * args.group) for name in runs},
        "ratio_vllm_over_hf": {"per_round": ratios, "median": statistics.median(ratios)},
        "logprob_diff_max": diffs,
        "runs": runs,
    }
    summary["setup"]["load_average_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: summary[k] for k in ("tokens_per_s", "ratio_vllm_over_hf", "mean_completion_len",
                                               "logprob_diff_max",
                                               "vllm_startup_s", "vllm_sync_s", "setup")}, indent=1))
    vllm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
