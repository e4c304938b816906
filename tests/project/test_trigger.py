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


def _ctx(tmp_path, threshold, cls=None):
    from types import SimpleNamespace

    from edgekd.io import save_npy

    y_val, y_test = np.random.default_rng(9).integers(0, 2, 400), np.random.default_rng(10).integers(0, 2, 400)
    save_npy(tmp_path / "hls" / "hw_val_outputs.npy", _logits(y_val, 1.0, 1.0, 11))
    save_npy(tmp_path / "hls" / "hw_outputs.npy", _logits(y_test, 1.0, 1.0, 12))
    hls = SimpleNamespace(trigger_threshold=threshold, trigger_class=cls, trigger_target_precision=0.9)
    ctx = SimpleNamespace(config=SimpleNamespace(hls=hls), dir=lambda name: tmp_path / name)
    return ctx, SimpleNamespace(y_val=y_val, y_test=y_test)


def test_project_step_chooses_on_validation_and_scores_on_test(tmp_path):
    from edgekd.steps.project import sort_trigger

    ctx, splits = _ctx(tmp_path, None)
    threshold, cls, rule, ev = sort_trigger(ctx, splits)
    assert rule["chosen_on"] == "validation" and rule["target_met"]
    assert ev["validation"]["precision"] >= 0.9 and ev["test"]["n"] == 400 and ev["test"]["source"] == "emulator"
    assert ev["test"] == {**trigger_metrics(np.load(tmp_path / "hls" / "hw_outputs.npy"), splits.y_test, threshold, cls),
                          "source": "emulator"}


def test_project_step_keeps_a_configured_trigger(tmp_path):
    from edgekd.steps.project import sort_trigger

    ctx, splits = _ctx(tmp_path, 0.5, 1)
    threshold, cls, rule, ev = sort_trigger(ctx, splits)
    assert (threshold, cls, rule["chosen_on"]) == (0.5, 1, "config")
    assert ev["test"]["fired"] > 0


def test_decision_word_layout_and_decoding():
    from edgekd.project.generate import decision_word_layout, decode_decision_words

    lay = decision_word_layout(17, 2)
    assert [(f["name"], f["lsb"], f["width"]) for f in lay["fields"]] == [
        ("score", 0, 17), ("cls", 17, 2), ("trigger", 19, 1), ("valid", 20, 1)]
    assert (lay["used"], lay["width"]) == (21, 24)  # whole bytes on the AXI-Stream
    raw_score = (1 << 17) - 3  # -3 LSB in two's complement
    word = raw_score | (2 << 17) | (1 << 19) | (1 << 20)
    got = decode_decision_words(np.array([word], dtype=np.uint64), lay, score_frac=16)
    assert (got["score"][0], got["cls"][0], got["trigger"][0], got["valid"][0]) == (-3 / 2**16, 2, 1, 1)
