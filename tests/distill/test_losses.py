import math

import numpy as np
import pytest
import torch

from edgekd.config import DistillConfig
from edgekd.distill.metrics import classification_metrics
from edgekd.registry import LOSSES


def test_kd_matches_hand_computation():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([0])
    cfg = DistillConfig(temperature=2.0, alpha=0.5)
    # By hand: CE = -log(e^1/(e^1+1)); p_t = softmax([0,1]), p_s = softmax([0.5,0]).
    ce = -math.log(math.e / (math.e + 1))
    pt = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    ps = np.exp([0.5, 0.0]) / np.exp([0.5, 0.0]).sum()
    kl = float((pt * np.log(pt / ps)).sum())
    expected = 0.5 * ce + 0.5 * 4.0 * kl
    assert float(LOSSES.get("kd")(s, y, t, cfg)) == pytest.approx(expected, rel=1e-6)


def test_kd_with_alpha_zero_is_cross_entropy():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 3), torch.randn(8, 3), torch.randint(0, 3, (8,))
    cfg = DistillConfig(alpha=0.0)
    assert float(LOSSES.get("kd")(s, y, t, cfg)) == pytest.approx(float(LOSSES.get("ce")(s, y, None, cfg)))


def test_kd_soft_term_vanishes_when_student_equals_teacher():
    t = torch.tensor([[0.3, -1.2, 2.0]])
    cfg = DistillConfig(alpha=1.0, temperature=3.0)
    assert float(LOSSES.get("kd")(t.clone(), torch.tensor([2]), t, cfg)) == pytest.approx(0.0, abs=1e-7)


def test_kd_gradient_check():
    torch.manual_seed(1)
    s = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (4,))
    cfg = DistillConfig(alpha=0.6, temperature=2.5)
    assert torch.autograd.gradcheck(lambda x: LOSSES.get("kd")(x, y, t, cfg), (s,))


def test_kd_needs_teacher():
    with pytest.raises(ValueError, match="teacher"):
        LOSSES.get("kd")(torch.zeros(1, 2), torch.tensor([0]), None, DistillConfig())


def test_unknown_loss_lists_the_known_ones():
    with pytest.raises(KeyError, match="registered: ccc, ccc_mse, ce, dts, function_matching, kd, mse, ofa, pld"):
        LOSSES.get("nope")


def test_classification_metrics():
    logits = np.array([[2, 1], [0, 3], [5, 1], [1, 0], [0, 1]], dtype=float)
    y = np.array([0, 1, 1, 0, 0])
    m = classification_metrics(y, logits, ["B", "T"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]
    assert m["per_class_recall"] == {"B": pytest.approx(2 / 3), "T": pytest.approx(0.5)}


def test_ccc_matches_hand_computation():
    from edgekd.distill.losses import concordance_cc
    from edgekd.distill.metrics import regression_metrics

    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([2.0, 2.0, 4.0, 5.0])
    # By hand: mean x 2.5, mean y 3.25; var x 1.25, var y 1.6875; cov 1.375.
    expected = 2 * 1.375 / (1.25 + 1.6875 + 0.75**2)
    got = concordance_cc(torch.tensor(x)[:, None], torch.tensor(y)[:, None])
    assert float(got[0]) == pytest.approx(expected, rel=1e-6)
    m = regression_metrics(y[:, None], x[:, None], ["a"])
    assert m["ccc"]["a"] == pytest.approx(expected, rel=1e-9) and m["ccc_mean"] == pytest.approx(expected, rel=1e-9)
    assert m["mse"] == pytest.approx(np.mean((x - y) ** 2))
    cfg = DistillConfig()
    assert float(LOSSES.get("ccc")(torch.tensor(x)[:, None], None, torch.tensor(y)[:, None], cfg)) == pytest.approx(
        1 - expected, rel=1e-6
    )


def test_ccc_and_mse_gradient_check():
    torch.manual_seed(2)
    s = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 3, dtype=torch.float64)
    cfg = DistillConfig(alpha=0.5)
    for name in ("ccc", "mse", "ccc_mse"):
        assert torch.autograd.gradcheck(lambda x: LOSSES.get(name)(x, None, t, cfg), (s,))
