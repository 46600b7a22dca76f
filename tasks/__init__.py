"""Tasks: where prompts and reference answers come from.

    from tasks import TaskMixture, get_task_spec
    spec = get_task_spec("arithmetic")
    task = spec.build(spec.Params.model_validate({"max_digits": 2}), seed=0, name="arithmetic")
    batch = TaskMixture([task], weights=[1.0], seed=0).next_batch(8)

base.py: the Example / Task / TaskSpec contract. registry.py: lookup by name (built-ins and the `rlvr.tasks`
entry points). mixture.py: weighted draws over several tasks, with a resumable cursor. Built-in tasks (imported
only when looked up): arithmetic.py; dataset.py (`dataset`, alias `jsonl`: rows of files, folders or hub ids,
read by sources.py); presets/ (gsm8k, math, humaneval, mbpp, apps, code_contests, livecodebench).
contamination.py: the n-gram overlap check between training and held-out rows.
"""
from tasks.base import Example, Task, TaskSpec
from tasks.mixture import TaskMixture
from tasks.registry import UnknownTaskError, get_task_spec, task_names

__all__ = ["Example", "Task", "TaskMixture", "TaskSpec", "UnknownTaskError", "get_task_spec", "task_names"]
