"""rlvr engine: config, models, rollout, advantages, losses, training loop."""
