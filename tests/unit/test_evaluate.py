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
