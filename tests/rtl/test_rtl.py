"""The RTL backend end to end on tiny nets: generated, Verilator-simulated bit-exact against QONNX, cycles counted.

One Verilator build per net (module fixtures); the backpressure run reuses it.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekd.io import read_json
from edgekd.rtl import RTLUnsupportedError
from edgekd.rtl.generate import generate_rtl, unpack_words
from edgekd.rtl.sim import run_sim
from edgekd.rtl.testnets import make_contract

MLP = [{"dense": 8}, {"relu_q": (6, 4)}, {"dense": 3}, {"q": (12, 8)}]
# 'same' padding on the input (the padded taps are the input Quant's 0), then a TF-style 'same' (2, 1) conv padded
# at the bottom: two padded windows in series, whose flush beats the top's frame gap leaves room for
CNN = [{"conv": (3, 3, 1, (1, 1, 1, 1))}, {"pool": (2, 2)}, {"relu_q": (6, 4)}, {"conv": ((2, 1), 2, 1, (0, 0, 1, 0))},
       {"relu_q": (5, 3)}, {"flatten": True}, {"dense": 3}, {"q": (12, 8)}]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtl_mlp")
    contract = make_contract(folder / "export", (6,), MLP, n=24)
    manifest = generate_rtl(contract, folder / "rtl", family="xcu")
    return contract, folder / "rtl", manifest, run_sim(folder / "rtl")


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtl_cnn")
    contract = make_contract(folder / "export", (9, 7, 3), CNN, n=12, seed=3)
    manifest = generate_rtl(contract, folder / "rtl", family="ecp5")
    return contract, folder / "rtl", manifest, run_sim(folder / "rtl")


def test_mlp_is_bit_exact_with_qonnx_and_one_image_per_clock(mlp):
    contract, rtl, manifest, sim = mlp
    assert sim["exact"] == 1.0 and sim["n"] == 24 and sim["tlast_ok"]
    assert manifest["beats_per_image"] == 1 and manifest["outputs_per_image"] == 1
    assert sim["interval_cycles"] == 1.0  # fully pipelined: a new input vector every clock
    stages = sum(s["latency"] for s in manifest["stages"])
    assert sim["latency_cycles"] == stages + 1  # kernels' registers + the output register


def test_manifest_and_vectors_are_the_interface(mlp):
    contract, rtl, manifest, _ = mlp
    on_disk = read_json(rtl / "rtl.json")
    assert on_disk["top"] == manifest["top"] and on_disk["simulation"]["exact"] == 1.0
    for name in on_disk["verilog"]:
        assert (rtl / name).exists()
    assert on_disk["verilog"][-1] == f"{on_disk['top']}.v"
    assert set(on_disk["ports"]) >= {"clk", "rst", "s_axis_tdata", "s_axis_tuser", "m_axis_tlast"}
    with np.load(rtl / "vectors.npz") as v:
        inputs, outputs = v["inputs"], v["outputs"]
    assert inputs.shape == (24, 1, 1) and inputs.dtype == np.uint64
    lay = on_disk["output_layout"]
    got = unpack_words(outputs, lay["element_bits"], lay["elements_per_beat"], lay["signed"])
    values = got.reshape(24, -1).astype(np.float64) * 2.0 ** -lay["frac_bits"]
    np.testing.assert_array_equal(values, contract.reference_outputs())


def test_conv_net_is_bit_exact_and_takes_one_pixel_per_clock(cnn):
    contract, rtl, manifest, sim = cnn
    assert sim["exact"] == 1.0 and sim["n"] == 12 and sim["tlast_ok"]
    assert manifest["beats_per_image"] == 63 and manifest["in_width"] == 3 * 8
    # II 1: one pixel per clock, back to back, plus the frame gap: the flush beats of the 'same' 3x3 window on
    # 9x7 (a row and a pixel: 8) and of the bottom-padded 2x1 window on 4x3 (3)
    flush = [s["flush_beats"] for s in manifest["stages"] if "flush_beats" in s]
    assert flush == [8, 3] and manifest["frame_gap_cycles"] == 11
    assert sim["interval_cycles"] == 63.0 + 11
    assert 63 <= sim["latency_cycles"] <= 63 + 40
    assert all(s["ii"] == 1 for s in manifest["stages"])
    from edgekd.estimate.rtl import estimate_rtl

    est = estimate_rtl(read_json(rtl / "rtl.json"))
    assert est["latency_cycles"] == sim["latency_cycles"] and est["interval_cycles"] == sim["interval_cycles"]


def test_backpressure_keeps_outputs_exact(cnn):
    _, rtl, manifest, _ = cnn
    sim = run_sim(rtl, backpressure=40)
    assert sim["build_reused"] and sim["exact"] == 1.0 and sim["tlast_ok"]
    assert sim["interval_cycles"] > 63  # stalls cost cycles, never values


def test_unsupported_padding_is_refused_naming_the_node(tmp_path):
    import onnx

    contract = make_contract(tmp_path / "export", (5, 6, 1), [{"conv": (3, 2, 1, (1, 1, 1, 1))}, {"q": (8, 4)}], n=2)
    model = onnx.load(str(contract.qonnx_path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    for a in conv.attribute:
        if a.name == "pads":
            a.ints[:] = [1, 2, 1, 1]  # 3 columns of padding on a 3-wide kernel: more outputs than pixels per row
    onnx.save(model, str(contract.qonnx_path))
    with pytest.raises(RTLUnsupportedError, match=r"Conv_0: Conv padding \[1, 2, 1, 1\].*left \+ right <= 2"):
        generate_rtl(contract, tmp_path / "rtl")
    for a in conv.attribute:
        if a.name == "pads":
            a.ints[:] = [1, 1, 1, 1]  # 'same': generated at one pixel per clock, but not on a laned stream
    onnx.save(model, str(contract.qonnx_path))
    with pytest.raises(RTLUnsupportedError, match=r"Conv_0: a padded Conv .* set rtl.lanes 1"):
        generate_rtl(contract, tmp_path / "rtl", lanes=2)
