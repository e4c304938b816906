"""Paired statistics for comparing two training arms run with the same seeds on the same test images.

- `paired_t`: the per-seed differences of two arms' accuracies, their mean, sd, the paired t-test's two-sided
  p-value and the 95% confidence interval of the mean difference (Student t with n - 1 degrees of freedom).
- `mcnemar_exact`: on one seed's per-image predictions, the images only arm A gets right (b) and only arm B
  gets right (c); the exact two-sided McNemar p-value is the binomial test of b against b + c at 1/2.

Both take the pairing seriously: an unpaired mean +- sd hides differences smaller than the seed spread.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["mcnemar_exact", "paired_t"]


def paired_t(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> dict:
    """Paired t-test of a - b (same seeds in the same order): n, mean, sd, t, p (two-sided), ci95 [lo, hi]."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    if n < 2:
        return {"n": n, "mean": float(d.mean()) if n else float("nan"), "sd": float("nan"), "t": float("nan"),
                "p": float("nan"), "ci95": [float("nan"), float("nan")]}
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.975, n - 1)) * se
    if se == 0.0:  # every seed gave the same difference
        t, p = (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / se
        p = float(2 * stats.t.sf(abs(t), n - 1))
    return {"n": n, "mean": mean, "sd": sd, "t": t, "p": p, "ci95": [mean - half, mean + half]}


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test on paired per-image correctness: b = A right and B wrong, c = A wrong and B right."""
    ca, cb = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if ca.shape != cb.shape:
        raise ValueError(f"per-image results of different lengths: {ca.shape} and {cb.shape}")
    b, c = int((ca & ~cb).sum()), int((~ca & cb).sum())
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return {"a_only": b, "b_only": c, "p": p}
