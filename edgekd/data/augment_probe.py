"""`data.augment: auto`: which views keep the label, measured on validation by a quick probe.

For each candidate set (none, flips, dihedral) a multinomial logistic regression is fitted on the labelled
training images in every view of the set (each image once per view, at a probe side of at most 16 pixels) and
scored on the validation images as they are. A linear model fitted on the views of a set is (nearly) invariant
to them: where the data's classes and their images are invariant (cells), it loses nothing and gains
the extra views; where they are not (a rotated 6 is a 9, an arrow's direction is its class), the forced
invariance costs validation accuracy. The build takes the largest set whose validation accuracy is within
`TOLERANCE` (or one binomial standard error, when larger) of the best one: augmentation helps the deep teacher
and student more than the linear probe shows, so a set that costs the probe nothing is taken.
"""

from __future__ import annotations

import logging

import numpy as np

from edgekd.data.logistic import accuracy, fit_logistic, pixel_features
from edgekd.data.views import AUGMENT_SETS, view_images

log = logging.getLogger(__name__)

CANDIDATES = ("none", "flips", "dihedral")  # smallest first
PROBE_SIDE = 16
PROBE_C = 0.1
TOLERANCE = 0.01


def probe_augmentation(splits) -> dict:
    """The `data.augment: auto` choice for a CellSplits: {chosen, views, val_accuracy per candidate, rule}."""
    lab = splits.labelled
    x, y = splits.x_train[lab], splits.y_train[lab]
    if not len(splits.y_val) or len(np.unique(y)) < 2:
        return {"chosen": "none", "views": [0], "val_accuracy": {},
                "rule": "no validation images or fewer than 2 labelled classes: no probe, no augmentation"}
    side = min(PROBE_SIDE, int(splits.x_train.shape[1]))
    x_val = pixel_features(splits.x_val, side)
    scores = {}
    for name in CANDIDATES:
        views = AUGMENT_SETS[name]
        xs = np.concatenate([pixel_features(view_images(x, v), side) for v in views])
        model = fit_logistic(xs, np.tile(y, len(views)), PROBE_C)
        scores[name] = accuracy(model, x_val, splits.y_val)
    best = max(scores.values())
    margin = max(TOLERANCE, float(np.sqrt(best * (1 - best) / len(splits.y_val))))
    majority = float(np.bincount(splits.y_val).max() / len(splits.y_val))
    if best <= majority + margin:  # the probe learnt nothing it can be trusted on: augment nothing
        log.info("data.augment auto: the probe does not beat the majority class (%.3f); no augmentation", majority)
        return {"chosen": "none", "views": [0], "val_accuracy": scores, "margin": margin, "majority": majority,
                "rule": "the probe's best validation accuracy is within the margin of the majority class: it cannot "
                        "tell which views keep the label, so none is taken"}
    chosen = [name for name in CANDIDATES if scores[name] >= best - margin][-1]
    log.info("data.augment auto: probe validation accuracy %s; chose %s (within %.3f of the best)",
             {k: round(v, 4) for k, v in scores.items()}, chosen, margin)
    return {
        "chosen": chosen,
        "views": list(AUGMENT_SETS[chosen]),
        "val_accuracy": scores,
        "margin": margin,
        "majority": majority,
        "rule": f"logistic regression (C={PROBE_C}) on {side}x{side} pixels fitted on each candidate's views of the "
                "labelled training images, scored on validation; the largest set within the margin of the best",
    }
