"""The `word_budget` grader: 1.0 for a completion of at most `max_words` words, else 0.0.

A whole grader plugin: a Params model (extra="forbid", every field described), a per-sample function, and
one entry point in pyproject.toml (`[project.entry-points."rlvr.graders"] word_budget = "...:word_budget"`).
rlvr finds it by name once the package is installed:

    pip install -e examples/plugin
    rlvr graders                      # word_budget  rlvr-plugin-example 0.1.0  ...

    >>> from graders import Sample
    >>> word_budget(Sample("four words right here"), Params(max_words=4)).score
    1.0

Not covered: anything but counting words; this package exists to show the plugin mechanics.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from graders import Grade, Sample, grader


class Params(BaseModel):
    """Options of `word_budget`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_words: int = Field(100, gt=0, description="Most words a completion may have and still score 1.")


@grader("word_budget", params=Params, description="1 if the completion has at most max_words words")
def word_budget(sample: Sample, params: Params) -> Grade:
    if not isinstance(sample.completion, str):
        return Grade(0.0, error=f"completion_not_string:{type(sample.completion).__name__}")
    words = len(sample.completion.split())
    return Grade(float(words <= params.max_words), metrics={"words": float(words)})
