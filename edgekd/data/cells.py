"""Image splits (train / val / test) from any registered source, deterministic given the config.

Sources register in `DATASETS` as `factory(cfg: DataConfig) -> RawCells`; `load_cell_splits` then
applies the same steps to every source: cap the training pool (max_train), split off validation
images (val_fraction, split_seed), cap the test set (max_test) and, for B/T4/T8 data with num_classes == 2,
merge T4 and T8 into T. Every random choice is stratified by class and seeded from split_seed.

Images are uint8, (N, H, W) grey or (N, H, W, 3) colour (`data.channels`; channels-last, as image files
store them; `edgekd.data.transforms.to_model_input` makes the model's (N, C, S, S) tensor). Classes: the
cell sources' B/T4/T8, or an image folder's subfolders (any number from 2; `data.num_classes` unset takes
them all).
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekd.config import DataConfig
from edgekd.data.formats import CELL_CLASSES, IMAGE_SIZE, DataFormatError, load_image_folder, load_lymphomnist
from edgekd.data.labels import UNLABELLED, label_budget_mask, load_unlabelled_images, stratified_subset
from edgekd.data.synthetic_cells import CellDomain, generate_cells
from edgekd.hashing import array_sha256
from edgekd.io import atomic_path
from edgekd.registry import DATASETS

__all__ = ["CellSplits", "RawCells", "array_sha256", "load_cell_splits", "merge_t_cells", "resolve_num_classes",
           "stratified_subset"]

log = logging.getLogger(__name__)

SYNTHETIC_TEST_SEED_OFFSET = 1_000_003  # test cells come from a different seed than training cells
_SPLIT_FIELDS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass
class RawCells:
    """What a source provides: a training pool and a test set, with class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


@dataclass
class CellSplits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    # The source's finer labels when the task merges classes (B/T4/T8 under a B-vs-T task): a teacher
    # trained on them is markedly stronger, and its merged logits are exact class probabilities.
    y_train_fine: np.ndarray | None = None
    y_val_fine: np.ndarray | None = None
    fine_class_names: list[str] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        """Image channels: 1 for grey (N, H, W) images, C for colour (N, H, W, C) ones."""
        return 1 if self.x_train.ndim == 3 else int(self.x_train.shape[-1])

    def save(self, path: Path | str) -> None:
        """Write an .npz atomically (temp file in the same folder, then rename) so a crash never leaves half a file."""
        fine = {}
        if self.fine_class_names is not None:
            fine = {
                "y_train_fine": self.y_train_fine,
                "y_val_fine": self.y_val_fine,
                "fine_class_names": np.array(self.fine_class_names),
            }
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **{k: getattr(self, k) for k in _SPLIT_FIELDS}, class_names=np.array(self.class_names), **fine)

    @classmethod
    def load(cls, path: Path | str) -> "CellSplits":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in (*_SPLIT_FIELDS, "class_names") if k not in z.files]
                if missing:
                    raise DataFormatError(f"{path}: not a CellSplits file (missing {', '.join(missing)}); delete it to rebuild")
                arrays = {k: z[k] for k in _SPLIT_FIELDS}
                names = [str(n) for n in z["class_names"]]
                if "fine_class_names" in z.files:
                    arrays["y_train_fine"], arrays["y_val_fine"] = z["y_train_fine"], z["y_val_fine"]
                    arrays["fine_class_names"] = [str(n) for n in z["fine_class_names"]]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            if isinstance(err, DataFormatError):
                raise
            raise DataFormatError(f"{path}: cannot read saved splits ({err}); delete it to rebuild") from None
        return cls(**arrays, class_names=names)

    def summary(self) -> dict:
        """Counts per split and per class, JSON-ready."""
        out: dict = {"class_names": list(self.class_names)}
        for split in ("train", "val", "test"):
            y = getattr(self, f"y_{split}")
            y = y[y >= 0]  # per_class counts labels; train's hidden or missing ones are counted apart
            counts = np.bincount(y, minlength=self.num_classes) if len(y) else np.zeros(self.num_classes, int)
            out[split] = {"n": int(len(getattr(self, f"y_{split}"))),
                          "per_class": {n: int(c) for n, c in zip(self.class_names, counts)}}
        out["train"]["labelled"] = int(self.labelled.sum())
        out["train"]["unlabelled"] = int((~self.labelled).sum())
        # every label the build uses: the training labels and the validation split's (which, with data.labelled,
        # come out of the same budget; edgekd.data.cells._validation_rows)
        out["labels_used"] = int(self.labelled.sum()) + int(len(self.y_val))
        return out

    @property
    def labelled(self) -> np.ndarray:
        """Mask of the training images whose labels are used (edgekd.data.labels)."""
        return self.y_train >= 0

    def sha256(self) -> str:
        """Hash of all images and labels (cache key for teacher annotations and trained models)."""
        return array_sha256(np.frombuffer("".join(array_sha256(getattr(self, k)) for k in _SPLIT_FIELDS).encode(), np.uint8))


