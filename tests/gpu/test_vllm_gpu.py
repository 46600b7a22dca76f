"""The `vllm` backend on a CUDA device (the CUDA build of vLLM: `pip install -e '.[vllm-gpu]'`): weight sync into a
sleeping engine (weights woken first, then the KV cache), logprobs and greedy output against transformers, and
`rlvr train` end to end in bf16. Skipped cleanly without a CUDA device or without vLLM.

Not yet run on a GPU: no device was lent to the work that wrote it (the CPU path is tested in
tests/integration/test_vllm_backend.py).
"""
from __future__ import annotations

import json

import pytest
import torch

from engine_helpers import make_vllm_tiny_model, run_cli

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)
pytest.importorskip("vllm")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_vllm_tiny_model(tmp_path_factory.mktemp("vllm-gpu") / "model")


def test_sync_into_a_sleeping_engine_then_greedy_matches_transformers(tiny):
    from engine.config import VLLMConfig
    from engine.models import load_policy
    from engine.vllm_sampler import VLLMSampler

    torch.backends.cuda.matmul.allow_tf32 = False
    model, tok = load_policy(str(tiny))
    model.cuda()
    sampler = VLLMSampler(str(tiny), tok, VLLMConfig(sleep="on", gpu_memory_utilization=0.2), torch.float32,
                          max_model_len=256, seed=0)
    try:
        prompts = [tok(p)["input_ids"] for p in ("hello world", "abc")]
        free_awake = torch.cuda.mem_get_info()[0]
        sampler.generate(prompts, 2, 8, temperature=1.0)
        assert sampler._asleep and torch.cuda.mem_get_info()[0] > free_awake  # the KV cache was released
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2)
        target = torch.tensor([tok("zzzz")["input_ids"]], device="cuda")
        model(target, labels=target).loss.backward()
        optimizer.step()
        sampler.sync_weights(model, 1)
        assert not sampler._asleep
        greedy = sampler.generate(prompts, 1, 12, greedy=True)
        assert greedy.weight_version == 1
        for p, ids in zip(prompts, greedy.completion_ids):
            out = model.generate(torch.tensor([p], device="cuda"), max_new_tokens=12, do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)[0, len(p):].tolist()
            assert ids == out[:len(ids)]
            with torch.no_grad():
                logits = model(torch.tensor([p + ids], device="cuda")).logits[0, len(p) - 1:-1].float()
            assert logits.argmax(-1).tolist() == ids
    finally:
        sampler.close()


def test_device_training_run_with_the_vllm_backend(tiny_config, tiny, tmp_path):
    result = run_cli("train", *tiny_config, f"model.path={tiny}", "model.dtype=auto", "rollout.backend=vllm",
                     "log.run_name=gpu-vllm")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "runs" / "gpu-vllm" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2
    assert all({"rollout/mismatch_kl", "rollout/is_masked_fraction"} <= set(r) for r in rows[1:])
    assert all(r["rollout/mismatch_kl"] < 0.05 for r in rows[1:])  # bf16 engine vs bf16 trainer: small, not zero
