"""DTS, PLD, OFA and the self-distillation weighting: hand-computed numbers, gradient checks, mechanism."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgekd.config import DistillConfig, StudentConfig
from edgekd.distill.methods import (
    DynamicTemperatureKD,
    FunctionMatchingKD,
    OneForAllKD,
    StatefulLoss,
    dts_target_temperature,
    make_loss,
    ofa_term,
    plackett_luce_kd,
)
from edgekd.registry import LOSSES


def _log_softmax(v):
    v = np.asarray(v, dtype=float)
    return v - np.log(np.exp(v).sum())


def test_every_method_is_registered():
    assert {"ce", "kd", "dts", "pld", "ofa", "ccc", "mse", "ccc_mse"} <= set(LOSSES.names())
    cfg = DistillConfig()
    assert isinstance(make_loss("dts", cfg), DynamicTemperatureKD)
    assert make_loss("dts", cfg) is not make_loss("dts", cfg)  # fresh state per training run
    assert make_loss("pld", cfg) is plackett_luce_kd
    assert isinstance(make_loss("ofa", cfg), StatefulLoss)


# --- self-distillation weighting xi (kd with alpha > 1) -----------------------------------------------------


def test_kd_with_xi_above_one_matches_hand_computation():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([0])
    xi = 1.5
    cfg = DistillConfig(temperature=1.0, alpha=xi)
    ce = -math.log(math.e / (math.e + 1))  # CE(s, y) = 0.31326
    pt = np.exp([0.0, 2.0]) / np.exp([0.0, 2.0]).sum()
    ls = _log_softmax([1.0, 0.0])
    soft_ce = float(-(pt * ls).sum())  # CE(softmax(t), s)
    entropy = float(-(pt * np.log(pt)).sum())
    # xi CE(teacher, s) + (1 - xi) CE(y, s), minus the constant xi H(teacher) that KL drops
    expected = xi * soft_ce + (1 - xi) * ce - xi * entropy
    got = float(LOSSES.get("kd")(s, y, t, cfg))
    assert got == pytest.approx(expected, rel=1e-6)
    assert got == pytest.approx(1.5 * 0.828716 - 0.5 * 0.313262, abs=1e-4)  # KL = 0.828716 by hand


def test_alpha_accepts_xi_above_one_but_not_absurd_values():
    assert DistillConfig(alpha=2.5).alpha == 2.5
    with pytest.raises(ValueError, match="alpha"):
        DistillConfig(alpha=50.0)


def test_teacher_label_smoothing_reaches_the_teacher_loss(monkeypatch):
    """TeacherConfig.label_smoothing is passed to the teacher's cross-entropy."""
    from edgekd.config import TeacherConfig
    from edgekd.teachers import train as teacher_train

    seen = []
    real = F.cross_entropy

    def spy(*args, **kwargs):
        seen.append(kwargs.get("label_smoothing"))
        return real(*args, **kwargs)

    monkeypatch.setattr(teacher_train.F, "cross_entropy", spy)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16, 2))
    x = np.random.default_rng(0).integers(0, 255, (8, 16, 16), dtype=np.uint8)
    y = np.array([0, 1] * 4)
    cfg = TeacherConfig(epochs=1, batch_size=4, input_size=16, label_smoothing=0.2)
    teacher_train.train_teacher(model, x, y, None, None, cfg, seed=0, show_progress=False)
    assert seen == [0.2, 0.2]


# --- DTS --------------------------------------------------------------------------------------------------


