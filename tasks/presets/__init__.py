"""Standard data set formats as named tasks: a config says `name: gsm8k` plus a path, nothing to reshape.

Each preset is the `dataset` task (tasks/dataset.py: sources, splits, streaming, bad-row counting, templates)
with its own row mapping onto rlvr's references: `answer` for the math/number graders, `tests` (a code test
spec: assert / call / stdio, DESIGN.md) for the code grader.

- math.py: `gsm8k` (`#### 42` answers), `math` (MATH's boxed solutions; MATH-500, DeepScaleR, Big-Math `answer`)
- code.py: `humaneval` (`check(candidate)`), `mbpp` (`test_list` asserts)
- contests.py: `apps` (also TACO: `input_output`), `code_contests` (public/private/generated tests),
  `livecodebench` (public/private test cases, stdin or functional)

    tasks:
      - name: gsm8k
        params: {path: data/gsm8k/train.parquet, eval_path: data/gsm8k/test.parquet}
        rewards: [{grader: math}]
      - name: apps
        params: {path: codeparrot/apps, eval_split: test, max_cases: 20}   # a hub id, when the hub is reachable
        rewards: [{grader: code, params: {timeout_s: 10}}]
"""
