"""The fit check inside a build: a design over hls.max_utilization fails the hls step (exit 1) before the
project is written, naming the layer and resource; hls.on_overflow: warn builds it and the report says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "byo"))
import byo_models as models  # noqa: E402

from edgekd.config import parse_config  # noqa: E402
from edgekd.hw import load_board  # noqa: E402
from edgekd.pipeline import run_build  # noqa: E402


def _small_board(tmp_path: Path, lut: int) -> Path:
    data = load_board("pynq-z2").model_dump(mode="json")
    data.update(name="small-part", resources={**data["resources"], "lut": lut})
    path = tmp_path / "small-part.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _config(tmp_path: Path, board: Path, **hls) -> dict:
    model = models.brevitas_mlp(tmp_path / "mlp.onnx", n_in=12, hidden=10)
    return {"name": "fit", "student": {"qonnx": str(model)}, "hls": {"board": str(board), **hls}}


def test_a_design_that_cannot_fit_fails_the_hls_step_naming_layer_and_resource(tmp_path):
    cfg = _config(tmp_path, _small_board(tmp_path, 60))
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "build"
    proc = subprocess.run([sys.executable, "-m", "edgekd", "build", str(tmp_path / "fit.yaml"), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    err = " ".join(proc.stderr.split())  # the console wraps long lines
    assert "does not fit small-part" in err and "lut" in err and "largest user: layer Dense_" in err
    assert "hls.on_overflow: warn" in err
    assert not (out / "hls" / "project").exists()  # nothing half-written: the check runs before hls4ml writes


def test_on_overflow_warn_writes_the_project_and_the_report_says_it_does_not_fit(tmp_path):
    cfg = parse_config(_config(tmp_path, _small_board(tmp_path, 60), on_overflow="warn"))
    run_build(cfg, tmp_path / "build")
    report = json.loads((tmp_path / "build" / "report" / "report.json").read_text())
    fit = report["summary"]["fit"]
    assert fit["fits"] is False and fit["binding"] == "lut" and fit["binding_layer"].startswith("Dense_")
    assert "Does NOT fit small-part" in (tmp_path / "build" / "report" / "report.md").read_text()


def test_auto_reuse_factors_reach_hls4ml_and_csim_stays_exact(tmp_path):
    """A part just large enough at a higher reuse factor: the chosen per-layer reuse factors are the
    project's (hls4ml kept them) and C-simulation still equals QONNX bit for bit."""
    full = parse_config(_config(tmp_path, _small_board(tmp_path, 53200), strategy="Latency"))
    run_build(full, tmp_path / "wide", to_step="hls")
    est = json.loads((tmp_path / "wide" / "hls" / "estimate.json").read_text())
    need = est["resources"]["lut"]
    assert {s["reuse_factor"] for s in est["fit"]["search"]["settings"].values()} == {1}
    # a part where reuse factor 1 needs more than 80% of the LUTs
    cfg = parse_config(_config(tmp_path, _small_board(tmp_path, int(need / 0.8) - 1), strategy="Latency"))
    run_build(cfg, tmp_path / "b", to_step="hls")
    hls = json.loads((tmp_path / "b" / "hls" / "hls.json").read_text())
    est = json.loads((tmp_path / "b" / "hls" / "estimate.json").read_text())
    assert max(s["reuse_factor"] for s in hls["layer_settings"].values()) > 1
    assert est["fit"]["fits_limits"] and est["fit"]["resources"]["lut"]["fraction"] <= 0.8
    assert hls["fidelity"]["exact"] == 1.0
    cfg_text = (tmp_path / "b" / "hls" / "project" / "firmware" / "parameters.h").read_text()
    for name, s in hls["layer_settings"].items():
        if s["reuse_factor"] > 1:
            assert f"reuse_factor = {s['reuse_factor']}" in cfg_text
