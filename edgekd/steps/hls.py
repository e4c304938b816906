"""Step `hls`: hls4ml project from the contract's QONNX, compiled with g++, C-sim == QONNX, emulator on all data.

Reads only the export step's hardware contract (edgekd.contract), whichever task wrote it:
- the design: the fit search on the board, the hls4ml project and its cached C-simulation library
  (edgekd.hls.design.design_for_contract);
- C-sim against the QONNX model on the verification sample: bit-exact for a model that should be exact
  (else the build stops naming the first diverging layer), measured layer by layer for one that is not
  (edgekd.hls.fidelity);
- the fixed-point emulator (edgekd.hls.emulate), when the contract hands over whole splits: == C-sim on the
  sample, == QONNX on every test (and validation) input; its outputs (`hw_outputs.npy`, `hw_val_outputs.npy`)
  are the hardware model the report scores and the sort trigger is chosen (validation) and scored (test) on.
  Scores follow the contract's `scoring` (edgekd.scoring).
"""

from __future__ import annotations

import logging

import numpy as np

from edgekd.context import BuildContext
from edgekd.contract import HardwareContract
from edgekd.errors import FidelityError
from edgekd.hls.design import design_for_contract
from edgekd.hls.fidelity import csim_fidelity
from edgekd.hw import load_board
from edgekd.io import save_npy, write_json
from edgekd.scoring import score

log = logging.getLogger(__name__)


def run(ctx: BuildContext) -> None:
    cfg = ctx.config.hls
    contract = HardwareContract.load(ctx.dir("export"))
    board = load_board(cfg.board)
    # a pixel-stream board hands over P pixels per clock: the network's items arrive as the beats complete them
    arrival = {"pixels_per_clock": board.pixels_per_clock, "input_block": contract.input_block} \
        if board.interface == "pixel_stream" and cfg.io_type == "io_stream" else {}
    open_fit = _open_fit(ctx, contract, board) if board.is_open else None
    if open_fit is not None:
        # the bitstream comes from the RTL backend: its fit decides; the hls4ml project is the C-simulation and
        # emulator reference of the same model, so its own (hls4ml) estimate must not refuse it, and left to the
        # search (auto) it is built unrolled (Latency, reuse factor 1: the form the emulator covers and the RTL
        # backend's arithmetic), not folded to fit a part it is never built for
        update = {"on_overflow": "warn"}
        if cfg.reuse_factor == "auto" and cfg.strategy == "auto":
            update.update(reuse_factor=1, strategy="Latency")
        cfg = cfg.model_copy(update=update)
    hls_model, hls_config, fit, latency, precisions = design_for_contract(
        contract, cfg, board, ctx.work / "project", ctx.cache_dir, estimate_kw=arrival)
    estimate = {"board": board.model_dump(mode="json"), **latency}
    if open_fit is not None:
        estimate = open_fit_estimate(open_fit, board, estimate)
    write_json(ctx.work / "estimate.json", estimate)

    x = contract.verify_inputs()
    strict = contract.exact and not contract.allow_inexact
    fidelity, csim_outputs = csim_fidelity(hls_model, contract.qonnx_path, x, contract.reference_outputs(),
                                           strict=strict, classifier=contract.classifier)
    if contract.exact and fidelity["exact"] < 1.0:  # allow_inexact: reported, not stopped
        log.error("C-simulation differs from QONNX although every layer should be exact (%.2f%% bit-equal)",
                  100 * fidelity["exact"])
    save_npy(ctx.work / "csim_outputs.npy", csim_outputs)
    targets = contract.split_targets("test") if "test" in contract.splits else {}
    hardware = _emulate(ctx, contract, hls_model, x, csim_outputs, targets) if contract.splits else {}
    if contract.splits:
        csim_metrics = {**score(contract.scoring, csim_outputs, targets, sample=True), "source": "csim"}
        if "hw_metrics" not in hardware:  # the emulator does not cover this model: the C-simulated sample
            hardware["hw_metrics"] = {**csim_metrics, "n": len(x)}
    else:
        csim_metrics = None
    cache_info = getattr(hls_model, "csim_cache_info", None) or {}
    write_json(ctx.work / "hls_config.json", hls_config)
    write_json(ctx.work / "hls.json", {
        "board": board.name,
        "backend": cfg.backend,
        "io_type": cfg.io_type,
        "part": cfg.part,
        "clock_mhz": cfg.clock_mhz,
        "clock_period_ns": cfg.clock_period_ns,
        "reuse_factor": cfg.reuse_factor,
        "strategy": cfg.strategy,
        "layer_settings": {k: v.to_json() for k, v in fit.settings.items()} if fit is not None else None,
        "input_precision": contract.input_precision,
        "project_dir": "hls/project",
        "fidelity": fidelity,
        "precisions": precisions,
        "layers": [layer.name for layer in hls_model.get_layers()],
        "csim_metrics": csim_metrics,
        **hardware,
        "input_layout": "NHWC" if _channels_last(contract) else "NCHW",
        "csim_library": {"firmware_sha256": cache_info.get("hash"), "reused": cache_info.get("cached")},
    })


