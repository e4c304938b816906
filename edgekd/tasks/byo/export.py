"""Step `export` of a bring-your-own QONNX model (config `student: {qonnx: PATH}`): the whole model half.

Load, onnx.checker, prepare (edgekd.export.byo), per-layer verdicts, inputs on the input grid, original ==
prepared model bit for bit; an approximate model stops here unless allow_inexact. The hardware contract it
writes says whether the model is exact (C-sim must then equal QONNX bit for bit) and hands over no data
splits: the model came without them, so its outputs are not scored (edgekd.scoring kind none).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgekd.context import BuildContext
from edgekd.contract import HardwareContract
from edgekd.io import file_sha256, write_json

log = logging.getLogger(__name__)

QONNX_NAME = "model.clean.onnx"


# --------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------


def run_export(ctx: BuildContext) -> None:
    from edgekd.export.byo import (
        APPROXIMATE,
        EXACT,
        REFUSED,
        ByoError,
        InexactModelError,
        explain,
        hardware_input_grid,
        input_quantizer,
        layer_verdicts,
        make_build_inputs,
        prepare_model,
        summarise_verdicts,
        verify_preparation,
    )
    from edgekd.export.qonnx import _atomic_save

    student = ctx.config.student
    path = Path(student.qonnx)
    prep = prepare_model(path)
    shape = [d if d > 0 else 1 for d in prep.model.get_tensor_shape(prep.model.graph.input[0].name)]
    shape[0] = 1
    _node, grid, why = input_quantizer(prep.model)
    grid = hardware_input_grid(prep, grid)
    if grid is not None and _node is None:
        why = ""
        _node = prep.domain  # the input's values are known exactly: the hardware input type holds them all
    if grid is None:
        from edgekd.export.byo import InputGrid

        grid = InputGrid(2.0 ** -10, 16, True, -(2 ** 15), 2 ** 15 - 1, True)  # hls4ml's default input type
        log.warning("%s: %s; the hardware input type is the default %s", path, why, grid.hls_type())
    verdicts = layer_verdicts(prep, grid if _node is not None else None, why)
    verdict = summarise_verdicts(verdicts)
    if verdict == REFUSED:
        raise ByoError(f"{path}: the model cannot go to hardware:\n  {explain(verdicts, (REFUSED,))}")
    if verdict == APPROXIMATE and not student.allow_inexact:
        raise InexactModelError(
            f"{path}: the model cannot run exactly on the hardware:\n  {explain(verdicts, (APPROXIMATE,))}\n"
            "Fix those layers, or set student.allow_inexact: true (edgekd convert --allow-inexact) to convert it "
            "anyway and measure the mismatch.", verdicts)

    if verdict == APPROXIMATE:
        from edgekd.export.byo import materialise_bias_quants

        from edgekd.export.preamble import hoist_quants_above_reshapes

        for name in materialise_bias_quants(prep.model):
            prep.folds.append({"kind": "bias_values", "nodes": [name], "into": "bias constant",
                               "detail": "quantized bias constant stored as its values (hls4ml rescales this model; "
                                         "it would fold the unquantized bias)"})
        for name in sorted(set(hoist_quants_above_reshapes(prep.model))):
            prep.folds.append({"kind": "quant_hoisted", "nodes": [name], "into": "before the reshape",
                               "detail": "quantizer moved above the Transpose/Reshape/Flatten feeding it (exact; "
                                         "hls4ml's io_stream rescaling after a flatten reads the wrong packing)"})
    n_out = int(np.prod(prep.model.get_tensor_shape(prep.model.graph.output[0].name)[1:]))
    classifier = ctx.config.task == "classification" and n_out > 1  # class scores: a sort trigger can fire
    from edgekd.hw import load_board
    from edgekd.project.interface import check_interface

    # refuse a board whose interface cannot take the model now, not after minutes of hls
    check_interface(load_board(ctx.config.hls.board), shape, classifier)
    x, x_orig = make_build_inputs(prep, grid, shape, student.random_inputs, seed=ctx.config.seed,
                                  path=student.inputs)
    check = verify_preparation(prep, x, x_orig)
    y = check.pop("prepared_outputs")
    _atomic_save(prep.model, ctx.work / QONNX_NAME)
    if prep.stage is not None:  # the host runs it on each input before the hardware (export.json says so)
        _atomic_save(prep.stage.model, ctx.work / "host_input.onnx")
    if x_orig is not None:  # the user's inputs the hardware inputs (verify_inputs.npy) were made from
        np.save(ctx.work / "user_inputs.npy", np.asarray(x_orig, dtype=np.float32))
    HardwareContract(
        qonnx=QONNX_NAME, input_precision=grid.hls_type(), input_shape=shape,
        output_names=[f"output{i}" for i in range(n_out)], classifier=classifier, scoring={"kind": "none"},
        exact=verdict == EXACT, allow_inexact=student.allow_inexact, check_support=False,
        host_postprocessing=prep.host_ops,
        approximate_layers=[r["name"] for r in verdicts if r["verdict"] not in (EXACT, "host")],
    ).save(ctx.work, x, np.asarray(y))
    write_json(ctx.work / "export.json", {
        "byo": True,
        "qonnx": QONNX_NAME,
        "source": str(path),
        "source_sha256": file_sha256(path),
        "inputs": str(student.inputs) if student.inputs is not None else (
            f"{len(x)} random inputs of the annotated datatype {prep.domain.name}" if prep.domain is not None
            else f"{len(x)} random inputs on the grid"),
        "input_datatype": prep.domain.name if prep.domain is not None else None,
        "host_preprocessing": ({"ops": prep.stage.ops, "nodes": prep.stage.nodes, "quantizer": prep.stage.quantizer, "model": "host_input.onnx"}
                               if prep.stage is not None else None),
        "input_shape": shape,
        "output_shape": [1, *np.shape(y)[1:]],
        "classifier": classifier,
        "input_precision": grid.hls_type(),
        "input_grid": {"scale": grid.scale, "bits": grid.bits, "signed": grid.signed},
        "host_postprocessing": prep.host_ops,
        "folds": prep.folds,
        "not_folded": prep.skipped,
        "preparation_check": check,
        "verdict": verdict,
        "verdicts": verdicts,
        "allow_inexact": student.allow_inexact,
        # the cell report's op table reads `support`
        "support": [{k: r[k] for k in ("name", "op_type", "verdict", "reason")} for r in verdicts],
    })
    log.info("%s: %s (%d layers exact, %d approximate, %d on the host)", path.name, verdict,
             sum(r["verdict"] == EXACT for r in verdicts), sum(r["verdict"] == APPROXIMATE for r in verdicts),
             sum(r["verdict"] == "host" for r in verdicts))


# --------------------------------------------------------------------------------------------------
# hls
# --------------------------------------------------------------------------------------------------
