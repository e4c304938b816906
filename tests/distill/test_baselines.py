"""Every baseline arm trains on a tiny problem, pairs with the others, and refuses what it cannot do."""

import numpy as np
import pytest
import torch

from edgekd.config import DistillConfig, StudentConfig
from edgekd.distill.baselines import ARMS, ArmData, train_arm
from edgekd.report.assemble import teaching_warnings
from edgekd.tasks.image.teacher import warn_if_majority_rate
from edgekd.teachers.online import OnlineTeacher
from edgekd.teachers.runner import TorchTeacherRunner


class _Bright(torch.nn.Module):
    """A fixed teacher: class 1 when the mean pixel is above zero (what the toy labels are)."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], 1) * 4


def _data(n=48, size=8):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = torch.randn(n, 1, size, size, generator=g) * 0.5 + (y.float() * 2 - 1)[:, None, None, None]
    y_train = y.clone()
    y_train[8:] = -1  # 8 labelled, the rest unlabelled
    views = _Bright()(x).detach()
    images = np.clip((x[:, 0].numpy() * 0.1484 + 0.4819) * 255, 0, 255).astype(np.uint8)
    online = OnlineTeacher(TorchTeacherRunner(_Bright(), size, 2), images)
    return ArmData(x_train=x, y_train=y_train, teacher_logits=views, x_val=x[:6], y_val=y[:6], x_test=x[6:30],
                   y_test=y[6:30].numpy(), num_classes=2, x_pool=x[30:], y_pool=y[30:], online_teacher=online)


def test_every_arm_trains_and_is_paired():
    student = StudentConfig(input_size=8, channels=[4], kernel_sizes=[3])
    cfg = DistillConfig(epochs=2, batch_size=8, lr=1e-2, seed=3, augment=False, qat_epochs=0)
    data = _data()
    results = {arm: train_arm(arm, student, cfg, data, steps_per_epoch=3, fm_schedule=2, finetune_epochs=1)
               for arm in ARMS}
    for arm, r in results.items():
        assert r.arm == arm and r.test_pred.shape == (24,) and 0.0 <= r.test_accuracy <= 1.0
        assert 1 <= r.best_epoch % 1000 <= 4
    again = train_arm("kd", student, cfg, data, steps_per_epoch=3)
    np.testing.assert_array_equal(again.test_pred, results["kd"].test_pred)  # same seed, same batches, same answer
    with pytest.raises(ValueError, match="unknown baseline arm 'bogus'"):
        train_arm("bogus", student, cfg, data, steps_per_epoch=3)
    data.x_pool = None
    with pytest.raises(ValueError, match="pool_direct needs the teacher's labelled pool"):
        train_arm("pool_direct", student, cfg, data, steps_per_epoch=3)


def test_no_validation_is_refused():
    data = _data()
    data.x_val, data.y_val = data.x_val[:0], data.y_val[:0]
    student = StudentConfig(input_size=8, channels=[4], kernel_sizes=[3])
    with pytest.raises(ValueError, match="no validation images to choose the epoch on"):
        train_arm("labels_only", student, DistillConfig(epochs=1, augment=False), data, steps_per_epoch=1)


def test_teacher_at_majority_rate_and_student_below_labels_only_are_flagged(caplog):
    data = {"test": {"n": 100, "per_class": {"B": 33, "T": 67}}}
    w = teaching_warnings(data, teacher_acc=0.67, student_acc=0.80, labels_only_acc=0.85)
    assert len(w) == 2 and "majority-class rate (67.00%)" in w[0] and "cost 5.00 points" in w[1]
    assert teaching_warnings(data, teacher_acc=0.9, student_acc=0.86, labels_only_acc=0.85) == []
    assert warn_if_majority_rate(0.675, np.array([0] * 33 + [1] * 67))
    assert "THE TEACHER CANNOT TEACH" in caplog.text
    assert not warn_if_majority_rate(0.9, np.array([0] * 33 + [1] * 67))


def test_constant_regression_teacher_is_flagged(caplog):
    from edgekd.tasks.speech.model import warn_if_constant

    rng = np.random.default_rng(0)
    assert not warn_if_constant(rng.uniform(0, 1, (20, 3)))
    flat = rng.uniform(0, 1, (20, 3))
    flat[:, 2] = 0.5
    assert warn_if_constant(flat) and "THE TEACHER CANNOT TEACH" in caplog.text and "valence" in caplog.text
