"""Step `project`: the board project a lab turns into a bitstream, checked here by an emulated csim_design.

Reads the hardware contract (edgekd.contract) and the hls step's folder, whichever task wrote them. Writes
into `project/` the self-contained folder of `edgekd.project.generate` (HLS top wrapper for the board's
interface, Vivado/Vitis scripts, Makefile, driver, test vectors, README) and `project.json`:
{board, part, clock_mhz, interface, files, csim: {n, exact, max_abs_diff, ...}, trigger (pixel_stream only)}.
The test vectors are what the hardware computes: the QONNX outputs for an exact model, the C-simulation's for
one that is not. The project's own testbenches are compiled with g++ and run on them (`edgekd.project.csim`);
any output that is not bit-equal stops the build.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edgekd.context import BuildContext
from edgekd.contract import HardwareContract
from edgekd.hw import load_board
from edgekd.io import load_npy, read_json, save_npy, write_json
from edgekd.project.csim import run_project_csim
from edgekd.project.generate import ProjectError, generate_project
from edgekd.project.interface import check_interface
from edgekd.project.trigger import choose_trigger, trigger_metrics

log = logging.getLogger(__name__)


def run(ctx: BuildContext) -> None:
    cfg = ctx.config.hls
    board = load_board(cfg.board)
    if board.is_open:
        # no vendor project: the open flow (steps rtl and bitstream, edgekd.openfpga) builds the bitstream here;
        # without project.json the report has no board-project section
        write_json(ctx.work / "open_board.json", {
            "board": board.name, "part": board.part, "toolchain": board.toolchain, "family": board.family,
            "note": "built with the open flow: the rtl step's Verilog in the self-test top, bitstream step"})
        log.info("board %s (%s) is built with the open flow; no vendor project", board.name, board.part)
        return
    contract = HardwareContract.load(ctx.dir("export"))
    image = [1, *contract.image_shape] if contract.image_shape else contract.input_shape
    check_interface(board, image, contract.classifier)
    hls = read_json(ctx.dir("hls") / "hls.json")
    exact = hls["fidelity"]["exact"] == 1.0
    trigger_threshold, trigger_class, rule, evaluation = cfg.trigger_threshold, cfg.trigger_class, None, None
    if board.interface == "pixel_stream" and "test" in contract.splits and "val" in contract.splits:
        targets = SimpleNamespace(y_val=contract.split_targets("val")["labels"],
                                  y_test=contract.split_targets("test")["labels"])
        trigger_threshold, trigger_class, rule, evaluation = sort_trigger(ctx, targets)
    with tempfile.TemporaryDirectory() as tmp:
        vectors = contract.folder if exact else _csim_vectors(ctx, contract, Path(tmp))
        info = generate_project(
            ctx.work, hls_dir=ctx.dir("hls"), export_dir=vectors, board=board, name=ctx.config.name,
            class_names=list(contract.output_names), trigger_threshold=trigger_threshold,
            trigger_class=trigger_class, trigger_rule=rule, trigger_evaluation=evaluation,
            host_postprocessing=contract.host_postprocessing,
        )
    info["expected_outputs"] = "qonnx" if exact else "csim (the model is not exact)"
    info["host_postprocessing"] = contract.host_postprocessing
    # project.json must exist for the csim runner to recognise the folder; rewritten with the result below
    write_json(ctx.work / "project.json", info)
    csim = run_project_csim(ctx.work, cache_dir=ctx.cache_dir)
    write_json(ctx.work / "project.json", {**info, "csim": csim})
    if not csim["passed"]:
        wrapper = csim["wrapper"]
        raise ProjectError(
            f"project C-simulation: {100 * csim['exact']:.2f}% of {csim['outputs']} outputs bit-equal "
            f"(max abs diff {csim['max_abs_diff']}, samples {csim.get('mismatched_samples')}); wrapper testbench "
            f"({wrapper.get('interface')}): {'passed' if wrapper['passed'] else 'FAILED'} {wrapper.get('stderr', '')}")
    log.info(
        "board project for %s (%s, %.1f MHz, %s): csim %d samples bit-exact, wrapper testbench passed (%.1f s)",
        board.name, info["part"], info["clock_mhz"], info["interface"], csim["n"], csim["seconds"],
    )


def _csim_vectors(ctx: BuildContext, contract: HardwareContract, folder: Path) -> Path:
    """Test vectors of a model that is not exact: the C-simulation truncates inputs off the hardware grid
    (ap_fixed AP_TRN) and its outputs are what the board computes."""
    from edgekd.hls.emulate import FixedType

    frac = FixedType.parse(contract.input_precision).frac
    x = contract.verify_inputs().astype(np.float64)
    save_npy(folder / "verify_inputs.npy", np.floor(x * 2.0 ** frac) / 2.0 ** frac)
    save_npy(folder / "qonnx_outputs.npy", load_npy(ctx.dir("hls") / "csim_outputs.npy"))
    for name in ("verify_labels.npy", "export.json"):
        if (contract.folder / name).exists():
            shutil.copy(contract.folder / name, folder / name)
    return folder


def sort_trigger(ctx: BuildContext, splits) -> tuple[float, int | None, dict, dict]:
    """(threshold, class, rule, evaluation) of the frame grabber's sort trigger.

    Unset `hls.trigger_threshold`: class and threshold chosen on the validation split from the hardware
    model's logits (hls/hw_val_outputs.npy; edgekd.project.trigger.choose_trigger). Either way, the
    trigger's precision and recall on validation and test come from the hardware model's logits
    (hw_val_outputs.npy, hw_outputs.npy: the emulator, checked == QONNX on both splits).
    `splits` has the labels `y_val` and `y_test`.
    """
    cfg = ctx.config.hls
    hls_dir = ctx.dir("hls")
    if not (hls_dir / "hw_val_outputs.npy").exists():
        raise ProjectError("the sort trigger is chosen on the emulator's validation outputs, which the hls step "
                           "did not write (the emulator does not cover this model); set hls.trigger_threshold "
                           "and hls.trigger_class, or use an AXI-stream board")
    val, test = load_npy(hls_dir / "hw_val_outputs.npy"), load_npy(hls_dir / "hw_outputs.npy")
    y_val, y_test = np.asarray(splits.y_val), np.asarray(splits.y_test)
    if cfg.trigger_threshold is None:
        chosen = choose_trigger(val, y_val, cfg.trigger_target_precision, cfg.trigger_class)
        threshold, cls = chosen["threshold"], chosen["trigger_class"]
        rule = {"chosen_on": "validation", "target_precision": chosen["target_precision"],
                "target_met": chosen["target_met"],
                "rule": "class and threshold with the highest validation recall among those whose validation "
                        "precision reaches target_precision (else the highest precision)"}
    else:
        threshold, cls = float(cfg.trigger_threshold), cfg.trigger_class
        rule = {"chosen_on": "config", "rule": "hls.trigger_threshold / hls.trigger_class as configured"}
    evaluation = {"validation": {**trigger_metrics(val, y_val, threshold, cls), "source": "emulator"},
                  "test": {**trigger_metrics(test, y_test, threshold, cls), "source": "emulator"}}
    return threshold, cls, rule, evaluation
