"""pass@k (Chen et al. 2021, unbiased estimator) against hand-computed values."""
import pytest

from engine.evaluate import pass_at_k


@pytest.mark.parametrize("n, c, k, expected", [
    (10, 0, 1, 0.0),
    (10, 3, 1, 0.3),                   # 1 - C(7,1)/C(10,1) = 1 - 7/10
    (10, 3, 2, 1 - 21 / 45),           # C(7,2) = 21, C(10,2) = 45
    (5, 1, 5, 1.0),                    # n - c < k: some draw must be the correct one
    (4, 2, 2, 1 - 1 / 6),              # C(2,2) = 1, C(4,2) = 6
])
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_warmup_cosine_by_steps_and_by_time_budget():
    from engine.distributed import warmup_cosine
    assert warmup_cosine(0, 2, 10, 0.1) == 0.5                       # warm-up: (0 + 1) / 2
    assert warmup_cosine(2, 2, 10, 0.1) == pytest.approx(1.0)        # cosine starts at 1
    assert warmup_cosine(6, 2, 10, 0.1) == pytest.approx(0.55)       # halfway: 0.1 + 0.9 * 0.5
    assert warmup_cosine(10, 2, 10, 0.1) == pytest.approx(0.1)       # floor
    # a time budget half spent at step 3 of 100: progress is 0.5, not 0.01
    assert warmup_cosine(3, 2, 100, 0.1, time_fraction=0.5) == pytest.approx(0.55)
    assert warmup_cosine(3, 2, 100, 0.1, time_fraction=2.0) == pytest.approx(0.1)
