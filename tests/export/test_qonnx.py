import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

from edgekd.export.qonnx import CLEAN_NAME, RAW_NAME, run_qonnx
from edgekd.export.verify import FidelityError, verify_torch_against_qonnx
from edgekd.students.cell_cnn import quantize_input


def test_export_writes_raw_and_clean(tiny_student):
    _, path, _ = tiny_student
    assert path.name == CLEAN_NAME and (path.parent / RAW_NAME).exists()
    ops = [n.op_type for n in ModelWrapper(str(path)).graph.node]
    assert "Gemm" not in ops and "MatMul" in ops and ops.count("Conv") == 2
    # channels-last input: no layout-only Transpose left for hls4ml to build as a stream layer
    assert ModelWrapper(str(path)).get_tensor_shape("global_in") == [1, 16, 16, 1]
    assert "Transpose" not in ops


def test_torch_equals_qonnx_bit_exact(tiny_student):
    model, path, x = tiny_student
    result = verify_torch_against_qonnx(model, path, x[:32])
    assert result["n"] == 32
    assert result["exact"] == 1.0 and result["max_abs_diff"] == 0.0
    assert result["first_diverging_layer"] is None


def test_run_qonnx_batches_agree(tiny_student):
    model, path, x = tiny_student
    xq = quantize_input(model, torch.from_numpy(x)).numpy()
    whole = run_qonnx(path, xq)
    chunked = run_qonnx(path, xq, batch_size=7)
    assert whole.shape == (64, 2)
    assert np.array_equal(whole, chunked)
    ctx = run_qonnx(path, xq[:10], return_all=True, batch_size=4)
    assert ctx["global_out"].shape == (10, 2)
    assert ctx["Conv_0_out0"].shape == (10, 14, 14, 4)  # channels-last inside


def test_torch_mismatch_names_layer(tiny_student):
    model, path, x = tiny_student
    changed = type(model)(model.cfg, model.num_classes)
    changed.load_state_dict(model.state_dict())
    changed.eval()
    with torch.no_grad():
        changed.blocks[1].conv1.weight.mul_(1.5)
    with pytest.raises(FidelityError, match="blocks.1.conv1") as err:
        verify_torch_against_qonnx(changed, path, x[:8])
    assert err.value.result["first_diverging_layer"] == "blocks.1.conv1"
    assert err.value.result["reference_layer"] == "Conv_1"
    assert err.value.result["exact"] < 1.0
