import numpy as np
import pytest

from edgekd.distill.stats import mcnemar_exact, paired_t


def test_paired_t_matches_hand_computation():
    # differences 1, 2, 3, 4: mean 2.5, sd sqrt(5/3) = 1.291, t = 2.5 / (1.291 / 2) = 3.873 with 3 df
    r = paired_t([11, 12, 13, 14], [10, 10, 10, 10])
    assert r["n"] == 4 and r["mean"] == pytest.approx(2.5) and r["sd"] == pytest.approx(np.sqrt(5 / 3))
    assert r["t"] == pytest.approx(3.8730, abs=1e-4)
    assert r["p"] == pytest.approx(0.03047, abs=1e-4)  # 2 * t.sf(3.873, 3)
    half = 3.182446 * np.sqrt(5 / 3) / 2  # t(0.975, 3) * se
    assert r["ci95"] == pytest.approx([2.5 - half, 2.5 + half], abs=1e-5)


def test_paired_t_constant_difference_and_one_pair():
    assert paired_t([2, 3], [1, 2])["p"] == 0.0 and paired_t([1, 2], [1, 2])["p"] == 1.0
    assert np.isnan(paired_t([1.0], [0.0])["p"])


def test_mcnemar_exact():
    a = np.array([1] * 9 + [0] * 1 + [1] * 50, bool)  # 9 images only A gets right, 1 only B, 50 both
    b = np.array([0] * 9 + [1] * 1 + [1] * 50, bool)
    r = mcnemar_exact(a, b)
    assert (r["a_only"], r["b_only"]) == (9, 1)
    assert r["p"] == pytest.approx(22 / 1024, abs=1e-12)  # 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024
    assert mcnemar_exact(a, a)["p"] == 1.0
    with pytest.raises(ValueError, match="different lengths"):
        mcnemar_exact(a, a[:5])