def merge_t_cells(labels: np.ndarray) -> np.ndarray:
    """3-class labels (B=0, T4=1, T8=2) -> 2-class view (B=0, T=1)."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 2):
        raise ValueError(f"expected labels in {{0, 1, 2}}, got range [{labels.min()}, {labels.max()}]")
    return (labels > 0).astype(np.int64)


def _rng(cfg: DataConfig, stream: int) -> np.random.Generator:
    # one independent stream per random step, all derived from split_seed
    return np.random.default_rng([cfg.split_seed, stream])


@DATASETS.register("synthetic")
def synthetic_source(cfg: DataConfig) -> RawCells:
    s = cfg.synthetic
    dom = CellDomain(**s.domain.model_dump())
    x_train, y_train = generate_cells(s.n_train, s.seed, s.difficulty, dom)
    x_test, y_test = generate_cells(s.n_test, s.seed + SYNTHETIC_TEST_SEED_OFFSET, s.difficulty, dom)
    return RawCells(x_train, y_train, x_test, y_test, list(CELL_CLASSES))


@DATASETS.register("lymphomnist")
def lymphomnist_source(cfg: DataConfig) -> RawCells:
    x_train, y_train, x_test, y_test = load_lymphomnist(cfg.path)
    return RawCells(x_train, y_train, x_test, y_test, list(CELL_CLASSES))


@DATASETS.register("folder")
def folder_source(cfg: DataConfig) -> RawCells:
    from edgekd.config_data import folder_image_side

    # stored at the images' own side when small (edgekd.config_data), else reduced to 64
    images, labels, names = load_image_folder(cfg.path, size=folder_image_side(cfg.path) or IMAGE_SIZE,
                                              channels=cfg.channels)
    n_test = max(1, int(round(cfg.test_fraction * len(labels))))
    test = stratified_subset(labels, n_test, _rng(cfg, 1))
    is_test = np.zeros(len(labels), bool)
    is_test[test] = True
    return RawCells(images[~is_test], labels[~is_test], images[is_test], labels[is_test], names)


def resolve_num_classes(cfg: DataConfig, names: list[str]) -> int:
    """The task's number of classes for a source whose classes are `names`: `data.num_classes`, or when unset
    (image folders) one per class, except B/T4/T8, which default to 2 (B vs T) as every cell source does.
    A value that fits neither is refused, naming the folder and what to set."""
    n = cfg.num_classes
    if n is None:
        return 2 if names == CELL_CLASSES else len(names)
    if n == len(names) or (n == 2 and names == CELL_CLASSES):
        return n
    where = f"{cfg.path}: {len(names)} class subfolders" if cfg.source == "folder" else \
        f"{cfg.path or cfg.source}: data has {len(names)} classes"
    raise DataFormatError(
        f"{where} {names} but data.num_classes is {n}; remove data.num_classes (the classes are then "
        f"{'B vs T' if names == CELL_CLASSES else 'the subfolders'}) or set it to {len(names)}"
        + (" (2 merges T4 and T8 into T only for B/T4/T8 folders)" if n == 2 else "")
    )


def _validation_rows(cfg: DataConfig, y_pool: np.ndarray, y_task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(validation mask, label-budget mask) over the training pool.

    Without data.labelled: a stratified val_fraction of the pool is validation, every label is used. With it,
    the budget counts every label used, validation included: the budget's labelled images are drawn from the
    whole pool (stratified by the task's classes), and val_fraction of THEM (at least one per class that has
    two or more) is held out for validation; the rest of the budget labels training images. So "5%" of a
    6,000-image pool is 300 labels in all: 270 to train on, 30 to validate on.
    """
    is_val = np.zeros(len(y_pool), bool)
    if cfg.labelled is None:
        n_val = int(round(cfg.val_fraction * len(y_pool)))
        if n_val:
            is_val[stratified_subset(y_pool, n_val, _rng(cfg, 3))] = True
        return is_val, np.ones(len(y_pool), bool)
    budget = label_budget_mask(y_task, cfg.labelled, _rng(cfg, 5))
    rows = np.flatnonzero(budget)
    n_val = int(round(cfg.val_fraction * len(rows)))
    if n_val:
        rng = _rng(cfg, 3)
        is_val[rows[stratified_subset(y_task[rows], n_val, rng)]] = True
        for c in np.unique(y_task[rows]):  # small budgets: every class with >= 2 labels gets a validation image
            mine = rows[y_task[rows] == c]
            if len(mine) >= 2 and not is_val[mine].any():
                is_val[rng.choice(mine)] = True
    return is_val, budget


