"""Summarise paired training arms (edgekd.distill.baselines) over seeds: means, paired tests, a plot.

A run is a dict with keys shift, budget, teacher_seed, student_seed, arm, test_accuracy and `correct` (the
per-image test correctness, numpy.packbits as hex). Runs of two arms with the same (shift, budget, teacher
seed, student seed) are a pair: same labelled subset, validation images, initial weights and steps.
`summarise_runs` gives, per (shift, budget): each arm's mean and sd; every arm against labels-only and against
kd as paired differences (paired t-test: p and 95% CI; edgekd.distill.stats) with an exact McNemar test per
pair on the per-image predictions; and flags where the distilled student is below labels-only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.distill.stats import mcnemar_exact, paired_t

__all__ = ["plot_budgets", "summarise_runs"]

REFERENCES = ("labels_only", "kd")


def _correct(run: dict, n: int | None = None) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(run["correct"]), np.uint8)).astype(bool)
    return bits[:n] if n is not None else bits


def _compare(a: dict, b: dict, n_test: int) -> dict:
    keys = sorted(set(a) & set(b))
    t = paired_t([a[k]["test_accuracy"] for k in keys], [b[k]["test_accuracy"] for k in keys])
    per_pair = []
    for k in keys:
        m = mcnemar_exact(_correct(a[k], n_test), _correct(b[k], n_test))
        per_pair.append({"teacher_seed": k[0], "student_seed": k[1], **m,
                         "difference": a[k]["test_accuracy"] - b[k]["test_accuracy"]})
    return {"paired_t": t, "mcnemar": per_pair,
            "mcnemar_pairs_a_better_p05": sum(p["p"] < 0.05 and p["a_only"] > p["b_only"] for p in per_pair),
            "mcnemar_pairs_b_better_p05": sum(p["p"] < 0.05 and p["b_only"] > p["a_only"] for p in per_pair)}


def summarise_runs(runs: list[dict], n_test: int) -> dict:
    """{"rows": one row per run without the per-image bits, "groups": per shift and budget, "comparisons_summary"}."""
    rows = [{k: v for k, v in r.items() if k not in ("correct", "settings", "tag")} for r in runs]
    rows.sort(key=lambda r: (r["shift"], r["budget"], r["arm"], r["teacher_seed"], r["student_seed"]))
    groups, lines = {}, []
    for shift, budget in sorted({(r["shift"], r["budget"]) for r in runs}):
        by_arm: dict[str, dict] = {}
        for r in runs:
            if r["shift"] == shift and r["budget"] == budget:
                by_arm.setdefault(r["arm"], {})[(r["teacher_seed"], r["student_seed"])] = r
        arms = {}
        for arm, rs in sorted(by_arm.items()):
            acc = np.array([r["test_accuracy"] for r in rs.values()])
            arms[arm] = {"n": len(acc), "mean": float(acc.mean()), "sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                         "labels_used": sorted({r["labels_used"] for r in rs.values()}),
                         "train_accuracy_labelled_mean": float(np.mean([r["train_accuracy_labelled"] for r in rs.values()]))}
        comparisons = {}
        for ref in REFERENCES:
            if ref not in by_arm:
                continue
            for arm in by_arm:
                if arm == ref or (ref == "kd" and arm == "labels_only"):
                    continue
                c = _compare(by_arm[arm], by_arm[ref], n_test)
                comparisons[f"{arm} - {ref}"] = c
                t = c["paired_t"]
                lines.append(f"{shift} {budget:g}: {arm} - {ref} = {100 * t['mean']:+.2f} points "
                             f"(95% CI {100 * t['ci95'][0]:+.2f} to {100 * t['ci95'][1]:+.2f}, p = {t['p']:.2g}, "
                             f"n = {t['n']}; McNemar p < 0.05 for {c['mcnemar_pairs_a_better_p05']} pairs better, "
                             f"{c['mcnemar_pairs_b_better_p05']} worse)")
        flags = []
        if "kd" in arms and "labels_only" in arms:
            below = [k for k in set(by_arm["kd"]) & set(by_arm["labels_only"])
                     if by_arm["kd"][k]["test_accuracy"] < by_arm["labels_only"][k]["test_accuracy"]]
            if below:
                flags.append(f"the distilled student (kd) is below its labels-only baseline in {len(below)} of "
                             f"{len(set(by_arm['kd']) & set(by_arm['labels_only']))} pairs")
        groups[f"{shift}/{budget:g}"] = {"shift": shift, "budget": budget, "arms": arms, "comparisons": comparisons,
                                         "flags": flags}
    return {"rows": rows, "groups": groups, "comparisons_summary": lines}


def plot_budgets(result: dict, dest: Path) -> None:
    """Test accuracy (mean +- sd over seed pairs) against the label budget, one line per arm, one panel per shift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(result["groups"].values())
    shifts = sorted({g["shift"] for g in groups})
    if not shifts:
        return
    fig, axes = plt.subplots(1, len(shifts), figsize=(5.5 * len(shifts), 4.2), squeeze=False, sharey=True)
    for ax, shift in zip(axes[0], shifts):
        mine = sorted((g for g in groups if g["shift"] == shift), key=lambda g: g["budget"])
        arms = sorted({a for g in mine for a in g["arms"]})
        for i, arm in enumerate(arms):
            pts = [(g["budget"], g["arms"][arm]) for g in mine if arm in g["arms"]]
            x = np.array([100 * b for b, _ in pts]) * (1 + 0.03 * (i - len(arms) / 2))  # small offsets: visible bars
            ax.errorbar(x, [100 * s["mean"] for _, s in pts], yerr=[100 * s["sd"] for _, s in pts], marker="o",
                        capsize=3, label=f"{arm} (n={pts[0][1]['n']})" if pts else arm)
        ax.set_xscale("log")
        ticks = [100 * g["budget"] for g in mine]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labelled share of the lab's pool (%)")
        ax.set_title(f"teacher from another domain: {shift} shift")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%), mean +- sd over seed pairs")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)
