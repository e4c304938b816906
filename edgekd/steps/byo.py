"""The hardware half of the pipeline for a bring-your-own QONNX model (config `student: {qonnx: PATH}`).

Steps (same names and folders as the full pipeline, so resume, --from and --to work the same way):
    export   load, onnx.checker, prepare (edgekd.export.byo), per-layer verdicts, inputs on the input grid,
             original == prepared model bit for bit; an approximate model stops here unless allow_inexact
    hls      hls4ml project + C-simulation; QONNX == C-sim measured (exact models must be 100% bit-equal)
    project  the board project (AXI-stream / XRT boards; the frame grabber only for single-channel images)
    report   report.json with the per-layer verdicts, the measured mismatch and the latency estimate
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.config import BuildConfig
from edgekd.io import file_sha256, load_npy, read_json, save_npy, write_json
from edgekd.pipeline import BuildContext, Step

log = logging.getLogger(__name__)

QONNX_NAME = "model.clean.onnx"


def _input_files(cfg: BuildConfig) -> list[Path]:
    return [p for p in (cfg.student.qonnx, cfg.student.inputs) if p is not None]


def steps() -> list[Step]:
    return [
        Step("export", run_export, ("student", "seed", "task", "hls"), (),
             "load, check and prepare the QONNX model; per-layer exactness verdicts", input_files=_input_files),
        Step("hls", run_hls, ("hls",), ("export",), "hls4ml project, C-simulation, QONNX == C-sim measured"),
        Step("project", run_project, ("hls",), ("export", "hls"), "board project: HLS top, scripts, driver, test vectors"),
        Step("report", run_report, ("name", "task"), ("export", "hls", "project"), "report.json + report.md"),
    ]


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
        input_quantizer,
        layer_verdicts,
        make_inputs,
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
    from edgekd.hw import load_board

    # refuse a board whose interface cannot take the model now, not after minutes of hls
    check_interface(load_board(ctx.config.hls.board), shape, ctx.config.task == "classification" and n_out > 1)
    x = make_inputs(grid, shape, student.random_inputs, seed=ctx.config.seed, path=student.inputs)
    check = verify_preparation(prep, x)
    y = check.pop("prepared_outputs")
    _atomic_save(prep.model, ctx.work / QONNX_NAME)
    save_npy(ctx.work / "verify_inputs.npy", x)
    save_npy(ctx.work / "qonnx_outputs.npy", np.asarray(y))
    write_json(ctx.work / "export.json", {
        "byo": True,
        "qonnx": QONNX_NAME,
        "source": str(path),
        "source_sha256": file_sha256(path),
        "inputs": str(student.inputs) if student.inputs is not None else f"{len(x)} random inputs on the grid",
        "input_shape": shape,
        "output_shape": [1, *np.shape(y)[1:]],
        "classifier": ctx.config.task == "classification" and n_out > 1,
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


def class_agreement(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a).reshape(len(a), -1)
    b = np.asarray(b).reshape(len(b), -1)
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


def measure_layers(hls_model, qonnx_path: Path, xs: np.ndarray) -> tuple[dict[str, dict], str | None, str | None]:
    """Per QONNX node, the error of the hls4ml layer that computes it: the traced C-simulation (recompiled with
    tracing, seconds) against the QONNX execution on `xs`. Returns ({node: {hls_layer, n, exact, max_abs_diff,
    source}}, first diverging hls4ml layer, its QONNX counterpart); unmatched layers are left out."""
    import re

    from edgekd.export.qonnx import load_qonnx, run_qonnx
    from edgekd.export.verify import locate_divergence, qonnx_activations
    from edgekd.hls.csim import trace_csim
    from edgekd.hls.verify import qonnx_names_for_hls_layer

    qmodel = load_qonnx(qonnx_path)
    xs = np.asarray(xs, dtype=np.float32)
    traces = trace_csim(hls_model, xs)
    ctx = run_qonnx(qmodel, xs, return_all=True)
    acts = [(node, arr) for node, _t, arr in qonnx_activations(qmodel, ctx, len(xs))]
    first, first_ref = locate_divergence(list(traces.items()), acts,
                                         hint=lambda name: qonnx_names_for_hls_layer(qmodel, name))
    ref: dict[str, np.ndarray] = {}
    for node, arr in acts:
        ref.setdefault(node, arr)
    nodes = {nd.name for nd in qmodel.graph.node}
    out: dict[str, dict] = {}
    by_name = {nd.name: nd for nd in qmodel.graph.node}
    for layer, arr in traces.items():
        if layer.endswith("_scale"):
            # hls4ml's ApplyAlpha into the integer domain of a float-scale quantizer: its output times the
            # quantizer's scale is what the QONNX Quant computes
            q = by_name.get(layer[: -len("_scale")])
            scale = qmodel.get_initializer(q.input[1]) if q is not None and q.op_type == "Quant" else None
            zp = qmodel.get_initializer(q.input[2]) if scale is not None else None
            if scale is None or np.size(scale) != 1 or zp is None or np.any(zp != 0) or q.name not in ref:
                continue
            arr = arr.astype(np.float32) * np.float32(np.ravel(scale)[0])  # k * s as QONNX computes it
            base = q.name
        else:
            base = re.sub(r"_(act|rescale)$", "", layer)
        chain = [base] if base in nodes else qonnx_names_for_hls_layer(qmodel, layer)
        cands = [(c, ref[c]) for c in chain if c in ref and ref[c].shape == arr.shape]
        if not cands:
            continue
        _name, best = min(cands, key=lambda c: float(np.max(np.abs(c[1] - arr), initial=0.0)))
        diff = np.abs(best.astype(np.float64) - arr.astype(np.float64))
        if diff.max(initial=0.0) > max(float(np.max(np.abs(best), initial=0.0)), 1e-12):
            continue  # larger than the signal: hls4ml holds this tensor on another scale (moved ApplyAlpha)
        out[chain[0]] = {"hls_layer": layer, "n": len(xs), "exact": float(np.mean(diff == 0)),
                         "max_abs_diff": float(diff.max(initial=0.0)), "source": "csim trace"}
    if first is not None and first.endswith("_scale"):
        # an ApplyAlpha into a float quantizer's integer domain never equals a QONNX tensor: name the first
        # layer whose own (matched) values differ instead
        first, first_ref = next(((v["hls_layer"], k) for k, v in out.items() if v["exact"] < 1.0), (first, first_ref))
    return out, first, first_ref


def compare_outputs(y_csim: np.ndarray, y_qonnx: np.ndarray) -> tuple[dict, np.ndarray]:
    """{n, exact (fraction of outputs bit-equal), samples_exact, max_abs_diff} and the mismatching samples."""
    a = np.asarray(y_csim, dtype=np.float64).reshape(len(y_qonnx), -1)
    b = np.asarray(y_qonnx, dtype=np.float64).reshape(len(y_qonnx), -1)
    equal = a == b
    return {"n": len(b), "exact": float(equal.mean()), "samples_exact": float(equal.all(axis=1).mean()),
            "max_abs_diff": float(np.max(np.abs(a - b), initial=0.0)), "first_diverging_layer": None,
            "reference_layer": None, "source": "csim"}, np.flatnonzero(~equal.all(axis=1))


def _fit(qonnx_path: Path, cfg: Any, board: Any, precision: str, cache_dir: Path) -> Any:
    """The fit search for a model of any origin, or None (with a warning) when the estimator cannot price
    one of its layers or hls4ml cannot convert it (the conversion below then says why); a design that
    cannot fit is refused as for any build (hls.on_overflow)."""
    from edgekd.hls.design import fit_to_board
    from edgekd.pipeline import BuildError

    try:
        return fit_to_board(qonnx_path, cfg, board, precision, check_support=False, cache_dir=cache_dir)
    except BuildError:
        raise
    except Exception as err:  # noqa: BLE001 - unpriced layer types, or a graph hls4ml refuses
        log.warning("no fit search for this model (%s: %s); hls.reuse_factor / strategy apply as given",
                    type(err).__name__, err)
        return None


def run_hls(ctx: BuildContext) -> None:
    from edgekd.export.verify import FidelityError
    from edgekd.hls.convert import convert_to_hls, quiet_hls4ml
    from edgekd.hls.csim import predict_csim
    from edgekd.hw import load_board
    from edgekd.hls.design import FittedDesign, check_kept
    from edgekd.report.latency import EstimateError

    cfg = ctx.config.hls
    export = read_json(ctx.dir("export") / "export.json")
    qonnx_path = ctx.dir("export") / export["qonnx"]
    exact_expected = export["verdict"] == "exact"
    x = load_npy(ctx.dir("export") / "verify_inputs.npy")
    precisions: list[dict] = []
    board = load_board(cfg.board)
    fit_result = _fit(qonnx_path, cfg, board, export["input_precision"], ctx.cache_dir / "da_costs")
    try:
        hls_model, hls_config = convert_to_hls(qonnx_path, cfg, ctx.work / "project", export["input_precision"],
                                               compile_model=False, check_support=False,
                                               layer_settings=fit_result.hls4ml_settings() if fit_result else None)
        if not exact_expected:
            # float scales: hls4ml's default types are what makes it inexact; choose them from the value ranges
            from edgekd.hls.precision import assign_range_precisions

            precisions = assign_range_precisions(hls_model, x)
        from edgekd.hls.csim_cache import compile_cached

        with quiet_hls4ml():
            hls_model.csim_cache_info = compile_cached(hls_model, ctx.cache_dir / "csim")
    except Exception as err:  # noqa: BLE001 - hls4ml raises bare IndexError/KeyError on graphs it cannot take
        from edgekd.export.byo import ByoError

        suspects = [r["name"] for r in export["verdicts"] if r["verdict"] != "exact"]
        raise ByoError(
            f"hls4ml 1.3.0 failed to convert {qonnx_path.name} ({type(err).__name__}: {err})"
            + (f"; its approximate layers ({', '.join(suspects)}) are the likely cause" if suspects else "")
            + ". Power-of-two quantizers on every layer avoid hls4ml's float rescaling paths") from err
    # the export step's outputs are the prepared model's QONNX execution on exactly these inputs
    t0 = time.perf_counter()
    y_csim = np.asarray(predict_csim(hls_model, x, progress=False), dtype=np.float64)
    rate = len(x) / max(time.perf_counter() - t0, 1e-9)
    y_qonnx = load_npy(ctx.dir("export") / "qonnx_outputs.npy").astype(np.float64).reshape(y_csim.shape)
    fidelity, bad = compare_outputs(y_csim, y_qonnx)
    fidelity["csim_images_per_s"] = rate
    log.info("C-simulation vs QONNX on %d inputs: %.2f%% of outputs bit-equal (max |diff| %g)", len(x),
             100 * fidelity["exact"], fidelity["max_abs_diff"])
    if bad.size:  # one traced build: where it goes wrong first, and each layer's own error
        picked = np.sort(np.concatenate([bad, np.setdiff1d(np.arange(len(x)), bad)])[:256])
        try:
            per_layer, first, first_ref = measure_layers(hls_model, qonnx_path, x[picked])
            fidelity.update(per_layer=per_layer, first_diverging_layer=first or "<output>", reference_layer=first_ref)
        except Exception as err:  # noqa: BLE001 - a failed trace build leaves the model-level figures
            log.warning("per-layer measurement failed: %s", err)
            fidelity["first_diverging_layer"] = "<unknown>"
    if export["classifier"]:
        fidelity["class_agreement"] = class_agreement(y_csim, y_qonnx)
    save_npy(ctx.work / "csim_outputs.npy", y_csim)
    if fidelity["exact"] < 1.0 and exact_expected:
        msg = (f"C-simulation differs from the QONNX execution although every layer should be exact: "
               f"{100 * fidelity['exact']:.2f}% of outputs bit-equal, max |diff| {fidelity['max_abs_diff']:.3g}, "
               f"first diverging layer '{fidelity['first_diverging_layer']}' (QONNX: {fidelity.get('reference_layer')!r})")
        if not ctx.config.student.allow_inexact:
            raise FidelityError(msg + "; set student.allow_inexact: true to build it anyway", fidelity)
        log.error(msg)
    try:
        if fit_result is None:
            raise EstimateError("see the warning above")
        check_kept(hls_model, fit_result)
        latency = FittedDesign(hls_model, hls_config, fit_result).latency
    except EstimateError as err:  # noqa: BLE001 - a layer the analytical model cannot price
        log.warning("no latency estimate for this model: %s", err)
        latency = {"cycles": None, "us": None, "ii_cycles": None, "throughput_per_s": None, "per_layer": [],
                   "resources": {}, "fit": None, "clock_mhz": cfg.clock_mhz, "source": "estimate",
                   "error": str(err)}
    write_json(ctx.work / "estimate.json", {"board": board.model_dump(mode="json"), **latency})
    write_json(ctx.work / "hls_config.json", hls_config)
    write_json(ctx.work / "hls.json", {
        "board": board.name, "backend": cfg.backend, "io_type": cfg.io_type, "part": cfg.part,
        "clock_mhz": cfg.clock_mhz, "clock_period_ns": cfg.clock_period_ns, "reuse_factor": cfg.reuse_factor,
        "strategy": cfg.strategy, "input_precision": export["input_precision"], "project_dir": "hls/project",
        "layer_settings": {k: v.to_json() for k, v in fit_result.settings.items()} if fit_result else None,
        "fidelity": fidelity,
        "precisions": precisions,
        "layers": [layer.name for layer in hls_model.get_layers()],
    })


# --------------------------------------------------------------------------------------------------
# project
# --------------------------------------------------------------------------------------------------


def check_interface(board, shape: list[int], classifier: bool) -> None:
    """The board's interface must fit the model: AXI-stream and XRT take any stream of fixed-point values; the
    frame grabber's pixel stream takes single-channel images and fires a sort trigger from class scores."""
    from edgekd.project.generate import ProjectError

    if board.interface == "pixel_stream" and not (len(shape) == 4 and shape[1] == 1 and classifier):
        raise ProjectError(
            f"board {board.name} has a pixel_stream interface (frame grabber: single-channel images in, a sort "
            f"trigger out), which does not fit this model (input {shape}, "
            f"{'a classifier' if classifier else 'not a classifier'}); choose an AXI-stream board "
            "(hls.board: pynq-z2, zcu104, zcu102) or alveo-u250 (XRT kernel)")


