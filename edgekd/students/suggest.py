"""Training-free choice of the student: rank cell_cnn variants by DisWOT-style teacher similarity.

Candidates are cell_cnn variants (conv widths, depth, one bit width for weights and activations) within a
parameter and/or latency budget. Each is scored WITHOUT training by how similar the randomly initialised
candidate is to the teacher on one batch of the task's data (Dong et al., "DisWOT: Student Architecture
Search for Distillation WithOut Training", CVPR 2023):

- feature semantics: Grad-CAM-like class-activation maps of the last conv feature map for each image's
  label (weights = spatial mean of d logit_y / d feature), pooled to 8x8; the batch's map Gram matrix,
  normalised to unit Frobenius norm; distance d_sem = ||G_T - G_S||_F (0 to 2).
- sample relations: Gram matrix of the flattened last feature maps over the batch, each row L2-normalised
  (as in similarity-preserving KD); d_rel = ||A_T - A_S||_F / sqrt(N) (0 to 2).

score = -(d_sem + d_rel), averaged over `inits` random initialisations of the candidate; higher is more
similar. The teacher is the trained teacher of a build folder when given, else randomly initialised (as
DisWOT does). The student is scored in float with weights, input and activations rounded to its bit widths
(`fake_quantize_for_scoring`, a fast stand-in for its brevitas quantizers), so bit widths count.

Latency is the analytical estimate of edgekd.report.latency from LayerSpecs built here from the student
config: the same layer list hls4ml 1.3.0 builds from the exported QONNX (Input, input quantizer,
per block Conv2D -> Pooling2D -> ReLU, Flatten, Dense), without exporting or converting each candidate
(1-2 s per candidate with hls4ml); tests check it against the hls4ml ModelGraph. Resource figures are
rougher than the cycle counts (accumulator widths are approximated).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.config import HLSConfig, StudentConfig
from edgekd.report.latency import LayerSpec, estimate
from edgekd.students.cell_cnn import _feature_shapes, build_cell_cnn, count_params, model_input_shape

log = logging.getLogger(__name__)

__all__ = [
    "Candidate",
    "SuggestError",
    "candidate_configs",
    "cell_cnn_layer_specs",
    "class_activation_gram",
    "diswot_distances",
    "relation_gram",
    "score_candidates",
    "spearman",
]

DEFAULT_WIDTHS = (4, 8, 16, 32)
DEFAULT_DEPTHS = (1, 2, 3)
DEFAULT_BITS = (4, 6, 8)
CAM_SIZE = 8


class SuggestError(ValueError):
    """suggest-student cannot run on this config or build folder; the message says what to change."""


@dataclass
class Candidate:
    student: StudentConfig
    params: int
    latency: dict
    score: float | None = None
    d_semantic: float | None = None
    d_relation: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        bits = self.student.weight_bits
        return f"conv {'-'.join(map(str, self.student.channels))} @{bits}b"

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "channels": list(self.student.channels),
            "kernel_sizes": list(self.student.kernel_sizes),
            "weight_bits": self.student.weight_bits,
            "act_bits": self.student.act_bits,
            "params": self.params,
            "latency_us": self.latency["us"],
            "latency_cycles": self.latency["cycles"],
            "ii_cycles": self.latency["ii_cycles"],
            "lut_estimate": self.latency["resources"]["lut"],
            "dsp_estimate": self.latency["resources"]["dsp"],
            "score": self.score,
            "d_semantic": self.d_semantic,
            "d_relation": self.d_relation,
            "student_config": self.student.model_dump(mode="json"),
        }


# --- candidates ---------------------------------------------------------------------------------------------


def candidate_configs(
    base: StudentConfig,
    widths: Iterable[int] = DEFAULT_WIDTHS,
    depths: Iterable[int] = DEFAULT_DEPTHS,
    bits: Iterable[int] = DEFAULT_BITS,
) -> list[StudentConfig]:
    """cell_cnn variants of `base`: non-decreasing conv widths from `widths` for each depth, kernel 3 (or the
    base's first kernel size), one bit width for weights and activations; input, pool and the other
    quantizers as in `base`. Variants whose feature maps shrink to nothing are left out."""
    if base.name != "cell_cnn":
        raise SuggestError(f"student.name is '{base.name}': suggest-student only knows cell_cnn variants")
    kernel = base.kernel_sizes[0]
    out = []
    for depth in depths:
        for channels in itertools.combinations_with_replacement(sorted(set(widths)), depth):
            for b in bits:
                data = base.model_dump()
                data.update(channels=list(channels), kernel_sizes=[kernel] * depth, weight_bits=b, act_bits=b)
                cfg = StudentConfig.model_validate(data)
                try:
                    _feature_shapes(cfg)
                except ValueError:
                    continue
                out.append(cfg)
    return out


def _accumulator_bits(in_bits: int, w_bits: int, n_in: int, bias_bits: int) -> int:
    # hls4ml's inferred accumulator: products plus log2 of the fan-in, at least as wide as the bias (approximate)
    return max(in_bits + w_bits + math.ceil(math.log2(max(2, n_in))), bias_bits + 8)


def cell_cnn_layer_specs(cfg: StudentConfig, num_classes: int, hls: HLSConfig) -> list[LayerSpec]:
    """The LayerSpecs hls4ml 1.3.0 builds for this cell_cnn (checked against the ModelGraph in the tests)."""
    from edgekd.hls.convert import model_defaults

    rf, strategy = model_defaults(hls)  # 'auto': the fastest setting; make_candidates then fits it to the board
    kw = {"reuse_factor": rf, "strategy": strategy.lower()}
    c0, s, _ = model_input_shape(cfg)  # (1, S, S), or (k^2, S/k, S/k) with input_block k
    n_conv = len(cfg.channels)
    w_bits = [cfg.weight_bits] * (n_conv + 1) if isinstance(cfg.weight_bits, int) else list(cfg.weight_bits)
    a_bits = [cfg.act_bits] * n_conv if isinstance(cfg.act_bits, int) else list(cfg.act_bits)
    ib = cfg.input_bits
    specs = [
        # channels-last input (edgekd.export.qonnx): no input Transpose
        LayerSpec("global_in", "Input", (s, s, c0), (s, s, c0), input_bits=ib, result_bits=ib, **kw),
        LayerSpec("input_quant", "Activation", (s, s, c0), (s, s, c0), activation="linear", input_bits=ib,
                  result_bits=ib, **kw),
    ]
    h, c, bits = s, c0, ib
    for i, ((out_c, k), (_, ph, _)) in enumerate(zip(zip(cfg.channels, cfg.kernel_sizes), _feature_shapes(cfg))):
        oh = h - k + 1
        acc = _accumulator_bits(bits, w_bits[i], k * k * c, cfg.bias_bits)
        specs.append(LayerSpec(f"Conv2D_{i}", "Conv2D", (h, h, c), (oh, oh, out_c), filt_height=k, filt_width=k,
                               weight_bits=w_bits[i], input_bits=bits, result_bits=acc, **kw))
        if cfg.pool > 1:
            specs.append(LayerSpec(f"MaxPool_{i}", "Pooling2D", (oh, oh, out_c), (ph, ph, out_c),
                                   filt_height=cfg.pool, filt_width=cfg.pool, stride_height=cfg.pool,
                                   stride_width=cfg.pool, pool_height=cfg.pool, pool_width=cfg.pool,
                                   input_bits=acc, result_bits=acc, **kw))
        specs.append(LayerSpec(f"Relu_{i}", "Activation", (ph, ph, out_c), (ph, ph, out_c), activation="ReLU",
                               input_bits=acc, result_bits=a_bits[i], **kw))
        h, c, bits = ph, out_c, a_bits[i]
    flat = h * h * c
    specs.append(LayerSpec("Flatten_0", "Reshape", (h, h, c), (flat,), input_bits=bits, result_bits=bits, **kw))
    specs.append(LayerSpec("Dense_0", "Dense", (flat,), (num_classes,), weight_bits=w_bits[-1], input_bits=bits,
                           result_bits=cfg.output_bits, **kw))
    return specs


# --- DisWOT similarity --------------------------------------------------------------------------------------


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
            model = build_cell_cnn(cand.student, num_classes, quantized=False)
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


def make_candidates(base: StudentConfig, num_classes: int, hls: HLSConfig, budget_params: int | None,
                    budget_latency_us: float | None, **grid) -> list[Candidate]:
    """Enumerate variants and keep those within the budgets (params from the built model, latency estimated)
    that fit the board (hls.max_utilization, unless hls.on_overflow is warn)."""
    from edgekd.hls.fit import choose_settings
    from edgekd.hw import load_board

    board = load_board(hls.board)
    out = []
    for cfg in candidate_configs(base, **grid):
        params = count_params(build_cell_cnn(cfg, num_classes, quantized=False))
        if budget_params is not None and params > budget_params:
            continue
        specs = cell_cnn_layer_specs(cfg, num_classes, hls)
        # per-layer reuse factors, as the hls step will choose them (a pixel stream: P pixels per clock, k x k blocks)
        arrival = {"pixels_per_clock": board.pixels_per_clock, "input_block": cfg.input_block} \
            if board.interface == "pixel_stream" and hls.io_type == "io_stream" else {}
        fit = choose_settings(specs, hls, board, arrival)
        if not fit.fits and hls.on_overflow == "fail":
            continue
        latency = {**fit.estimate, "fit": fit.to_json()}
        if budget_latency_us is not None and latency["us"] > budget_latency_us:
            continue
        out.append(Candidate(cfg, params, latency))
    return out


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


# --- the command's library function ---------------------------------------------------------------------------


def _probe_batch(cfg, build_dir, batch: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`batch` training images and labels (stratified by a seeded shuffle) from the build or the config's data."""
    from pathlib import Path

    from edgekd.data.cells import CellSplits, load_cell_splits

    splits_path = Path(build_dir) / "data" / "splits.npz" if build_dir is not None else None
    if splits_path is not None and splits_path.is_file():
        splits = CellSplits.load(splits_path)
    else:
        if cfg.task != "classification":
            raise SuggestError(f"task '{cfg.task}': suggest-student ranks cell_cnn variants for classification only")
        data = cfg.data.model_copy(deep=True)
        if data.source == "synthetic":  # a batch is all it needs: do not generate the whole training set
            data.synthetic = data.synthetic.model_copy(
                update={"n_train": min(data.synthetic.n_train, max(4 * batch, 64)), "n_test": 8}
            )
        splits = load_cell_splits(data)
    rng = np.random.default_rng(cfg.seed)
    idx = rng.permutation(np.flatnonzero(splits.labelled))[:batch]  # labelled rows only (data.labelled)
    return splits.x_train[idx], splits.y_train[idx], list(splits.class_names)


def _teacher_probe(cfg, build_dir, num_classes: int) -> TeacherProbe:
    from pathlib import Path

    from edgekd.io import read_json
    from edgekd.registry import TEACHERS

    if build_dir is not None:
        weights = Path(build_dir) / "teacher" / "teacher.pt"
        meta = Path(build_dir) / "teacher" / "teacher.json"
        if not weights.is_file() or not meta.is_file():
            raise SuggestError(
                f"{build_dir}: no trained teacher (teacher/teacher.pt and teacher.json); run "
                "`edgekd build CONFIG --to teacher` first, or leave out --build to use a random teacher"
            )
        info = read_json(meta)
        classes = info.get("trained_on_classes") or []
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = TEACHERS.get(cfg.teacher.arch)(len(classes), cfg.teacher)
        model.load_state_dict(state)
        merge = None
        if len(classes) != num_classes:
            if len(classes) == 3 and num_classes == 2:  # B/T4/T8 teacher on a B-vs-T task (teacher.fine_labels)
                merge = [[0], [1, 2]]
            else:
                raise SuggestError(f"{meta}: teacher has {len(classes)} classes but the task has {num_classes}")
        return TeacherProbe(model, teacher_feature_module(model), cfg.teacher.input_size, merge, trained=True)
    torch.manual_seed(cfg.seed)
    model = TEACHERS.get(cfg.teacher.arch)(num_classes, cfg.teacher)
    return TeacherProbe(model, teacher_feature_module(model), cfg.teacher.input_size)


def suggest_students(
    cfg,
    build_dir=None,
    budget_params: int | None = None,
    budget_latency_us: float | None = None,
    batch: int = 64,
    inits: int = 2,
    widths: Iterable[int] = DEFAULT_WIDTHS,
    depths: Iterable[int] = DEFAULT_DEPTHS,
    bits: Iterable[int] = DEFAULT_BITS,
) -> dict:
    """Rank cell_cnn variants of `cfg.student` within the budgets; JSON-ready result, candidates best first."""
    from edgekd.progress import progress_bar

    images, labels, class_names = _probe_batch(cfg, build_dir, batch)
    k = len(class_names)
    candidates = make_candidates(cfg.student, k, cfg.hls, budget_params, budget_latency_us,
                                 widths=widths, depths=depths, bits=bits)
    if not candidates:
        raise SuggestError(
            f"no cell_cnn variant fits the budget (params <= {budget_params}, latency <= {budget_latency_us} us); "
            "raise --budget-params / --budget-latency-us"
        )
    teacher = _teacher_probe(cfg, build_dir, k)
    with progress_bar() as bar:
        task = bar.add_task(f"scoring {len(candidates)} candidates", total=len(candidates))
        ranked = score_candidates(candidates, teacher, images, labels, k, inits=inits, seed=cfg.seed,
                                  progress=lambda: bar.advance(task))
    return {
        "config": cfg.name,
        "method": "DisWOT-style training-free score: -(d_semantic + d_relation), higher is better",
        "teacher": "trained (build folder)" if teacher.trained else "randomly initialised",
        "batch": len(labels),
        "inits": inits,
        "budget": {"params": budget_params, "latency_us": budget_latency_us},
        "latency_source": f"estimate (edgekd analytical model, {cfg.hls.io_type}, {cfg.hls.clock_mhz:g} MHz, "
        "layer list mirrored from hls4ml 1.3.0 without converting each candidate)",
        "candidates": [c.to_dict() for c in ranked],
    }


def render_table(result: dict, top: int = 10):
    """A rich Table of the `top` best candidates of a `suggest_students` result."""
    from rich.table import Table

    table = Table(title=f"student candidates for {result['config']} (teacher: {result['teacher']})")
    for col, justify in (("rank", "right"), ("candidate", "left"), ("params", "right"), ("latency us (est.)", "right"),
                         ("LUT (est.)", "right"), ("score", "right"), ("d_sem", "right"), ("d_rel", "right")):
        table.add_column(col, justify=justify)
    for i, c in enumerate(result["candidates"][:top], 1):
        table.add_row(str(i), c["label"], f"{c['params']:,}", f"{c['latency_us']:.3f}", f"{c['lut_estimate']:,}",
                      f"{c['score']:.4f}", f"{c['d_semantic']:.4f}", f"{c['d_relation']:.4f}")
    table.caption = "score = -(d_sem + d_rel): higher = more like the teacher; latency: " + result["latency_source"]
    return table
