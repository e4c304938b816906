"""Two network pixels per clock (lanes) and the camera top (framing, k x k blocks, decision word).

The Verilated part is one build: the camera top around a tiny laned conv net (12 x 16 grey pixels in 2x2
blocks at 8 pixels per clock, two blocks per clock through the first conv and pool); its decision words
equal the ones QONNX's logits give, and its cycles equal the cost model's. The rest is numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.rtl import RTLUnsupportedError
from edgekd.rtl.lanes import LaneGeometry, after_window, compacts, input_geometry, masks
from edgekd.rtl.pixeltop import auto_lanes, camera_beats, decisions, pixel_geometry

NET = [{"conv": (3, 6, 1)}, {"pool": (2, 2)}, {"relu_q": (6, 4)}, {"conv": (2, 4, 1)}, {"relu_q": (5, 3)},
       {"flatten": True}, {"dense": 3}, {"q": (12, 8)}]


def test_lane_geometry_of_the_cell_student():
    g = input_geometry(24, 24, 2)                       # 24 x 24 blocks, two per clock
    conv = after_window(g, 3, 3, 1, 1)                  # conv 3x3: items 1..11 carry output columns 0..21
    assert conv == LaneGeometry(22, 11, 2, 0, 22)
    assert compacts(conv, 2, 2)                         # the 2x2 / 2 pool leaves one valid lane per item
    rows, cols = masks(conv, 2, 2, 2, 2)
    assert sum(rows) == 11 and all(c == [0, 1] for c in cols)
    with pytest.raises(RTLUnsupportedError, match="stride 2 over 4 lanes"):
        compacts(LaneGeometry(8, 2, 4, 0, 8), 2, 2)
    with pytest.raises(RTLUnsupportedError, match="do not split"):
        input_geometry(5, 5, 2)


@pytest.mark.parametrize("shape,block,ppc,lanes", [((24, 24, 4), 2, 8, 2), ((24, 24, 4), 2, 16, 4),
                                                   ((48, 48, 1), 1, 8, 8), ((24, 24, 4), 2, 2, 1),
                                                   ((9, 7, 3), 1, 1, 1), ((6,), 1, 8, 1)])
def test_auto_lanes_keep_up_with_the_camera(shape, block, ppc, lanes):
    assert auto_lanes(shape, block, ppc) == lanes


def test_camera_beats_undo_space_to_depth():
    from edgekd.data.transforms import space_to_depth

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (3, 1, 8, 12))
    blocks = space_to_depth(torch.as_tensor(img), 2).numpy().transpose(0, 2, 3, 1).reshape(3, -1, 4)
    m = {"input_shape": [4, 6, 4], "pixels_per_beat": 2}
    geo = pixel_geometry(m, 2, 4)
    assert geo["beats_per_line"] == 3 and geo["beats_per_region"] == 24
    words = camera_beats(blocks, geo, 8, 8)
    got = np.array([[[(int(w) >> (8 * p)) & 255 for p in range(4)] for w in row[:, 0]] for row in words])
    np.testing.assert_array_equal(got.reshape(3, 8, 12), img[:, 0])
    with pytest.raises(RTLUnsupportedError, match="pixels per clock"):
        pixel_geometry(m, 2, 6)


def test_decision_words_follow_the_board_projects_layout():
    from edgekd.project.generate import decision_word_layout, decode_decision_words
    from edgekd.project.trigger import sort_decisions

    rng = np.random.default_rng(1)
    y = rng.integers(-500, 500, (50, 3)) * 2.0**-8
    y[0] = [0.5, 0.5, -1]                                # a tie: the first index wins, score 0
    layout = decision_word_layout(13, 2)
    words = decisions(y, 8, 13, 8, int(0.25 * 256), None, layout)
    f = decode_decision_words(words, layout, 8)
    cls, score, fire = sort_decisions(y, 0.25, None)
    np.testing.assert_array_equal(f["cls"], cls)
    np.testing.assert_array_equal(f["score"], score)
    np.testing.assert_array_equal(f["trigger"], fire.astype(int))
    assert np.all(f["valid"] == 1) and f["cls"][0] == 0 and f["score"][0] == 0


def _camera_build(folder, net, n: int, lanes: int):
    """`net` on 6 x 8 x 4 inputs (12 x 16 grey pixels in 2x2 blocks) behind the camera top at 8 pixels per clock,
    Verilated: (manifest, pixel-top section, simulation result)."""
    from edgekd.rtl.generate import generate_rtl, input_raw
    from edgekd.rtl.pixeltop import generate_pixel_top, save_section
    from edgekd.rtl.sim import run_sim
    from edgekd.rtl.testnets import make_contract

    contract = make_contract(folder / "export", (6, 8, 4), net, n=n, seed=5)
    manifest = generate_rtl(contract, folder / "rtl", family="xcu", lanes=lanes)
    raw = input_raw(contract, contract.verify_inputs(), tuple(manifest["input_kif"]), tuple(manifest["input_shape"]))
    section = generate_pixel_top(folder / "rtl", manifest, 2, 8, raw, contract.reference_outputs(), threshold=0.1)
    save_section(folder / "rtl", manifest, section)
    sim = run_sim(folder / "rtl", section, sim_name="sim_pixel", vectors=section["vectors"]["file"], record=False)
    return manifest, section, sim


@pytest.fixture(scope="module")
def camera(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtl_lanes")
    return (*_camera_build(folder, NET, n=8, lanes=2), folder / "rtl")


def test_camera_top_decides_like_qonnx_at_two_blocks_per_clock(camera):
    manifest, section, sim, _ = camera
    assert manifest["lanes"] == 2 and manifest["beats_per_image"] == 24  # 48 blocks, two per beat
    assert [s.get("instances", 1) for s in manifest["stages"] if s["stage"].startswith("kernel")] == [2, 1, 1]
    assert section["beats_per_image"] == 24 and section["frame"]["beats_per_line"] == 2
    assert sim["exact"] == 1.0 and sim["n"] == 8 and sim["tlast_ok"]
    assert sim["network"]["exact"] == 1.0  # the logits themselves, at the monitor port
    assert sim["network"]["latency_cycles"] < sim["latency_cycles"]
    assert sim["interval_cycles"] == 24.0  # one camera beat per clock, back to back


def test_cost_model_counts_the_camera_tops_cycles(camera):
    from edgekd.estimate.rtl import estimate_pixel_top

    manifest, section, sim, _ = camera
    est = estimate_pixel_top({**manifest, "pixel_top": section})
    assert est["latency_cycles"] == sim["latency_cycles"]
    assert est["interval_cycles"] == sim["interval_cycles"]


def test_camera_top_framing_marks_broken_regions_invalid(camera):
    """The HLS top's framing rules: a lost beat (the next TUSER comes early) or a missing TLAST makes that
    region's decision invalid; beats before a TUSER are dropped; the regions after them decide normally."""
    from edgekd.rtl.sim import run_sim

    _, section, _, rtl = camera
    n, bpi, bpl = 8, section["beats_per_image"], section["frame"]["beats_per_line"]
    flags = np.zeros((n, bpi), dtype=np.uint8)
    flags[:, 0] |= 1                       # TUSER on every region's first beat
    flags[:, bpl - 1::bpl] |= 2            # TLAST at every line end
    flags[1, 5] |= 4                       # region 1 loses a beat
    flags[2, 2 * bpl - 1] &= 0xFD          # region 2: no TLAST at the end of its second line
    flags[4, 0] &= 0xFE                    # region 4 has no TUSER: dropped while hunting for one
    run = run_sim(rtl, section, sim_name="sim_pixel", vectors=section["vectors"]["file"], record=False,
                  flags=flags)
    assert run["build_reused"]
    with np.load(rtl / section["vectors"]["file"]) as v:
        want = [int(w) for w in v["outputs"][:, 0, 0]]
    valid_bit = next(f["lsb"] for f in section["decision_word"]["fields"] if f["name"] == "valid")
    got = run["words"]
    assert len(got) == n - 1
    assert [(w >> valid_bit) & 1 for w in got] == [1, 0, 0, 1, 1, 1, 1]
    assert [got[0], got[3], got[4], got[5], got[6]] == [want[0], want[3], want[5], want[6], want[7]]


def test_camera_top_around_a_padded_network_and_its_frame_gap(tmp_path):
    """A 'same'-padded first conv behind the camera top (2x2 blocks, 8 pixels per clock, one block per clock): the
    decisions equal QONNX's, and back-to-back regions come 48 blocks + the network's 9-clock frame gap apart (its
    padded window's flush beats), as the cost model counts them (measured without the gap in the model: 48)."""
    from edgekd.estimate.rtl import estimate_pixel_top

    net = [{"conv": (3, 6, 1, (1, 1, 1, 1))}, *NET[1:]]
    manifest, section, sim = _camera_build(tmp_path, net, n=6, lanes=1)
    assert manifest["frame_gap_cycles"] == manifest["frame_hold_cycles"] == 9  # 'same' 3x3 on 8 columns: 8 + 1
    assert sim["exact"] == 1.0 and sim["network"]["exact"] == 1.0 and sim["n"] == 6
    est = estimate_pixel_top({**manifest, "pixel_top": section})
    assert sim["interval_cycles"] == est["interval_cycles"] == 48 + 9
    assert sim["latency_cycles"] == est["latency_cycles"]
    assert sim["network"]["latency_cycles"] == est["network_latency_cycles"]
