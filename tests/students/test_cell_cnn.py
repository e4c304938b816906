import pytest
import torch

from edgekd.config import StudentConfig
from edgekd.registry import STUDENTS
from edgekd.students.cell_cnn import (
    FixedPointFormat,
    build_cell_cnn,
    calibrate,
    count_macs,
    count_params,
    input_quant_format,
    quantize_input,
)


def test_registered():
    assert "cell_cnn" in STUDENTS
    assert STUDENTS.get("cell_cnn") is build_cell_cnn


def test_default_is_paper_student2():
    model = build_cell_cnn(StudentConfig(), num_classes=2)
    assert count_params(model) == 5682  # 160 + 2,320 + 3,202
    assert count_params(build_cell_cnn(StudentConfig(), num_classes=2, quantized=False)) == 5682
    assert count_params(build_cell_cnn(StudentConfig(), num_classes=3)) == 5682 + 1601
    assert count_macs(StudentConfig(), 2) == 1_323_968
    assert model(torch.zeros(3, 1, 48, 48)).shape == (3, 2)


def test_float_variant_is_plain_torch():
    model = build_cell_cnn(StudentConfig(), num_classes=3, quantized=False)
    assert not any(type(m).__module__.startswith("brevitas") for m in model.modules())
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 3)


def test_per_layer_bits_reach_quantizers():
    cfg = StudentConfig(input_size=16, channels=[4, 4], weight_bits=[4, 6, 8], act_bits=[3, 5], input_bits=6)
    model = build_cell_cnn(cfg, num_classes=2)
    assert int(model.blocks[0].conv0.quant_weight().bit_width) == 4
    assert int(model.blocks[1].conv1.quant_weight().bit_width) == 6
    assert int(model.dense.quant_weight().bit_width) == 8
    assert int(model.blocks[0].relu0.act_quant.bit_width()) == 3
    assert int(model.blocks[1].relu1.act_quant.bit_width()) == 5
    assert input_quant_format(model) == FixedPointFormat(6, 3, True)


def test_input_grid_default_is_fixed_8_3():
    model = build_cell_cnn(StudentConfig(), num_classes=2)
    fmt = input_quant_format(model)
    assert fmt.hls_type() == "fixed<8,3>" and fmt.scale == 2**-5
    x = torch.tensor([-5.0, -3.3, 0.01, 0.02, 3.5, 3.99])
    xq = quantize_input(model, x)
    assert torch.equal(xq, torch.tensor([-4.0, -3.3125, 0.0, 0.03125, 3.5, 3.96875]))
    # the grid is the brevitas input quantizer's, exactly
    xr = torch.randn(64, 1, 48, 48) * 2
    assert torch.equal(model.input_quant(xr), quantize_input(model, xr))


def test_calibrate_sets_power_of_two_act_scales():
    model = build_cell_cnn(StudentConfig(input_size=16, channels=[4, 4]), num_classes=2)
    calibrate(model, torch.randn(16, 1, 16, 16))
    scale = float(model.blocks[0].relu0.act_quant.scale())
    assert scale != 1.0 and scale == 2.0 ** round(torch.log2(torch.tensor(scale)).item())


def test_quantized_student_learns():
    """Adam at lr 3e-3 from scratch fits a separable toy task (training itself lives elsewhere)."""
    torch.manual_seed(0)
    cfg = StudentConfig(input_size=16, channels=[4, 4])
    model = build_cell_cnn(cfg, num_classes=2)
    x = torch.randn(128, 1, 16, 16)
    y = (x[:, 0, 4:12, 4:12].mean(dim=(1, 2)) > 0).long()
    x[y == 1, :, 4:12, 4:12] += 1.0
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.9


def test_bad_geometry_names_layer():
    with pytest.raises(ValueError, match="pool1"):
        build_cell_cnn(StudentConfig(input_size=8, channels=[4, 4]), num_classes=2)


def test_input_block_reads_pixel_blocks():
    """student.input_block k: the network's input is (k^2, S/k, S/k) (space-to-depth, channel dy*k + dx); forward
    takes the image or the blocked tensor with the same result; params and MACs follow the first conv's k^2."""
    from pydantic import ValidationError

    from edgekd.data.transforms import space_to_depth
    from edgekd.students.cell_cnn import model_input_shape

    x = torch.randn(3, 1, 48, 48)
    for k, params, macs in ((2, 3426, 465_920), (4, 4674, 251_168)):
        cfg = StudentConfig(input_block=k)
        assert model_input_shape(cfg) == (k * k, 48 // k, 48 // k)
        model = build_cell_cnn(cfg, num_classes=2)
        calibrate(model, x)
        model.eval()
        assert model.blocks[0][0].in_channels == k * k
        assert count_params(model) == params and count_macs(cfg, 2) == macs
        assert torch.equal(model(x), model(space_to_depth(x, k)))
        with pytest.raises(ValueError, match="input_block"):
            model(torch.zeros(1, 3, 48 // k, 48 // k))
    with pytest.raises(ValidationError, match="not a multiple of student.input_block 4"):
        StudentConfig(input_size=50, input_block=4)
