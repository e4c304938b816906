"""How the hardware half scores a model's outputs, as the contract's `scoring` spec says (edgekd.contract).

The hardware steps call `score` on the C-simulated sample and on the emulator's whole test split without
knowing the task: the spec names the kind of metrics and which targets to compare against.

    {"kind": "classification", "class_names": [...]}                 targets: labels
    {"kind": "regression", "names": [...], "against": {"vs_teacher": "teacher", "vs_labels": "labels"},
     "clips": {"labels": ["clip", "clip_labels"]}}                    clip-level means of windowed outputs
    {"kind": "none"}                                                  a model that came without data
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekd.distill.metrics import classification_metrics, regression_metrics

KINDS = ("classification", "regression", "none")


def score(spec: dict[str, Any], outputs: np.ndarray, targets: dict[str, np.ndarray], *, sample: bool = False) -> dict:
    """Metrics of `outputs` against `targets`. `sample`: the outputs cover only the first len(outputs) items
    (the C-simulated sample), so targets are cut to them and clip-level figures are left out."""
    kind = spec.get("kind", "none")
    n = len(outputs)
    cut = {k: np.asarray(v)[:n] for k, v in targets.items()} if sample else targets
    if kind == "classification":
        return classification_metrics(cut["labels"], outputs, list(spec["class_names"]))
    if kind == "regression":
        names = list(spec["names"])
        result: dict[str, Any] = {}
        for key, target in spec.get("against", {}).items():
            if target not in cut:
                result[key] = None  # e.g. an unlabelled corpus has no labels to score against
                continue
            metrics = regression_metrics(cut[target], outputs, names)
            clips = spec.get("clips", {}).get(target)
            if clips and not sample:
                from edgekd.data.audio import aggregate_windows

                index, clip_targets = targets[clips[0]], targets[clips[1]]
                metrics["clips"] = regression_metrics(
                    clip_targets, aggregate_windows(outputs, index, len(clip_targets)), names)
            result[key] = metrics
        return result
    if kind == "none":
        return {}
    raise ValueError(f"scoring kind {kind!r} is not one of {', '.join(KINDS)}")
