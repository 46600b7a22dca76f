"""Does the code reasoner learn? Held-out pass@1 before and after training, per seed, and the curves.

    python benchmarks/code_learning_curve.py                         # seeds 0 and 1, one after the other
    python benchmarks/code_learning_curve.py --seeds 0 1 --parallel  # both at once, threads split between them
    python benchmarks/code_learning_curve.py -- train.lr=3e-5        # extra overrides after `--`

benchmarks/learning_curve.py with another config: each seed runs `rlvr train configs/code-reasoner.yaml`
(SmolLM2-135M-Instruct writing small Python functions, tasks/code_synth.py, graded by hidden unit tests in the
bubblewrap sandbox, 20-minute budget), changing only `train.seed` and the run name. pass@1 is greedy on the
task's 128 held-out problems: functions no training prompt asks for, the same problems for every seed (the eval
split has its own seed). Results: a JSON summary (--out; `*_accuracy` is pass@1), a PNG of held-out pass@1
against training minutes for every seed next to it, and one table on stdout. Not covered: wall-clock noise from
other work on the machine (the load average is recorded; a busy machine gets fewer steps into the same 20
minutes), per-family breakdowns (see the run's samples.jsonl).
"""
from __future__ import annotations

import sys

from learning_curve import main

if __name__ == "__main__":
    sys.exit(main(config="configs/code-reasoner.yaml", out="benchmarks/results/code_learning_curve.json",
                  title="rlvr train configs/code-reasoner.yaml: SmolLM2-135M on code_synth, 2-core CPU",
                  ylabel="held-out pass@1, greedy (%)", description=__doc__))
