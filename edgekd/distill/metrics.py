"""Classification metrics on a test split: accuracy, per-class recall, confusion matrix."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, logits: np.ndarray, class_names: list[str]) -> dict:
    """Metrics of argmax(logits) against integer labels; JSON-ready (plain floats and lists)."""
    y_true = np.asarray(y_true).astype(np.int64)
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != y_true.shape[0]:
        raise ValueError(f"logits shape {logits.shape} does not match {y_true.shape[0]} labels")
    k = len(class_names)
    pred = logits.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, pred), 1)
    support = confusion.sum(axis=1)
    recall = np.divide(np.diag(confusion), support, out=np.zeros(k), where=support > 0)
    return {
        "n": int(y_true.shape[0]),
        "accuracy": float((pred == y_true).mean()) if len(y_true) else 0.0,
        "per_class_recall": {name: float(r) for name, r in zip(class_names, recall)},
        "confusion_matrix": confusion.tolist(),
        "class_names": list(class_names),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> dict:
    """CCC (per output and mean), MSE and MAE over the whole set, not averaged per batch; JSON-ready."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 2 or y_true.shape[1] != len(names):
        raise ValueError(f"predictions {y_pred.shape} and targets {y_true.shape} must both be (N, {len(names)})")
    mx, my = y_pred.mean(axis=0), y_true.mean(axis=0)
    cov = ((y_pred - mx) * (y_true - my)).mean(axis=0)
    ccc = 2 * cov / (y_pred.var(axis=0) + y_true.var(axis=0) + (mx - my) ** 2 + 1e-12)
    return {
        "n": int(y_true.shape[0]),
        "ccc": {name: float(c) for name, c in zip(names, ccc)},
        "ccc_mean": float(ccc.mean()),
        "mse": float(((y_pred - y_true) ** 2).mean()),
        "mae": float(np.abs(y_pred - y_true).mean()),
    }
