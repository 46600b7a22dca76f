"""Micro-batching and the policy forward: padded, batched log-probs equal unpadded single-sequence ones."""
import torch
from transformers import AutoModelForCausalLM

from engine.batch import collate, policy_logprobs, split_by_tokens


def test_split_by_tokens_respects_the_budget_and_keeps_every_row():
    lengths = [(10, 5), (3, 30), (10, 10), (4, 4), (20, 20), (1, 1)]
    batches = split_by_tokens(list(range(6)), lengths, budget=60)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        width = max(lengths[i][0] for i in b) + max(lengths[i][1] for i in b)
        assert len(b) * width <= 60 or len(b) == 1
    assert split_by_tokens([0, 1], [(5, 5), (5, 5)], budget=10) == [[0], [1]]
    assert split_by_tokens([0, 1], [(5, 5), (5, 5)], budget=20) == [[0, 1]]


def test_collate_layout_left_pads_prompts_and_right_pads_completions():
    mb = collate([0, 1], prompt_ids=[[1, 2, 3], [4]], completion_ids=[[5], [6, 7, 8]], pad_id=0)
    assert mb.input_ids.tolist() == [[1, 2, 3, 5, 0, 0], [0, 0, 4, 6, 7, 8]]
    assert mb.attention_mask.tolist() == [[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]]
    assert mb.position_ids.tolist() == [[0, 1, 2, 3, 3, 3], [0, 0, 0, 1, 2, 3]]
    assert mb.completion.tolist() == [[5, 0, 0], [6, 7, 8]]
    assert mb.mask.tolist() == [[1, 0, 0], [1, 1, 1]]


def test_batched_logprobs_match_unpadded_forward(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    completions = [[20, 21], [22, 23, 24, 25], [26]]
    mb = collate([0, 1, 2], prompts, completions, pad_id=256)
    with torch.no_grad():
        logp, entropy = policy_logprobs(model, mb, temperature=0.7, with_entropy=True)
        for j, (p, c) in enumerate(zip(prompts, completions)):
            ids = torch.tensor([p + c])
            logits = model(ids).logits[0, len(p) - 1:-1].float() / 0.7                      # (len(c), V)
            expected = logits.log_softmax(-1).gather(-1, torch.tensor(c)[:, None]).squeeze(-1)
            torch.testing.assert_close(logp[j, :len(c)], expected, rtol=1e-4, atol=1e-5)
            probs = logits.softmax(-1)
            torch.testing.assert_close(entropy[j, :len(c)], -(probs * probs.log()).sum(-1), rtol=1e-4, atol=1e-5)
