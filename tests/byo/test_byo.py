"""Bring-your-own QONNX models: verdicts, exact preparation, and C-simulation == QONNX on 256 inputs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import byo_models as models
import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from edgekd.config import ConfigError, parse_config
from edgekd.export.byo import (
    APPROXIMATE,
    EXACT,
    InexactModelError,
    input_quantizer,
    layer_verdicts,
    make_inputs,
    prepare_model,
    summarise_verdicts,
    verify_preparation,
)
from edgekd.export.prepare import apply_host_postprocessing
from edgekd.pipeline import BYO_STEP_NAMES, run_build, step_list

N = 256


def _config(model: Path, **student) -> object:
    return parse_config({"name": model.stem, "student": {"qonnx": str(model), **student}, "hls": {"board": "pynq-z2"}})


def _verdict(model: Path) -> tuple[str, list[dict], object]:
    prep = prepare_model(model)
    node, grid, why = input_quantizer(prep.model)
    rows = layer_verdicts(prep, grid if node is not None else None, why)
    return summarise_verdicts(rows), rows, prep


def _build_to_hls(model: Path, tmp_path: Path, **student) -> tuple[dict, dict]:
    cfg = _config(model, **student)
    run_build(cfg, tmp_path / "build", to_step="hls")
    export = json.loads((tmp_path / "build" / "export" / "export.json").read_text())
    hls = json.loads((tmp_path / "build" / "hls" / "hls.json").read_text())
    return export, hls


def _assert_exact_csim(export: dict, hls: dict) -> None:
    assert export["verdict"] == EXACT
    assert hls["fidelity"]["n"] >= N
    assert hls["fidelity"]["exact"] == 1.0, hls["fidelity"]
    assert hls["fidelity"]["max_abs_diff"] == 0.0


# --------------------------------------------------------------------------------------------------
# exact models: verdict exact and 100% of C-sim outputs == QONNX on 256 inputs
# --------------------------------------------------------------------------------------------------

EXACT_MODELS = {
    "brevitas-mlp-pow2": lambda p: models.brevitas_mlp(p, pow2=True),
    "brevitas-cnn-pow2": lambda p: models.brevitas_cnn(p, pow2=True),
    "batchnorm-after-matmul-pow2": models.batchnorm_mlp,
    "input-normalisation-sub-mul": models.normalised_mlp,
    # a final Softmax: tests/byo/test_cli_convert.py (the same check, through `edgekd convert`)
    "qkeras-narrow-bits": models.qkeras_narrow_mlp,
}


@pytest.mark.parametrize("kind", list(EXACT_MODELS), ids=list(EXACT_MODELS))
def test_exact_model_csim_equals_qonnx(kind: str, tmp_path: Path) -> None:
    model = EXACT_MODELS[kind](tmp_path / "model.onnx")
    export, hls = _build_to_hls(model, tmp_path)
    _assert_exact_csim(export, hls)
    kinds = {r["op_type"]: r["verdict"] for r in export["verdicts"]}
    if kind == "batchnorm-after-matmul-pow2":
        assert export["folds"][0]["kind"] == "batchnorm" and kinds["batchnorm"] == EXACT
        assert "BatchNormalization" not in kinds
    if kind == "input-normalisation-sub-mul":
        assert [f["nodes"] for f in export["folds"]] == [["Sub_0", "Mul_0"]]
        # the hardware takes the raw uint8 pixels: the input type is the unsigned 8-bit integer grid
        assert export["input_precision"] == "ufixed<8,8>"
        x = np.load(tmp_path / "build" / "export" / "verify_inputs.npy")
        assert x.min() == 0 and x.max() == 255
    if kind == "qkeras-narrow-bits":
        assert export["input_precision"] == "fixed<6,3>"


# --------------------------------------------------------------------------------------------------
# approximate models: default refused with the layers named; allow_inexact measures the mismatch
# --------------------------------------------------------------------------------------------------


def test_float_scale_mlp_is_refused_by_default_and_measured_with_allow_inexact(tmp_path: Path) -> None:
    model = models.brevitas_mlp(tmp_path / "float.onnx", pow2=False)
    verdict, rows, _ = _verdict(model)
    assert verdict == APPROXIMATE
    approx = {r["name"] for r in rows if r["verdict"] == APPROXIMATE}
    assert {"Quant_0", "MatMul_0", "MatMul_1"} <= approx
    with pytest.raises(InexactModelError, match=r"(?s)Quant_0.*not a power of two.*allow_inexact"):
        run_build(_config(model), tmp_path / "refused")
    export, hls = _build_to_hls(model, tmp_path, allow_inexact=True)
    fid = hls["fidelity"]
    assert export["verdict"] == APPROXIMATE and fid["n"] == N
    # measured, not assumed: not bit-exact (float scales), but with precisions chosen from the value ranges the
    # error is at float32-rounding level (plain hls4ml 1.3.0: max abs diff 0.99, 62% class agreement)
    assert 0.0 <= fid["exact"] < 0.5 and 0.0 < fid["max_abs_diff"] < 1e-3
    assert fid["class_agreement"] >= 0.995
    assert fid["first_diverging_layer"] is not None and not fid["first_diverging_layer"].endswith("_scale")
    # per layer: traced hls4ml layers matched to QONNX nodes, errors measured on every input (up to 256)
    per_layer = fid["per_layer"]
    assert per_layer and all(v["n"] == N for v in per_layer.values())
    assert any(v["max_abs_diff"] > 0 and v["exact"] < 1 for v in per_layer.values())
    assert {"Quant_0", "Quant_3"} <= set(per_layer)  # integer-domain layers, compared on the QONNX scale
    assert {r["layer"] for r in hls["precisions"]} >= {"Quant_0_scale"}  # the precisions chosen, recorded


@pytest.mark.parametrize("kind", ["brevitas-cnn-float", "batchnorm-non-pow2"])
def test_inexact_verdicts_name_the_layers(kind: str, tmp_path: Path) -> None:
    if kind == "brevitas-cnn-float":
        model = models.brevitas_cnn(tmp_path / "m.onnx", pow2=False)
        expect = {"Conv_0": "not a power of two", "MatMul_0": "not a power of two", "Quant_0": "not a power of two"}
    else:
        model = models.batchnorm_mlp(tmp_path / "m.onnx", pow2=False)
        expect = {"BatchNormalization_0": "not a power of two"}
    verdict, rows, prep = _verdict(model)
    assert verdict == APPROXIMATE
    by_name = {r["name"]: r for r in rows}
    for name, words in expect.items():
        assert by_name[name]["verdict"] == APPROXIMATE and words in by_name[name]["reason"], by_name[name]
    if kind == "batchnorm-non-pow2":
        assert prep.folds == [] and "0.7" in prep.skipped[0]["reason"]


def test_bipolar_quantizers(tmp_path: Path) -> None:
    """1-bit BipolarQuant weights and activations: verdict and, when exact, C-sim == QONNX."""
    model = models.bipolar_mlp(tmp_path / "bipolar.onnx")
    verdict, rows, _ = _verdict(model)
    assert {r["op_type"] for r in rows if r["op_type"] == "BipolarQuant"} == {"BipolarQuant"}
    assert verdict == EXACT
    export, hls = _build_to_hls(model, tmp_path)
    _assert_exact_csim(export, hls)
    x = np.load(tmp_path / "build" / "export" / "verify_inputs.npy")
    assert (x == 0).any()  # BipolarQuant(0) = +1 in QONNX; the C-simulation agrees on those inputs too


# --------------------------------------------------------------------------------------------------
# preparation, inputs, host stage, config
# --------------------------------------------------------------------------------------------------


def test_preparation_is_checked_numerically(tmp_path: Path) -> None:
    model = models.normalised_mlp(tmp_path / "n.onnx")
    prep = prepare_model(model)
    _, grid, _ = input_quantizer(prep.model)
    x = make_inputs(grid, [1, 9], 64)
    assert verify_preparation(prep, x)["max_abs_diff"] == 0.0
    # break the fold on purpose: the check must catch it
    prep.model = ModelWrapper(copy.deepcopy(prep.model.model))  # a new object: run_qonnx caches per model
    layer = prep.model.get_nodes_by_op_type("MatMul")[0]
    w = prep.model.find_producer(layer.input[1]).input[0]
    prep.model.set_initializer(w, -prep.model.get_initializer(w))
    with pytest.raises(ValueError, match="differs from the original model"):
        verify_preparation(prep, x)


def test_host_postprocessing_ops() -> None:
    y = np.array([[1.0, 3.0, 2.0], [0.5, -1.0, 0.25]])
    assert apply_host_postprocessing(y, [{"op_type": "ArgMax", "axis": -1, "keepdims": 0}]).tolist() == [1, 0]
    p = apply_host_postprocessing(y, [{"op_type": "Softmax", "axis": -1}])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    top = apply_host_postprocessing(y, [{"op_type": "TopK", "axis": -1, "k": 2, "output": "indices", "largest": 1}])
    assert top.tolist() == [[1, 2], [0, 2]]


def test_config_validation(tmp_path: Path) -> None:
    models.qkeras_narrow_mlp(tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="student.qonnx: .*missing.onnx: no such file"):
        parse_config({"name": "x", "student": {"qonnx": "missing.onnx"}}, base_dir=tmp_path)
    (tmp_path / "junk.onnx").write_bytes(b"this is not a protobuf \x00\xff")
    with pytest.raises(ConfigError, match="junk.onnx is not an ONNX model"):
        parse_config({"name": "x", "student": {"qonnx": "junk.onnx"}}, base_dir=tmp_path)
    np.save(tmp_path / "bad.npy", np.zeros((4, 7), dtype=np.float32))
    with pytest.raises(ConfigError, match=r"student.inputs: .*bad.npy has shape \(4, 7\); .*\(N, 10\)"):
        parse_config({"name": "x", "student": {"qonnx": "m.onnx", "inputs": "bad.npy"}}, base_dir=tmp_path)
    np.save(tmp_path / "good.npy", np.linspace(-5, 5, 30, dtype=np.float32).reshape(3, 10))
    cfg = parse_config({"name": "x", "student": {"qonnx": "m.onnx", "inputs": "good.npy"}}, base_dir=tmp_path)
    assert cfg.student.qonnx == (tmp_path / "m.onnx").resolve() and cfg.student.allow_inexact is False
    assert [s.name for s in step_list(cfg)] == list(BYO_STEP_NAMES)
    # a regression model needs no audio data source: a bring-your-own build reads no data
    assert parse_config({"name": "r", "task": "regression", "student": {"qonnx": "m.onnx"}}, base_dir=tmp_path).task \
        == "regression"
    # real inputs are rounded and clipped onto the input grid fixed<6,3> (-4 .. 3.875 in steps of 1/8)
    _, grid, _ = input_quantizer(prepare_model(cfg.student.qonnx).model)
    x = make_inputs(grid, [1, 10], 0, path=cfg.student.inputs)
    assert x.shape == (3, 10) and x.min() == -4.0 and x.max() == 3.875
    assert np.all(x * 8 == np.round(x * 8))


def test_refused_and_mid_graph_ops(tmp_path: Path) -> None:
    """An op hls4ml has no converter for is refused (the build stops even with allow_inexact); a Softmax that is
    not the last node cannot move to the host and is approximate."""
    g = models.GraphBuilder(6, seed=7)
    g.quant(2.0 ** -4, 8).dense(4, 2.0 ** -5, 8).op("Erf").quant(2.0 ** -4, 8)
    erf = g.save(tmp_path / "erf.onnx")
    verdict, rows, _ = _verdict(erf)
    assert verdict == "refused"
    assert [r["name"] for r in rows if r["verdict"] == "refused"] == ["Erf_0"]
    with pytest.raises(ValueError, match=r"(?s)cannot go to hardware.*Erf 'Erf_0': refused: hls4ml 1.3.0 has no converter"):
        run_build(_config(erf, allow_inexact=True), tmp_path / "b")
    g = models.GraphBuilder(6, seed=8)
    g.quant(2.0 ** -4, 8).dense(4, 2.0 ** -5, 8).op("Softmax", axis=-1).quant(2.0 ** -7, 8)
    verdict, rows, prep = _verdict(g.save(tmp_path / "sm.onnx"))
    assert verdict == APPROXIMATE and prep.host_ops == []
    assert {r["name"]: r["verdict"] for r in rows}["Softmax_0"] == APPROXIMATE


def test_a_changed_model_file_reruns_export(tmp_path: Path) -> None:
    """The model file is outside the build folder: its sha256 is part of the export step's inputs hash."""
    from edgekd.pipeline import Manifest, _inputs_sha256

    model = models.qkeras_narrow_mlp(tmp_path / "m.onnx")
    cfg = _config(model)
    export = step_list(cfg)[0]
    manifest = Manifest(tmp_path)
    before = _inputs_sha256(export, cfg, manifest)
    assert _inputs_sha256(export, cfg, manifest) == before
    models.batchnorm_mlp(model)  # another model under the same path
    assert _inputs_sha256(export, cfg, manifest) != before


