"""The RTL design of a model planned without writing it: what the open-board fit search prices.

`plan_network` traces every kernel with alkaid (the CMVM solve that generation runs too: about a second for the
zoo's jet tagger, seconds for a 3x3x16 -> 16 conv) and returns the manifest fields the cost model reads
(layers, stages with each kernel's alkaid cost and pipeline stages, the input grid, lanes, latency_cutoff),
and the bits of each dense layer's integer weights (a reuse kernel's ROM width and multiplier operand).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekd.rtl.network import Layer, load_network, parse_fixed

__all__ = ["plan_network", "weight_bits"]


def weight_bits(layer: Layer) -> int | None:
    """Bits of the layer's weights as signed integers on their finest power-of-two grid (None: not on one)."""
    if layer.weight is None:
        return None
    w = np.asarray(layer.weight, dtype=np.float64).ravel()
    nz = np.abs(w[w != 0])
    if nz.size == 0:
        return 1
    for f in range(0, 33):
        q = w * 2.0**f
        if np.array_equal(q, np.round(q)):
            return int(np.max(np.abs(q))).bit_length() + 1
    return None


def plan_network(qonnx_path: Path | str, input_precision: str, *, latency_cutoff: float = 3.0, lanes: int = 1,
                 pixels_per_beat: int = 1) -> tuple[dict[str, Any], dict[str, int]]:
    """(plan, {dense layer: weight bits}) of the model's RTL design; raises RTLUnsupportedError like generation."""
    from edgekd.rtl.generate import build_top

    layers, in_shape, _ = load_network(qonnx_path)
    in_kif = parse_fixed(input_precision)
    _, kernels, info = build_top(layers, in_kif, "edgekd_top", pixels_per_beat, latency_cutoff, lanes)
    plan = {"layers": [layer.describe() for layer in layers], "stages": info["stages"], "input_kif": list(in_kif),
            "input_shape": list(in_shape), "lanes": info["lanes"], "latency_cutoff": latency_cutoff,
            "beats_per_image": info["beats_per_image"], "frame_gap_cycles": int(info.get("frame_gap_cycles", 0)),
            "alkaid_cost": float(sum(s.get("cost", 0.0) * s.get("instances", 1) for s in info["stages"]))}
    bits = {layer.name: b for layer in layers if layer.kind == "dense" and (b := weight_bits(layer)) is not None}
    return plan, bits


def reuse_support() -> dict[str, Any]:
    """Whether the RTL backend can generate time-multiplexed (reuse) dense kernels, and why not."""
    import importlib.util

    if importlib.util.find_spec("edgekd.rtl.reuse") is None:
        return {"available": False,
                "why": "the RTL backend has no time-multiplexed (reuse) dense kernel yet (edgekd.rtl.reuse)"}
    return {"available": True, "why": None}


def open_board_fit(contract: Any, config: Any, board: Any, lanes: int = 1):
    """The open-board fit search (edgekd.estimate.rtl_fit) of a contract's model under a build config: the planned
    RTL design, the cap bitstream.max_utilisation on logic slots and hls.max_utilization on FF, DSP and BRAM."""
    from edgekd.estimate.rtl_fit import fit_open_board

    rtl = config.rtl
    plan, bits = plan_network(contract.qonnx_path, contract.input_precision, latency_cutoff=rtl.latency_cutoff,
                              lanes=lanes, pixels_per_beat=rtl.pixels_per_beat)
    hls = config.hls
    limits = {"logic_slots": float(config.bitstream.max_utilisation), "ff": hls.utilization_limit("ff"),
              "dsp": hls.utilization_limit("dsp"), "bram_18k": hls.utilization_limit("bram_18k")}
    dense = [layer["name"] for layer in plan["layers"] if layer["kind"] == "dense"]
    if rtl.reuse == "auto":
        fixed = None
    elif isinstance(rtl.reuse, dict):
        fixed = {n: int(rtl.reuse.get(n, 1)) for n in dense} | {k: int(v) for k, v in rtl.reuse.items()}
    else:
        fixed = {n: int(rtl.reuse) for n in dense}
    return fit_open_board(plan, board, limits, weight_bits=bits, reuse=reuse_support(), fixed=fixed, selftest=True)
