"""The logistic-regression baseline (edgekd.data.logistic): fitted on the labelled training images only, C chosen on
validation, scored on the test split with the build's classification metrics."""

from __future__ import annotations

import numpy as np

from edgekd.data.cells import CellSplits
from edgekd.data.logistic import C_GRID, class_log_proba, fit_logistic, logistic_baseline, pixel_features


def _bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a bright bar in column block c of a noisy 8 x 8 image (linearly separable)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(60, 10, (n, 8, 8))
    for i, c in enumerate(y):
        x[i, :, 2 * c + 1 : 2 * c + 3] += 120
    return np.clip(np.rint(x), 0, 255).astype(np.uint8), y


def test_baseline_learns_linear_classes_from_the_labelled_images():
    x, y = _bars(90, 0)
    xv, yv = _bars(30, 1)
    xt, yt = _bars(30, 2)
    y_hidden = y.copy()
    y_hidden[::2] = -1  # data.labelled: half the labels hidden; the baseline sees only the other half
    splits = CellSplits(x, y_hidden, xv, yv, xt, yt, ["a", "b", "c"])
    out = logistic_baseline(splits, 8)
    assert out["trained_on_images"] == 45 and out["features"] == 64 and out["input_size"] == 8
    assert out["C"] in C_GRID and set(out["val_accuracy_per_C"]) == {str(c) for c in C_GRID}
    assert out["metrics"]["accuracy"] == 1.0 and out["metrics"]["n"] == 30
    assert out["metrics"]["class_names"] == ["a", "b", "c"]


def test_a_class_without_labels_is_never_predicted():
    x, y = _bars(60, 3)
    seen = y < 2
    model = fit_logistic(pixel_features(x[seen], 8), y[seen], 1.0)
    logp = class_log_proba(model, pixel_features(x, 8), 3)
    assert logp.shape == (60, 3) and np.isneginf(logp[:, 2]).all() and (logp.argmax(1) < 2).all()
    one_class = CellSplits(x, np.where(y == 0, 0, -1), x, y, x, y, ["a", "b", "c"])
    assert logistic_baseline(one_class, 8)["model"] is None  # nothing to fit with a single labelled class
