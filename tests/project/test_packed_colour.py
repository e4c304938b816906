"""Packed colour on the pixel stream: a 3-channel student, its hls4ml project and the pixel-stream top, bit exact.

A tiny colour cell student (random weights, calibrated scales) is exported to QONNX and converted with hls4ml
(torch == QONNX == C-simulation, bit for bit); then the board project of a pixel-stream board is generated and
both testbenches are compiled and run with g++: the grabber's beats carry P RGB pixels each (channel c of pixel p
in value slot p*3 + c), the top unpacks them (and packs k x k blocks, channel-major: c*k*k + dy*k + dx) and must
reproduce every expected decision exactly (framing checks included). The whole build of a colour image folder
is tests/e2e/test_image_folders.py; this covers the top's other packing paths without training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.config import HLSConfig, StudentConfig
from edgekd.data.transforms import to_model_input
from edgekd.export.qonnx import export_student_qonnx
from edgekd.export.verify import verify_torch_against_qonnx
from edgekd.hls.convert import convert_to_hls
from edgekd.hls.verify import verify_csim_against_qonnx
from edgekd.hw import parse_board
from edgekd.io import save_npy, write_json
from edgekd.project.csim import run_project_csim
from edgekd.project.generate import ProjectError, generate_project
from edgekd.project.interface import check_interface
from edgekd.students.cell_cnn import build_cell_cnn, calibrate, input_quant_format, quantize_input

pytestmark = pytest.mark.slow

N_CLASSES = 4
# 2 x 2 blocks of RGB pixels (12 values per stream item); packed colour one pixel per item (k = 1) is built by the
# e2e colour build on the 8-pixel frame grabber
STUDENT = {2: StudentConfig(input_size=8, channels=[4], kernel_sizes=[2], input_block=2)}


def _board(p: int):
    return parse_board({"name": f"grabber-p{p}", "part": "xcku035-fbva676-2-e", "default_clock_mhz": 250,
                        "interface": "pixel_stream", "vendor_flow": "vivado", "pixels_per_clock": p,
                        "resources": {"lut": 203128, "ff": 406256, "dsp": 1700, "bram_18k": 1080}})


@pytest.fixture(scope="module")
def colour_designs(tmp_path_factory) -> dict[int, tuple[Path, Path]]:
    """{k: (hls folder, export folder)} of a 3-channel student reading k x k blocks, as the hls step leaves them."""
    root = tmp_path_factory.mktemp("colour")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)  # RGB, channels-last as loaded
    out = {}
    for k, cfg in STUDENT.items():
        torch.manual_seed(k)
        model = build_cell_cnn(cfg, N_CLASSES, in_channels=3)
        calibrate(model, to_model_input(images, 8))
        model.eval()
        hls_dir, export_dir = root / f"k{k}" / "hls", root / f"k{k}" / "export"
        path = export_student_qonnx(model, model.input_shape, export_dir)
        x = quantize_input(model, to_model_input(images, 8, k)).numpy().astype(np.float32)
        assert x.shape == (24, 3 * k * k, 8 // k, 8 // k)
        fidelity = verify_torch_against_qonnx(model, path, x, return_outputs=True)
        assert fidelity["exact"] == 1.0
        precision = input_quant_format(model).hls_type()
        hls_model, _ = convert_to_hls(path, HLSConfig(), hls_dir / "project", precision)
        assert verify_csim_against_qonnx(hls_model, path, x, progress=False)["exact"] == 1.0
        save_npy(export_dir / "verify_inputs.npy", x)
        save_npy(export_dir / "qonnx_outputs.npy", fidelity["qonnx_outputs"])
        save_npy(export_dir / "verify_labels.npy", np.arange(len(x)) % N_CLASSES)
        write_json(export_dir / "export.json", {"input_block": k})
        write_json(hls_dir / "hls.json", {"io_type": "io_stream", "clock_mhz": 250.0, "clock_period_ns": 4.0,
                                          "part": "xcku035-fbva676-2-e", "backend": "Vitis", "input_layout": "NHWC"})
        write_json(hls_dir / "estimate.json", {"cycles": 100, "us": 0.4, "ii_cycles": 64})
        out[k] = (hls_dir, export_dir)
    return out


@pytest.mark.parametrize(("k", "p"), [(2, 1), (2, 8)])
def test_pixel_stream_top_unpacks_colour_bit_exact(colour_designs, tmp_path, k, p):
    hls_dir, export_dir = colour_designs[k]
    info = generate_project(tmp_path / "project", hls_dir=hls_dir, export_dir=export_dir, board=_board(p),
                            name=f"rgb-k{k}-p{p}", class_names=[f"c{i}" for i in range(N_CLASSES)],
                            trigger_threshold=0.0)
    header = (tmp_path / "project" / "top" / "edgekd_top.h").read_text()
    assert "CHANNELS = 3;" in header and f"PIXELS_PER_CLOCK = {p};" in header and f"BLOCK = {k};" in header
    assert f"ap_uint<{8 * 3 * p}> data;" in header  # p RGB pixels of 8-bit values per beat
    assert f"N_BEATS = {8 * 8 // p};" in header
    # read_beats + write_items; the groups FIFO (16 x 12 or 4 x 48 8-bit values, 1,536 bits) in BRAM; 2 compare
    # levels each for the argmax and the runner-up (4 classes)
    assert info["trigger"]["wrapper_stages"] == {
        "pixels register slice": 1, "packing": 2, "groups FIFO": 2, "network start + input FIFO": 2,
        "output FIFO": 1, "read logits": 1, "argmax": 2, "runner-up": 2, "score and threshold": 1,
        "decision register": 1, "decision register slice": 1}
    assert info["trigger"]["wrapper_cycles"] == 16
    (tmp_path / "project" / "project.json").write_text(json.dumps(
        {"interface": "pixel_stream", "output_type": info["output_type"], "trigger": info["trigger"]}))
    res = run_project_csim(tmp_path / "project", cache_dir=hls_dir.parent)  # the network compiles once per k
    w = res["wrapper"]
    assert res["passed"] and res["exact"] == 1.0, res
    assert w["decisions_equal"] and w["decision_word_layout_ok"] and w["framing_checks"] == "passed", w


def test_colour_interface_checks(colour_designs, tmp_path):
    grabber = _board(8)
    check_interface(grabber, [1, 3, 48, 48], True)  # packed colour
    check_interface(grabber, [1, 12, 24, 24], True, input_block=2)  # colour in 2 x 2 blocks
    check_interface(grabber, [1, 1, 48, 48], True)  # grey, as before
    with pytest.raises(ProjectError, match="4 image channels; the pixel stream carries 1 .grey. or 3"):
        check_interface(grabber, [1, 4, 48, 48], True)
    with pytest.raises(ProjectError, match="not a classifier"):
        check_interface(grabber, [1, 3, 48, 48], False)
    with pytest.raises(ProjectError, match="is not an image"):
        check_interface(grabber, [1, 64], True)
    check_interface(parse_board({**grabber.model_dump(mode="json"), "name": "dma", "interface": "axi_stream_dma",
                                 "part": "xczu7ev-ffvc1156-2-e", "family": None}), [1, 64], False)  # a stream of values: any model
    with pytest.raises(ProjectError, match="pixels_per_clock 3 does not split a line of 8 pixels"):
        hls_dir, export_dir = colour_designs[2]
        generate_project(tmp_path / "p", hls_dir=hls_dir, export_dir=export_dir, board=_board(3), name="bad",
                         class_names=[f"c{i}" for i in range(N_CLASSES)])
