"""engine/rollout.py's weight-version check, without a model."""
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

