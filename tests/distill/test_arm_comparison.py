import numpy as np
import pytest

from edgekd.distill.arm_comparison import plot_budgets, summarise_runs


def _run(arm, ts, ss, correct):
    correct = np.asarray(correct, bool)
    return {"tag": "grid", "shift": "s", "budget": 0.05, "teacher_seed": ts, "student_seed": ss, "arm": arm,
            "test_accuracy": float(correct.mean()), "labels_used": 30, "train_accuracy_labelled": 1.0,
            "correct": np.packbits(correct).tobytes().hex()}


def test_pairs_tests_and_flags(tmp_path):
    n = 20
    runs = []
    for ts, ss, lo_right, kd_right in ((0, 0, 10, 16), (0, 1, 12, 15), (1, 0, 11, 19)):
        runs += [_run("labels_only", ts, ss, np.arange(n) < lo_right), _run("kd", ts, ss, np.arange(n) < kd_right)]
    runs.append(_run("labels_only", 1, 1, np.ones(n)))  # unpaired: no kd run of this seed pair
    out = summarise_runs(runs, n)
    g = out["groups"]["s/0.05"]
    assert g["arms"]["kd"]["n"] == 3 and g["arms"]["labels_only"]["n"] == 4
    c = g["comparisons"]["kd - labels_only"]
    assert c["paired_t"]["n"] == 3 and c["paired_t"]["mean"] == pytest.approx((6 + 3 + 8) / 3 / n)
    first = c["mcnemar"][0]  # kd right on 6 images labels-only gets wrong, never the reverse
    assert (first["a_only"], first["b_only"]) == (6, 0) and first["p"] == pytest.approx(2 / 64)
    assert c["mcnemar_pairs_a_better_p05"] == 2  # 6-0 (p 0.031) and 8-0 (p 0.0078); 3-0 (p 0.25) is not
    assert g["flags"] == [] and len(out["rows"]) == 7 and "correct" not in out["rows"][0]
    worse = summarise_runs([_run("labels_only", 0, 0, np.ones(n)), _run("kd", 0, 0, np.arange(n) < 15)], n)
    assert "below its labels-only baseline in 1 of 1 pairs" in worse["groups"]["s/0.05"]["flags"][0]
    plot_budgets(out, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
