"""Step `hls`: hls4ml project from the cleaned QONNX, compiled with g++, C-sim == QONNX exactly."""

from __future__ import annotations

import numpy as np

from edgekd.distill.metrics import classification_metrics
from edgekd.data.cells import CellSplits
from edgekd.hls.convert import convert_to_hls
from edgekd.hls.verify import verify_csim_against_qonnx
from edgekd.hw import load_board
from edgekd.report.latency import estimate, fits, layers_from_hls_model
from edgekd.io import load_npy, read_json, save_npy, write_json
from edgekd.pipeline import BuildContext


def run(ctx: BuildContext) -> None:
    cfg = ctx.config.hls
    export = read_json(ctx.dir("export") / "export.json")
    qonnx_path = ctx.dir("export") / export["qonnx"]
    precision = export["input_precision"]
    project_dir = ctx.work / "project"
    hls_model, hls_config = convert_to_hls(qonnx_path, cfg, project_dir, precision)

    x = load_npy(ctx.dir("export") / "verify_inputs.npy")
    y = load_npy(ctx.dir("export") / "verify_labels.npy")
    fidelity = verify_csim_against_qonnx(hls_model, qonnx_path, x, return_outputs=True)
    csim_outputs = fidelity.pop("csim_outputs")
    save_npy(ctx.work / "csim_outputs.npy", np.asarray(csim_outputs, dtype=np.float64))
    board = load_board(cfg.board)
    latency = estimate(layers_from_hls_model(hls_model), cfg.clock_mhz, cfg.io_type)
    latency["fit"] = fits(latency["resources"], board)
    write_json(ctx.work / "estimate.json", {"board": board.model_dump(mode="json"), **latency})
    class_names = CellSplits.load(ctx.dir("data") / "splits.npz").class_names
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
            "input_precision": precision,
            "project_dir": "hls/project",
            "fidelity": fidelity,
            "csim_metrics": classification_metrics(y, csim_outputs, class_names),
        },
    )
