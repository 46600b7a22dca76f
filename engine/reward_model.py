"""Reward models: the `model/` directory format, loading, input rendering, batched scoring, ensemble maths.

    rm = RewardModel.load("runs/rm/model")                    # every member, on the trainer's device
    raw = rm.member_scores([(prompt, completion), ...])       # (K, N) raw head outputs
    z = rm.normalize(raw)                                     # (K, N) z-scores, each member's training stats
    aggregate_members(z, "mean_minus_std", k=1.0)             # (N,)

A member is a causal LM with a one-output sequence-classification head (`AutoModelForSequenceClassification`,
num_labels=1) read at the last token. Its input is what the policy saw plus what it wrote: the prompt rendered by
`engine.prompts.encode_prompt` (the chat template, left-truncated, as in rollouts), then the response's tokens
(right-truncated) and the end-of-turn token. Training (engine/rm_train.py) and scoring use the same `encode`.

    model/
        reward_model.json     format, members (dir, seed, score mean/std on training data, eval), rendering
        member-0/             a Hugging Face directory (weights + tokenizer), loadable on its own
        member-1/ ...         (ensemble.size > 1)

A member directory is complete once its `member.json` exists (written last); `reward_model.json` is written when
every member is, so a directory with it is always whole.
Not covered: reward heads with more than one output, scoring multi-turn responses, quantised members.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Literal, Sequence

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, \
    PreTrainedTokenizerBase

from engine import device as dev
from engine.models import ModelLoadError, fix_special_tokens, resolve_source
from engine.prompts import encode_prompt
from engine.rm_grader import MANIFEST, find_model_dir
from tasks.base import Prompt

FORMAT = "rlvr-reward-model/1"
MEMBER_FILE = "member.json"
Aggregate = Literal["mean", "min", "mean_minus_std"]


# ---------------------------------------------------------------------------------------------------------------
# Pure maths: ensembles and preference metrics

def member_spread(scores: torch.Tensor) -> torch.Tensor:
    """Per-sample standard deviation across members (population std, so one member gives 0): (K, N) -> (N,)."""
    return scores.std(0, correction=0)


def aggregate_members(scores: torch.Tensor, how: Aggregate, k: float = 1.0) -> torch.Tensor:
    """One score per sample from K members' scores (K, N) -> (N,): their mean, their minimum (worst-case
    optimisation), or mean - k * std (uncertainty-weighted; Coste et al. 2023)."""
    if how == "mean":
        return scores.mean(0)
    if how == "min":
        return scores.min(0).values
    if how == "mean_minus_std":
        return scores.mean(0) - k * member_spread(scores)
    raise ValueError(f"unknown aggregate {how!r}; valid: mean, min, mean_minus_std")


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Correlation of two 1-D tensors; 0 when either is constant."""
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    denom = float(x.norm() * y.norm())
    return float((x * y).sum()) / denom if denom > 0 else 0.0


def preference_metrics(chosen: torch.Tensor, rejected: torch.Tensor, chosen_len: torch.Tensor,
                       rejected_len: torch.Tensor) -> dict[str, float]:
    """accuracy: share of pairs scored r_chosen > r_rejected; margin: mean r_chosen - r_rejected; length_corr:
    correlation of score with response length (tokens) over every response, a standard length-bias check."""
    if chosen.numel() == 0:
        return {"accuracy": float("nan"), "margin": float("nan"), "length_corr": float("nan")}
    return {"accuracy": float((chosen > rejected).double().mean()), "margin": float((chosen - rejected).mean()),
            "length_corr": pearson(torch.cat([chosen, rejected]), torch.cat([chosen_len, rejected_len]).float())}


# ---------------------------------------------------------------------------------------------------------------
# Inputs

@dataclass(frozen=True)
class Rendering:
    """How (prompt, response) becomes token ids; stored with the model so the grader renders as training did."""

    chat_template: bool = True
    max_prompt_tokens: int = 256
    max_completion_tokens: int = 256


def encode(tokenizer: PreTrainedTokenizerBase, rendering: Rendering, prompt: Prompt, response: str) -> list[int]:
    """Prompt ids as the policy saw them, then the response's ids and the end-of-turn token."""
    prompt_ids = encode_prompt(tokenizer, prompt, rendering.chat_template, rendering.max_prompt_tokens)
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"][: rendering.max_completion_tokens - 1]
    return prompt_ids + response_ids + [tokenizer.eos_token_id]