def test_dts_target_temperature_by_hand():
    # p = 0: c = 1. Student much worse (d = 0.2 - 1.7 = -1.5): s = -1.5 / -0.5 = 3 > 2 -> 1.35; T* = 4 * 1.35
    # = 5.4, clamped to Tmax = 4.
    assert dts_target_temperature(0.0, 0.2, 1.7, 4.0, 2.0, 4.0) == pytest.approx(4.0)
    # p = 0.5: c = 0.5; d = 0.1 - 4.1 = -4: s = 4/3 (in (1, 2], kept); T* = 4 * 0.5 * 4/3 = 2.6667
    assert dts_target_temperature(0.5, 0.1, 4.1, 4.0, 2.0, 4.0) == pytest.approx(8.0 / 3.0)
    # p = 0.5, small gap (d = -0.5): s = -0.5 / 0.5 = -1 <= 1 -> T* = T0 c = 2.0
    assert dts_target_temperature(0.5, 0.3, 0.8, 4.0, 2.0, 4.0) == pytest.approx(2.0)
    # p = 0.9: c = (1 + cos(0.9 pi)) / 2 = 0.02447; T* = 0.0979 -> clamped to Tmin = 2
    assert dts_target_temperature(0.9, 0.3, 0.3, 4.0, 2.0, 4.0) == pytest.approx(2.0)
    # unclamped: Tmin = 0.1: T* = 4 * 0.024472 = 0.097887
    assert dts_target_temperature(0.9, 0.3, 0.3, 4.0, 0.05, 4.0) == pytest.approx(0.0978870, rel=1e-5)
    # d = -1 exactly: s is infinite -> 1.35; p = 2/3: c = 0.25 -> T* = 1.35
    assert dts_target_temperature(2 / 3, 0.5, 1.5, 4.0, 0.1, 4.0) == pytest.approx(1.35)


def test_dts_smooths_every_iteration_and_follows_the_epoch():
    cfg = DistillConfig()  # paper defaults: T0 4, Tmin 2, Tmax 4, m 0.9, weights 0.1 / 0.9
    loss = DynamicTemperatureKD(cfg)
    assert loss.temperature == 4.0
    loss.begin_epoch(1, 2)  # p = 0.5, c = 0.5
    assert loss.step_temperature(0.3, 0.8) == pytest.approx(0.9 * 4.0 + 0.1 * 2.0)  # 3.8
    assert loss.step_temperature(0.3, 0.8) == pytest.approx(0.9 * 3.8 + 0.1 * 2.0)  # 3.62
    assert loss.state() == {"temperature": pytest.approx(3.62), "progress": 0.5}


def test_dts_loss_matches_hand_computation():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([1])
    loss = DynamicTemperatureKD(DistillConfig())
    loss.begin_epoch(0, 4)  # p = 0, c = 1
    # CE_t = -log softmax(t)[1] = 0.126928; CE_s = -log softmax(s)[1] = 1.313262; d = -1.186334
    # s = d / (d + 1) = 6.3668 > 2 -> 1.35; T* = min(5.4, 4) = 4; T = 0.9 * 4 + 0.1 * 4 = 4
    pt = np.exp(_log_softmax([0.0, 0.5]))
    kl = float((pt * (np.log(pt) - _log_softmax([0.25, 0.0]))).sum())
    expected = 0.1 * 1.3132617 + 0.9 * 16.0 * kl
    assert float(loss(s, y, t, loss.cfg)) == pytest.approx(expected, rel=1e-6)
    assert loss.temperature == pytest.approx(4.0)


def test_dts_gradient_check():
    torch.manual_seed(3)
    s = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randn(5, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (5,))
    loss = DynamicTemperatureKD(DistillConfig())
    assert torch.autograd.gradcheck(lambda x: loss.loss_at(x, y, t, 2.7), (s,))


# --- PLD --------------------------------------------------------------------------------------------------


def test_pld_matches_hand_computation():
    s = torch.tensor([[1.0, 2.0, 0.0]])
    t = torch.tensor([[0.0, 3.0, 1.0]])
    y = torch.tensor([2])
    # pi* = [2 (label), 1 (teacher 3.0), 0 (teacher 0.0)]; s along pi* = [0, 2, 1]
    a = np.exp(t.numpy()[0]) / np.exp(t.numpy()[0]).sum()  # tau = 1
    w = [a[2], a[1], a[0]]
    terms = [np.log(np.exp(0) + np.exp(2) + np.exp(1)) - 0.0, np.log(np.exp(2) + np.exp(1)) - 2.0, 0.0]
    expected = float(np.dot(w, terms))
    assert float(plackett_luce_kd(s, y, t, DistillConfig())) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.114195 * 2.407606 + 0.843795 * 0.313262, rel=1e-5)


