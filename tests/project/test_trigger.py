"""The default sort trigger: class and threshold chosen on validation, precision/recall measured on test."""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.project.trigger import choose_trigger, sort_decisions, trigger_metrics


def _logits(labels, margin, noise, seed):
    rng = np.random.default_rng(seed)
    sign = np.where(labels == 1, 1.0, -1.0)
    z = np.stack([-sign * margin + rng.normal(0, noise, len(labels)), sign * margin + rng.normal(0, noise, len(labels))], 1)
    return np.round(z * 16) / 16  # on an ap_fixed grid with 4 fractional bits


def test_metrics_by_hand():
    z = np.array([[0.0, 1.0], [0.0, 0.5], [0.0, 0.25], [1.0, 0.0]])
    y = np.array([1, 0, 1, 1])
    m = trigger_metrics(z, y, 0.5, 1)  # fires on rows 0 and 1 (scores 1.0, 0.5); row 1 is wrong
    assert (m["fired"], m["tp"], m["precision"], m["recall"], m["sort_rate"]) == (2, 1, 0.5, pytest.approx(1 / 3), 0.5)
    assert trigger_metrics(z, y, 2.0, 1)["precision"] is None


def test_choice_reaches_the_target_precision_with_the_best_recall():
    y = np.random.default_rng(1).integers(0, 2, 800)
    z = _logits(y, 1.0, 1.0, 2)
    c = choose_trigger(z, y, target_precision=0.9)
    assert c["target_met"] and c["validation"]["precision"] >= 0.9
    # brute force over every (class, threshold) on the score values: nothing meets the target with more recall
    _, score, _ = sort_decisions(z, -np.inf)
    best = max(trigger_metrics(z, y, t, k)["recall"] for k in (0, 1) for t in np.unique(score)
               if (trigger_metrics(z, y, t, k)["precision"] or 0) >= 0.9)
    assert c["validation"]["recall"] == best
    # the threshold is a score value, so on the score grid: the hardware compares exactly
    assert c["threshold"] * 16 == round(c["threshold"] * 16)


def test_the_default_trigger_means_something():
    """The old default (threshold 0, any class) fires on every sample; the chosen one sorts selectively."""
    y_val, y_test = (np.random.default_rng(s).integers(0, 2, 600) for s in (3, 4))
    z_val, z_test = _logits(y_val, 0.8, 1.0, 5), _logits(y_test, 0.8, 1.0, 6)
    assert trigger_metrics(z_test, y_test, 0.0, None)["sort_rate"] == 1.0
    c = choose_trigger(z_val, y_val, target_precision=0.95)
    test = trigger_metrics(z_test, y_test, c["threshold"], c["trigger_class"])
    assert c["threshold"] > 0 and test["sort_rate"] < 0.6
    assert test["precision"] > 0.9  # chosen on validation, holds on test within noise


def test_unreachable_target_takes_the_highest_precision():
    y = np.array([0, 1, 0, 1, 0, 1])
    z = np.array([[0, 1], [0, 1], [1, 0], [1, 0], [0, 0.5], [0.5, 0]], dtype=float)  # coin flips
    c = choose_trigger(z, y, target_precision=0.99)
    assert not c["target_met"] and c["validation"]["precision"] == 0.5


def test_a_configured_class_is_kept():
    y = np.random.default_rng(7).integers(0, 2, 300)
    c = choose_trigger(_logits(y, 1.0, 1.0, 8), y, target_precision=0.9, trigger_class=0)
    assert c["trigger_class"] == 0
