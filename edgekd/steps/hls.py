"""Step `hls`: hls4ml project from the cleaned QONNX, compiled with g++, C-sim == QONNX exactly.

The C-simulation library is cached by the hash of its firmware sources (cache/csim). The fixed-point
emulator (edgekd.hls.emulate) must equal the C-simulation on the verification sample and QONNX on
the whole test split; its accuracy there is `hw_metrics` in hls.json (next to `csim_metrics`, which
covers the verification sample only). Its logits on test and validation (`hw_outputs.npy`,
`hw_val_outputs.npy`, both checked == QONNX) are the hardware model the sort trigger is chosen (validation)
and scored (test) on.
"""

from __future__ import annotations

import numpy as np

from edgekd.distill.metrics import classification_metrics
from edgekd.data.cells import CellSplits
from edgekd.data.transforms import to_model_input
from edgekd.export.qonnx import input_is_channels_last, load_qonnx
from edgekd.export.verify import FidelityError
from edgekd.hls.design import fitted_design
from edgekd.hls.emulate import Emulator
from edgekd.hls.verify import (
    input_on_grid,
    verify_csim_against_qonnx,
    verify_emulator_against_csim,
    verify_emulator_against_qonnx,
)
from edgekd.hw import load_board
from edgekd.io import load_npy, read_json, save_npy, write_json
from edgekd.pipeline import BuildContext


def run(ctx: BuildContext) -> None:
    if ctx.config.task == "regression":  # speech emotion: edgekd.steps.audio
        from edgekd.steps import audio

        return audio.run_hls(ctx)
    cfg = ctx.config.hls
    export = read_json(ctx.dir("export") / "export.json")
    qonnx_path = ctx.dir("export") / export["qonnx"]
    precision = export["input_precision"]
    project_dir = ctx.work / "project"
    board = load_board(cfg.board)
    block = int(export.get("input_block", 1))  # the student's k x k pixel blocks (export.json)
    # a pixel-stream board hands over P pixels per clock: the network's items arrive as the beats complete them
    arrival = {"pixels_per_clock": board.pixels_per_clock, "input_block": block} \
        if board.interface == "pixel_stream" and cfg.io_type == "io_stream" else {}
    design = fitted_design(qonnx_path, cfg, board, project_dir, precision, csim_cache=ctx.cache_dir / "csim",
                           estimate_kw=arrival)
    hls_model, hls_config = design.hls_model, design.hls_config

    x = load_npy(ctx.dir("export") / "verify_inputs.npy")
    y = load_npy(ctx.dir("export") / "verify_labels.npy")
    fidelity = verify_csim_against_qonnx(hls_model, qonnx_path, x, return_outputs=True)
    csim_outputs = fidelity.pop("csim_outputs")
    save_npy(ctx.work / "csim_outputs.npy", np.asarray(csim_outputs, dtype=np.float64))
    write_json(ctx.work / "estimate.json", {"board": board.model_dump(mode="json"), **design.latency})
    splits = CellSplits.load(ctx.dir("data") / "splits.npz")
    class_names = splits.class_names

    # The emulator: plan saved, == C-sim on the verification sample, == QONNX on the whole test split.
    emulator = Emulator(hls_model)
    write_json(ctx.work / "emulator.json", emulator.to_json())
    vs_csim = verify_emulator_against_csim(emulator, hls_model, x, y_csim=csim_outputs)
    x_test = input_on_grid(to_model_input(splits.x_test, ctx.config.student.input_size, block).numpy(), precision)
    if not np.array_equal(x_test[: len(x)], x):
        raise FidelityError(
            "the hls step's input grid differs from the export step's verification inputs "
            f"({precision}); the whole-test-split comparison would not be on the hardware's inputs",
            {"first_diverging_layer": "<input>"},
        )
    vs_qonnx = verify_emulator_against_qonnx(emulator, qonnx_path, x_test, return_outputs=True)
    hw_outputs = vs_qonnx.pop("emulator_outputs")
    save_npy(ctx.work / "hw_outputs.npy", np.asarray(hw_outputs, dtype=np.float64))
    # ... and on the validation split: the project step chooses the default sort trigger there, not on test
    x_val = input_on_grid(to_model_input(splits.x_val, ctx.config.student.input_size, block).numpy(), precision)
    vs_qonnx_val = verify_emulator_against_qonnx(emulator, qonnx_path, x_val, return_outputs=True)
    save_npy(ctx.work / "hw_val_outputs.npy", np.asarray(vs_qonnx_val.pop("emulator_outputs"), dtype=np.float64))
    hw_metrics = {**classification_metrics(splits.y_test, hw_outputs, class_names), "source": "emulator"}
    cache_info = getattr(hls_model, "csim_cache_info", None) or {}
    write_json(ctx.work / "hls_config.json", hls_config)
    write_json(
        ctx.work / "hls.json",
        {
            "board": board.name,
            "backend": cfg.backend,
            "io_type": cfg.io_type,
            "part": cfg.part,
            "clock_mhz": cfg.clock_mhz,
            "clock_period_ns": cfg.clock_period_ns,
            "reuse_factor": cfg.reuse_factor,
            "strategy": cfg.strategy,
            "layer_settings": {k: v.to_json() for k, v in design.fit.settings.items()},
            "input_precision": precision,
            "project_dir": "hls/project",
            "fidelity": fidelity,
            "csim_metrics": classification_metrics(y, csim_outputs, class_names),
            "hw_metrics": hw_metrics,
            "emulator_vs_csim": {k: vs_csim[k] for k in ("n", "exact", "max_abs_diff")},
            "emulator_vs_qonnx": {k: vs_qonnx[k] for k in ("n", "exact", "max_abs_diff")},
            "emulator_vs_qonnx_val": {k: vs_qonnx_val[k] for k in ("n", "exact", "max_abs_diff")},
            "input_layout": "NHWC" if input_is_channels_last(load_qonnx(qonnx_path)) else "NCHW",
            "emulator_images_per_s": vs_qonnx["emulator_images_per_s"],
            "csim_library": {"firmware_sha256": cache_info.get("hash"), "reused": cache_info.get("cached")},
        },
    )
