"""Whole builds of a tiny config through every step, C-simulation included."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.config import parse_config
from edgekd.io import read_json
from edgekd.pipeline import BuildError, run_build

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny",
    "data": {"synthetic": {"n_train": 360, "n_test": 120, "seed": 1}, "val_fraction": 0.1},
    "teacher": {"width": 8, "epochs": 1, "input_size": 32, "batch_size": 64},
    "student": {"input_size": 16, "channels": [4, 4], "kernel_sizes": [3, 3]},
    "distill": {"epochs": 2, "qat_epochs": 1, "batch_size": 64},
    "hls": {"verify_samples": 24},
}


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "build"
    run_build(parse_config(TINY), out)
    return out


def test_label_budget_build(tmp_path):
    """data.labelled: the teacher learns from 10% of the labels and annotates every image; the distilled
    student trains on all of them, the labels-only baseline on the labelled part with the same steps."""
    cfg = parse_config({**TINY, "data": {**TINY["data"], "labelled": 0.1}})
    run_build(cfg, tmp_path / "b", to_step="distill")
    teacher = read_json(tmp_path / "b" / "teacher" / "teacher.json")
    distill = read_json(tmp_path / "b" / "distill" / "distill.json")
    data = read_json(tmp_path / "b" / "data" / "data.json")
    # 10% of the 360-image pool is 36 labels in all: 4 (val_fraction 0.1, rounded) validate, 32 train
    assert data["val"]["n"] == 4 and data["labels_used"] == 36
    assert data["train"]["n"] == 356 and data["train"]["labelled"] == 32 and data["train"]["unlabelled"] == 324
    assert teacher["trained_on_images"] == 32 and teacher["annotated_images"] == 356
    assert distill["labelled"] == 32 and distill["unlabelled"] == 324
    assert distill["steps_per_epoch"] == 6  # ceil(356 / 64), for both runs
    assert set(distill["metrics"]) == {"quant", "float", "baseline_no_kd"}


def test_function_matching_build(tmp_path):
    """distill.loss function_matching: the distilled student's every batch runs the build's teacher (teacher.pt,
    B/T4/T8 merged to B vs T) online on its mixed view; the labels-only baseline never does."""
    cfg = parse_config({**TINY, "data": {**TINY["data"], "labelled": 0.1},
                        "distill": {**TINY["distill"], "loss": "function_matching"}})
    run_build(cfg, tmp_path / "b", to_step="distill")
    distill = read_json(tmp_path / "b" / "distill" / "distill.json")
    assert distill["loss"] == "function_matching"
    assert distill["online_teacher_batches"] == (2 + 1) * distill["steps_per_epoch"]  # float + QAT epochs
    assert "last_lambda" in distill["training"]["student"]["history"]["float"][0]
    assert set(distill["metrics"]) == {"quant", "float", "baseline_no_kd"}


def test_teacher_trained_elsewhere(tmp_path):
    """teacher.data: the teacher learns from another labelled pool and annotates this build's images; its
    teacher.pt (B/T4/T8, merged) loads as a checkpoint teacher of a B-vs-T build; a pool holding the build's
    test images is refused."""
    other = {"synthetic": {"n_train": 200, "n_test": 20, "seed": 7}, "val_fraction": 0.1}
    cfg = parse_config({**TINY, "data": {**TINY["data"], "labelled": 0.1}, "teacher": {**TINY["teacher"], "data": other}})
    run_build(cfg, tmp_path / "a", to_step="teacher")
    teacher = read_json(tmp_path / "a" / "teacher" / "teacher.json")
    assert teacher["trained_on_images"] == 180 and teacher["annotated_images"] == 356
    assert teacher["trained_on_classes"] == ["B", "T4", "T8"]
    loaded = parse_config({**TINY, "teacher": {**TINY["teacher"], "source": "checkpoint",
                                               "path": str(tmp_path / "a" / "teacher" / "teacher.pt")}})
    run_build(loaded, tmp_path / "b", to_step="teacher")
    again = read_json(tmp_path / "b" / "teacher" / "teacher.json")
    assert again["metrics"]["accuracy"] == teacher["metrics"]["accuracy"]  # same teacher, same merged answers
    assert again["trained_on_images"] == 0
    hidden = parse_config({**TINY, "data": {**TINY["data"], "labelled": 0.1}, "teacher": {**TINY["teacher"],
                                                                                          "data": TINY["data"]}})
    with pytest.raises(BuildError, match="teacher.data holds 294 of the build's training images whose labels"):
        run_build(hidden, tmp_path / "c", to_step="teacher")
    assert not (tmp_path / "c" / "teacher").exists()
    test_pool = {**TINY["data"], "synthetic": {"n_train": 120, "n_test": 8, "seed": 1 + 1_000_003}}
    leak = parse_config({**TINY, "teacher": {**TINY["teacher"], "data": test_pool}})  # = the build's test cells
    with pytest.raises(BuildError, match="teacher.data contains test images of the build's data"):
        run_build(leak, tmp_path / "d", to_step="teacher")


def test_report_has_every_section(tiny_build):
    report = read_json(tiny_build / "report" / "report.json")
    for key in ("edgekd_version", "config_sha256", "task", "teacher", "student", "fidelity", "hls", "timings_s"):
        assert key in report
    assert report["task"] == "classification"
    assert report["config_sha256"] == parse_config(TINY).sha256()
    assert report["teacher"]["params"] > 10_000
    # 16x16 input, conv 4 3x3 -> 14, pool -> 7, conv 4 3x3 -> 5, pool -> 2: 2*2*4 = 16 -> dense 2.
    assert report["student"]["params"] == (9 * 4 + 4) + (9 * 4 * 4 + 4) + (16 * 2 + 2)
    assert set(report["student"]["metrics"]) == {"quant", "float", "baseline_no_kd"}
    assert 0.0 <= report["student"]["metrics"]["quant"]["accuracy"] <= 1.0
    assert report["summary"]["train_labelled"] == 324 and report["summary"]["train_unlabelled"] == 0
    fid = report["fidelity"]
    assert fid["n"] == 24
    assert fid["torch_vs_qonnx_exact"] == 1.0
    assert fid["qonnx_vs_csim_exact"] == 1.0
    assert fid["max_abs_diff"] == 0.0
    assert report["hls"]["io_type"] == "io_stream"
    assert report["hls"]["clock_mhz"] == pytest.approx(250.0)
    assert set(report["timings_s"]) >= {"data", "teacher", "distill", "export", "hls"}
    md = (tiny_build / "report" / "report.md").read_text()
    assert "QONNX == C-simulation" in md and "100.00%" in md


def test_build_folder_layout(tiny_build):
    assert (tiny_build / "config.resolved.yaml").exists()
    manifest = read_json(tiny_build / "manifest.json")
    assert list(manifest["steps"]) == ["data", "teacher", "distill", "export", "hls", "project", "report"]
    assert any(p.endswith(".cpp") for p in manifest["steps"]["hls"]["outputs"])
    assert not list(tiny_build.glob(".*.staging"))
    assert (tiny_build / "export" / "student.clean.onnx").exists()


def test_estimate_is_in_the_report(tiny_build):
    report = read_json(tiny_build / "report" / "report.json")
    est = report["latency"]["estimate"]
    assert est["source"] == "estimate" and est["cycles"] > 16 * 16  # at least one cycle per input pixel
    assert est["us"] == pytest.approx(est["cycles"] / 250.0, rel=1e-3)
    assert {"Conv2D", "Pooling2D", "Dense"} <= {l["type"] for l in est["per_layer"]}
    assert report["latency"]["synthesis"] is None and report["latency"]["board"] is None
    assert report["resources"]["available"]["dsp"] == 1700
    html = (tiny_build / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3


def test_report_command_adds_lab_measurements(tiny_build):
    from typer.testing import CliRunner

    from edgekd.cli import app

    fixtures = Path(__file__).parents[1] / "report" / "fixtures"
    result = CliRunner().invoke(
        app,
        ["report", str(tiny_build), "--synthesis", str(fixtures / "vivado_hls_2019_project"),
         "--board", str(fixtures / "board" / "framegrabber_latency.csv")],
    )
    assert result.exit_code == 0, result.output
    report = read_json(tiny_build / "report" / "report.json")
    synth = report["latency"]["synthesis"]
    # the fixture project holds a C/RTL co-simulation report too: its measured latency is the report's figure
    assert synth["source"] == "cosim" and isinstance(synth["cycles"], int) and synth["cycles"] > 0
    assert report["latency"]["board"]["median_us"] == pytest.approx(14.5)
    assert report["resources"]["synthesis"]["source"] == "vivado"
    assert "| synthesis |" in (tiny_build / "report" / "report.md").read_text()
    # A later build keeps the lab figures (they live in lab/, not in the step folders).
    run_build(parse_config(TINY), tiny_build, from_step="report")
    assert read_json(tiny_build / "report" / "report.json")["latency"]["board"]["n"] == 5

    bad = CliRunner().invoke(app, ["report", str(tiny_build), "--board", str(fixtures / "malformed" / "board_bad_row.csv")])
    assert bad.exit_code == 2 and "board_bad_row.csv" in bad.output