def test_pld_temperature_and_batch_mean():
    s = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.5, 0.5]])
    t = torch.tensor([[0.0, 3.0, 1.0], [1.0, 0.0, 0.0]])
    y = torch.tensor([2, 0])
    cfg = DistillConfig(pld={"tau": 2.0})
    a = np.exp(t.numpy()[0] / 2) / np.exp(t.numpy()[0] / 2).sum()
    first = a[2] * (np.log(np.exp(0) + np.exp(2) + np.exp(1))) + a[1] * (np.log(np.exp(2) + np.exp(1)) - 2.0)
    # second row: equal student logits -> rank 1 term log 3, rank 2 term log 2, last 0; pi* = [0, 1, 2]
    b = np.exp(t.numpy()[1] / 2) / np.exp(t.numpy()[1] / 2).sum()
    second = b[0] * np.log(3) + b[1] * np.log(2)
    assert float(plackett_luce_kd(s, y, t, cfg)) == pytest.approx((first + second) / 2, rel=1e-6)


def test_pld_prefers_the_teacher_ranking_with_label_first():
    t = torch.tensor([[0.0, 3.0, 1.0]])
    y = torch.tensor([2])
    good = torch.tensor([[-5.0, 2.0, 6.0]])  # label, then the teacher's order
    bad = torch.tensor([[6.0, 2.0, -5.0]])
    cfg = DistillConfig()
    assert float(plackett_luce_kd(good, y, t, cfg)) < 0.05 < float(plackett_luce_kd(bad, y, t, cfg))


def test_pld_gradient_check():
    torch.manual_seed(4)
    s = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 5, dtype=torch.float64)
    y = torch.randint(0, 5, (6,))
    cfg = DistillConfig(pld={"tau": 1.5})
    assert torch.autograd.gradcheck(lambda x: plackett_luce_kd(x, y, t, cfg), (s,))


# --- OFA --------------------------------------------------------------------------------------------------


def test_ofa_term_matches_hand_computation():
    s = torch.tensor([[1.0, 0.0, -1.0]])
    t = torch.tensor([[2.0, 0.0, 0.0]])
    y = torch.tensor([1])
    pt = np.exp([2.0, 0, 0]) / np.exp([2.0, 0, 0]).sum()  # [0.787, 0.107, 0.107]
    ls = _log_softmax([1.0, 0.0, -1.0])
    # eps = 2: target weight (1 + p_t)^2 - 1, others p_t^2
    w = np.array([pt[0] ** 2, (1 + pt[1]) ** 2 - 1, pt[2] ** 2])
    assert float(ofa_term(s, t, y, eps=2.0)) == pytest.approx(float(-(w * ls).sum()), rel=1e-6)
    # eps = 1 is the soft-label cross-entropy
    assert float(ofa_term(s, t, y, eps=1.0)) == pytest.approx(float(-(pt * ls).sum()), rel=1e-6)


def test_ofa_without_heads_by_hand():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([0])
    cfg = DistillConfig(ofa={"eps": 1.0, "weight": 0.5, "ce_weight": 2.0})
    pt = np.exp([0.0, 2.0]) / np.exp([0.0, 2.0]).sum()
    ls = _log_softmax([1.0, 0.0])
    expected = 2.0 * -ls[0] + 0.5 * float(-(pt * ls).sum())
    assert float(OneForAllKD(cfg)(s, y, t, cfg)) == pytest.approx(expected, rel=1e-6)


def test_ofa_gradient_check():
    torch.manual_seed(5)
    s = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (4,))
    assert torch.autograd.gradcheck(lambda x: ofa_term(x, t, y, eps=1.5, temperature=2.0), (s,))