def padded(seqs: Sequence[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask, both (n, T). The head reads the last token that is not padding."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def forward_scores(model, seqs: Sequence[list[int]], pad_id: int) -> torch.Tensor:
    """Head outputs (n,) for a batch of sequences (float32; with grad when called outside no_grad)."""
    ids, mask = padded(seqs, pad_id, dev.device())
    return model(input_ids=ids, attention_mask=mask).logits[:, 0].float()


@torch.no_grad()
def score_sequences(model, seqs: Sequence[list[int]], pad_id: int, batch_size: int) -> torch.Tensor:
    """Scores (n,) of many sequences, batched by similar length (less padding), in the input order."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = torch.empty(len(seqs))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        out[idx] = forward_scores(model, [seqs[i] for i in idx], pad_id).cpu()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Members on disk

def new_member(backbone: str, dtype: torch.dtype, seed: int) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM from `backbone` (any model.path source) with a fresh one-output head initialised by `seed`."""
    source = resolve_source(backbone)
    torch.manual_seed(seed)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "score.weight newly initialized" is the point here
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not load {backbone!r} as a reward-model backbone: {exc}\nPass a causal LM "
                             "(model.path=...): a local Hugging Face directory, a .gguf file, the alias "
                             "`smollm2-135m`, or a hub id when the hub is reachable.") from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    fix_special_tokens(model, tokenizer)
    tokenizer.padding_side = "right"
    return model, tokenizer


def backbone_tokenizer(backbone: str) -> PreTrainedTokenizerBase:
    """The tokenizer `new_member` gives, without loading weights (to encode the data before any member exists)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_source(backbone))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not load the tokenizer of {backbone!r} (model.path): {exc}") from None
    fix_special_tokens(SimpleNamespace(config=SimpleNamespace()), tokenizer)  # the same eos/pad choices
    tokenizer.padding_side = "right"
    return tokenizer


def member_dir(model_dir: Path, index: int) -> Path:
    return model_dir / f"member-{index}"


def finished_members(model_dir: Path) -> list[dict]:
    """The member.json of every complete member, by index, stopping at the first incomplete one."""
    out = []
    while (member_dir(model_dir, len(out)) / MEMBER_FILE).is_file():
        out.append(json.loads((member_dir(model_dir, len(out)) / MEMBER_FILE).read_text()))
    return out


def save_member(model_dir: Path, index: int, model: PreTrainedModel, state_dict: dict | None,
                tokenizer: PreTrainedTokenizerBase, info: dict) -> Path:
    """Write member `index` (weights, tokenizer, then member.json last) and return its directory. Rank 0 only."""
    target = member_dir(model_dir, index)
    target.mkdir(parents=True, exist_ok=True)
    (target / MEMBER_FILE).unlink(missing_ok=True)
    model.save_pretrained(target, state_dict=state_dict, safe_serialization=True)
    tokenizer.save_pretrained(target)
    tmp = target / (MEMBER_FILE + ".tmp")
    tmp.write_text(json.dumps({"dir": target.name, **info}, indent=1))
    tmp.rename(target / MEMBER_FILE)
    return target


def write_manifest(model_dir: Path, members: list[dict], rendering: Rendering, extra: dict) -> Path:
    """reward_model.json: what loading needs, plus `extra` (backbone, data, eval) for people."""
    manifest = {"format": FORMAT, "members": members, "rendering": asdict(rendering), **extra}
    tmp = model_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.rename(model_dir / MANIFEST)
    return model_dir / MANIFEST


class RewardModel:
    """K members sharing one tokenizer and rendering; scores (prompt, response) pairs in batches."""

    def __init__(self, members: list[PreTrainedModel], tokenizer: PreTrainedTokenizerBase,
                 stats: list[tuple[float, float]], rendering: Rendering, path: Path | None = None):
        self.members, self.tokenizer, self.rendering, self.path = members, tokenizer, rendering, path
        self.mean = torch.tensor([m for m, _ in stats])                         # (K,)
        self.std = torch.tensor([max(s, 1e-6) for _, s in stats])               # (K,)

    @classmethod
    def load(cls, path: str | Path, dtype: torch.dtype | None = None) -> RewardModel:
        """Every member of a model/ directory, on the trainer's device, in eval mode."""
        root = find_model_dir(str(path))
        manifest = json.loads((root / MANIFEST).read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{root / MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT!r}")
        dtype = dtype or dev.train_dtype()
        members = [AutoModelForSequenceClassification.from_pretrained(root / m["dir"], dtype=dtype)
                   .to(dev.device()).eval().requires_grad_(False) for m in manifest["members"]]
        tokenizer = AutoTokenizer.from_pretrained(root / manifest["members"][0]["dir"])
        tokenizer.padding_side = "right"
        stats = [(m["mean"], m["std"]) for m in manifest["members"]]
        return cls(members, tokenizer, stats, Rendering(**manifest["rendering"]), root)

    @property
    def size(self) -> int:
        return len(self.members)

    def encode(self, prompt: Prompt, response: str) -> list[int]:
        return encode(self.tokenizer, self.rendering, prompt, response)

    def member_scores(self, pairs: Sequence[tuple[Prompt, str]], batch_size: int = 32) -> torch.Tensor:
        """Raw scores (K, N) of (prompt, response) pairs."""
        seqs = [self.encode(p, r) for p, r in pairs]
        if not seqs:
            return torch.empty(self.size, 0)
        return torch.stack([score_sequences(m, seqs, self.tokenizer.pad_token_id, batch_size) for m in self.members])

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """z-scores (K, N): each member's scores minus its training mean, over its training std."""
        return (raw - self.mean[:, None]) / self.std[:, None]


def z_stats(scores: torch.Tensor) -> tuple[float, float]:
    """(mean, std) of a member's scores on training responses, for normalisation."""
    mean, std = float(scores.double().mean()), float(scores.double().std(correction=0))
    return mean, std if math.isfinite(std) else 1.0
