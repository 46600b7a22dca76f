"""From rollout groups to packed tensors, in micro-batches bounded by tokens, and the policy forward pass.

Prompt sharing: the G completions of a prompt are packed into ONE sequence after a single copy of the prompt,

    [ prompt (left-padded to P) | completion 1 | completion 2 | ... | completion G | right padding to P + S ]

each completion at its own length (no padding between completions; S is the micro-batch's longest sum of a
group's completion lengths), with a block attention mask (each completion sees the prompt and its own earlier
tokens, never another completion) and position ids that restart after the prompt for every completion. Logits are
identical to G separate forward passes, but the prompt is computed once per group instead of G times: with
SmolLM2's chat template (~45 prompt tokens) and 8 completions of ~16 tokens, a step processes ~3x fewer tokens.
The LM head and everything over the vocabulary (log-softmax, entropy) run only on the rows that predict a real
completion token (`MicroBatch.index`; the head through a pre-hook that picks them from its input, `head_on_rows`):
the padding of shorter groups up to S costs the body, never the vocabulary-sized math.
The mask is additive float (0 or dtype-min), which sdpa and eager attention both accept; a padding query
always attends to itself, so no softmax row is empty.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from engine.losses import entropy_from_logits, token_logprobs

METRIC_ROWS = 256  # rows of (rows, vocabulary) a metric-only computation takes at once


@dataclass
class MicroBatch:
    rows: list[int]                # rollout rows covered, group-major (G consecutive rows per packed sequence)
    group_size: int                # G
    input_ids: torch.Tensor        # (g, P + S)
    attention_mask: torch.Tensor   # (g, 1, L, L) additive float, L = P + S
    position_ids: torch.Tensor     # (g, L)
    keep: torch.Tensor             # (S,) positions P-1 .. P+S-2, whose outputs can predict completion tokens
    index: torch.Tensor            # (n,) per real completion token (row-major over (g*G, T)): its row in the
                                   #      kept outputs flattened to (g*S, ...)
    completion: torch.Tensor       # (g*G, T) completion token ids (pad past the end)
    mask: torch.Tensor             # (g*G, T) float, 1 on real completion tokens (n of them)

    def to(self, device: torch.device) -> "MicroBatch":
        return MicroBatch(self.rows, self.group_size, *(t.to(device) for t in (
            self.input_ids, self.attention_mask, self.position_ids, self.keep, self.index, self.completion,
            self.mask)))


def split_groups_by_tokens(groups: list[int], prompt_len: list[int], completion_len: list[int], group_size: int,
                           budget: int) -> list[list[int]]:
    """Micro-batches of whole groups (sorted by size, so padding is small) whose packed size g x (P + S) stays
    within `budget` tokens (a single group larger than the budget goes alone). `prompt_len[j]` is group j's
    prompt length; `completion_len[r]` is row r's completion length (rows j*G .. j*G+G-1 belong to group j)."""
    def widths(j: int) -> tuple[int, int]:
        return prompt_len[j], sum(completion_len[j * group_size:(j + 1) * group_size])

    batches: list[list[int]] = []
    current: list[int] = []
    width_p = width_s = 0
    for j in sorted(groups, key=lambda j: sum(widths(j))):
        p, s = widths(j)
        wp, ws = max(width_p, p), max(width_s, s)
        if current and (len(current) + 1) * (wp + ws) > budget:
            batches.append(current)
            current, wp, ws = [], p, s
        current.append(j)
        width_p, width_s = wp, ws
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
    S = max(max(sum(len(completion_ids[j * G + i]) for i in range(G)) for j in groups), 1)
    L = P + S
    input_ids = torch.full((g, L), pad_id, dtype=torch.long)                  # (g, L)
    real = torch.zeros((g, L), dtype=torch.bool)                              # (g, L) non-padding tokens
    segment = torch.zeros((g, L), dtype=torch.long)                           # (g, L) 0 = prompt, i+1 = completion i
    position_ids = torch.zeros((g, L), dtype=torch.long)                      # (g, L)
    completion = torch.full((g * G, T), pad_id, dtype=torch.long)             # (g*G, T)
    mask = torch.zeros((g * G, T))                                            # (g*G, T)
    index: list[int] = []
    for b, j in enumerate(groups):
        p = prompt_ids[j]
        input_ids[b, P - len(p):P] = torch.tensor(p)
        real[b, P - len(p):P] = True
        position_ids[b, P - len(p):P] = torch.arange(len(p))
        start = P
        for i in range(G):
            c = torch.tensor(completion_ids[j * G + i], dtype=torch.long)
            n = len(c)
            input_ids[b, start:start + n] = c
            real[b, start:start + n] = True
            segment[b, start:start + n] = i + 1
            position_ids[b, start:start + n] = len(p) + torch.arange(n)
            completion[b * G + i, :n] = c
            mask[b * G + i, :n] = 1.0
            # token t is predicted at position P-1 (t = 0, the prompt's last token) or start+t-1; kept row = that - (P-1)
            index += [b * S + (start - P + t if t else 0) for t in range(n)]
            start += n
    causal = torch.ones(L, L, dtype=torch.bool).tril()                       # (L, L)
    same_or_prompt = (segment[:, None, :] == 0) | (segment[:, None, :] == segment[:, :, None])  # (g, L, L) [b, q, k]
    allowed = causal[None] & same_or_prompt & real[:, None, :]                # (g, L, L)
    allowed |= torch.eye(L, dtype=torch.bool)[None]                          # padding queries see themselves
    attention = torch.zeros((g, 1, L, L)).masked_fill_(~allowed[:, None], torch.finfo(torch.float32).min)
    keep = torch.arange(P - 1, P - 1 + S)                                     # (S,)
    return MicroBatch(rows, G, input_ids, attention, position_ids, keep, torch.tensor(index, dtype=torch.long),
                      completion, mask)


