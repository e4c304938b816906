"""Issue 29: the public qonnx model zoo's files (FINN TFC, brevitas UNSW-NB15 / keyword spotting, QKeras jet tagger)
as the corpus imitates them, and, when EDGEKD_QONNX_ZOO names a folder holding the real files, each imitation
checked against the real file's structure and the real files prepared exactly.

The zoo files are not committed (their licences are per folder); benchmarks/byo_ecosystem.py --zoo DIR converts
them end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import byo_models as models
import numpy as np
import onnx
import pytest
from onnx import helper
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.export.byo import (
    hardware_input_grid,
    input_quantizer,
    layer_verdicts,
    make_build_inputs,
    prepare_model,
    summarise_verdicts,
    verify_preparation,
)

ZOO = Path(os.environ["EDGEKD_QONNX_ZOO"]) if os.environ.get("EDGEKD_QONNX_ZOO") else None
KINDS = list(models.ZOO_IMITATIONS)
_LAYERS = ("MatMul", "Gemm", "Conv")


def structure(path: Path) -> dict:
    """What an exporter's file looks like, independent of its sizes and values: the input's rank and datatype
    annotation, the ops from the input to the first layer, between layers (distinct blocks), after the last
    layer, the ops feeding the weights, the custom-op domains and the attributes each op carries."""
    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name for i in g.initializer}
    x = next(i for i in g.input if i.name not in inits)
    ann = next((kv.value for qa in g.quantization_annotation if qa.tensor_name == x.name
                for kv in qa.quant_parameter_tensor_names if kv.key == "finn_datatype"), None)
    dynamic, seq = {x.name}, []
    for n in g.node:
        if any(i in dynamic for i in n.input):
            dynamic.update(n.output)
            seq.append(n.op_type)
    idx = [i for i, op in enumerate(seq) if op in _LAYERS]
    blocks = {tuple(seq[a + 1:b]) for a, b in zip(idx, idx[1:])}
    producers = {o: n for n in g.node for o in n.output}
    weights = set()
    for n in g.node:
        if n.op_type in _LAYERS:
            path_ops, t = [], n.input[1]
            while t in producers:
                path_ops.append(producers[t].op_type)
                t = producers[t].input[0]
            weights.add(tuple(path_ops))
    attrs: dict[str, set] = {}
    for n in g.node:
        if n.op_type not in ("Constant",):
            attrs.setdefault(n.op_type, set()).update(a.name for a in n.attribute)
    return {"input_rank": len(x.type.tensor_type.shape.dim), "input_datatype": ann, "preamble": seq[:idx[0]],
            "blocks": sorted(blocks), "tail": seq[idx[-1] + 1:], "weights": sorted(weights),
            "domains": sorted({n.domain for n in g.node if n.domain}),
            "attributes": {k: sorted(v) for k, v in sorted(attrs.items())},
            "opset_imports": sorted(o.domain for o in model.opset_import)}


@pytest.fixture(scope="module")
def imitations(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zoo")
    return {k: models.ZOO_IMITATIONS[k][0](root / f"{k}.onnx") for k in KINDS}


def _prepare_and_check(path: Path) -> tuple:
    prep = prepare_model(path)
    node, grid, why = input_quantizer(prep.model)
    grid = hardware_input_grid(prep, grid)
    shape = prep.model.get_tensor_shape(prep.model.graph.input[0].name)
    x, x_orig = make_build_inputs(prep, grid, [1, *shape[1:]], 300, seed=1)
    check = verify_preparation(prep, x, x_orig)
    verdict = summarise_verdicts(layer_verdicts(prep, grid if (node is not None or prep.domain) else None, why))
    return prep, grid, x, x_orig, check, verdict


@pytest.mark.parametrize("kind", KINDS)
def test_imitation_prepares_exactly(kind: str, imitations: dict) -> None:
    """Preamble on the host, BatchNorm steps folded, output normalisation on the host; inputs of the input's
    datatype (bipolar for UNSW, the preimage {0, 0.5, 1} of TFC's input quantizer grid)."""
    _build, _file, expected, host = models.ZOO_IMITATIONS[kind]
    prep, grid, x, x_orig, check, verdict = _prepare_and_check(imitations[kind])
    assert check["exact"] and check["max_abs_diff"] == 0.0
    assert verdict == expected
    assert [h["op_type"] for h in prep.host_ops] == host
    kinds = [f["kind"] for f in prep.folds]
    assert not any(n.op_type == "BatchNormalization" for n in prep.model.graph.node) == kind.startswith("tfc")
    if kind.startswith("kwsmlp"):  # per-channel weight scales into the BatchNorms, Flatten into the first weights
        assert kinds.count("channel_scales") == 3 and "input_preamble" in kinds and prep.domain is None
        assert grid.bits == 8 and grid.lo == -127 and not grid.power_of_two
        return
    assert "host_input" in kinds
    if kind.startswith("tfc"):
        assert kinds.count("batchnorm_steps") == 2 and grid.hls_type() == "fixed<2,2>"
        assert set(np.unique(x_orig)) <= {0.0, 0.5, 1.0} and len(np.unique(x_orig)) == 3
        assert set(np.unique(x)) <= {-1.0, 0.0, 1.0}
    else:
        assert prep.domain.name == "BIPOLAR" and set(np.unique(x_orig)) == {-1.0, 1.0}
        assert set(np.unique(x)) == {0.0, 1.0} and grid.hls_type() == "ufixed<1,1>"


def test_tfc_imitation_converts_bit_exact(tmp_path: Path) -> None:
    """End to end through C-simulation and the board project: the ternary TFC with negative BatchNorm factors
    (hls4ml's own BN + ternary fusion ignores the sign and does not compile in io_stream) is 100% bit-exact."""
    model = models.tfc_finn(tmp_path / "tfc.onnx", 2, 2)
    result = CliRunner().invoke(app, ["convert", str(model), "--board", "zcu104", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b" / "report" / "report.json").read_text())
    assert report["static_verdict"] == "exact" and report["verdict"] == "exact"
    assert report["fidelity"]["qonnx_vs_csim_exact"] == 1.0 and report["project"]["csim"]["exact"] == 1.0
    export = json.loads((tmp_path / "b" / "export" / "export.json").read_text())
    assert export["host_preprocessing"]["ops"] == ["Reshape", "Mul", "Sub", "Quant"]
    assert (tmp_path / "b" / "export" / "host_input.onnx").is_file()


def test_bn_steps_refusal_names_node_and_reason(tmp_path: Path) -> None:
    """A BatchNormalization after a float-scale layer stays (approximate) and says why, naming the layer."""
    prep = prepare_model(models.unsw_brevitas(tmp_path / "u.onnx"))
    reasons = {s["nodes"][0]: s["reason"] for s in prep.skipped}
    bn = [n.name for n in prep.model.graph.node if n.op_type == "BatchNormalization"]
    assert bn and all(b in reasons for b in bn)
    assert any("power-of-two scale" in r for r in reasons.values()), reasons


@pytest.mark.skipif(ZOO is None, reason="EDGEKD_QONNX_ZOO is not set (folder with the qonnx model zoo files)")
@pytest.mark.parametrize("kind", KINDS)
def test_imitation_matches_the_real_file(kind: str, imitations: dict) -> None:
    real = ZOO / models.ZOO_IMITATIONS[kind][1]
    if not real.is_file():
        pytest.skip(f"{real} is not in EDGEKD_QONNX_ZOO")
    assert structure(imitations[kind]) == structure(real)


@pytest.mark.skipif(ZOO is None, reason="EDGEKD_QONNX_ZOO is not set (folder with the qonnx model zoo files)")
@pytest.mark.parametrize("name", sorted({v[1] for v in models.ZOO_IMITATIONS.values()}))
def test_real_file_prepares_exactly(name: str) -> None:
    real = ZOO / name
    if not real.is_file():
        pytest.skip(f"{real} is not in EDGEKD_QONNX_ZOO")
    _prep, _grid, _x, _xo, check, verdict = _prepare_and_check(real)
    assert check["exact"]
    assert verdict == ("approximate" if name.startswith(("unsw", "kwsmlp")) else "exact")


def test_structure_sees_a_missing_annotation(tmp_path: Path) -> None:
    """The structure check is not vacuous: the UNSW imitation without its BIPOLAR annotation differs."""
    path = models.unsw_brevitas(tmp_path / "u.onnx")
    ref = structure(path)
    m = onnx.load(str(path))
    del m.graph.quantization_annotation[:]
    m.graph.node.append(helper.make_node("Relu", ["63"], ["64"], name="extra"))
    onnx.save(m, str(path))
    got = structure(path)
    assert got["input_datatype"] is None and ref["input_datatype"] == "BIPOLAR"
