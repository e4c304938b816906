"""Label budgets (data.labelled) and images without labels (data.unlabelled)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from edgekd.config import ConfigError, DataConfig, DistillConfig, parse_config
from edgekd.data.cells import load_cell_splits
from edgekd.data.formats import DataFormatError
from edgekd.data.labels import UNLABELLED, label_budget_mask, load_unlabelled_images
from edgekd.distill.trainer import train_student


def _idx(path, arr: np.ndarray) -> None:
    path.write_bytes(b"\x00\x00\x08" + bytes([arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


def test_budget_as_fraction_or_count_per_class():
    labels = np.array([0] * 90 + [1] * 10)
    rng = np.random.default_rng(0)
    m = label_budget_mask(labels, 0.1, rng)
    assert m.sum() == 10 and m[labels == 0].sum() == 9 and m[labels == 1].sum() == 1  # stratified
    m = label_budget_mask(labels, 0.01, rng)  # 1 row by rounding: still one of every class
    assert m[labels == 0].sum() == 1 and m[labels == 1].sum() == 1
    m = label_budget_mask(labels, 20, rng)  # count per class; class 1 has only 10
    assert m[labels == 0].sum() == 20 and m[labels == 1].sum() == 10
    assert label_budget_mask(labels, None, rng).all() and label_budget_mask(labels, 1.0, rng).all()


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -3, True])
def test_config_refuses_bad_budgets(bad):
    with pytest.raises(ValueError, match="data.labelled"):
        parse_config({"name": "x", "data": {"labelled": bad}})


def test_config_takes_fraction_and_count():
    assert parse_config({"name": "x", "data": {"labelled": 0.05}}).data.labelled == 0.05
    assert parse_config({"name": "x", "data": {"labelled": 50}}).data.labelled == 50


def test_splits_hide_labels_and_add_unlabelled_images(tmp_path):
    folder = tmp_path / "unlab" / "day1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (80, 80), dtype=np.uint8)).save(folder / f"{i}.png")
    cfg = DataConfig(synthetic={"n_train": 200, "n_test": 20}, val_fraction=0.1, labelled=0.1,
                     unlabelled=tmp_path / "unlab")
    full = load_cell_splits(DataConfig(synthetic={"n_train": 200, "n_test": 20}, val_fraction=0.0))  # no val: pool order
    s = load_cell_splits(cfg)
    # the budget counts every label: 10% of the 200-image pool is 20 labels, 2 of them (val_fraction) validate
    assert len(s.y_val) == 2 and len(s.x_train) == 198 + 5 and s.x_train.shape[1:] == (64, 64)
    lab = s.labelled
    assert lab.sum() == 18 and (s.y_train[~lab] == UNLABELLED).all() and not lab[-5:].any()
    pool = {bytes(x): y for x, y in zip(full.x_train, full.y_train)}
    assert all(pool[bytes(x)] == y for x, y in zip(s.x_train[lab], s.y_train[lab]))  # kept labels are the true ones
    assert all(pool[bytes(x)] == y for x, y in zip(s.x_val, s.y_val))  # validation images come out of the pool
    assert sorted(s.y_val.tolist()) == [0, 1]  # B vs T: one validation label per class
    assert (s.y_train_fine[~lab] == UNLABELLED).all() and (s.y_train_fine[lab] >= 0).all()
    assert np.array_equal(s.y_test, full.y_test)
    summary = s.summary()
    assert summary["train"]["labelled"] == 18 and summary["train"]["unlabelled"] == len(s.x_train) - 18
    assert sum(summary["train"]["per_class"].values()) == 18 and summary["labels_used"] == 20


def test_validation_comes_out_of_a_count_budget_and_no_validation_is_refused():
    s = load_cell_splits(DataConfig(synthetic={"n_train": 300, "n_test": 20}, val_fraction=0.2, labelled=10))
    # 10 labels per class (B, T) in all: 4 validate (20%), 16 train
    assert s.summary()["labels_used"] == 20 and len(s.y_val) == 4 and s.labelled.sum() == 16
    assert np.bincount(s.y_val).tolist() == [2, 2]
    with pytest.raises(ConfigError, match="data.val_fraction is 0: the student would have no validation images"):
        parse_config({"name": "x", "data": {"val_fraction": 0.0, "labelled": 0.05}})


def test_unlabelled_idx_file_is_resized_and_bad_files_are_named(tmp_path):
    _idx(tmp_path / "u.idx", np.arange(3 * 32 * 32, dtype=np.uint32).astype(np.uint8).reshape(3, 32, 32))
    assert load_unlabelled_images(tmp_path / "u.idx").shape == (3, 64, 64)
    _idx(tmp_path / "labels.idx", np.zeros(7, np.uint8))
    with pytest.raises(DataFormatError, match="labels.idx: data.unlabelled must be an IDX file of uint8 images"):
        load_unlabelled_images(tmp_path / "labels.idx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="empty: data.unlabelled holds no PNG or TIFF"):
        load_unlabelled_images(tmp_path / "empty")
    with pytest.raises(DataFormatError, match="missing: data.unlabelled does not exist"):
        load_unlabelled_images(tmp_path / "missing")


def _tiny_problem():
    torch.manual_seed(0)
    x = torch.randn(40, 1, 4, 4)
    teacher = torch.stack([-x.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3))], dim=1)
    return x, teacher


def test_missing_labels_take_the_teachers_top_class():
    x, teacher = _tiny_problem()
    cfg = DistillConfig(batch_size=8, augment=False)
    results = []
    for y in (torch.full((40,), UNLABELLED), teacher.argmax(1)):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        results.append(train_student(model, x, y, teacher, x[:8], teacher[:8].argmax(1), cfg, "kd", "t", 2, 1e-2))
    assert all(torch.equal(a, b) for a, b in zip(results[0].state_dict.values(), results[1].state_dict.values()))
    with pytest.raises(ValueError, match="t: 40 training rows have no label and there is no teacher"):
        train_student(torch.nn.Linear(16, 2), x, torch.full((40,), UNLABELLED), None, x, teacher.argmax(1), cfg,
                      "ce", "t", 1, 1e-2)


def test_steps_per_epoch_fixes_the_budget_in_steps():
    x, teacher = _tiny_problem()
    y = teacher.argmax(1)
    calls = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])) if m.training else None)
    cfg = DistillConfig(batch_size=8, augment=False)
    train_student(model, x[:12], y[:12], None, x[:8], y[:8], cfg, "ce", "t", epochs=2, lr=1e-2, steps_per_epoch=5)
    assert len(calls) == 10  # 12 rows in batches of 8 would be 2 steps per epoch
    assert calls[:4] == [8, 4, 8, 4]  # successive shuffles, each cut into batches
