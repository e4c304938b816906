"""hls4ml Strategy: distributed_arithmetic from QONNX (edgekd.hls.da): the pinned-version patch, C-sim == QONNX ==
emulator bit for bit on a tiny cell student, and da4ml's cost figures."""

import copy
import hashlib
import inspect

import hls4ml
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

from edgekd.config import HLSConfig
from edgekd.hls import da
from edgekd.hls.convert import build_hls_config, quiet_hls4ml
from edgekd.hls.csim_cache import compile_cached
from edgekd.hls.emulate import Emulator
from edgekd.hls.verify import verify_csim_against_qonnx, verify_emulator_against_csim
from edgekd.students.cell_cnn import input_quant_format, quantize_input

HLS = HLSConfig(reuse_factor=1, strategy="Latency", part="xcku035-fbva676-2-e", clock_period_ns=4.0)
DA_LAYERS = ("Conv2D_Conv_0", "Conv2D_Conv_1", "Dense_MatMul_0")


# -- the patch guard ---------------------------------------------------------------------------------

def test_patch_target_is_the_pinned_hls4ml():
    """Fails loudly when hls4ml or the patched function changes: re-check the patch (docs/upstream/...)."""
    from hls4ml.model.optimizer.passes import bit_exact

    assert hls4ml.__version__ == da.PATCHED_HLS4ML_VERSION == "1.3.0"
    source = inspect.getsource(da.original_get_input_layers())
    assert hashlib.sha256(source.encode()).hexdigest() == da.ORIGINAL_SOURCE_SHA256
    assert da.original_get_input_layers().__module__ == bit_exact.__name__
    da.check_patch_target()


def test_patch_is_idempotent_and_reaches_every_binder():
    from hls4ml.backends.vivado.passes import distributed_arithmetic
    from hls4ml.model.optimizer.passes import bit_exact

    da.ensure_patched()
    patched = bit_exact.get_input_layers
    da.ensure_patched()
    assert bit_exact.get_input_layers is patched is distributed_arithmetic.get_input_layers
    assert da.is_patched() and patched.__wrapped__ is da.original_get_input_layers()


def test_patch_refuses_another_hls4ml(monkeypatch):
    monkeypatch.setattr(hls4ml, "__version__", "1.4.0")
    with pytest.raises(RuntimeError, match="hls4ml changed.*1.4.0"):
        da.ensure_patched()


# -- a tiny student converted with distributed arithmetic ----------------------------------------------

def _convert(path, precision, out_dir, strategy):
    model = ModelWrapper(str(path))
    config = build_hls_config(model, HLS, precision)
    for name, entry in config["LayerName"].items():
        if name.startswith(("Conv_", "MatMul_")):  # hls4ml reads a layer's entry by its ONNX node name
            entry["Strategy"] = strategy
    with quiet_hls4ml():
        return hls4ml.converters.convert_from_onnx_model(
            model, output_dir=str(out_dir), project_name="myproject", backend=HLS.backend, io_type=HLS.io_type,
            part=HLS.part, clock_period=HLS.clock_period_ns, hls_config=copy.deepcopy(config))


def test_unpatched_hls4ml_fails_on_qonnx(tiny_student, tmp_path, monkeypatch):
    """The upstream bug the patch fixes (if this stops failing, hls4ml fixed it: drop the patch)."""
    from hls4ml.backends.vivado.passes import distributed_arithmetic
    from hls4ml.model.optimizer.passes import bit_exact

    original = da.original_get_input_layers()
    monkeypatch.setattr(bit_exact, "get_input_layers", original)
    monkeypatch.setattr(distributed_arithmetic, "get_input_layers", original)
    model, path, _ = tiny_student
    with pytest.raises(AssertionError, match="has input .*_out0 which is not in the model"):
        _convert(path, input_quant_format(model).hls_type(), tmp_path / "prj", "distributed_arithmetic")


@pytest.fixture(scope="module")
def da_project(tiny_student, tmp_path_factory):
    model, path, x = tiny_student
    precision = input_quant_format(model).hls_type()
    da.ensure_patched()
    latency = _convert(path, precision, tmp_path_factory.mktemp("lat") / "prj", "Latency")  # not written
    hls_model = _convert(path, precision, tmp_path_factory.mktemp("da") / "prj", "distributed_arithmetic")
    compile_cached(hls_model, tmp_path_factory.mktemp("csim"))  # as a build compiles it (-O1, cached)
    xq = quantize_input(model, torch.from_numpy(x)).numpy()[:32]
    return hls_model, latency, path, xq


@pytest.mark.slow
def test_da_layers_generated(da_project):
    hls_model, latency, _, _ = da_project
    for name in DA_LAYERS:
        assert hls_model.graph[name].get_attr("strategy") == "distributed_arithmetic"
        assert "da_codegen" in hls_model.graph[name].attributes
        assert latency.graph[name].get_attr("strategy") == "latency"


@pytest.mark.slow
def test_csim_bit_exact_to_qonnx(da_project):
    hls_model, _, path, xq = da_project
    result = verify_csim_against_qonnx(hls_model, path, xq, progress=False)
    assert result["n"] == 32 and result["exact"] == 1.0 and result["max_abs_diff"] == 0.0


@pytest.mark.slow
def test_emulator_bit_exact_to_csim(da_project):
    hls_model, _, _, xq = da_project
    emulator = Emulator(hls_model)
    ops = {s["name"]: s for s in emulator.plan()}
    assert ops["Dense_MatMul_0"]["accum_may_overflow"] is False  # the DA sum is exact
    result = verify_emulator_against_csim(emulator, hls_model, xq)
    assert result["exact"] == 1.0 and result["first_diverging_layer"] is None


# -- da4ml's cost model ----------------------------------------------------------------------------

@pytest.mark.slow
def test_da_costs_are_the_generated_designs(da_project):
    """Priced on the Latency conversion, the cost equals what hls4ml's DA pass recorded for the design it
    generated (same solver, options and inputs); a DA-converted model (Dense weights dropped) prices the same."""
    hls_model, latency, _, _ = da_project
    costs = da.da_layer_costs(latency)
    assert sorted(costs) == sorted(DA_LAYERS)
    for name, c in costs.items():
        assert c["lut"] == int(hls_model.graph[name].attributes["da_kernel_cost"]) > 0
        assert c["dsp"] == 0 and c["instances"] == 1 and c["source"] == "da4ml cost model"
        assert c["ff"] > 0 and c["adders"] > 0 and 1 <= c["latency_cycles"] <= c["adder_depth"]
        assert c["solve_seconds"] >= 0
    assert (costs["Conv2D_Conv_0"]["n_in"], costs["Conv2D_Conv_0"]["n_out"]) == (9, 4)  # 3x3x1 -> 4
    assert (costs["Dense_MatMul_0"]["n_in"], costs["Dense_MatMul_0"]["n_out"]) == (16, 2)
    again = da.da_layer_costs(hls_model)
    assert "weight" not in hls_model.graph["Dense_MatMul_0"].attributes
    strip = ("solve_seconds",)
    assert {n: {k: v for k, v in c.items() if k not in strip} for n, c in again.items()} == \
        {n: {k: v for k, v in c.items() if k not in strip} for n, c in costs.items()}
