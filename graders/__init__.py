"""Graders: reward functions over batches of completions. See graders/base.py for the contract."""
from graders.base import Grade, Grader, Sample

__all__ = ["Grade", "Grader", "Sample"]
