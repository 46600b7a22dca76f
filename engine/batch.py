"""From rollout groups to packed tensors, in micro-batches bounded by tokens, and the policy forward pass.

Prompt sharing: the G completions of a prompt are packed into ONE sequence after a single copy of the prompt,

    [ prompt (left-padded to P) | completion 1 (right-padded to T) | completion 2 | ... | completion G ]

with a block attention mask (each completion sees the prompt and its own earlier tokens, never another
completion) and position ids that restart after the prompt for every completion. Logits are identical to G
separate forward passes, but the prompt is computed once per group instead of G times: with SmolLM2's chat
template (~45 prompt tokens) and 8 completions of ~16 tokens, a step processes ~3x fewer tokens. The LM head
runs only on the positions that predict completion tokens (`logits_to_keep` as an index tensor).
The mask is additive float (0 or dtype-min), which sdpa and eager attention both accept; a padding query
attends to itself only, so no softmax row is empty.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.losses import entropy_from_logits, token_logprobs


@dataclass
class MicroBatch:
    rows: list[int]                # rollout rows covered, group-major (G consecutive rows per packed sequence)
    group_size: int                # G
    input_ids: torch.Tensor        # (g, P + G*T)
    attention_mask: torch.Tensor   # (g, 1, L, L) additive float, L = P + G*T
    position_ids: torch.Tensor     # (g, L)
    keep: torch.Tensor             # (1 + G*(T-1),) positions whose logits predict completion tokens
    completion: torch.Tensor       # (g*G, T) completion token ids (pad past the end)
    mask: torch.Tensor             # (g*G, T) float, 1 on real completion tokens

    def to(self, device: torch.device) -> "MicroBatch":
        return MicroBatch(self.rows, self.group_size, *(t.to(device) for t in (
            self.input_ids, self.attention_mask, self.position_ids, self.keep, self.completion, self.mask)))


def split_groups_by_tokens(groups: list[int], prompt_len: list[int], completion_len: list[int], group_size: int,
                           budget: int) -> list[list[int]]:
    """Micro-batches of whole groups (sorted by size, so padding is small) whose packed size g x (P + G*T) stays
    within `budget` tokens (a single group larger than the budget goes alone). `prompt_len[j]` is group j's
    prompt length; `completion_len[r]` is row r's completion length (rows j*G .. j*G+G-1 belong to group j)."""
    def widths(j: int) -> tuple[int, int]:
        return prompt_len[j], max(completion_len[j * group_size:(j + 1) * group_size])

    batches: list[list[int]] = []
    current: list[int] = []
    width_p = width_t = 0
    for j in sorted(groups, key=lambda j: sum(widths(j))):
        p, t = widths(j)
        wp, wt = max(width_p, p), max(width_t, t)
        if current and (len(current) + 1) * (wp + group_size * wt) > budget:
            batches.append(current)
            current, wp, wt = [], p, t
        current.append(j)
        width_p, width_t = wp, wt
    if current:
        batches.append(current)
    return batches


def pack_groups(groups: list[int], prompt_ids: list[list[int]], completion_ids: list[list[int]], group_size: int,
                pad_id: int) -> MicroBatch:
    """Pack groups (prompt_ids: one per group; completion_ids: one per row) into one micro-batch."""
    G, g = group_size, len(groups)
    rows = [j * G + i for j in groups for i in range(G)]
    P = max(len(prompt_ids[j]) for j in groups)
    T = max(max(len(completion_ids[r]) for r in rows), 1)
    L = P + G * T
    input_ids = torch.full((g, L), pad_id, dtype=torch.long)                  # (g, L)
    real = torch.zeros((g, L), dtype=torch.bool)                              # (g, L) non-padding tokens
    segment = torch.cat([torch.zeros(P, dtype=torch.long),                    # (L,) 0 = prompt, i+1 = completion i
                         torch.arange(1, G + 1).repeat_interleave(T)])
    offset = torch.cat([torch.zeros(P, dtype=torch.long), torch.arange(T).repeat(G)])  # (L,) index in segment
    position_ids = torch.zeros((g, L), dtype=torch.long)                      # (g, L)
    for b, j in enumerate(groups):
        p = prompt_ids[j]
        input_ids[b, P - len(p):P] = torch.tensor(p)
        real[b, P - len(p):P] = True
        position_ids[b, P - len(p):P] = torch.arange(len(p))
        for i in range(G):
            c = completion_ids[j * G + i]
            start = P + i * T
            input_ids[b, start:start + len(c)] = torch.tensor(c, dtype=torch.long)
            real[b, start:start + len(c)] = True
        position_ids[b, P:] = len(p) + offset[P:]
    causal = torch.ones(L, L, dtype=torch.bool).tril()                       # (L, L)
    same_or_prompt = (segment[None, :] == 0) | (segment[None, :] == segment[:, None])  # (L, L) key visible to query
    allowed = (causal & same_or_prompt)[None] & real[:, None, :]              # (g, L, L)
    allowed |= torch.eye(L, dtype=torch.bool)[None]                          # padding queries see themselves
    attention = torch.zeros((g, 1, L, L)).masked_fill_(~allowed[:, None], torch.finfo(torch.float32).min)
    keep = torch.tensor([P - 1] + [P + i * T + t - 1 for i in range(G) for t in range(1, T)], dtype=torch.long)
    completion = input_ids[:, P:].reshape(g * G, T)                           # (g*G, T)
    mask = real[:, P:].reshape(g * G, T).float()                              # (g*G, T)
    return MicroBatch(rows, G, input_ids, attention, position_ids, keep, completion, mask)


def policy_logprobs(model, mb: MicroBatch, temperature: float, with_entropy: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (g*G, T) of the completion tokens under `model` at the sampling temperature, and the
    per-token entropy (g*G, T) when asked (it needs the full distribution)."""
    logits = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask.to(model_dtype(model)),
                   position_ids=mb.position_ids, logits_to_keep=mb.keep, use_cache=False).logits  # (g, 1+G(T-1), V)
    logits = completion_positions(logits.float() / temperature, mb)          # (g*G, T, V)
    logp = token_logprobs(logits, mb.completion)                              # (g*G, T)
    entropy = entropy_from_logits(logits) if with_entropy else None          # (g*G, T)
    return logp, entropy


def completion_positions(x: torch.Tensor, mb: MicroBatch) -> torch.Tensor:
    """Per-completion-token rows from outputs read at `mb.keep`: (g, 1+G(T-1), ...) -> (g*G, T, ...). The first
    position (the prompt's last token) predicts every completion's first token, so it is shared by the G rows."""
    g, G, T = mb.input_ids.shape[0], mb.group_size, mb.completion.shape[1]
    rest_shape = x.shape[2:]
    first = x[:, :1].unsqueeze(1).expand(g, G, 1, *rest_shape)               # (g, G, 1, ...)
    rest = x[:, 1:].reshape(g, G, T - 1, *rest_shape)                         # (g, G, T-1, ...)
    return torch.cat([first, rest], dim=2).reshape(g * G, T, *rest_shape)     # (g*G, T, ...)


def model_dtype(model) -> torch.dtype:
    return next(model.parameters()).dtype
