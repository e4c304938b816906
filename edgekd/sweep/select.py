"""Budgets, the Pareto set and the chosen point.

A point is *within budgets* when it built, fits its board (hls.max_utilization, the fit check's verdict) and
meets every budget of the sweep file: decision latency <= budgets.latency_us, fullest resource <=
budgets.max_utilization, params <= budgets.params. The chosen point (best.yaml) is the most accurate of
those (hardware accuracy on the whole test split); ties go to the lower latency, then fewer parameters,
then the earlier point. The Pareto set: points no other point beats on both accuracy (higher) and the
other axis (lower), with latency or the binding resource's utilisation as that axis.
"""

from __future__ import annotations

from edgekd.sweep.spec import Budgets

__all__ = ["accuracy_of", "budget_verdict", "choose_best", "pareto_indices"]


def accuracy_of(result: dict) -> float | None:
    acc = result.get("accuracy") or {}
    return acc.get("hardware") if acc.get("hardware") is not None else acc.get("quant")


def budget_verdict(result: dict, budgets: Budgets) -> list[str]:
    """Why a point is out of budget (empty: within budgets)."""
    if result.get("status") != "ok":
        return ["did not build"]
    reasons = []
    res = result.get("resources") or {}
    if not res.get("fits"):
        reasons.append(f"does not fit {res.get('board')} ({res.get('binding')} over its limit)")
    us = (result.get("latency") or {}).get("us")
    if budgets.latency_us is not None and (us is None or us > budgets.latency_us):
        reasons.append(f"latency {us} us > {budgets.latency_us} us")
    frac = res.get("binding_fraction")
    if budgets.max_utilization is not None and (frac is None or frac > budgets.max_utilization):
        reasons.append(f"{res.get('binding')} {frac} > {budgets.max_utilization}")
    params = result.get("params")
    if budgets.params is not None and (params is None or params > budgets.params):
        reasons.append(f"params {params} > {budgets.params}")
    return reasons


def pareto_indices(results: list[dict], axis: str = "latency") -> list[int]:
    """Indices (result['index']) of the Pareto set: max accuracy against min latency (or utilisation)."""
    rows = []
    for r in results:
        acc = accuracy_of(r) if r.get("status") == "ok" else None
        cost = (r.get("latency") or {}).get("us") if axis == "latency" else (r.get("resources") or {}).get("binding_fraction")
        if acc is not None and cost is not None:
            rows.append((r["index"], acc, cost))
    front = []
    for i, acc, cost in rows:
        dominated = any((a >= acc and c <= cost) and (a > acc or c < cost) for j, a, c in rows if j != i)
        if not dominated:
            front.append(i)
    return sorted(front)


def choose_best(results: list[dict], budgets: Budgets) -> dict | None:
    ok = [r for r in results if not budget_verdict(r, budgets) and accuracy_of(r) is not None]
    if not ok:
        return None
    return min(ok, key=lambda r: (-accuracy_of(r), r["latency"]["us"], r.get("params") or 0, r["index"]))
