"""Tiny student -> hls4ml Vitis io_stream project compiled with g++; C-sim vs QONNX bit for bit."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.config import HLSConfig
from edgekd.export.support import UnsupportedOpError
from edgekd.export.verify import FidelityError
from edgekd.hls.convert import convert_to_hls
from edgekd.hls.csim import predict_csim, trace_csim
from edgekd.hls.verify import qonnx_names_for_hls_layer, verify_csim_against_qonnx
from edgekd.students.cell_cnn import input_quant_format, quantize_input

pytestmark = pytest.mark.slow  # each project compiles with g++ in ~8 s on 2 cores


@pytest.fixture(scope="module")
def project(tiny_student, tmp_path_factory):
    model, path, x = tiny_student
    precision = input_quant_format(model).hls_type()
    hls_model, config = convert_to_hls(path, HLSConfig(), tmp_path_factory.mktemp("hls") / "prj", precision)
    xq = quantize_input(model, torch.from_numpy(x)).numpy()
    return hls_model, config, path, xq


def test_project_written_and_config_serialisable(project):
    hls_model, config, _, _ = project
    assert config["LayerName"]["global_in"]["Precision"]["result"] == "fixed<8,3>"
    assert config["Model"]["Strategy"] == "Latency" and config["Model"]["ReuseFactor"] == 1
    json.dumps(config)  # saved next to the project by the pipeline
    assert hls_model.config.get_config_value("IOType") == "io_stream"
    assert hls_model.config.get_config_value("Part") == "xcku035-fbva676-2-e"
    firmware = Path(hls_model.config.get_output_dir()) / "firmware"
    assert (firmware / "myproject.cpp").exists() and (firmware / "myproject.h").exists()


def test_csim_bit_exact_to_qonnx(project):
    hls_model, _, path, xq = project
    result = verify_csim_against_qonnx(hls_model, path, xq[:48], progress=False)
    assert result["n"] == 48
    assert result["exact"] == 1.0 and result["samples_exact"] == 1.0 and result["max_abs_diff"] == 0.0
    assert result["first_diverging_layer"] is None
    assert result["csim_images_per_s"] > 10


def test_predict_takes_nchw(project):
    hls_model, _, _, xq = project
    y = predict_csim(hls_model, xq[:5], progress=False)
    assert y.shape == (5, 2)
    with pytest.raises(ValueError, match="NCHW"):
        predict_csim(hls_model, xq[:5, :, :8, :], progress=False)


def test_trace_layers_map_to_qonnx_nodes(project):
    hls_model, _, path, xq = project
    trace = trace_csim(hls_model, xq[:2])
    assert "Transpose_0" not in trace  # the input is channels-last: no stream transpose layer
    assert list(trace)[:2] == ["Quant_6_act", "Conv2D_Conv_0"]
    assert trace["Conv2D_Conv_0"].shape == (2, 14 * 14 * 4)
    from qonnx.core.modelwrapper import ModelWrapper

    qm = ModelWrapper(str(path))
    assert qonnx_names_for_hls_layer(qm, "Conv2D_Conv_0") == ["Conv_0"]
    assert qonnx_names_for_hls_layer(qm, "Relu_0") == ["Relu_0", "Quant_7"]
    assert qonnx_names_for_hls_layer(qm, "Dense_MatMul_0") == ["MatMul_0", "Add_0", "Quant_9"]


def test_wrong_input_precision_is_caught_and_localised(tiny_student, tmp_path):
    model, path, x = tiny_student
    xq = quantize_input(model, torch.from_numpy(x)).numpy()[:32]
    # two fractional bits short of the fixed<8,3> grid: the input is truncated before the first Quant
    hls_model, _ = convert_to_hls(path, HLSConfig(), tmp_path / "bad", "fixed<6,3>")
    # the first hls4ml layer (the input is channels-last: no Transpose before it) is the input quantizer
    with pytest.raises(FidelityError, match="Quant_6_act") as err:
        verify_csim_against_qonnx(hls_model, path, xq, progress=False)
    result = err.value.result
    assert result["first_diverging_layer"] == "Quant_6_act"
    assert result["exact"] < 0.5 and result["max_abs_diff"] > 1e-3


def test_unsupported_model_refused_before_conversion(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], name="probs", axis=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph), tmp_path / "sm.onnx")
    with pytest.raises(UnsupportedOpError, match="probs"):
        convert_to_hls(tmp_path / "sm.onnx", HLSConfig(), tmp_path / "prj", "fixed<8,3>")
    assert not (tmp_path / "prj").exists()
