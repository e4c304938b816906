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

Latency is the analytical estimate of edgekd.estimate from LayerSpecs built here from the student
config: the same layer list hls4ml 1.3.0 builds from the exported QONNX (Input, input quantizer,
per block Conv2D -> Pooling2D -> ReLU, Flatten, Dense), without exporting or converting each candidate
(1-2 s per candidate with hls4ml); tests check it against the hls4ml ModelGraph. Resource figures are
rougher than the cycle counts (accumulator widths are approximated).

Layout (the names below are re-exported here, the public API; this module is the command's library function):

* edgekd.students.suggest_candidates: `candidate_configs`, `cell_cnn_layer_specs`, `make_candidates`;
* edgekd.students.suggest_score: the DisWOT distances, `score_candidates`, `spearman`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import torch

from edgekd.students.suggest_candidates import (  # noqa: F401
    DEFAULT_BITS,
    DEFAULT_DEPTHS,
    DEFAULT_WIDTHS,
    Candidate,
    SuggestError,
    candidate_configs,
    cell_cnn_layer_specs,
    make_candidates,
)
from edgekd.students.suggest_score import (  # noqa: F401
    CAM_SIZE,
    TeacherProbe,
    class_activation_gram,
    diswot_distances,
    fake_quantize_for_scoring,
    relation_gram,
    score_candidates,
    spearman,
    teacher_feature_module,
)

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


def _teacher_probe(cfg, build_dir, num_classes: int, in_channels: int = 1) -> TeacherProbe:
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
        model = TEACHERS.get(cfg.teacher.arch)(len(classes), cfg.teacher, in_channels=in_channels)
        model.load_state_dict(state)
        merge = None
        if len(classes) != num_classes:
            if len(classes) == 3 and num_classes == 2:  # B/T4/T8 teacher on a B-vs-T task (teacher.fine_labels)
                merge = [[0], [1, 2]]
            else:
                raise SuggestError(f"{meta}: teacher has {len(classes)} classes but the task has {num_classes}")
        return TeacherProbe(model, teacher_feature_module(model), cfg.teacher.input_size, merge, trained=True)
    torch.manual_seed(cfg.seed)
    model = TEACHERS.get(cfg.teacher.arch)(num_classes, cfg.teacher, in_channels=in_channels)
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
    channels = int(images.shape[-1]) if images.ndim == 4 else 1  # colour images are channels-last
    candidates = make_candidates(cfg.student, k, cfg.hls, budget_params, budget_latency_us, in_channels=channels,
                                 widths=widths, depths=depths, bits=bits)
    if not candidates:
        raise SuggestError(
            f"no cell_cnn variant fits the budget (params <= {budget_params}, latency <= {budget_latency_us} us); "
            "raise --budget-params / --budget-latency-us"
        )
    teacher = _teacher_probe(cfg, build_dir, k, channels)
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