def test_symbolic_batch_dimension(tmp_path: Path) -> None:
    """tf2onnx/QKeras exports name the batch dimension ('N'); it becomes 1, and the model runs on 300 inputs."""
    import onnx

    path = models.qkeras_narrow_mlp(tmp_path / "dyn.onnx")
    proto = onnx.load(str(path))
    for vi in [*proto.graph.input, *proto.graph.output]:
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(proto, str(path))
    prep = prepare_model(path)
    assert prep.model.get_tensor_shape("global_in") == [1, 10]
    _, grid, _ = input_quantizer(prep.model)
    assert verify_preparation(prep, make_inputs(grid, [1, 10], 300))["n"] == 300


def test_batchnorm_after_conv_is_folded_exactly(tmp_path: Path) -> None:
    """brevitas QuantConv2d + BatchNorm2d with power-of-two factors: folded, verdict exact, original == prepared
    on 256 grid inputs (the C-sim check of this fold is the MatMul case above; the fold code is shared)."""
    prep = prepare_model(models.brevitas_cnn_batchnorm(tmp_path / "cbn.onnx"))
    assert [f["kind"] for f in prep.folds] == ["batchnorm"] and prep.folds[0]["into"] == "Conv_0"
    assert "BatchNormalization" not in {n.op_type for n in prep.model.graph.node}
    _, grid, _ = input_quantizer(prep.model)
    assert verify_preparation(prep, make_inputs(grid, [1, 1, 8, 8], N))["max_abs_diff"] == 0.0
    assert summarise_verdicts(layer_verdicts(prep, grid)) == EXACT
