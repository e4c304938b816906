import numpy as np
import pytest
from PIL import Image

from edgekd.config import DataConfig, SyntheticCellsConfig
from edgekd.data.cells import CellSplits, load_cell_splits, merge_t_cells, stratified_subset
from edgekd.data.formats import DataFormatError
from edgekd.hashing import array_sha256
from edgekd.registry import DATASETS


def small_cfg(**kw) -> DataConfig:
    return DataConfig(synthetic=SyntheticCellsConfig(n_train=150, n_test=60, seed=5), **kw)


@pytest.fixture(scope="module")
def splits3() -> CellSplits:
    return load_cell_splits(small_cfg(num_classes=3, val_fraction=0.2))


def test_sources_registered():
    assert {"synthetic", "lymphomnist", "folder"} <= set(DATASETS.names())


def test_splits_deterministic_and_sized(splits3):
    again = load_cell_splits(small_cfg(num_classes=3, val_fraction=0.2))
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(splits3, field), getattr(again, field))
    assert len(splits3.y_train) == 120 and len(splits3.y_val) == 30 and len(splits3.y_test) == 60
    assert splits3.class_names == ["B", "T4", "T8"]
    assert np.bincount(splits3.y_val).tolist() == [10, 10, 10]  # stratified
    assert splits3.x_train.dtype == np.uint8 and splits3.y_train.dtype == np.int64


def test_no_overlap_between_train_val_test(splits3):
    tr = {array_sha256(im) for im in splits3.x_train}
    va = {array_sha256(im) for im in splits3.x_val}
    te = {array_sha256(im) for im in splits3.x_test}
    assert len(tr) == 120 and len(va) == 30  # images are all distinct
    assert not tr & va and not tr & te and not va & te


def test_split_seed_changes_val():
    a = load_cell_splits(small_cfg(split_seed=0))
    b = load_cell_splits(small_cfg(split_seed=1))
    assert not np.array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.x_test, b.x_test)  # the test set does not depend on split_seed


def test_two_class_merge(splits3):
    two = load_cell_splits(small_cfg(num_classes=2, val_fraction=0.2))
    assert two.class_names == ["B", "T"]
    np.testing.assert_array_equal(two.y_train, merge_t_cells(splits3.y_train))
    np.testing.assert_array_equal(two.x_train, splits3.x_train)
    assert merge_t_cells(np.array([0, 1, 2, 0])).tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError):
        merge_t_cells(np.array([3]))


def test_max_train_and_max_test():
    s = load_cell_splits(small_cfg(num_classes=3, max_train=60, max_test=30, val_fraction=0.1))
    assert len(s.y_train) + len(s.y_val) == 60 and len(s.y_val) == 6
    assert len(s.y_test) == 30 and np.bincount(s.y_test).tolist() == [10, 10, 10]


def test_stratified_subset_proportions():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    idx = stratified_subset(labels, 10, np.random.default_rng(0))
    assert np.bincount(labels[idx]).tolist() == [5, 3, 2]
    assert np.all(np.diff(idx) > 0)


def test_save_load_roundtrip_and_summary(splits3, tmp_path):
    path = tmp_path / "sub" / "splits.npz"
    splits3.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["splits.npz"]  # no temp file left behind
    back = CellSplits.load(path)
    assert back.class_names == splits3.class_names
    np.testing.assert_array_equal(back.x_val, splits3.x_val)
    assert back.sha256() == splits3.sha256()
    summary = splits3.summary()
    assert summary["train"]["n"] == 120 and summary["val"]["per_class"] == {"B": 10, "T4": 10, "T8": 10}


def test_load_corrupt_splits(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match="bad.npz"):
        CellSplits.load(path)
    good = tmp_path / "good.npz"
    load_cell_splits(small_cfg(max_train=30, max_test=30)).save(good)
    path.write_bytes(good.read_bytes()[:-200])  # truncated zip
    with pytest.raises(DataFormatError, match="bad.npz"):
        CellSplits.load(path)


def test_folder_source(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("B", "T4", "T8"):
        (tmp_path / name).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    cfg = DataConfig(source="folder", path=tmp_path, num_classes=3, test_fraction=0.2, val_fraction=0.1)
    s = load_cell_splits(cfg)
    assert len(s.y_test) == 6 and np.bincount(s.y_test).tolist() == [2, 2, 2]
    assert len(s.y_train) + len(s.y_val) == 24
    s2 = load_cell_splits(cfg.model_copy(update={"num_classes": 2}))
    assert s2.class_names == ["B", "T"] and set(s2.y_test.tolist()) == {0, 1}


def test_two_class_view_keeps_fine_labels_for_the_teacher(tmp_path):
    from edgekd.config import DataConfig, SyntheticCellsConfig
    from edgekd.data.cells import CellSplits, load_cell_splits, merge_t_cells

    cfg = DataConfig(num_classes=2, synthetic=SyntheticCellsConfig(n_train=60, n_test=30, seed=2))
    splits = load_cell_splits(cfg)
    assert splits.fine_class_names == ["B", "T4", "T8"]
    assert set(np.unique(splits.y_train_fine)) == {0, 1, 2}
    assert np.array_equal(merge_t_cells(splits.y_train_fine), splits.y_train)
    splits.save(tmp_path / "s.npz")
    back = CellSplits.load(tmp_path / "s.npz")
    assert np.array_equal(back.y_val_fine, splits.y_val_fine) and back.fine_class_names == ["B", "T4", "T8"]
