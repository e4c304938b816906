"""Step `project`: the board project a lab turns into a bitstream, checked here by an emulated csim_design.

Writes into `project/` the self-contained folder of `edgekd.project.generate` (HLS top wrapper for the board's
interface, Vivado/Vitis scripts, Makefile, driver, test vectors, README) and `project.json`:
{board, part, clock_mhz, interface, files, csim: {n, exact, max_abs_diff, ...}, trigger (pixel_stream only)}.
The project's own testbenches are compiled with g++ and run on its test vectors (`edgekd.project.csim`); any
output that is not bit-equal to the QONNX model's stops the build.
"""

from __future__ import annotations

import logging

from edgekd.data.cells import CellSplits
from edgekd.hw import load_board
from edgekd.io import write_json
from edgekd.pipeline import BuildContext
from edgekd.project.csim import run_project_csim
from edgekd.project.generate import ProjectError, generate_project

log = logging.getLogger(__name__)


def run(ctx: BuildContext) -> None:
    if ctx.config.task == "regression":  # speech emotion: edgekd.steps.audio
        from edgekd.steps import audio

        return audio.run_project(ctx)
    cfg = ctx.config.hls
    board = load_board(cfg.board)
    class_names = CellSplits.load(ctx.dir("data") / "splits.npz").class_names
    info = generate_project(
        ctx.work,
        hls_dir=ctx.dir("hls"),
        export_dir=ctx.dir("export"),
        board=board,
        name=ctx.config.name,
        class_names=list(class_names),
        trigger_threshold=cfg.trigger_threshold,
        trigger_class=cfg.trigger_class,
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