def run_project(ctx: BuildContext) -> None:
    from edgekd.hls.emulate import FixedType
    from edgekd.hw import load_board
    from edgekd.project.csim import run_project_csim
    from edgekd.project.generate import ProjectError, generate_project

    cfg = ctx.config.hls
    board = load_board(cfg.board)
    export = read_json(ctx.dir("export") / "export.json")
    check_interface(board, export["input_shape"], export["classifier"])
    hls = read_json(ctx.dir("hls") / "hls.json")
    n_out = int(np.prod(export["output_shape"][1:]))
    with tempfile.TemporaryDirectory() as tmp:
        # test vectors: what the hardware computes (== QONNX for an exact model; the C-sim for an inexact one)
        vectors = Path(tmp)
        x = load_npy(ctx.dir("export") / "verify_inputs.npy").astype(np.float64)
        if hls["fidelity"]["exact"] == 1.0:
            shutil.copy(ctx.dir("export") / "qonnx_outputs.npy", vectors / "qonnx_outputs.npy")
        else:
            # the C-simulation truncates inputs off the hardware grid (ap_fixed AP_TRN); the vectors say so
            frac = FixedType.parse(export["input_precision"]).frac
            x = np.floor(x * 2.0 ** frac) / 2.0 ** frac
            save_npy(vectors / "qonnx_outputs.npy", load_npy(ctx.dir("hls") / "csim_outputs.npy"))
        save_npy(vectors / "verify_inputs.npy", x)
        info = generate_project(
            ctx.work, hls_dir=ctx.dir("hls"), export_dir=vectors, board=board, name=ctx.config.name,
            class_names=[f"output{i}" for i in range(n_out)], trigger_threshold=cfg.trigger_threshold,
            trigger_class=cfg.trigger_class, host_postprocessing=export["host_postprocessing"],
        )
    info["expected_outputs"] = "qonnx" if hls["fidelity"]["exact"] == 1.0 else "csim (the model is not exact)"
    info["host_postprocessing"] = export["host_postprocessing"]
    write_json(ctx.work / "project.json", info)
    csim = run_project_csim(ctx.work, cache_dir=ctx.cache_dir)
    write_json(ctx.work / "project.json", {**info, "csim": csim})
    if not csim["passed"]:
        raise ProjectError(
            f"project C-simulation: {100 * csim['exact']:.2f}% of {csim['outputs']} outputs bit-equal "
            f"(max abs diff {csim['max_abs_diff']}); wrapper testbench: "
            f"{'passed' if csim['wrapper']['passed'] else 'FAILED'} {csim['wrapper'].get('stderr', '')}")


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def run_report(ctx: BuildContext) -> None:
    from edgekd.report.byo import assemble_byo_report, write_byo_report

    write_byo_report(assemble_byo_report(ctx.config, ctx.build_dir), ctx.work)
