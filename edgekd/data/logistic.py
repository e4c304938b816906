"""A multinomial logistic regression on an image's pixels: the simple reference every classification report shows.

The features are the pixels the student reads (`edgekd.data.transforms.to_model_input` at the student's input
side: resized, normalised, flattened; colour channels side by side). The inverse regularisation C is chosen on the
validation split among `C_GRID` (the largest validation accuracy; ties go to the stronger regularisation), the
model is fitted on the labelled training images only, and scored on the test split. scikit-learn's lbfgs solver,
deterministic for given data. A student or teacher below this line has not learnt what a linear model on the
same pixels learns: the report flags it.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from edgekd.data.transforms import to_model_input
from edgekd.distill.metrics import classification_metrics

log = logging.getLogger(__name__)

C_GRID = (0.01, 0.1, 1.0)
MAX_ITER = 300


def pixel_features(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) -> float64 (N, C size^2): the student's normalised input pixels."""
    return to_model_input(images, size).reshape(len(images), -1).numpy().astype(np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float):
    """A multinomial logistic regression (lbfgs) on features `x` and integer labels `y`."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from threadpoolctl import threadpool_limits

    model = LogisticRegression(C=c, max_iter=MAX_ITER)
    # one BLAS thread: lbfgs's small products gain nothing from more, and on a busy machine OpenBLAS's waiting
    # threads made a 1,300-image fit 30x slower (8 s against 0.27 s measured on 2 shared cores)
    with warnings.catch_warnings(), threadpool_limits(1):  # a not-quite-converged fit is still a fair reference
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model


def class_log_proba(model, x: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, num_classes) log-probabilities; a class the fit never saw gets -inf (never predicted)."""
    out = np.full((len(x), num_classes), -np.inf)
    out[:, model.classes_] = model.predict_log_proba(x)
    return out


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x) == y).mean()) if len(y) else 0.0


def logistic_baseline(splits, size: int) -> dict:
    """The logistic-regression reference of a CellSplits at input side `size`: C chosen on validation, fitted on
    the labelled training images, scored on the test split. JSON-ready: C, the validation accuracy per C, the
    test metrics (`classification_metrics`), seconds."""
    t0 = time.perf_counter()
    lab = splits.labelled
    if len(np.unique(splits.y_train[lab])) < 2:
        return {"model": None, "reason": "fewer than 2 classes among the labelled training images"}
    x_train, y_train = pixel_features(splits.x_train[lab], size), splits.y_train[lab]
    x_val, y_val = pixel_features(splits.x_val, size), splits.y_val
    val_acc = {}
    best = None
    for c in C_GRID:
        model = fit_logistic(x_train, y_train, c)
        val_acc[str(c)] = accuracy(model, x_val, y_val)
        if best is None or val_acc[str(c)] > val_acc[str(best[0])]:
            best = (c, model)
    c, model = best
    logits = class_log_proba(model, pixel_features(splits.x_test, size), len(splits.class_names))
    metrics = classification_metrics(splits.y_test, logits, splits.class_names)
    log.info("logistic regression on %dx%d pixels (C=%g): test accuracy %.4f", size, size, c, metrics["accuracy"])
    return {
        "model": "multinomial logistic regression (scikit-learn, lbfgs) on the student's input pixels",
        "input_size": size,
        "features": int(x_train.shape[1]),
        "trained_on_images": int(len(y_train)),
        "C": c,
        "val_accuracy_per_C": val_acc,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - t0, 2),
    }
