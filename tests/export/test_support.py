import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper

from edgekd.export.support import SUPPORTED, UnsupportedOpError, check_hardware_support

QONNX_DOMAIN = "qonnx.custom_op.general"


def _model(nodes, in_shape, out_shape, initializers=()) -> ModelWrapper:
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v, dtype=np.float32), name=k) for k, v in initializers],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
    return ModelWrapper(model)


def _quant(name, inp, out, scale):
    inits = [(f"{name}_s", scale), (f"{name}_z", 0.0), (f"{name}_b", 8.0)]
    node = helper.make_node("Quant", [inp, f"{name}_s", f"{name}_z", f"{name}_b"], [out], name=name,
                            domain=QONNX_DOMAIN, signed=1, narrow=0, rounding_mode="ROUND")
    return node, inits


@pytest.mark.parametrize(
    "op, attrs, in_shape, out_shape, advice",
    [
        ("GlobalAveragePool", {}, [1, 4, 8, 8], [1, 4, 1, 1], "frozen Conv2d whose kernel covers"),
        ("Softmax", {"axis": 1}, [1, 10], [1, 10], "softmax on the host"),
        ("ReduceMean", {"keepdims": 0}, [1, 4, 8, 8], [1], "frozen Conv2d"),
        ("MaxPool", {"kernel_shape": [2]}, [1, 4, 8], [1, 4, 4], "MaxPool2d with kernel (1, k)"),
        ("AveragePool", {"kernel_shape": [2]}, [1, 4, 8], [1, 4, 4], "AvgPool1d"),
        ("AveragePool", {"kernel_shape": [8, 1], "strides": [8, 1]}, [1, 4, 8, 8], [1, 4, 1, 8],
         "does not wrap AveragePool"),
    ],
    ids=["global-avg-pool", "softmax", "reduce-mean", "maxpool1d", "avgpool1d", "avgpool2d-not-channels-last"],
)
def test_refused_ops_name_node_and_fix(op, attrs, in_shape, out_shape, advice):
    model = _model([helper.make_node(op, ["x"], ["y"], name=f"my_{op.lower()}", **attrs)], in_shape, out_shape)
    with pytest.raises(UnsupportedOpError, match=f"my_{op.lower()}") as err:
        check_hardware_support(model)
    assert op in str(err.value) and advice in str(err.value)
    assert [r["verdict"] for r in err.value.report] == ["unsupported"]


def test_batchnorm_and_gemm_refused_together():
    w = np.ones((4, 4), np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], name="fc"),
        helper.make_node("BatchNormalization", ["h", "g", "b", "m", "v"], ["y"], name="bn"),
    ]
    model = _model(nodes, [1, 4], [1, 4], [("w", w), ("g", np.ones(4)), ("b", np.zeros(4)), ("m", np.zeros(4)), ("v", np.ones(4))])
    with pytest.raises(UnsupportedOpError) as err:
        check_hardware_support(model)
    msg = str(err.value)
    assert "'fc' (Gemm)" in msg and "GemmToMatMul" in msg
    assert "'bn' (BatchNormalization)" in msg and "fold BatchNorm" in msg


def test_non_power_of_two_scale_refused():
    node, inits = _quant("in_quant", "x", "y", 0.1)
    with pytest.raises(UnsupportedOpError, match="in_quant") as err:
        check_hardware_support(_model([node], [1, 4], [1, 4], inits))
    assert "not a power of two" in str(err.value)


def test_power_of_two_scale_accepted():
    node, inits = _quant("in_quant", "x", "y", 2.0**-5)
    report = check_hardware_support(_model([node], [1, 4], [1, 4], inits))
    assert report == [{"name": "in_quant", "op_type": "Quant", "verdict": SUPPORTED, "reason": "8-bit power-of-two grid"}]


def test_float_weights_refused():
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="dense_float")], [1, 4], [1, 2],
                   [("w", np.ones((4, 2)))])
    with pytest.raises(UnsupportedOpError, match="dense_float.*float weights"):
        check_hardware_support(model)


def test_report_only_mode_does_not_raise():
    model = _model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)], [1, 3], [1, 3])
    report = check_hardware_support(model, raise_on_error=False)
    assert report[0]["verdict"] == "unsupported"


def test_cell_student_passes(tiny_student):
    _, path, _ = tiny_student
    report = check_hardware_support(path)
    assert len(report) == 19  # channels-last input: no input Transpose
    assert all(r["verdict"] == SUPPORTED for r in report)
    assert {r["op_type"] for r in report} == {"Quant", "Conv", "Relu", "MaxPool", "Flatten", "MatMul", "Add"}
