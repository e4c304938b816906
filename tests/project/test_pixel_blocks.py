"""student.input_block k (k x k pixel blocks per stream item) and a P-pixel grabber bus, end to end.

A tiny cell student with k = 1, 2, 4 is built through the hls step (torch == QONNX == C-simulation == emulator,
bit for bit, checked by the export and hls steps themselves); then the board project of a pixel-stream board
with P = 1 and 8 pixels per clock is generated and both testbenches are compiled and run with g++: the
network's and the pixel-stream top's, which sends the raster image P pixels per beat, packs k x k blocks and
must reproduce every expected decision exactly (framing checks included).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.config import parse_config
from edgekd.data.transforms import depth_to_space, space_to_depth
from edgekd.hw import parse_board
from edgekd.io import load_npy, read_json
from edgekd.pipeline import run_build
from edgekd.project.csim import run_project_csim
from edgekd.project.generate import ProjectError, generate_project

pytestmark = pytest.mark.slow

# 16 x 16 images; k = 4 leaves a 4 x 4 x 16 input: one 3x3 conv (-> 2 x 2, pool -> 1 x 1)
STUDENT = {1: {"channels": [4, 4], "kernel_sizes": [3, 3]}, 2: {"channels": [4, 4], "kernel_sizes": [3, 2]},
           4: {"channels": [4], "kernel_sizes": [3]}}


def _tiny(k: int) -> dict:
    return {
        "name": f"tiny-k{k}",
        "data": {"synthetic": {"n_train": 240, "n_test": 60, "seed": 1}, "val_fraction": 0.1},
        "teacher": {"width": 8, "epochs": 1, "input_size": 32, "batch_size": 64},
        "student": {"input_size": 16, "input_block": k, **STUDENT[k]},
        "distill": {"epochs": 1, "qat_epochs": 1, "batch_size": 64, "baseline": False},
        "hls": {"verify_samples": 8, "board": "frame-grabber-ku035"},
    }


def _board(p: int):
    return parse_board({"name": f"grabber-p{p}", "part": "xcku035-fbva676-2-e", "default_clock_mhz": 250,
                        "interface": "pixel_stream", "vendor_flow": "vivado", "pixels_per_clock": p,
                        "resources": {"lut": 203128, "ff": 406256, "dsp": 1700, "bram_18k": 1080}})


@pytest.fixture(scope="module")
def block_builds(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("blocks")
    out = {}
    for k in (1, 2, 4):
        run_build(parse_config(_tiny(k)), root / f"k{k}", to_step="hls")
        out[k] = root / f"k{k}"
    return out


def test_space_to_depth_convention():
    """channel dy * k + dx of block (by, bx) is pixel (by k + dy, bx k + dx): the order the top packs."""
    img = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8)
    b = space_to_depth(img, 2)
    assert b.shape == (1, 4, 4, 4)
    for dy in range(2):
        for dx in range(2):
            assert b[0, dy * 2 + dx, 1, 3] == img[0, 0, 2 + dy, 6 + dx]
    assert torch.equal(depth_to_space(b, 2), img)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_blocked_student_is_exact_at_every_crossing(block_builds, k):
    build = block_builds[k]
    export = read_json(build / "export" / "export.json")
    assert export["input_block"] == k and export["input_shape"] == [1, k * k, 16 // k, 16 // k]
    assert export["fidelity"]["exact"] == 1.0
    x = load_npy(build / "export" / "verify_inputs.npy")
    assert x.shape[1:] == (k * k, 16 // k, 16 // k)
    hls = read_json(build / "hls" / "hls.json")
    assert hls["fidelity"]["exact"] == 1.0 and hls["input_layout"] == "NHWC"
    for key in ("emulator_vs_csim", "emulator_vs_qonnx", "emulator_vs_qonnx_val"):
        assert hls[key]["exact"] == 1.0, key
    distill = read_json(build / "distill" / "distill.json")
    assert distill["macs"] > 0 and distill["params"] > 0
    # the estimate counts the input's arrival on the frame grabber's 8-pixel bus (first block after
    # (k - 1) W / P + k / P cycles, 0-based beat index)
    arrival = read_json(build / "hls" / "estimate.json")["input_arrival"]
    assert arrival["pixels_per_clock"] == 8 and arrival["input_block"] == k and arrival["beats"] == 32
    assert arrival["first_item_cycle"] == ((k - 1) * 16 + k - 1) // 8


@pytest.mark.parametrize("p", [1, 8])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_pixel_stream_top_packs_blocks_bit_exact(block_builds, tmp_path, k, p):
    build = block_builds[k]
    labels = ["B", "T"]
    info = generate_project(tmp_path / "project", hls_dir=build / "hls", export_dir=build / "export", board=_board(p),
                            name=f"k{k}-p{p}", class_names=labels, trigger_threshold=0.0)
    header = (tmp_path / "project" / "top" / "edgekd_top.h").read_text()
    assert f"PIXELS_PER_CLOCK = {p};" in header and f"BLOCK = {k};" in header
    assert f"N_BEATS = {16 * 16 // p};" in header
    if k == 1 and p == 1:  # today's single pack_pixels loop
        assert "pack_pixels(pixels, net_in, region_ok);" in (tmp_path / "project" / "top" / "edgekd_top.cpp").read_text()
    # 2 classes: 11 with pack_pixels; read_beats + write_items and a BRAM groups FIFO (2,048 bits for every k, p
    # here) add 1 + 2 (edgekd.project.trigger.wrapper_stages)
    assert info["trigger"]["wrapper_cycles"] == (11 if (k, p) == (1, 1) else 14)
    region = info["trigger"]["region"]
    assert region["beats_per_region"] == 16 * 16 // p and region["source"] == "estimate"
    (tmp_path / "project" / "project.json").write_text(
        '{"interface": "pixel_stream", "output_type": "%s", "trigger": %s}' % (
            info["output_type"], __import__("json").dumps(info["trigger"])))
    res = run_project_csim(tmp_path / "project", cache_dir=build / "cache")  # the build compiled the network
    w = res["wrapper"]
    assert res["passed"] and res["exact"] == 1.0, res
    assert w["decisions_equal"] and w["decision_word_layout_ok"] and w["framing_checks"] == "passed", w


def test_pixels_per_clock_must_split_a_line(block_builds, tmp_path):
    with pytest.raises(ProjectError, match="pixels_per_clock 3"):
        generate_project(tmp_path / "p", hls_dir=block_builds[2] / "hls", export_dir=block_builds[2] / "export",
                         board=_board(3), name="bad", class_names=["B", "T"])
