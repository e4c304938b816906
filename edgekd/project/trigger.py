"""The frame grabber's sort decision, as the pixel-stream wrapper computes it in hardware.

class   = argmax of the logits (the first index on a tie, like the C++ loop)
score   = logit[class] - the largest other logit (the decision margin, >= 0; exact on the result grid)
trigger = score >= threshold (threshold rounded UP onto the score grid, so the comparison is exact),
          and class == trigger_class when one is configured

Trigger latency (source: estimate) = the network's estimated latency (hls/estimate.json, first input
element to logits) + the wrapper's own pipeline: one register packing pixels into the network's input
words, ceil(log2(classes)) compare levels for argmax and margin, one for the threshold, one output register.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sort_decisions", "threshold_on_grid", "wrapper_cycles", "trigger_latency"]


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


def wrapper_cycles(n_classes: int) -> int:
    """Cycles the pixel-stream wrapper adds around the network (see the module docstring)."""
    return 1 + max(1, math.ceil(math.log2(n_classes))) + 1 + 1


def trigger_latency(network_cycles: int, n_classes: int, clock_mhz: float) -> dict:
    cycles = int(network_cycles) + wrapper_cycles(n_classes)
    return {
        "network_cycles": int(network_cycles),
        "wrapper_cycles": wrapper_cycles(n_classes),
        "latency_cycles": cycles,
        "latency_us": round(cycles / clock_mhz, 4),
        "source": "estimate",
    }
