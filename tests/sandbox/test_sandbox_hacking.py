"""The reward-hacking catalogue (sandbox/hacks.py): every attack scores 0 in every test style, on each backend,
while honest code passes exactly the cases it can."""
from __future__ import annotations

import pytest

from graders import Sample
from graders.code import grader
from sandbox.hacks import HONEST, attack_programs, new_secret, specs

from sandbox_backends import backend_params, skip_reason

SPECS = specs(new_secret())
PROGRAMS = attack_programs()


def params_for(backend: str, **extra):
    reason = skip_reason(backend)
    if reason:
        pytest.skip(reason)
    return grader.Params(backend=backend, timeout_s=3.0, **extra)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("attack", list(PROGRAMS))
def test_attack_scores_zero(backend, attack):
    grades = grader.grade([Sample(PROGRAMS[attack], {"tests": spec}) for spec in SPECS.values()],
                          params_for(backend))
    for style, grade in zip(SPECS, grades):
        assert grade.score == 0.0 and grade.correct is False, f"{attack} passed the {style} tests: {grade}"


@pytest.mark.parametrize("backend", backend_params())
def test_honest_code_gets_exactly_its_partial_credit(backend):
    """Control: the tests are sound (half of them passable by honest code) and partial credit counts them."""
    grades = grader.grade([Sample(HONEST, {"tests": spec}) for spec in SPECS.values()],
                          params_for(backend, partial_credit=True))
    assert [g.score for g in grades] == [0.0, 0.5, 0.5, 0.5]  # HumanEval's check() is a single case
