"""`edgekd convert MODEL.onnx --board NAME`: the one-line bring-your-own build, end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import byo_models as models
import numpy as np
from typer.testing import CliRunner

from edgekd.cli import app

runner = CliRunner()


def test_convert_end_to_end(tmp_path: Path) -> None:
    model = models.brevitas_mlp(tmp_path / "my model.onnx", pow2=True, softmax=True, seed=5)
    out = tmp_path / "build"
    result = runner.invoke(app, ["convert", str(model), "--board", "pynq-z2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for rel in ("convert.yaml", "manifest.json", "export/model.clean.onnx", "hls/hls.json",
                "project/Makefile", "project/driver/edgekd_driver.py", "project/scripts/block_design.tcl",
                "report/report.json", "report/report.md", "report/report.html"):
        assert (out / rel).is_file(), rel
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["steps"]) == ["export", "hls", "project", "report"]
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["kind"] == "byo" and report["verdict"] == "exact"
    assert report["fidelity"]["n"] == 256 and report["fidelity"]["qonnx_vs_csim_exact"] == 1.0
    assert report["fidelity"]["class_agreement"] == 1.0
    assert report["model"]["input_precision"] == "fixed<8,2>"
    verdicts = {r["name"]: r["verdict"] for r in report["layers"]}
    assert verdicts.pop("Softmax_0") == "host"
    assert set(verdicts.values()) == {"exact"}
    assert report["host_postprocessing"]["ops"] == ["Softmax"]
    assert report["host_postprocessing"]["agreement_after_host"] == 1.0
    assert report["project"]["csim"]["exact"] == 1.0 and report["project"]["interface"] == "axi_stream_dma"
    assert "| `Softmax_0` | host |" in (out / "report" / "report.md").read_text()
    page = (out / "report" / "report.html").read_text()
    assert '<td><code>Softmax_0</code></td><td>host</td><td class="host">host' in page
    assert "<h2>Verdict: exact</h2>" in page and "<code>fixed&lt;8,2&gt;</code>" in page  # escaped, not markup
    # the generated driver applies the host stage (softmax) to the hardware's outputs
    spec = importlib.util.spec_from_file_location("byo_driver", out / "project" / "driver" / "edgekd_driver.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    assert [op["op_type"] for op in driver.HOST_POSTPROCESSING] == ["Softmax"]
    _, expected = driver.load_vectors(out / "project" / "test_vectors")
    probs = driver.host_postprocess(expected)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == expected.argmax(axis=1)).all()
    # a second run resumes: nothing to do
    again = runner.invoke(app, ["convert", str(model), "--board", "pynq-z2", "--out", str(out)])
    assert again.exit_code == 0 and again.output.count("skipped (inputs unchanged)") == 4, again.output
    # the written config is an ordinary build config: --from/--to know only the four steps
    cfg = str(out / "convert.yaml")
    rerun = runner.invoke(app, ["build", cfg, "--out", str(out), "--from", "report"])
    assert rerun.exit_code == 0 and rerun.output.count("skipped (inputs unchanged)") == 3, rerun.output
    wrong = runner.invoke(app, ["build", cfg, "--out", str(out), "--from", "distill"])
    assert wrong.exit_code == 2 and "steps are export, hls, project, report" in wrong.output.replace("\n", " ")


def test_convert_exit_codes(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["convert", str(tmp_path / "nope.onnx"), "--board", "pynq-z2", "--out", str(tmp_path / "a")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    model = models.brevitas_mlp(tmp_path / "float.onnx", pow2=False)
    bad_board = runner.invoke(app, ["convert", str(model), "--board", "no-such-board", "--out", str(tmp_path / "b")])
    assert bad_board.exit_code == 2, bad_board.output
    inexact = runner.invoke(app, ["convert", str(model), "--board", "pynq-z2", "--out", str(tmp_path / "c")])
    assert inexact.exit_code == 1
    assert "cannot run exactly" in inexact.output and "Quant_0" in inexact.output and "allow-inexact" in inexact.output
    frame_grabber = runner.invoke(app, ["convert", str(models.qkeras_narrow_mlp(tmp_path / "q.onnx")), "--board",
                                        "frame-grabber-ku035", "--out", str(tmp_path / "d")])
    assert frame_grabber.exit_code == 1 and "pixel_stream interface" in frame_grabber.output
