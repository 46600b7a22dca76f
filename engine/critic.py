"""PPO's critic: a value head on its own copy of a causal LM, scoring every completion token's prefix.

    critic = load_critic(cfg.critic.init, cfg.model.path, cfg.critic_reward_model, dtype)
    values = token_values(critic, mb)          # (g*G, T): V(prompt + completion[:t]) for each completion token t

The critic is a token-classification model with one output (`AutoModelForTokenClassification`, num_labels=1, no
bias, no dropout): the transformer body and a linear head read at every position. Where it starts (`critic.init`):
- `policy`: the policy's weights (its LM head dropped), a new value head (normal, std = initializer_range);
- `reward_model`: member 0 of the run's reward model (`rlvr rm train`): its sequence-classification head is the
  same linear layer, so the critic starts by predicting the reward model's score of each prefix;
- a path: a Hugging Face directory (a causal LM or a classifier) or a reward-model directory (member 0).
Values are read at the positions that predict completion tokens, so V_t is the value of the state before token t
(the prompt and the t tokens before it), the convention GAE (engine/advantages.py) expects.
Not covered: a value head sharing the policy's body (one model, two heads): it saves memory but couples the two
optimisers, and the critic is only loaded when a task needs it.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForTokenClassification, PreTrainedModel

from engine.batch import MicroBatch, completion_rows, model_dtype, per_token
from engine.models import resolve_source
from engine.rm_grader import MANIFEST, find_model_dir


def critic_source(init: str, policy_path: str, reward_model: str | None) -> str:
    """The directory (or hub id) the critic's weights come from."""
    if init == "policy":
        return resolve_source(policy_path)
    if init == "reward_model":
        if reward_model is None:
            raise ValueError("critic.init=reward_model, but no task whose advantage is gae has a reward_model term")
        init = reward_model
    path = Path(init).expanduser()
    if (path / MANIFEST).is_file() or (path / "model" / MANIFEST).is_file():
        root = find_model_dir(str(path))
        return str(root / json.loads((root / MANIFEST).read_text())["members"][0]["dir"])
    return resolve_source(init)


def load_critic(init: str, policy_path: str, reward_model: str | None, dtype: torch.dtype) -> PreTrainedModel:
    """The critic model, in train mode (see the module docstring for `init`)."""
    source = critic_source(init, policy_path, reward_model)
    config = AutoConfig.from_pretrained(source, num_labels=1)
    config.classifier_dropout = 0.0            # values must not be noisy: no dropout before the head
    config.token_classification_bias = False   # the head of a reward model (sequence classification) has none
    return AutoModelForTokenClassification.from_pretrained(source, config=config, dtype=dtype)


def token_values(model, mb: MicroBatch) -> torch.Tensor:
    """Values (g*G, T) of every completion token's prefix (float32; with grad outside no_grad)."""
    out = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask.to(model_dtype(model)),
                position_ids=mb.position_ids, use_cache=False).logits                  # (g, L, 1)
    return per_token(completion_rows(out[:, mb.keep, 0].float(), mb), mb)                 # (g*G, T)
