"""Contamination check: n-gram overlap between every task's training rows and every task's held-out rows.

    report = check_contamination(tasks, run_dir, ngram=13, drop=False)   # at the start of a run
    report["pairs"][0]
    # {"train_task": "gsm8k", "eval_task": "math", "train_rows": 7473, "eval_rows": 500, "train_overlapping": 3,
    #  "eval_overlapping": 2, "max_coverage": 1.0, "train_ids": [...], "eval_ids": [...],
    #  "examples": [{"train_id", "eval_id", "coverage", "ngram"}]}

As in GPT-3's paper (Brown et al. 2020, appendix C): text is lowercased and split into words (punctuation is
dropped), and a training example overlaps a held-out one when both contain the same run of `ngram` (13)
consecutive words. An example shorter than that is matched only by an identical word sequence. Every pair
(training task, held-out task) is reported, a task with itself included (near-duplicates across its own split),
and the report goes to `<run_dir>/contamination.json`. Each overlapping pair shown has a `coverage`: the share of
the held-out example's n-grams the training row contains (1.0: the whole held-out problem is in it; a low share
is usually a stock sentence both problems use, such as an input-format line); `max_coverage` is the pair's
largest. With `drop`, overlapping training rows are removed from their tasks before training starts
(`task.drop_train(ids)`).

An example's text is `meta["text"]` when its task sets it (the dataset tasks and presets: the problem before any
prompt template or system prompt, so a shared instruction is never an overlap), else its prompt's non-system
messages. Training rows are those of tasks with a finite training set (`task.train_rows()`); procedural tasks
(arithmetic) have none and are listed as not checked.
Not covered: telling a leaked problem from shared boilerplate (any shared n-gram counts, as in GPT-3: read
`coverage` before dropping); overlap with data outside the run (pretraining corpora, benchmarks not configured as
a task's held-out rows), paraphrases, overlap in references (answers, tests) rather than problems. Time is linear in the
words of all training rows (a streamed task is read once for it); memory holds the held-out n-grams only.
"""
from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tasks.base import Example

log = logging.getLogger(__name__)
WORD = re.compile(r"\w+")
MAX_EXAMPLES = 5  # overlapping (train, eval) pairs shown per task pair
REPORT = "contamination.json"


