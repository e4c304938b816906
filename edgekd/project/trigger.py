"""The frame grabber's sort decision, as the pixel-stream wrapper computes it in hardware.

class   = argmax of the logits (the first index on a tie, like the C++ loop)
score   = logit[class] - the largest other logit (the decision margin, >= 0; exact on the result grid)
trigger = score >= threshold (threshold rounded UP onto the score grid, so the comparison is exact),
          and class == trigger_class when one is configured

Default trigger (no `hls.trigger_threshold` / `hls.trigger_class` configured): chosen on the VALIDATION
split from the bit-exact hardware model's logits (the emulator, == C-simulation == QONNX), never on test:

    for every class c and every threshold t among the validation scores of samples decided as c,
        precision(c, t) = sorted samples of class c / sorted samples, recall(c, t) = sorted c / all c;
    keep (c, t) with precision >= hls.trigger_target_precision (default 0.95) and at least one sorted
    sample; take the one with the highest recall (then higher precision, then lower class index, then
    the lower threshold). When no (c, t) reaches the target: the highest precision (then recall).

Its precision, recall and sort rate on the TEST split (again from the hardware model's logits) go into
project.json and report.json (`project.trigger.test`), next to the same figures on validation.

Trigger latency (source: estimate) = the network's estimated latency (hls/estimate.json, first input
element to logits; with a board's pixels_per_clock it counts the input's arrival at that rate, see
edgekd.estimate.input_arrival_times) + the wrapper's own pipeline: the registers packing pixels into the
network's input words (1 at one grey pixel per clock; 2 with several pixels per beat, k x k blocks or packed
colour: read_beats and write_items), ceil(log2(classes)) compare levels for argmax and margin (any number of
classes), one for the threshold, one output register.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sort_decisions", "threshold_on_grid", "wrapper_cycles", "trigger_latency", "trigger_metrics",
           "choose_trigger", "DEFAULT_TARGET_PRECISION"]

DEFAULT_TARGET_PRECISION = 0.95


def threshold_on_grid(threshold: float, frac_bits: int) -> float:
    """The smallest score-grid value >= threshold: `score >= t` and `score >= t_grid` agree for every score."""
    step = 2.0 ** -frac_bits
    return math.ceil(threshold / step) * step


def sort_decisions(
    logits: np.ndarray, threshold: float, trigger_class: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class, score, trigger) per row of `logits` (N, classes); threshold already on the score grid."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must be (N, classes >= 2), got shape {z.shape}")
    cls = np.argmax(z, axis=1)
    top = z[np.arange(len(z)), cls]
    others = z.copy()
    others[np.arange(len(z)), cls] = -np.inf
    score = top - others.max(axis=1)
    fire = score >= threshold
    if trigger_class is not None:
        fire &= cls == trigger_class
    return cls, score, fire


def wrapper_cycles(n_classes: int, pack_cycles: int = 1) -> int:
    """Cycles the pixel-stream wrapper adds around the network (see the module docstring)."""
    return pack_cycles + max(1, math.ceil(math.log2(n_classes))) + 1 + 1


def trigger_latency(network_cycles: int, n_classes: int, clock_mhz: float, pack_cycles: int = 1) -> dict:
    cycles = int(network_cycles) + wrapper_cycles(n_classes, pack_cycles)
    return {
        "network_cycles": int(network_cycles),
        "wrapper_cycles": wrapper_cycles(n_classes, pack_cycles),
        "latency_cycles": cycles,
        "latency_us": round(cycles / clock_mhz, 4),
        "source": "estimate",
    }


def trigger_metrics(logits: np.ndarray, labels: np.ndarray, threshold: float, trigger_class: int | None) -> dict:
    """{n, fired, sort_rate, precision, recall, tp} of the sort decision against `labels`.

    With a trigger class, a fired sample is right when its label is that class; without one (sort any
    confident decision), when its label is the decided class. Recall: of the samples of the trigger class
    (or of all samples), the fraction fired and right. precision is None when nothing fires.
    """
    labels = np.asarray(labels).reshape(-1)
    cls, _, fire = sort_decisions(logits, threshold, trigger_class)
    right = (labels == trigger_class) if trigger_class is not None else (labels == cls)
    tp = int((fire & right).sum())
    fired = int(fire.sum())
    positives = int((labels == trigger_class).sum()) if trigger_class is not None else len(labels)
    return {"n": int(len(labels)), "fired": fired, "tp": tp, "sort_rate": round(fired / max(1, len(labels)), 6),
            "precision": round(tp / fired, 6) if fired else None,
            "recall": round(tp / positives, 6) if positives else None}


def choose_trigger(logits: np.ndarray, labels: np.ndarray, target_precision: float = DEFAULT_TARGET_PRECISION,
                   trigger_class: int | None = None) -> dict:
    """The class and threshold of the default sort trigger, from validation logits (module docstring).

    `trigger_class` given: only the threshold is chosen. Returns {trigger_class, threshold, target_precision,
    target_met, validation: trigger_metrics(...)}; the threshold is a score value, so it is on the score grid.
    """
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if len(z) == 0 or len(z) != len(labels):
        raise ValueError(f"choose_trigger: {len(z)} logits rows for {len(labels)} labels")
    cls, score, _ = sort_decisions(z, -np.inf)
    best_key, best = None, None
    classes = [trigger_class] if trigger_class is not None else range(z.shape[1])
    for c in classes:
        positives = int((labels == c).sum())
        mine = cls == c
        if not mine.any() or positives == 0:
            continue
        s, ok = score[mine], labels[mine] == c
        order = np.argsort(-s, kind="stable")
        s, ok = s[order], ok[order]
        tp, fired = np.cumsum(ok), np.arange(1, len(s) + 1)
        # a threshold t fires every sample with score >= t: evaluate at the last index of each distinct score
        last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
        for i in last:
            prec, rec = tp[i] / fired[i], tp[i] / positives
            met = prec >= target_precision
            # met first; then recall (met) or precision (not met); then the other; lower class; lower threshold
            key = (met, rec if met else prec, prec if met else rec, -c, -s[i])
            if best_key is None or key > best_key:
                best_key, best = key, (c, float(s[i]))
    if best is None:
        raise ValueError("choose_trigger: no class is both decided and present in the validation labels")
    c, t = best
    return {"trigger_class": int(c), "threshold": t, "target_precision": float(target_precision),
            "target_met": bool(best_key[0]), "validation": trigger_metrics(z, labels, t, int(c))}
