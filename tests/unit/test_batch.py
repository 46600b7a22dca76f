"""Packed groups: one prompt copy + G completions with a block mask give exactly the log-probs of G separate
unpadded forward passes; micro-batches respect their token budget."""
import pytest
import torch
from transformers import AutoModelForCausalLM

from engine import batch
from engine.batch import pack_groups, policy_logprobs, split_groups_by_tokens


def test_split_groups_respects_the_budget_and_keeps_every_group():
    prompt_len = [10, 3, 20, 4]
    completion_len = [5, 1, 2, 2, 9, 9, 1, 1]            # G = 2: rows (0,1) group 0, (2,3) group 1, ...
    batches = split_groups_by_tokens([0, 1, 2, 3], prompt_len, completion_len, group_size=2, budget=50)
    assert sorted(j for b in batches for j in b) == [0, 1, 2, 3]
    for b in batches:                                     # packed size: g x (longest prompt + longest completion sum)
        width = max(prompt_len[j] for j in b) + max(sum(completion_len[2 * j:2 * j + 2]) for j in b)
        assert len(b) * width <= 50 or len(b) == 1
    assert split_groups_by_tokens([0, 1, 2, 3], prompt_len, completion_len, 2, budget=50) == [[3, 1, 0], [2]]
    assert split_groups_by_tokens([0, 1], [5, 5], [5, 5, 5, 5], 2, budget=29) == [[0], [1]]
    assert split_groups_by_tokens([0, 1], [5, 5], [5, 5, 5, 5], 2, budget=30) == [[0, 1]]


def test_pack_layout():
    mb = pack_groups([0, 1], prompt_ids=[[1, 2, 3], [4]], completion_ids=[[5], [6, 7], [8, 9], [10]],
                     group_size=2, pad_id=0)
    # P = 3, S = 3 (the longest sum of a group's completion lengths): [prompt | c1 | c2], no padding between
    assert mb.input_ids.tolist() == [[1, 2, 3, 5, 6, 7], [0, 0, 4, 8, 9, 10]]
    assert mb.position_ids.tolist() == [[0, 1, 2, 3, 3, 4], [0, 0, 0, 1, 2, 1]]
    assert mb.rows == [0, 1, 2, 3]
    assert mb.completion.tolist() == [[5, 0], [6, 7], [8, 9], [10, 0]]
    assert mb.mask.tolist() == [[1, 0], [1, 1], [1, 1], [1, 0]]
    assert mb.keep.tolist() == [2, 3, 4]                  # positions P-1 .. P+S-2
    # kept rows (group b's row k at b*S + k) predicting tokens 5 | 6 7 | 8 9 | 10: the prompt's last token (k = 0)
    # predicts every first token, 6 (k = 2 in group 0) predicts 7, 8 (k = 1 in group 1) predicts 9
    assert mb.index.tolist() == [0, 0, 2, 3, 4, 3]
    visible = mb.attention_mask[0, 0] == 0               # group 0: query (row) sees key (column)
    assert visible[5].tolist() == [True, True, True, False, True, True]  # 7 (c2) sees the prompt, 6 and itself
    assert visible[3].tolist() == [True, True, True, True, False, False]  # 5 (c1) sees the prompt and itself


def test_uneven_groups_pad_only_at_the_end():
    mb = pack_groups([0, 1], prompt_ids=[[1, 2], [3, 4]], completion_ids=[[5, 6, 7], [8], [9], []],
                     group_size=2, pad_id=0)
    assert mb.input_ids.tolist() == [[1, 2, 5, 6, 7, 8], [3, 4, 9, 0, 0, 0]]
    assert mb.mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 0, 0], [0, 0, 0]]   # an empty completion has no tokens
    assert mb.index.tolist() == [0, 1, 2, 0, 4]
    visible = mb.attention_mask[1, 0] == 0
    assert visible[4].tolist() == [True, True, False, False, True, False]   # a padding query: never an empty row


@pytest.mark.parametrize("metric_rows", [256, 3], ids=["entropy-at-once", "entropy-in-slices"])
def test_packed_logprobs_match_separate_unpadded_forwards(tiny_model, monkeypatch, metric_rows):
    monkeypatch.setattr(batch, "METRIC_ROWS", metric_rows)   # 10 real tokens: one slice, or four
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    prompts = [[5, 6, 7, 8, 9], [10, 11]]
    completions = [[20, 21], [22, 23, 24, 25], [26], [27, 28, 29]]   # G = 2
    mb = pack_groups([0, 1], prompts, completions, group_size=2, pad_id=256)
    with torch.no_grad():
        logp, entropy = policy_logprobs(model, mb, temperature=0.7, with_entropy=True)
        for row, c in enumerate(completions):
            p = prompts[row // 2]
            logits = model(torch.tensor([p + c])).logits[0, len(p) - 1:-1].float() / 0.7   # (len(c), V)
            expected = logits.log_softmax(-1).gather(-1, torch.tensor(c)[:, None]).squeeze(-1)
            torch.testing.assert_close(logp[row, :len(c)], expected, rtol=1e-4, atol=1e-5)
            probs = logits.softmax(-1)
            torch.testing.assert_close(entropy[row, :len(c)], -(probs * probs.log()).sum(-1), rtol=1e-4, atol=1e-5)
            assert (logp[row, len(c):] == 0).all() and (entropy[row, len(c):] == 0).all()   # padding: zeros


def test_entropy_carries_gradients_only_as_a_loss_term(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    mb = pack_groups([0], [[5, 6, 7]], [[20, 21], [22]], group_size=2, pad_id=256)
    logp, metric = policy_logprobs(model, mb, temperature=1.0, with_entropy=True)
    assert logp.requires_grad and not metric.requires_grad
    _, term = policy_logprobs(model, mb, temperature=1.0, with_entropy=True, entropy_grad=True)
    assert term.requires_grad
    torch.testing.assert_close(term.detach(), metric)
