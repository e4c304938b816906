"""data.augment: the label-preserving views follow the data; orientation-dependent classes need them off.

The arrow folders (tests/data/_arrows.py) have four classes that are rotations of one another: with the dihedral
views the teacher cannot tell them apart, without them it learns them; `auto` measures that on validation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.config import ConfigError, TeacherConfig, parse_config
from edgekd.data.augment_probe import probe_augmentation
from edgekd.data.cells import CellSplits
from edgekd.data.views import AUGMENT_SETS, VIEW_NAMES, random_views, view_images, view_tensor, views_of
from edgekd.teachers.resnet import ResNetTeacher
from edgekd.teachers.train import predict_logits, train_teacher
from edgekd.data.transforms import to_model_input

from _arrows import DIRECTIONS, arrow_images


def _splits(x, y, n_val_per_class: int) -> CellSplits:
    is_val = np.zeros(len(y), bool)
    for c in np.unique(y):
        is_val[np.flatnonzero(y == c)[:n_val_per_class]] = True
    return CellSplits(x[~is_val], y[~is_val], x[is_val], y[is_val], x[is_val], y[is_val], [str(c) for c in np.unique(y)])


def test_view_names_name_the_views():
    img = np.arange(9, dtype=np.uint8).reshape(1, 3, 3)
    expected = {"identity": img, "flip_lr": img[:, :, ::-1], "flip_ud": img[:, ::-1, :],
                "rot180": img[:, ::-1, ::-1], "transpose": img.transpose(0, 2, 1),
                "rot90": np.rot90(img, 1, axes=(1, 2)), "rot270": np.rot90(img, 3, axes=(1, 2)),
                "antitranspose": img[:, ::-1, ::-1].transpose(0, 2, 1)}
    for name, want in expected.items():
        assert np.array_equal(view_images(img, VIEW_NAMES.index(name)), want), name
    assert views_of("dihedral") == tuple(range(8)) and views_of("flips") == (0, 1) and views_of("none") == (0,)
    assert views_of(["rot180", "flip_ud"]) == (0, 4, 5)  # the identity is always a view
    with pytest.raises(ValueError, match="rot45"):
        views_of(["rot45"])


def test_random_views_draw_each_image_from_the_set():
    x = torch.arange(6 * 16, dtype=torch.float32).reshape(6, 1, 4, 4)
    views = AUGMENT_SETS["flips"]
    out = random_views(x, views, torch.Generator().manual_seed(0))
    drawn = set()
    for i in range(len(x)):
        hits = [v for v in views if torch.equal(out[i : i + 1], view_tensor(x[i : i + 1], v))]
        assert hits, i
        drawn.update(hits)
    assert drawn == set(views)  # 6 draws from 2 views with this seed: both occur
    assert random_views(x, (0,), torch.Generator()) is x


def test_augment_defaults_follow_the_source(tmp_path):
    assert parse_config({"name": "c"}).data.augment == "dihedral"  # a cell has no orientation
    folder = parse_config({"name": "f", "data": {"source": "folder", "path": str(tmp_path)}})
    assert folder.data.augment == "none"  # a rotated 6 is a 9
    listed = parse_config({"name": "f", "data": {"source": "folder", "path": str(tmp_path), "augment": ["flip_lr"]}})
    assert views_of(listed.data.augment) == (0, 1)
    with pytest.raises(ConfigError, match=r"data\.augment.*rot45"):
        parse_config({"name": "f", "data": {"source": "folder", "path": str(tmp_path), "augment": ["rot45"]}})


def test_probe_keeps_dihedral_off_for_arrows_and_on_for_rotation_free_classes():
    x, y = arrow_images(40, seed=1)
    probe = probe_augmentation(_splits(x, y, 10))
    assert probe["chosen"] == "none", probe
    assert probe["val_accuracy"]["dihedral"] < 0.5 < probe["val_accuracy"]["none"]
    # classes that differ by brightness only: every view keeps them, so the probe takes all 8
    rng = np.random.default_rng(2)
    y2 = np.arange(160) % 2
    x2 = np.clip(rng.normal(90 + 40 * y2[:, None, None], 25, (160, 16, 16)), 0, 255).astype(np.uint8)
    probe = probe_augmentation(_splits(x2, y2, 20))
    assert probe["chosen"] == "dihedral", probe
    # labels the pixels cannot tell (every image the same): the probe is at the majority class, so it takes nothing
    x3 = np.repeat(rng.integers(0, 256, (1, 16, 16), dtype=np.uint8), 200, axis=0)
    probe = probe_augmentation(_splits(x3, np.arange(200) % 2, 50))
    assert probe["chosen"] == "none" and "cannot tell" in probe["rule"], probe


@pytest.mark.parametrize("augment", ["none", "dihedral"])
def test_teacher_learns_arrows_only_without_rotation_views(augment):
    x, y = arrow_images(40, seed=3)
    xv, yv = arrow_images(10, seed=4)
    cfg = TeacherConfig(width=8, input_size=16, epochs=10, batch_size=16, lr=4e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: extra threads only spin on a busy machine
    try:
        torch.manual_seed(0)
        model = ResNetTeacher(len(DIRECTIONS), width=8, input_size=16)
        train_teacher(model, x, y, None, None, cfg, seed=0, show_progress=False, views=views_of(augment))
        acc = float((predict_logits(model, to_model_input(xv, 16)).argmax(1).numpy() == yv).mean())
    finally:
        torch.set_num_threads(threads)
    # the four classes are one orbit of the rotations: a rotation-invariant teacher is at chance (25%)
    assert acc >= 0.8 if augment == "none" else acc <= 0.5, acc  # measured: 0.925 and 0.275


def test_build_states_and_follows_the_views(tmp_path):
    """The data step records the views (auto: measured by the probe); the teacher annotates exactly those views."""
    from _arrows import arrow_folder
    from edgekd.io import read_json
    from edgekd.pipeline import run_build

    root = arrow_folder(tmp_path / "arrows", 30, seed=5)
    base = {"data": {"source": "folder", "path": str(root), "val_fraction": 0.25},
            "teacher": {"width": 4, "epochs": 1, "batch_size": 32, "min_epoch_images": 0}}
    out = tmp_path / "auto"
    run_build(parse_config({"name": "auto", **base, "data": {**base["data"], "augment": "auto"}}), out, to_step="data")
    augment = read_json(out / "data" / "data.json")["augment"]
    assert (augment["chosen_by"], augment["chosen"], augment["names"]) == ("probe", "none", ["identity"]), augment
    out = tmp_path / "flips"
    cfg = parse_config({"name": "flips", **base, "data": {**base["data"], "augment": "flips"}})
    assert (cfg.teacher.input_size, cfg.student.input_size) == (16, 16)  # the arrows' own size
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_build(cfg, out, to_step="teacher")
    finally:
        torch.set_num_threads(threads)
    teacher = read_json(out / "teacher" / "teacher.json")
    assert teacher["views"] == ["identity", "flip_lr"]
    views = np.load(out / "teacher" / "logits_train_views.npy")
    assert views.shape == (2, 72, 4)  # 120 images: 24 test (20%), 24 validation (25% of the rest), 72 training
    assert np.array_equal(views[0], np.load(out / "teacher" / "logits_train.npy"))
