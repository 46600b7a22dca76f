"""engine/rollout.py's weight-version check and engine/vllm_sampler.py's bucketing, without vLLM or a model."""
import pytest
import torch

from engine.rollout import Rollout, StaleWeightsError, check_weight_version


def rollout_at(version: int) -> Rollout:
    return Rollout([[1]], [[2]], [[-0.5]], ["x"], ["stop"], weight_version=version)


def test_current_and_allowed_lag_pass_stale_and_future_versions_are_refused():
    check_weight_version(rollout_at(3), 3, 0)
    check_weight_version(rollout_at(2), 3, 1)  # one step behind, allowed
    with pytest.raises(StaleWeightsError, match="weight version 2, but the policy is at version 3"):
        check_weight_version(rollout_at(2), 3, 0)
    with pytest.raises(StaleWeightsError):
        check_weight_version(rollout_at(4), 3, 0)  # newer than the policy: a sync with a wrong version


def test_weight_buckets_use_full_sizes_of_partitioned_parameters():
    from engine.vllm_sampler import weight_buckets

    plain = torch.nn.Parameter(torch.zeros(10))        # 40 bytes
    partitioned = torch.nn.Parameter(torch.zeros(0))   # ZeRO-3: numel() 0, full size in ds_numel
    partitioned.ds_numel = 25                           # 100 bytes
    big = torch.nn.Parameter(torch.zeros(50))          # 200 bytes: over the budget, alone
    params = [("a", plain), ("b", partitioned), ("c", plain), ("d", big), ("e", plain)]
    names = [[n for n, _ in b] for b in weight_buckets(params, bucket_bytes=150)]
    assert names == [["a", "b"], ["c"], ["d"], ["e"]]