def policy_logprobs(model, mb: MicroBatch, temperature: float, with_entropy: bool = False,
                    entropy_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (g*G, T) of the completion tokens under `model` at the sampling temperature (0 on
    padding), and the per-token entropy (g*G, T) when asked; the entropy carries gradients only with
    `entropy_grad` (a loss term), else it is a metric and costs no autograd memory."""
    with head_on_rows(model, mb.index):
        logits = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask.to(model_dtype(model)),
                       position_ids=mb.position_ids, logits_to_keep=mb.keep, use_cache=False).logits  # (1, n, V)
    z = logits[0].float()                                                     # (n, V)
    if temperature != 1.0:
        z = z / temperature
    tokens = mb.completion[mb.mask.bool()]                                    # (n,)
    logp = per_token(token_logprobs(z[None], tokens[None])[0], mb)          # (g*G, T)
    if not with_entropy:
        return logp, None
    if entropy_grad and torch.is_grad_enabled():                              # a loss term
        return logp, per_token(entropy_from_logits(z[None])[0], mb)          # (g*G, T)
    with torch.no_grad():  # a metric, in slices of rows: its vocabulary-sized temporaries stay ~50 MB
        entropy = torch.cat([entropy_from_logits(part[None])[0] for part in z.split(METRIC_ROWS)])  # (n,)
    return logp, per_token(entropy, mb)                                       # (g*G, T)


@contextmanager
def head_on_rows(model, index: torch.Tensor):
    """While in the block, the model's output layer (the LM head) runs only on the rows `index` of its input, the
    kept positions' hidden states (g, S, H) flattened: logits come out (1, n, V) instead of (g, S, V). The model's
    own forward stays in charge, so elementwise logit transforms after the head (scaling, soft-capping) apply."""
    head = getattr(model, "module", model).get_output_embeddings()  # (a DeepSpeed engine wraps the model)

    def pick(module, args):
        hidden = args[0]                                                      # (g, S, H)
        return hidden.reshape(1, -1, hidden.shape[-1]).index_select(1, index), *args[1:]

    handle = head.register_forward_pre_hook(pick)
    try:
        yield
    finally:
        handle.remove()


def completion_rows(x: torch.Tensor, mb: MicroBatch) -> torch.Tensor:
    """Outputs read at `mb.keep` (g, S, ...) -> the row predicting (or valuing) each real completion token (n, ...).
    The first position (the prompt's last token) serves the first token of all G completions."""
    return x.reshape(-1, *x.shape[2:]).index_select(0, mb.index)  # (its backward is 4x faster than x[index]'s)


def per_token(values: torch.Tensor, mb: MicroBatch) -> torch.Tensor:
    """One value per real completion token (n,) -> (g*G, T), zero on padding (gradients flow to `values`)."""
    return torch.zeros(mb.mask.shape, dtype=values.dtype, device=values.device).masked_scatter(mb.mask.bool(), values)


def model_dtype(model) -> torch.dtype:
    return next(model.parameters()).dtype
