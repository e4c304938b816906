"""Input sizes from the data (edgekd.config_data): small images keep their size, a config can still override."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from edgekd.config import load_config, parse_config
from edgekd.data.cells import load_cell_splits
from edgekd.students.cell_cnn import build_cell_cnn, count_macs
from edgekd.teachers.resnet import ResNetTeacher, stage_strides


def _folder(root, side: int, n: int = 3):
    rng = np.random.default_rng(side)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_cell_sources_keep_64_and_48():
    cfg = parse_config({"name": "c"})
    assert (cfg.teacher.input_size, cfg.student.input_size, cfg.teacher.min_epoch_images) == (64, 48, 0)


def test_small_images_keep_their_size(tmp_path):
    cfg = parse_config({"name": "d", "data": {"source": "folder", "path": str(_folder(tmp_path / "d", 8))}})
    # the teacher reads the 8 px images as they are; the default student (two 3x3 valid convs, 2x2 pools) needs 10
    assert (cfg.teacher.input_size, cfg.student.input_size) == (8, 10)
    assert cfg.teacher.min_epoch_images == 4096
    assert load_cell_splits(cfg.data).x_train.shape[1:] == (8, 8)  # stored at 8, not upsampled to 64
    assert count_macs(cfg.student, 2) < 20_000  # 18,464 MACs at 10 px (2 classes) against 1.3M at 48
    one_conv = parse_config({"name": "d", "data": {"source": "folder", "path": str(tmp_path / "d")},
                             "student": {"channels": [8], "kernel_sizes": [3], "input_block": 2}})
    assert one_conv.student.input_size == 8  # 8 px fit one conv and pool; a multiple of the 2 x 2 blocks
    build_cell_cnn(one_conv.student, 2)


def test_large_images_are_reduced_to_64_and_the_config_overrides(tmp_path):
    big = _folder(tmp_path / "big", 100)
    cfg = parse_config({"name": "b", "data": {"source": "folder", "path": str(big)}})
    assert (cfg.teacher.input_size, cfg.student.input_size) == (64, 64)
    cfg = parse_config({"name": "b", "data": {"source": "folder", "path": str(big)},
                        "teacher": {"input_size": 32}, "student": {"input_size": 24}})
    assert (cfg.teacher.input_size, cfg.student.input_size) == (32, 24)


def test_relative_folder_resolves_after_the_path(tmp_path):
    _folder(tmp_path / "imgs", 12)
    (tmp_path / "c.yaml").write_text("name: r\ndata: {source: folder, path: imgs}\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert (cfg.teacher.input_size, cfg.student.input_size) == (12, 12)


@pytest.mark.parametrize("side, strides", [(64, (2, [2, 2, 2, 2])), (32, (2, [2, 2, 2, 2])),
                                           (16, (1, [2, 2, 2, 1])), (8, (1, [2, 2, 1, 1]))])
def test_teacher_keeps_small_images_resolution(side, strides):
    assert stage_strides(side) == strides
    model = ResNetTeacher(3, width=4, input_size=side).eval()
    assert model(torch.zeros(2, 1, side, side)).shape == (2, 3)
    # the same parameters whatever the input size: a checkpoint loads into either
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ResNetTeacher(3, width=4).parameters())
