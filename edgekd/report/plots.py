"""Plots for the HTML report, rendered from report.json alone and embedded as base64 PNG."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def per_layer_latency(report: dict) -> str:
    layers = [l for l in report["latency"]["estimate"]["per_layer"] if l["cycles"] or l["ii"] > 1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(layers) + 1))
    names = [l["name"] for l in layers][::-1]
    ax.barh(names, [l["cycles"] for l in layers][::-1], color="#4878a8", label="latency")
    ax.barh(names, [l["ii"] for l in layers][::-1], color="none", edgecolor="#c44e52", label="II")
    ax.set_xlabel("cycles (estimate)")
    ax.legend(loc="lower right")
    return _png(fig)


def latency_sources(report: dict) -> str:
    """Estimate vs synthesis vs board vs the published figure, in microseconds."""
    lat = report["latency"]
    bars = [("estimate", lat["estimate"]["us"])]
    if lat.get("synthesis") and lat["synthesis"].get("us") is not None:
        bars.append(("synthesis", lat["synthesis"]["us"]))
    if lat.get("board"):
        bars.append(("board (median)", lat["board"]["median_us"]))
    ref = report.get("reference") or {}
    if ref.get("fpga_latency_us"):
        bars.append(("paper inference", ref["fpga_latency_us"]))
    if ref.get("trigger_latency_us"):
        bars.append(("paper trigger", ref["trigger_latency_us"]))
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(bars) + 1))
    ax.barh([b[0] for b in bars][::-1], [b[1] for b in bars][::-1], color="#55a868")
    for i, (_, v) in enumerate(bars[::-1]):
        ax.text(v, i, f" {v:.2f} us", va="center")
    ax.set_xlabel("latency (us)")
    return _png(fig)


def resources_used(report: dict) -> str:
    fit = report["resources"]["fit"]["resources"]
    keys = list(fit)
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(keys) + 1))
    ax.barh(keys, [100 * (fit[k]["fraction"] or 0) for k in keys], color="#8172b2", label="estimate")
    synth = report["resources"].get("synthesis") or {}
    avail = report["resources"]["available"]
    pts = [(i, 100 * synth[k] / avail[k]) for i, k in enumerate(keys) if synth.get(k) is not None and avail.get(k)]
    if pts:
        ax.scatter([p[1] for p in pts], [p[0] for p in pts], color="black", zorder=3, label="synthesis")
    ax.axvline(100, color="#c44e52", linestyle="--")
    ax.set_xlabel(f"% of {report['resources']['board']} used")
    ax.legend(loc="lower right")
    return _png(fig)
