"""Prompt text -> token ids: the chat template when the model has one, plain text otherwise, left-truncated."""
from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from tasks.base import Prompt


def encode_prompt(tokenizer: PreTrainedTokenizerBase, prompt: Prompt, chat_template: bool, max_tokens: int
                  ) -> list[int]:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    if chat_template and tokenizer.chat_template:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    else:
        text = "\n\n".join(m["content"] for m in messages) + "\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[-max_tokens:]


def prompt_text(prompt: Prompt) -> str:
    """The prompt as one string, for graders and logs."""
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