def test_ofa_heads_train_but_never_join_the_student():
    from edgekd.distill.trainer import train_student
    from edgekd.students.cell_cnn import build_cell_cnn

    scfg = StudentConfig(input_size=16, channels=[4, 4], kernel_sizes=[3, 3])
    torch.manual_seed(0)
    x = torch.randn(32, 1, 16, 16)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    teacher = torch.stack([-x.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3))], dim=1) * 4
    cfg = DistillConfig(loss="ofa", batch_size=16, augment=False, epochs=2)
    twin = build_cell_cnn(scfg, 2, quantized=True)
    ref = train_student(twin, x, y, teacher, x[:8], y[:8], cfg, "kd", "t", epochs=1, lr=1e-2)
    model = build_cell_cnn(scfg, 2, quantized=True)
    loss = OneForAllKD(cfg)
    params = loss.attach(model, x[:2])
    assert len(loss.heads) == 1 and len(params) == 4  # one head (stage 0): conv w, b, dense w, b
    before = [p.detach().clone() for p in params]
    out = model.train()(x[:16])
    value = loss(out, y[:16], teacher[:16], cfg)
    value.backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in params)
    loss.detach()
    assert all(not m._forward_hooks for m in model.modules())
    # through the trainer: the student keeps exactly its own state-dict keys and no hooks
    result = train_student(model, x, y, teacher, x[:8], y[:8], cfg, "ofa", "t", epochs=2, lr=1e-2)
    assert set(result.state_dict) == set(ref.state_dict)  # same keys as the same student trained with kd
    assert not any("head" in k for k in result.state_dict)
    assert all(not m._forward_hooks for m in model.modules())
    assert len(result.history) == 2
    assert all(torch.equal(a, b) for a, b in zip(before, [p.detach() for p in params]))  # heads are per run


def test_dts_history_logs_the_temperature():
    from edgekd.distill.trainer import train_student

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    x = torch.randn(40, 1, 4, 4)
    y = (x.sum(dim=(1, 2, 3)) > 0).long()
    teacher = torch.zeros(40, 2)
    cfg = DistillConfig(loss="dts", batch_size=20, augment=False)
    result = train_student(model, x, y, teacher, x[:8], y[:8], cfg, "dts", "t", epochs=3, lr=1e-2)
    temps = [h["temperature"] for h in result.history]
    assert [h["progress"] for h in result.history] == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert 2.0 <= min(temps) and max(temps) <= 4.0 and temps[-1] < temps[0]


def test_ofa_refuses_a_student_without_stages():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    with pytest.raises(TypeError, match="blocks"):
        OneForAllKD(DistillConfig()).attach(model, torch.zeros(2, 1, 4, 4))


@pytest.mark.parametrize("name", ["dts", "pld", "ofa", "function_matching"])
def test_teacher_methods_need_a_teacher(name):
    loss = make_loss(name, DistillConfig())
    with pytest.raises(ValueError, match=f"'{name}' needs teacher"):
        loss(torch.zeros(1, 2), torch.tensor([0]), None, DistillConfig())


# --- function matching (Beyer et al. 2022) -------------------------------------------------------------------


def test_function_matching_is_registered_and_runs_the_teacher_online():
    cfg = DistillConfig()
    loss = make_loss("function_matching", cfg)
    assert isinstance(loss, FunctionMatchingKD) and loss.online_teacher
    assert make_loss("function_matching", cfg) is not loss  # fresh mixing state per run
    assert not getattr(make_loss("kd", cfg), "online_teacher", False)
    assert cfg.fm.temperature == 1.0 and cfg.fm.label_weight == 0.0 and cfg.fm.mixup == 1.0  # the paper's


