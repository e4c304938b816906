"""Whole builds of image folders the test makes: 10 grey classes, and 3 colour (RGB) classes, through every step.

Each class folder holds a few small images of a class-dependent pattern (a bar whose place is the class, plus
noise) at a size other than the student's (28 x 28 grey; 24 x 20 colour, not square), so the data step reads
the classes from the folders and the students see the images resized. The builds are tiny (a few images, a
narrow teacher, 1 + 1 epochs): what they prove is the flow, not accuracy: torch == QONNX == C-simulation ==
emulator bit for bit, and the frame grabber's board project (the pixel-stream top: grey pixels, or RGB pixels
packed three to a pixel slot, 8 pixels per beat) reproduces every decision exactly in its own testbench.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekd.config import parse_config
from edgekd.io import read_json
from edgekd.pipeline import run_build

pytestmark = pytest.mark.slow

PER_CLASS = 8


def _image_folder(root: Path, names: list[str], size: tuple[int, int], channels: int) -> Path:
    """One subfolder per class; class i's images have a bright bar at a place that depends on i."""
    rng = np.random.default_rng(len(names))
    w, h = size
    for i, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for j in range(PER_CLASS):
            img = rng.normal(60, 20, (h, w, channels))
            x0 = (i * (w - 4)) // max(1, len(names) - 1)
            img[:, x0 : x0 + 4, i % channels] += 150
            img = np.clip(img, 0, 255).astype(np.uint8)
            Image.fromarray(img[:, :, 0] if channels == 1 else img).save(root / name / f"{j:02d}.png")
    return root


def _config(name: str, path: Path, **data) -> dict:
    return {
        "name": name,
        "data": {"source": "folder", "path": str(path), "test_fraction": 0.25, "val_fraction": 0.2, **data},
        "teacher": {"width": 4, "epochs": 1, "input_size": 16, "batch_size": 32},
        "student": {"input_size": 16, "channels": [4], "kernel_sizes": [3]},
        "distill": {"epochs": 1, "qat_epochs": 1, "batch_size": 32, "baseline": False},
        "hls": {"verify_samples": 8, "board": "frame-grabber-ku035"},
    }


def _check_build(out: Path, class_names: list[str], channels: int) -> dict:
    data = read_json(out / "data" / "data.json")
    assert data["class_names"] == class_names
    assert data["test"]["n"] == len(class_names) * PER_CLASS // 4
    report = read_json(out / "report" / "report.json")
    assert report["reference"] is None  # the published cell student is not a reference for these classes
    assert " | ".join(class_names) in (out / "report" / "report.md").read_text()  # the data table's columns
    fid = report["fidelity"]
    assert fid["torch_vs_qonnx_exact"] == 1.0 and fid["qonnx_vs_csim_exact"] == 1.0 and fid["max_abs_diff"] == 0.0
    hls = read_json(out / "hls" / "hls.json")
    for key in ("emulator_vs_csim", "emulator_vs_qonnx", "emulator_vs_qonnx_val"):
        assert hls[key]["exact"] == 1.0, key
    assert len(hls["hw_metrics"]["per_class_recall"]) == len(class_names)
    project = read_json(out / "project" / "project.json")
    csim = project["csim"]
    assert csim["passed"] and csim["exact"] == 1.0, csim
    wrapper = csim["wrapper"]
    assert wrapper["interface"] == "pixel_stream" and wrapper["decisions_equal"] and wrapper["decision_word_layout_ok"]
    assert wrapper["framing_checks"] == "passed"
    # issue 30: a folder's views default to none, the teacher annotated that one view; the logistic baseline is in
    # the report beside teacher and student, and the summary lists whoever is below it
    assert data["augment"]["views"] == [0] and report["teacher"]["views"] == ["identity"]
    assert np.load(out / "teacher" / "logits_train_views.npy").shape[0] == 1
    logistic = report["logistic_baseline"]
    assert logistic["input_size"] == 16 and 0.0 <= logistic["metrics"]["accuracy"] <= 1.0
    below = [k for k, acc in (("teacher", report["teacher"]["metrics"]["accuracy"]),
                              ("student", report["student"]["metrics"]["quant"]["accuracy"])) if acc < logistic["metrics"]["accuracy"]]
    assert report["summary"]["below_logistic"] == below
    assert "logistic regression" in (out / "report" / "report.md").read_text()
    trigger = project["trigger"]
    assert 0 <= trigger["trigger_class"] < len(class_names) and trigger["choice"]["chosen_on"] == "validation"
    header = (out / "project" / "top" / "edgekd_top.h").read_text()
    assert f"CLASS_BITS = {max(1, (len(class_names) - 1).bit_length())};" in header
    assert ("CHANNELS = 3;" in header) == (channels == 3)
    return report


def test_ten_class_grey_folder_builds_bit_exact(tmp_path):
    names = [str(d) for d in range(10)]
    root = _image_folder(tmp_path / "digits", names, (28, 28), 1)
    out = tmp_path / "build"
    run_build(parse_config(_config("digits", root)), out)
    report = _check_build(out, names, 1)
    assert report["student"]["params"] == (9 * 4 + 4) + (4 * 7 * 7 * 10 + 10)  # 16 -> conv 14 -> pool 7; 10 classes


def test_colour_folder_builds_bit_exact(tmp_path):
    names = ["blue", "green", "red"]
    root = _image_folder(tmp_path / "colours", names, (24, 20), 3)
    out = tmp_path / "build"
    run_build(parse_config(_config("colours", root, channels=3)), out)
    report = _check_build(out, names, 3)
    assert report["student"]["params"] == (3 * 9 * 4 + 4) + (4 * 7 * 7 * 3 + 3)  # the first conv sees 3 channels
    assert read_json(out / "export" / "export.json")["input_shape"] == [1, 3, 16, 16]
    assert "ap_uint<192> data;" in (out / "project" / "top" / "edgekd_top.h").read_text()  # 8 RGB pixels per beat
