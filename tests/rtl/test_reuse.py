"""Time-multiplexed (reuse) dense kernels (edgekd.rtl.reuse): bit-exact under Verilator, II = R, bad R refused.

Two Verilator builds (a 6-8-3 MLP, reuse 16 on both layers: input slices, output groups and a padded last group;
a conv + dense net whose R exceeds its 9 beats per image: the input gate);
the refusals need no simulator.
"""

from __future__ import annotations

import pytest

from edgekd.rtl import RTLUnsupportedError
from edgekd.rtl.generate import generate_rtl
from edgekd.rtl.network import load_network
from edgekd.rtl.reuse import resolve_reuse, reuse_split, valid_reuse
from edgekd.rtl.sim import run_sim
from edgekd.rtl.testnets import make_contract

MLP = [{"dense": 8}, {"relu_q": (6, 4)}, {"dense": 3}, {"q": (12, 8)}]


@pytest.fixture(scope="module")
def mlp_contract(tmp_path_factory):
    return make_contract(tmp_path_factory.mktemp("reuse_mlp") / "export", (6,), MLP, n=20, seed=5)


def test_reuse_mlp_is_bit_exact_with_one_vector_every_r_cycles(mlp_contract, tmp_path):
    manifest = generate_rtl(mlp_contract, tmp_path / "rtl", family="ecp5", reuse=16)
    kernels = [s for s in manifest["stages"] if s["stage"].startswith("kernel")]
    assert manifest["reuse"] == {"MatMul_0": 16, "MatMul_2": 16}
    assert [s["ii"] for s in kernels] == [16, 16] and manifest["interval_cycles_per_image"] == 16
    # 6x8 over 16 cycles: 2 input slices of 3 x 8 output groups of 1; 8x3: 8 slices of 1 x 2 groups of 2 (padded)
    assert [(s["reuse"]["r_in"], s["reuse"]["r_out"], s["reuse"]["multipliers"]) for s in kernels] == \
        [(2, 8, 3), (8, 2, 2)]
    sim = run_sim(tmp_path / "rtl")
    assert sim["exact"] == 1.0 and sim["n"] == 20 and sim["tlast_ok"]
    assert sim["interval_cycles"] == 16.0  # images start every R clock enables
    assert sim["latency_cycles"] == sum(s["latency"] for s in manifest["stages"]) + 1
    # the pipeline stalls under backpressure without losing or corrupting a vector (the same Verilated model)
    stalled = run_sim(tmp_path / "rtl", backpressure=40, record=False)
    assert stalled["exact"] == 1.0 and stalled["build_reused"] and stalled["interval_cycles"] > 16.0


def test_reuse_factors_are_checked_per_layer_naming_it(mlp_contract):
    layers, _, _ = load_network(mlp_contract.qonnx_path)
    assert resolve_reuse(layers, None) == {"MatMul_0": 1, "MatMul_2": 1}
    assert resolve_reuse(layers, {"MatMul_2": 12}) == {"MatMul_0": 1, "MatMul_2": 12}
    with pytest.raises(RTLUnsupportedError, match=r"rtl.reuse 32 for dense layer MatMul_0 \(6 inputs x 8 outputs\)"):
        resolve_reuse(layers, 32)  # gcd(32, 6) = 2 input slices x 16 output groups > 8 outputs
    with pytest.raises(RTLUnsupportedError, match=r"MatMul_2.*largest 24"):
        resolve_reuse(layers, {"MatMul_2": 25})
    with pytest.raises(RTLUnsupportedError, match=r"names layer 'fc1'.*MatMul_0, MatMul_2"):
        resolve_reuse(layers, {"fc1": 4})


def test_reuse_split_rules():
    assert reuse_split(16, 64, 32, "l") == (16, 2, 1, 32)
    assert reuse_split(32, 5, 64, "l") == (32, 2, 1, 3)  # two groups of three outputs, one padded
    assert reuse_split(7, 4, 4, "l") == (1, 4, 7, 1)
    assert valid_reuse(2, 2) == [1, 2, 4]
    with pytest.raises(RTLUnsupportedError, match="at least 1"):
        reuse_split(4, 4, 0, "l")


def test_config_refuses_a_reuse_factor_below_one():
    from pydantic import ValidationError

    from edgekd.config import RTLConfig

    assert RTLConfig(reuse={"MatMul_0": 4}).reuse == {"MatMul_0": 4}
    for bad, where in ((0, "rtl.reuse: 0"), ({"MatMul_0": -2}, "for layer MatMul_0: -2")):
        with pytest.raises(ValidationError, match=where):
            RTLConfig(reuse=bad)


def test_convert_refuses_a_malformed_reuse_option(tmp_path):
    from typer.testing import CliRunner

    from edgekd.cli import app

    result = CliRunner().invoke(app, ["convert", str(tmp_path / "m.onnx"), "--board", "ulx3s-85f",
                                      "--reuse", "MatMul_0=four"])
    assert result.exit_code == 2 and "--reuse MatMul_0=four" in result.output


def test_reuse_after_a_conv_spaces_multi_beat_images(tmp_path):
    # 9 pixels per image but the dense layer's R = 48: the top holds each image's first beat until 48 clock
    # enables after the previous one (s_axis_tready low), under backpressure too
    net = [{"conv": (2, 4, 1)}, {"relu_q": (6, 4)}, {"flatten": True}, {"dense": 3}, {"q": (12, 8)}]
    contract = make_contract(tmp_path / "export", (3, 3, 2), net, n=10, seed=3)
    manifest = generate_rtl(contract, tmp_path / "rtl", family="ecp5", reuse={"MatMul_3": 48})
    assert manifest["beats_per_image"] == 9 and manifest["interval_cycles_per_image"] == 48
    sim = run_sim(tmp_path / "rtl")
    assert sim["exact"] == 1.0 and sim["tlast_ok"] and sim["interval_cycles"] == 48.0
    assert sim["latency_cycles"] == 8 + sum(s["latency"] for s in manifest["stages"]) + 1  # last pixel + stages
    stalled = run_sim(tmp_path / "rtl", backpressure=40, record=False)
    assert stalled["exact"] == 1.0 and stalled["interval_cycles"] > 48.0