def test_function_matching_loss_by_hand():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    y = torch.tensor([0, 1])
    cfg = DistillConfig(fm={"temperature": 2.0})
    loss = FunctionMatchingKD(cfg)
    kl = float(F.kl_div(F.log_softmax(s / 2, 1), F.log_softmax(t / 2, 1), reduction="batchmean", log_target=True))
    assert float(loss(s, y, t, cfg)) == pytest.approx(4.0 * kl)  # pure KL at T, times T^2; labels unused
    w = 0.25
    cfg = DistillConfig(fm={"label_weight": w})
    loss = FunctionMatchingKD(cfg)
    loss.lam, loss.perm = 0.7, torch.tensor([1, 0])
    kl1 = float(F.kl_div(F.log_softmax(s, 1), F.log_softmax(t, 1), reduction="batchmean", log_target=True))
    ce = 0.7 * float(F.cross_entropy(s, y)) + 0.3 * float(F.cross_entropy(s, y[[1, 0]]))  # mixup CE
    assert float(loss(s, y, t, cfg)) == pytest.approx((1 - w) * kl1 + w * ce)


def test_function_matching_mixes_both_inputs_alike():
    cfg = DistillConfig()
    loss = FunctionMatchingKD(cfg)
    xs, xt = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 8, 8)
    ms, mt = loss.mix(xs, xt, torch.Generator().manual_seed(3))
    lam, perm = loss.lam, loss.perm
    assert 0.0 <= lam <= 1.0 and sorted(perm.tolist()) == list(range(6))
    assert torch.allclose(ms, lam * xs + (1 - lam) * xs[perm]) and torch.allclose(mt, lam * xt + (1 - lam) * xt[perm])
    loss.mix(xs, xt, torch.Generator().manual_seed(3))
    assert loss.lam == lam and torch.equal(loss.perm, perm)  # seeded: runs repeat
    gen, lams = torch.Generator().manual_seed(0), []
    for _ in range(200):
        loss.mix(xs, xt, gen)
        lams.append(loss.lam)
    assert 0.4 < float(np.mean(lams)) < 0.6 and min(lams) < 0.1 and max(lams) > 0.9  # Beta(1, 1) = uniform
    off = FunctionMatchingKD(DistillConfig(fm={"mixup": 0.0}))
    same = off.mix(xs, xt, torch.Generator().manual_seed(0))
    assert same[0] is xs and same[1] is xt and off.perm is None


class _RecordingRunner:
    """A teacher runner that answers with a fixed linear function and records what it was shown."""

    input_size = 8

    def __init__(self):
        self.seen: list[torch.Tensor] = []

    def _run(self, x):
        self.seen.append(x.clone())
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], dim=1).numpy() * 4


def test_function_matching_trainer_shows_teacher_the_students_view():
    """Through the trainer: every batch the teacher runs online on exactly the (viewed, mixed) images the student
    trains on, not on cached annotations; without an online teacher the loss is refused."""
    from edgekd.data.transforms import to_model_input
    from edgekd.distill.trainer import train_student
    from edgekd.teachers.online import OnlineTeacher

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 8, 8), dtype=np.uint8)
    x = to_model_input(images, 8)  # student and teacher at one resolution: their inputs must be equal
    y = torch.tensor([0, 1] * 12)
    cached = torch.zeros(8, 24, 2)  # per-view cached logits: function matching must not use them as targets
    runner = _RecordingRunner()
    online = OnlineTeacher(runner, images)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    shown: list[torch.Tensor] = []
    model.register_forward_hook(lambda m, inp, out: shown.append(inp[0].clone()) if m.training else None)
    cfg = DistillConfig(loss="function_matching", batch_size=8, augment=True)
    with pytest.raises(ValueError, match="online_teacher"):
        train_student(model, x, y, cached, x[:4], y[:4], cfg, "function_matching", "t", epochs=1, lr=1e-2)
    result = train_student(model, x, y, cached, x[:4], y[:4], cfg, "function_matching", "t", epochs=2, lr=1e-2,
                           online_teacher=online)
    assert online.calls == len(runner.seen) == len(shown) == 6  # 3 batches x 2 epochs
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(runner.seen, shown))
    assert any(not torch.allclose(a, x[: len(a)]) for a in shown)  # mixed views, not the plain images
    assert len(result.history) == 2 and "last_lambda" in result.history[0]
