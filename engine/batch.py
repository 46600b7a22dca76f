"""From rollout rows to padded tensors, in micro-batches bounded by tokens, and the policy forward pass.

Layout of one micro-batch of n rows: `[left-padded prompt | completion, right-padded]`, width P + T, with
explicit position ids (so left padding does not shift positions). The forward pass asks the model for logits
of the last T + 1 positions only (`logits_to_keep`), which are exactly the ones that predict completion tokens:
the LM head never runs over prompt positions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.losses import entropy_from_logits, token_logprobs


@dataclass
class MicroBatch:
    rows: list[int]               # indices into the rollout batch
    input_ids: torch.Tensor       # (n, P + T)
    attention_mask: torch.Tensor  # (n, P + T)
    position_ids: torch.Tensor    # (n, P + T)
    completion: torch.Tensor      # (n, T) completion token ids (pad past the end)
    mask: torch.Tensor            # (n, T) float, 1 on real completion tokens

    def to(self, device: torch.device) -> "MicroBatch":
        return MicroBatch(self.rows, *(t.to(device) for t in (self.input_ids, self.attention_mask,
                                                             self.position_ids, self.completion, self.mask)))


def split_by_tokens(rows: list[int], lengths: list[tuple[int, int]], budget: int) -> list[list[int]]:
    """Group rows (sorted by length, so padding is small) into micro-batches whose padded size n x (P + T) stays
    within `budget` tokens. `lengths[i]` = (prompt length, completion length) of row i."""
    order = sorted(rows, key=lambda i: lengths[i][0] + lengths[i][1])
    batches: list[list[int]] = []
    current: list[int] = []
    width_p = width_t = 0
    for i in order:
        p, t = lengths[i]
        wp, wt = max(width_p, p), max(width_t, t)
        if current and (len(current) + 1) * (wp + wt) > budget:
            batches.append(current)
            current, wp, wt = [], p, t
        current.append(i)
        width_p, width_t = wp, wt
    if current:
        batches.append(current)
    return batches


def collate(rows: list[int], prompt_ids: list[list[int]], completion_ids: list[list[int]],
            pad_id: int) -> MicroBatch:
    n = len(rows)
    width_p = max(len(prompt_ids[i]) for i in rows)
    width_t = max(max(len(completion_ids[i]) for i in rows), 1)
    input_ids = torch.full((n, width_p + width_t), pad_id, dtype=torch.long)   # (n, P + T)
    attention = torch.zeros((n, width_p + width_t), dtype=torch.long)          # (n, P + T)
    for j, i in enumerate(rows):
        p, c = prompt_ids[i], completion_ids[i]
        input_ids[j, width_p - len(p):width_p] = torch.tensor(p)
        input_ids[j, width_p:width_p + len(c)] = torch.tensor(c, dtype=torch.long)
        attention[j, width_p - len(p):width_p + len(c)] = 1
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)                     # (n, P + T)
    completion = input_ids[:, width_p:]                                        # (n, T)
    mask = attention[:, width_p:].float()                                      # (n, T)
    return MicroBatch(rows, input_ids, attention, position_ids, completion, mask)


def policy_logprobs(model, mb: MicroBatch, temperature: float, with_entropy: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (n, T) of the completion tokens under `model` at the sampling temperature, and the
    per-token entropy (n, T) when asked (it needs the full (n, T, V) distribution)."""
    width_t = mb.completion.shape[1]
    logits = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask, position_ids=mb.position_ids,
                   logits_to_keep=width_t + 1, use_cache=False).logits[:, :-1]  # (n, T, V)
    logits = logits.float() / temperature
    logp = token_logprobs(logits, mb.completion)                                   # (n, T)
    entropy = entropy_from_logits(logits) if with_entropy else None               # (n, T)
    return logp, entropy