def words(text: str) -> list[str]:
    """Lowercased words, punctuation dropped: "What's 2+2?" -> ['what', 's', '2', '2']."""
    return WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> Iterable[tuple[str, ...]]:
    """Every run of n consecutive tokens; a shorter sequence is its own single n-gram."""
    if len(tokens) < n:
        return [tuple(tokens)] if tokens else []
    return (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def example_text(example: Example) -> str:
    text = example.meta.get("text") if isinstance(example.meta, dict) else None
    if isinstance(text, str):
        return text
    if isinstance(example.prompt, str):
        return example.prompt
    return "\n".join(m.get("content", "") for m in example.prompt if m.get("role") != "system")


def overlap_report(train: Mapping[str, Iterable[Example]], held_out: Mapping[str, Sequence[Example]],
                   ngram: int = 13) -> dict[str, Any]:
    """The overlap of every training task with every held-out set (a pure function of the examples).

    >>> text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    >>> a, b = Example("a/train/0", "a", text, {}), Example("b/eval/0", "b", "Zero, " + text + "!", {})
    >>> report = overlap_report({"a": [a]}, {"b": [b]})
    >>> report["pairs"][0]["train_ids"], report["pairs"][0]["eval_ids"]
    (['a/train/0'], ['b/eval/0'])
    """
    index: dict[tuple[str, ...], set[tuple[str, str]]] = defaultdict(set)  # n-gram -> (eval task, eval id)
    sizes: dict[tuple[str, str], int] = {}  # (eval task, eval id) -> its number of distinct n-grams
    for task, examples in held_out.items():
        for example in examples:
            grams = set(ngrams(words(example_text(example)), ngram))
            sizes[task, example.id] = len(grams)
            for gram in grams:
                index[gram].add((task, example.id))
    pairs = {(a, b): {"train_ids": set(), "eval_ids": set(), "examples": [], "max_coverage": 0.0}
             for a in train for b in held_out}
    train_rows = {}
    for task, examples in train.items():
        count = 0
        for example in examples:
            count += 1
            shared: dict[tuple[str, str], int] = defaultdict(int)
            first: dict[tuple[str, str], tuple[str, ...]] = {}
            for gram in set(ngrams(words(example_text(example)), ngram)):
                for ref in index.get(gram, ()):
                    shared[ref] += 1
                    first.setdefault(ref, gram)
            for ref, n_shared in shared.items():
                pair, coverage = pairs[task, ref[0]], round(n_shared / sizes[ref], 3)
                pair["train_ids"].add(example.id)
                pair["eval_ids"].add(ref[1])
                pair["max_coverage"] = max(pair["max_coverage"], coverage)
                if len(pair["examples"]) < MAX_EXAMPLES:
                    pair["examples"].append({"train_id": example.id, "eval_id": ref[1], "coverage": coverage,
                                             "ngram": " ".join(first[ref])})
        train_rows[task] = count
    return {
        "ngram": ngram,
        "method": "lowercased words (punctuation dropped); a training and a held-out example overlap when they "
                  f"share {ngram} consecutive words (GPT-3, Brown et al. 2020, appendix C)",
        "pairs": [{"train_task": a, "eval_task": b, "train_rows": train_rows[a], "eval_rows": len(held_out[b]),
                   "train_overlapping": len(p["train_ids"]), "eval_overlapping": len(p["eval_ids"]),
                   "max_coverage": p["max_coverage"],
                   "train_ids": sorted(p["train_ids"]), "eval_ids": sorted(p["eval_ids"]), "examples": p["examples"]}
                  for (a, b), p in pairs.items()],
    }


def check_contamination(tasks: Mapping[str, Any], run_dir: Path | str | None = None, ngram: int = 13,
                        drop: bool = False) -> dict[str, Any]:
    """Check every task pair, log a summary, write `<run_dir>/contamination.json` (when run_dir is given) and,
    with `drop`, remove overlapping training rows from their tasks. `ngram` 0 checks nothing and returns {}.
    Tasks without a finite training set (no `train_rows()`) are reported under `not_checked`."""
    if ngram <= 0:
        return {}
    finite = {name: task for name, task in tasks.items() if callable(getattr(task, "train_rows", None))}
    held_out = {name: task.eval_examples() for name, task in tasks.items()}
    held_out = {name: examples for name, examples in held_out.items() if examples}
    report = overlap_report({name: task.train_rows() for name, task in finite.items()}, held_out, ngram)
    report["not_checked"] = {name: "no finite training set (procedural task)" for name in tasks
                             if name not in finite}
    report["no_held_out_rows"] = sorted(set(tasks) - set(held_out))
    overlapping: dict[str, set[str]] = defaultdict(set)
    for pair in report["pairs"]:
        overlapping[pair["train_task"]].update(pair["train_ids"])
        if pair["train_overlapping"]:
            log.warning("contamination: %d of %d training rows of task %r share a %d-gram with the %d held-out rows "
                        "of task %r (%d of them hit)%s", pair["train_overlapping"], pair["train_rows"],
                        pair["train_task"], ngram, pair["eval_rows"], pair["eval_task"], pair["eval_overlapping"],
                        "" if drop else "; set eval.drop_contaminated: true to drop them")
    report["dropped"] = {}
    if drop:
        for name, ids in overlapping.items():
            if ids:
                report["dropped"][name] = finite[name].drop_train(ids)
                log.warning("contamination: dropped %d training rows of task %r", report["dropped"][name], name)
    if run_dir is not None:
        path = Path(run_dir)
        path.mkdir(parents=True, exist_ok=True)
        (path / REPORT).write_text(json.dumps(report, indent=1) + "\n")
    return report
