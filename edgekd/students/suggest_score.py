"""The training-free score of suggest-student: DisWOT-style similarity of a randomly initialised candidate to the
teacher on one batch (Dong et al., CVPR 2023), and `spearman` to check the ranking against trained accuracy.

Class-activation Gram matrices (feature semantics) and sample-relation Gram matrices of the last feature
maps; the candidate runs in float with weights, input and activations rounded to its bit widths
(`fake_quantize_for_scoring`) so bit widths count. The torch half of suggest-student, apart from the
candidate grid and budgets (edgekd.students.suggest_candidates).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.config import StudentConfig
from edgekd.students.cell_cnn import build_cell_cnn
from edgekd.students.suggest_candidates import Candidate, SuggestError

CAM_SIZE = 8


def class_activation_gram(features: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM maps (ReLU(sum_c mean_hw(grad)_c feature_c)) pooled to 8x8; their (N, N) Gram, unit Frobenius norm."""
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * features).sum(dim=1, keepdim=True))
    cam = F.adaptive_avg_pool2d(cam, min(CAM_SIZE, cam.shape[-1])).flatten(1)
    if cam.shape[1] != CAM_SIZE * CAM_SIZE:  # maps smaller than 8x8: upsample so every model compares alike
        side = math.isqrt(cam.shape[1])
        cam = F.interpolate(cam.view(-1, 1, side, side), size=CAM_SIZE, mode="nearest").flatten(1)
    gram = cam @ cam.T
    return gram / gram.norm().clamp_min(1e-12)


def relation_gram(features: torch.Tensor) -> torch.Tensor:
    """Sample-relation matrix: Gram of the flattened features, each row L2-normalised (SP-KD)."""
    f = features.flatten(1)
    return F.normalize(f @ f.T, dim=1)


def _po2_round(x: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    """Round to a `bits`-bit grid whose power-of-two scale covers max |x| (straight-through gradient)."""
    top = float(x.detach().abs().max())
    if top == 0.0:
        return x
    levels = 2 ** (bits - 1) if signed else 2**bits
    scale = 2.0 ** math.ceil(math.log2(top)) / levels
    lo = -levels if signed else 0
    q = torch.clamp(torch.round(x / scale), lo, levels - 1) * scale
    return x + (q - x).detach()


@torch.no_grad()
def fake_quantize_for_scoring(model: nn.Module, cfg: StudentConfig) -> list:
    """Round a float cell_cnn's weights and its inputs/activations to the candidate's bit widths (power-of-two
    scales from the data, like the brevitas quantizers after their statistics phase). A fast stand-in for the
    brevitas model (about 50x faster on CPU), good enough to let bit widths count in a similarity score.
    Returns the hook handles (remove them to undo the activation rounding)."""
    n_conv = len(cfg.channels)
    w_bits = [cfg.weight_bits] * (n_conv + 1) if isinstance(cfg.weight_bits, int) else list(cfg.weight_bits)
    a_bits = [cfg.act_bits] * n_conv if isinstance(cfg.act_bits, int) else list(cfg.act_bits)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer, b in zip(layers, w_bits):
        layer.weight.copy_(_po2_round(layer.weight, b, signed=True))
    handles = [model.register_forward_pre_hook(lambda m, args: (_po2_round(args[0], cfg.input_bits, True),))]
    for block, b in zip(model.blocks, a_bits):
        handles.append(block.register_forward_hook(lambda m, i, o, b=b: _po2_round(o, b, signed=False)))
    return handles


def _features_and_cam_grads(model: nn.Module, feature_module: nn.Module, x: torch.Tensor, y: torch.Tensor,
                            logits_fn=None) -> tuple[torch.Tensor, torch.Tensor]:
    store: dict[str, torch.Tensor] = {}
    handle = feature_module.register_forward_hook(lambda m, i, o: store.__setitem__("f", o))
    try:
        logits = model(x)
    finally:
        handle.remove()
    if logits_fn is not None:
        logits = logits_fn(logits)
    feat = store["f"]
    target = logits.gather(1, y.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(target, feat)
    return feat.detach(), grad.detach()


def diswot_distances(teacher_maps: tuple[torch.Tensor, torch.Tensor], student_maps: tuple[torch.Tensor, torch.Tensor]
                     ) -> tuple[float, float]:
    """(d_sem, d_rel) between teacher and student (features, grads) on the same batch."""
    tf, tg = teacher_maps
    sf, sg = student_maps
    n = tf.shape[0]
    d_sem = float((class_activation_gram(tf, tg) - class_activation_gram(sf, sg)).norm())
    d_rel = float((relation_gram(tf) - relation_gram(sf)).norm() / math.sqrt(n))
    return d_sem, d_rel


@dataclass
class TeacherProbe:
    """A torch teacher, the module whose output is its last feature map, and how to get task logits."""

    model: nn.Module
    feature_module: nn.Module
    input_size: int
    merge_groups: list[list[int]] | None = None
    trained: bool = False

    def maps(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        merge = None
        if self.merge_groups is not None:
            groups = self.merge_groups

            def merge(z: torch.Tensor) -> torch.Tensor:
                return torch.stack([torch.logsumexp(z[:, g], dim=1) for g in groups], dim=1)

        self.model.eval()
        return _features_and_cam_grads(self.model, self.feature_module, x, y, merge)


def teacher_feature_module(model: nn.Module) -> nn.Module:
    stages = getattr(model, "stages", None)
    if stages is None:
        raise SuggestError(
            f"teacher {type(model).__name__} has no `stages` module (its last feature map): suggest-student "
            "supports the built-in resnet teacher"
        )
    return stages


def score_candidates(
    candidates: list[Candidate],
    teacher: TeacherProbe,
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    inits: int = 2,
    seed: int = 0,
    progress=None,
) -> list[Candidate]:
    """Fill in score, d_semantic, d_relation of every candidate (in place); returns them best first."""
    from edgekd.data.transforms import to_model_input
    from edgekd.students.cell_cnn import CellCNN

    y = torch.as_tensor(labels, dtype=torch.int64)
    t_maps = teacher.maps(to_model_input(images, teacher.input_size), y)
    inputs: dict[int, torch.Tensor] = {}
    for cand in candidates:
        size = cand.student.input_size
        if size not in inputs:
            inputs[size] = to_model_input(images, size)
        sem, rel = [], []
        for i in range(inits):
            torch.manual_seed(seed + i)
            model = build_cell_cnn(cand.student, num_classes, quantized=False,
                                   in_channels=int(inputs[size].shape[1]))  # 1 grey, 3 colour
            assert isinstance(model, CellCNN)
            handles = fake_quantize_for_scoring(model, cand.student)
            try:
                s_maps = _features_and_cam_grads(model, model.blocks[-1], inputs[size], y)
            finally:
                for h in handles:
                    h.remove()
            d_sem, d_rel = diswot_distances(t_maps, s_maps)
            sem.append(d_sem)
            rel.append(d_rel)
        cand.d_semantic = round(float(np.mean(sem)), 6)
        cand.d_relation = round(float(np.mean(rel)), 6)
        cand.score = round(-(cand.d_semantic + cand.d_relation), 6)
        if progress is not None:
            progress()
    return sorted(candidates, key=lambda c: -c.score)


def spearman(a: Iterable[float], b: Iterable[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    a, b = np.asarray(list(a), float), np.asarray(list(b), float)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("spearman needs two sequences of the same length >= 2")

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for val in np.unique(v):
            tie = v == val
            r[tie] = r[tie].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0
