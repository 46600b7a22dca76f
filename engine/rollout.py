"""Rollouts: G completions per prompt, with the token ids and per-token logprobs the trainer needs.

The trainer talks to a `Sampler`; backends:
- `hf` (here): transformers `generate`, batched, left padding, stops at eos. It samples from the training model
  itself, so weight sync is a no-op.
- `vllm` (GPU): slots in behind the same protocol; its `sync_weights(model)` loads the trainer's weights into the
  vLLM engine after each optimizer step. Not implemented yet (`make_sampler` says so).

Prompts arrive as token ids (chat templating is the engine's job), so a backend never re-tokenizes.
Logprobs are those of the sampling distribution (after temperature and top-p), one per completion token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class Rollout:
    """N = len(prompts) x n sequences, in prompt-major order (the G completions of prompt i are rows i*G..i*G+G-1)."""

    prompt_ids: list[list[int]]       # N x prompt length (unpadded)
    completion_ids: list[list[int]]   # N x completion length (unpadded; ends with eos when it stopped)
    logprobs: list[list[float]]       # N x completion length: log p(token) under the sampling distribution
    texts: list[str]                  # N decoded completions, special tokens removed
    finish_reasons: list[str]         # N of "stop" (eos) or "length" (hit max_new_tokens)

    @property
    def truncated(self) -> list[bool]:
        return [r == "length" for r in self.finish_reasons]


class Sampler(Protocol):
    def generate(self, prompts: list[list[int]], n: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False) -> Rollout: ...

    def sync_weights(self, model: PreTrainedModel) -> None: ...


class HFSampler:
    """transformers `generate` in batches of `batch_size` sequences."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64,
                 synced_gpus: bool = False):
        self.model, self.tokenizer, self.batch_size, self.synced_gpus = model, tokenizer, batch_size, synced_gpus

    def sync_weights(self, model: PreTrainedModel) -> None:
        self.model = model  # generation runs on the training weights themselves

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], n: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False) -> Rollout:
        expanded = [p for p in prompts for _ in range(n)]
        out = Rollout([], [], [], [], [])
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


def make_sampler(backend: str, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int,
                 synced_gpus: bool = False) -> Sampler:
    if backend == "hf":
        return HFSampler(model, tokenizer, batch_size, synced_gpus)
    raise NotImplementedError(
        f"rollout.backend={backend!r} is not available in this build: the vLLM backend is not implemented yet. "
        "Use rollout.backend=hf.")
