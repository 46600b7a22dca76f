"""Peak memory of one packed policy forward+backward (the update's micro-batch), with and without checkpointing.

    python benchmarks/update_memory.py                            # both settings, each in a fresh process
    python benchmarks/update_memory.py --completion-tokens 8 16   # another batch shape

What it measures: the peak resident memory (`ru_maxrss`) of a process that loads SmolLM2-135M-Instruct (fp32,
rlvr's `load_policy`), packs 8 groups of 8 completions behind their prompts the way the trainer does
(`pack_groups`: one micro-batch), and runs `policy_logprobs` with the entropy metric and a backward through the
log-probs; reported as the peak above the process's size once the model is loaded. The default shape is a
code-reasoner step (configs/code-reasoner.yaml: 80-120-token prompts, 30-48-token completions; random token ids,
seeded). Each setting runs in its own process, so one's peak cannot hide the other's. Output: one JSON line per
setting on stdout.

Not covered: the optimizer's state and gradients of a whole run (DeepSpeed's), the vLLM engine, several
micro-batches (their activations are freed between them), GPU memory.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(checkpointing: bool, prompt_tokens: tuple[int, int], completion_tokens: tuple[int, int]) -> dict:
    sys.path.insert(0, str(ROOT))
    from engine.batch import pack_groups, policy_logprobs
    from engine.models import load_policy

    model, tokenizer = load_policy("smollm2-135m")
    model.train()
    if checkpointing:  # as the trainer enables it (engine/distributed.py)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    rng, groups, G = random.Random(0), list(range(8)), 8
    prompts = [[rng.randrange(1000, 20000) for _ in range(rng.randint(*prompt_tokens))] for _ in groups]
    completions = [[rng.randrange(1000, 20000) for _ in range(rng.randint(*completion_tokens))]
                   for _ in range(len(groups) * G)]
    mb = pack_groups(groups, prompts, completions, G, tokenizer.pad_token_id)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # bytes (Linux reports KiB)
    logp, _ = policy_logprobs(model, mb, 1.0, with_entropy=True)
    logp.sum().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"gradient_checkpointing": checkpointing, "packed_positions": mb.input_ids.numel(),
            "completion_tokens": int(mb.mask.sum()), "peak_gib": round(peak / 2**30, 2),
            "peak_above_model_gib": round((peak - loaded) / 2**30, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-tokens", type=int, nargs=2, default=(80, 120), metavar=("MIN", "MAX"))
    parser.add_argument("--completion-tokens", type=int, nargs=2, default=(30, 48), metavar=("MIN", "MAX"))
    parser.add_argument("--worker", choices=["plain", "checkpointing"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker == "checkpointing", args.prompt_tokens, args.completion_tokens)))
        return
    for setting in ("plain", "checkpointing"):
        print(f"{setting}: measuring in a fresh process", file=sys.stderr)
        done = subprocess.run([sys.executable, __file__, "--worker", setting, "--prompt-tokens",
                               *map(str, args.prompt_tokens), "--completion-tokens", *map(str, args.completion_tokens)],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if done.returncode:
            sys.exit(f"error: the {setting} measurement failed:\n{done.stderr[-2000:]}")
        print(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
