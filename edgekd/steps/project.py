"""Step `project`: the board project a lab turns into a bitstream, checked here by an emulated csim_design.

Writes into `project/` the self-contained folder of `edgekd.project.generate` (HLS top wrapper for the board's
interface, Vivado/Vitis scripts, Makefile, driver, test vectors, README) and `project.json`:
{board, part, clock_mhz, interface, files, csim: {n, exact, max_abs_diff, ...}, trigger (pixel_stream only)}.
The project's own testbenches are compiled with g++ and run on its test vectors (`edgekd.project.csim`); any
output that is not bit-equal to the QONNX model's stops the build.
"""

from __future__ import annotations

import logging

import numpy as np

from edgekd.data.cells import CellSplits
from edgekd.hw import load_board
from edgekd.io import load_npy, write_json
from edgekd.pipeline import BuildContext
from edgekd.project.csim import run_project_csim
from edgekd.project.generate import ProjectError, generate_project
from edgekd.project.trigger import choose_trigger, trigger_metrics

log = logging.getLogger(__name__)


def run(ctx: BuildContext) -> None:
    if ctx.config.task == "regression":  # speech emotion: edgekd.steps.audio
        from edgekd.steps import audio

        return audio.run_project(ctx)
    cfg = ctx.config.hls
    board = load_board(cfg.board)
    splits = CellSplits.load(ctx.dir("data") / "splits.npz")
    class_names = splits.class_names
    trigger_threshold, trigger_class, rule = cfg.trigger_threshold, cfg.trigger_class, None
    evaluation = None
    if board.interface == "pixel_stream":
        trigger_threshold, trigger_class, rule, evaluation = sort_trigger(ctx, splits)
    info = generate_project(
        ctx.work,
        hls_dir=ctx.dir("hls"),
        export_dir=ctx.dir("export"),
        board=board,
        name=ctx.config.name,
        class_names=list(class_names),
        trigger_threshold=trigger_threshold,
        trigger_class=trigger_class,
        trigger_rule=rule,
        trigger_evaluation=evaluation,
    )
    # project.json must exist for the csim runner to recognise the folder; rewritten with the result below
    write_json(ctx.work / "project.json", info)
    csim = run_project_csim(ctx.work, cache_dir=ctx.cache_dir)
    write_json(ctx.work / "project.json", {**info, "csim": csim})
    if not csim["passed"]:
        wrapper = csim["wrapper"]
        raise ProjectError(
            f"project C-simulation: {100 * csim['exact']:.2f}% of {csim['outputs']} outputs bit-equal "
            f"(max abs diff {csim['max_abs_diff']}, samples {csim['mismatched_samples']}); wrapper testbench "
            f"({wrapper['interface']}): {'passed' if wrapper['passed'] else 'FAILED'} {wrapper.get('stderr', '')}")
    log.info(
        "board project for %s (%s, %.1f MHz, %s): csim %d samples bit-exact, wrapper testbench passed (%.1f s)",
        board.name, info["part"], info["clock_mhz"], info["interface"], csim["n"], csim["seconds"],
    )


def sort_trigger(ctx: BuildContext, splits: CellSplits) -> tuple[float, int | None, dict, dict]:
    """(threshold, class, rule, evaluation) of the frame grabber's sort trigger.

    Unset `hls.trigger_threshold`: class and threshold chosen on the validation split from the hardware
    model's logits (hls/hw_val_outputs.npy; edgekd.project.trigger.choose_trigger). Either way, the
    trigger's precision and recall on validation and test come from the hardware model's logits
    (hw_val_outputs.npy, hw_outputs.npy: the emulator, checked == QONNX on both splits).
    """
    cfg = ctx.config.hls
    hls_dir = ctx.dir("hls")
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