def load_cell_splits(cfg: DataConfig) -> CellSplits:
    raw: RawCells = DATASETS.get(cfg.source)(cfg)
    x_pool, y_pool = raw.x_train, raw.y_train.astype(np.int64)
    if cfg.max_train is not None and len(y_pool) > cfg.max_train:
        keep = stratified_subset(y_pool, cfg.max_train, _rng(cfg, 2))
        x_pool, y_pool = x_pool[keep], y_pool[keep]
    names = list(raw.class_names)
    num_classes = resolve_num_classes(cfg, names)
    merge = num_classes == 2 and names == CELL_CLASSES
    y_task = merge_t_cells(y_pool) if merge else y_pool
    is_val, budget = _validation_rows(cfg, y_pool, y_task)
    x_test, y_test = raw.x_test, raw.y_test.astype(np.int64)
    if cfg.max_test is not None and len(y_test) > cfg.max_test:
        keep = stratified_subset(y_test, cfg.max_test, _rng(cfg, 4))
        x_test, y_test = x_test[keep], y_test[keep]

    labels = [y_pool[~is_val], y_pool[is_val], y_test]
    fine: dict = {}
    if merge:
        fine = {"y_train_fine": labels[0], "y_val_fine": labels[1], "fine_class_names": list(CELL_CLASSES)}
        labels, names = [merge_t_cells(y) for y in labels], ["B", "T"]
    x_train = x_pool[~is_val]
    # the label budget: hidden labels become UNLABELLED, images without labels join the training pool
    labelled = budget[~is_val]
    labels[0] = np.where(labelled, labels[0], UNLABELLED)
    if fine:
        fine["y_train_fine"] = np.where(labelled, fine["y_train_fine"], UNLABELLED)
    if cfg.unlabelled is not None:
        extra = load_unlabelled_images(cfg.unlabelled, x_train.shape[1], cfg.channels)
        none = np.full(len(extra), UNLABELLED, np.int64)
        x_train, labels[0] = np.concatenate([x_train, extra]), np.concatenate([labels[0], none])
        if fine:
            fine["y_train_fine"] = np.concatenate([fine["y_train_fine"], none])
    splits = CellSplits(x_train, labels[0], x_pool[is_val], labels[1], x_test, labels[2], names, **fine)
    log.info("cell splits (%s): %s", cfg.source, splits.summary())
    return splits
