"""The sweep's two plots (accuracy against latency, against the binding resource's utilisation), from
sweep.json alone: every built point, the Pareto set joined and marked, the chosen point starred, the
budgets drawn as dashed lines. PNG embedded as base64 (edgekd.report.plots' encoder)."""

from __future__ import annotations

from edgekd.report.plots import _png, plt
from edgekd.sweep.select import accuracy_of

__all__ = ["accuracy_vs_latency", "accuracy_vs_utilization"]


def _scatter(doc: dict, axis: str, xlabel: str, budget: float | None, budget_label: str) -> str:
    rows = [r for r in doc["points"] if r["status"] == "ok" and accuracy_of(r) is not None]
    x = (lambda r: r["latency"]["us"]) if axis == "latency" else (lambda r: 100 * r["resources"]["binding_fraction"])
    flag = "pareto_latency" if axis == "latency" else "pareto_utilization"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    inside = [r for r in rows if r["within_budgets"]]
    outside = [r for r in rows if not r["within_budgets"]]
    for group, style, label in ((inside, {"color": "#4878a8"}, "within budgets"),
                                (outside, {"color": "#bbbbbb"}, "outside budgets / does not fit")):
        if group:
            ax.scatter([x(r) for r in group], [100 * accuracy_of(r) for r in group], s=30, label=label, **style)
    front = sorted((r for r in rows if r[flag]), key=x)
    if front:
        ax.plot([x(r) for r in front], [100 * accuracy_of(r) for r in front], "-o", color="#c44e52", mfc="none",
                ms=10, label="Pareto set")
    for r in rows:
        ax.annotate(str(r["index"]), (x(r), 100 * accuracy_of(r)), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    best = doc["summary"]["best"]
    for r in rows:
        if r["index"] == best:
            ax.scatter([x(r)], [100 * accuracy_of(r)], marker="*", s=260, color="#dd8452", zorder=5,
                       label=f"best.yaml (point {best})")
    if budget is not None:
        ax.axvline(budget, ls="--", color="#55a868", label=budget_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("hardware accuracy on the test split (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def accuracy_vs_latency(doc: dict) -> str:
    b = doc["budgets"].get("latency_us")
    return _scatter(doc, "latency", "decision latency, estimate (us)", b, f"budget {b} us")


def accuracy_vs_utilization(doc: dict) -> str:
    b = doc["budgets"].get("max_utilization")
    return _scatter(doc, "utilization", "binding resource utilisation, estimate (% of the board)",
                    None if b is None else 100 * b, f"budget {100 * b:.0f}%" if b is not None else "")
