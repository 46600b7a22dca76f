"""Graders: reward functions over batches of completions. See graders/base.py for the contract.

    from graders import Sample, Grade, grader          # grader: decorator for per-sample functions
    from graders.rewards import RewardTerm, RewardScorer
"""
from graders.base import Grade, Grader, Sample
from graders.function import grader

__all__ = ["Grade", "Grader", "Sample", "grader"]