def _open_fit(ctx: BuildContext, contract: HardwareContract, board):
    """Open boards: the fit search on the RTL backend's cost model (edgekd.estimate.rtl_fit); a design that does
    not fit is refused here (hls.on_overflow: fail) before any C-simulation, Verilator or Yosys time is spent."""
    from edgekd.errors import BuildError, DesignDoesNotFitError
    from edgekd.rtl.network import RTLUnsupportedError
    from edgekd.rtl.plan import open_board_fit

    if not ctx.config.rtl.enabled:
        return None
    lanes = ctx.config.rtl.lanes if ctx.config.rtl.lanes != "auto" else 1
    try:
        result = open_board_fit(contract, ctx.config, board, lanes=int(lanes))
    except RTLUnsupportedError as err:
        raise DesignDoesNotFitError(f"open board {board.name}: the RTL backend cannot generate this model ({err}); "
                                    "its bitstream is built from the RTL backend's Verilog") from None
    except ValueError as err:  # a fixed rtl.reuse the layer does not take, or names a layer it does not have
        raise BuildError(f"rtl.reuse: {err}") from None
    j = result.to_json()
    log.info("fit (open board %s, RTL cost model): %s; %.0f%% of the logic slots (cap %.0f%%), %d cycles = %.3f us at "
             "%.1f MHz (the achieved Fmax of %s)%s", board.name, "fits" if result.fits else "does NOT fit",
             100 * result.fractions["logic_slots"], 100 * result.limits["logic_slots"], result.cycles, result.us,
             result.clock["mhz"], result.clock["from"],
             f"; reuse {j['reuse_factors']}" if j["reuse_factors"] else "")
    if not result.fits:
        msg = f"the design does not fit {board.name} ({board.part}): {result.advice}"
        if ctx.config.hls.on_overflow == "fail":
            raise DesignDoesNotFitError(msg + "; set hls.on_overflow: warn to build it anyway (the bitstream step "
                                        "then checks Yosys's count against the cap)")
        log.warning("%s (hls.on_overflow: warn: building it anyway)", msg)
    return result


def open_fit_estimate(result, board, hls_estimate: dict) -> dict:
    """estimate.json of an open board: the RTL design's figures (what the bitstream is built from) in the keys
    the report and the sweep read; the hls4ml project's estimate under `hls_estimate`."""
    j = result.to_json()
    mhz = result.clock["mhz"]
    res = j["resources"]
    # the report's per-layer table and plot read name, type, cycles, ii, dsp, lut (lut: logic slots here)
    per_layer = [{"name": n, "type": f"{c.impl}" + (f" R={c.reuse_factor}" if c.impl == "reuse" else ""),
                  "ii": c.ii_cycles, "lut": c.logic_slots, **c.to_json()} for n, c in result.settings.items()]
    return {"board": hls_estimate["board"], "clock_mhz": mhz, "clock": result.clock,
            "board_clock_mhz": result.board_clock_mhz, "io_type": "rtl", "cycles": result.cycles,
            "us": round(result.us, 4), "us_at_board_clock": j["us_at_board_clock"], "ii_cycles": result.interval_cycles,
            "throughput_per_s": round(mhz * 1e6 / result.interval_cycles, 1), "per_layer": per_layer,
            "resources": {"lut": res["logic_slots"], "ff": res["ff"], "dsp": res["dsp"], "bram_18k": res["bram_18k"],
                          "lut4": res["lut4"], "ccu2c": res["ccu2c"]},
            "source": j["source"], "model": "rtl", "fit": {**result.board_fit(board), "search": j},
            "hls_estimate": {k: v for k, v in hls_estimate.items() if k != "board"}}


def _channels_last(contract: HardwareContract) -> bool:
    from edgekd.export.qonnx import input_is_channels_last, load_qonnx

    return input_is_channels_last(load_qonnx(contract.qonnx_path))


def _emulate(ctx: BuildContext, contract: HardwareContract, hls_model, x: np.ndarray, csim_outputs: np.ndarray,
             test_targets: dict[str, np.ndarray]) -> dict:
    """The bit-exact emulator on every handed-over split (== C-sim on the sample, == QONNX on all), when it
    covers the model's layers; otherwise the reason (hw_metrics then come from the C-simulated sample)."""
    from edgekd.hls.emulate import Emulator, UnsupportedLayerError
    from edgekd.hls.verify import verify_emulator_against_csim, verify_emulator_against_qonnx

    try:
        emulator = Emulator(hls_model)
    except UnsupportedLayerError as err:
        log.warning("emulator does not cover this model (%s); hardware metrics from the C-simulated sample", err)
        return {"emulator": {"used": False, "reason": str(err)}}
    write_json(ctx.work / "emulator.json", emulator.to_json())
    vs_csim = verify_emulator_against_csim(emulator, hls_model, x, y_csim=csim_outputs)
    out = {"emulator": {"used": True},
           "emulator_vs_csim": {k: vs_csim[k] for k in ("n", "exact", "max_abs_diff")}}
    for split in contract.splits:
        inputs = contract.split_inputs(split)
        if split == "test" and not np.array_equal(inputs[: len(x)], x):
            raise FidelityError("the contract's test inputs do not start with its verification sample: the "
                                "whole-split comparison would not be on the hardware's inputs",
                                {"first_diverging_layer": "<input>"})
        vs_qonnx = verify_emulator_against_qonnx(emulator, contract.qonnx_path, inputs, return_outputs=True)
        outputs = np.asarray(vs_qonnx.pop("emulator_outputs"), dtype=np.float64)
        suffix = "" if split == "test" else f"_{split}"
        save_npy(ctx.work / f"hw{suffix}_outputs.npy", outputs)
        out[f"emulator_vs_qonnx{suffix}"] = {k: vs_qonnx[k] for k in ("n", "exact", "max_abs_diff")}
        if split == "test":
            out["emulator_images_per_s"] = vs_qonnx.get("emulator_images_per_s")
            out["hw_metrics"] = {**score(contract.scoring, outputs, test_targets),
                                 "n": len(outputs), "source": "emulator"}
    return out
