"""Model problems: NaN weights after training, an op the hardware flow cannot take, a layer too large for
io_parallel, a C-simulation that disagrees with QONNX. Each build stops at that step (exit 1, the step and
the cause named), the earlier steps' files keep their recorded hashes, and a re-run without the fault
resumes from the failed step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from _rel import TINY, manifest_steps, one_line, reported_steps

# Shorter training than the kill test needs: these tests are about where a build stops, not about accuracy.
TINY = {**TINY, "teacher": {**TINY["teacher"], "epochs": 1},
        "distill": {"epochs": 1, "qat_epochs": 1, "batch_size": 64, "baseline": False}}
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.config import parse_config
from edgekd.io import file_sha256, read_json
from edgekd.pipeline import run_build


@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory) -> dict[str, Path]:
    """The tiny build stopped after teacher, after distill and after export (three folders)."""
    root = tmp_path_factory.mktemp("model_problems")
    cfg = parse_config(TINY)
    out: dict[str, Path] = {}
    previous = None
    for step in ("teacher", "distill", "export"):
        folder = root / step
        if previous is not None:
            shutil.copytree(previous, folder)
        run_build(cfg, folder, to_step=step)
        out[step] = previous = folder
    return out


def _copy(prebuilt: dict[str, Path], after: str, tmp_path: Path) -> Path:
    out = tmp_path / "build"
    shutil.copytree(prebuilt[after], out)
    return out


def _cli(tmp_path: Path, out: Path, *args: str, overrides: dict | None = None) -> tuple[int, str]:
    cfg = tmp_path / "cfg.yaml"
    data = {**TINY}
    for section, values in (overrides or {}).items():
        data[section] = {**data.get(section, {}), **values}
    cfg.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["build", str(cfg), "--out", str(out), *args], env={"COLUMNS": "400"})
    return result.exit_code, one_line(result.output)


def _recorded(out: Path) -> dict:
    return read_json(out / "manifest.json")["steps"]


def _assert_intact(out: Path, before: dict, steps: list[str]) -> None:
    """The given steps are still recorded exactly as before, and their files have the recorded hashes."""
    now = _recorded(out)
    for step in steps:
        assert now[step] == before[step], step
        for rel, digest in now[step]["outputs"].items():
            assert file_sha256(out / rel) == digest, rel
    assert not list(out.glob(".*.staging"))


def test_nan_weights_stop_the_distill_step(prebuilt, tmp_path, monkeypatch):
    import torch

    import edgekd.tasks.image.distill as distill_step

    out = _copy(prebuilt, "teacher", tmp_path)
    before = _recorded(out)
    original = distill_step.train_student

    def diverging(model, *args, **kwargs):
        result = original(model, *args, **kwargs)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("weight"):
                    p.view(-1)[0] = float("nan")
                    break
        result.state_dict = {k: v.clone() for k, v in model.state_dict().items()}
        return result

    monkeypatch.setattr(distill_step, "train_student", diverging)
    code, text = _cli(tmp_path, out, "--to", "distill")
    assert code == 1
    assert "build failed at step distill" in text
    assert "student (float phase): weight tensor" in text and "NaN/inf values" in text and "lower the learning rate" in text
    assert "Traceback" not in text
    assert manifest_steps(out) == ["data", "teacher"] and not (out / "distill").exists()
    _assert_intact(out, before, ["data", "teacher"])

    monkeypatch.setattr(distill_step, "train_student", original)
    code, text = _cli(tmp_path, out, "--to", "distill")
    assert code == 0, text
    assert manifest_steps(out) == ["data", "teacher", "distill"]
    _assert_intact(out, before, ["data", "teacher"])


def test_unsupported_op_stops_the_export_step(prebuilt, tmp_path, monkeypatch):
    """A student whose graph ends in Softmax (a real node in a real exported graph): refused by the op check."""
    import onnx

    import edgekd.tasks.image.export as export_step

    out = _copy(prebuilt, "distill", tmp_path)
    before = _recorded(out)
    original = export_step.export_student_qonnx

    def with_softmax(*args, **kwargs):
        path = original(*args, **kwargs)
        model = onnx.load(path)
        last = model.graph.output[0]
        model.graph.node.append(onnx.helper.make_node("Softmax", [last.name], ["probabilities"], name="Softmax_0", axis=-1))
        model.graph.output.remove(last)
        model.graph.output.append(onnx.helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, None))
        onnx.save(model, path)
        return path

    monkeypatch.setattr(export_step, "export_student_qonnx", with_softmax)
    code, text = _cli(tmp_path, out, "--to", "export")
    assert code == 1 and "build failed at step export" in text
    assert "Softmax_0" in text and "Softmax" in text and "apply softmax on the host" in text
    assert manifest_steps(out) == ["data", "teacher", "distill"] and not (out / "export").exists()
    _assert_intact(out, before, ["data", "teacher", "distill"])


def test_layer_too_large_for_io_parallel_is_refused_before_hls4ml(prebuilt, tmp_path):
    out = _copy(prebuilt, "export", tmp_path)
    before = _recorded(out)
    code, text = _cli(tmp_path, out, overrides={"hls": {"io_type": "io_parallel", "max_parallel_products": 5000}})
    assert code == 1 and "build failed at step hls" in text
    assert "layer Conv_0 (Conv) needs 7,056 multiplications per image, above hls.max_parallel_products = 5,000" in text
    assert "use hls.io_type io_stream" in text
    # export re-ran for the new hls config; nothing of hls4ml was written or compiled
    assert manifest_steps(out) == ["data", "teacher", "distill", "export"]
    assert not (out / "hls").exists() and not (out / "cache" / "csim").exists()
    _assert_intact(out, before, ["data", "teacher", "distill"])


def test_layer_sizes_of_the_default_cell_student():
    """The default 48x48 cell student (REFERENCE.md section 4: io_parallel compile over 10 minutes) is refused."""
    import tempfile

    from qonnx.core.modelwrapper import ModelWrapper

    from edgekd.config import StudentConfig
    from edgekd.export.qonnx import export_student_qonnx
    from edgekd.modelcheck import LayerTooLargeError, check_io_parallel_budget, layer_products
    from edgekd.students.cell_cnn import build_cell_cnn

    with tempfile.TemporaryDirectory() as tmp:
        model = build_cell_cnn(StudentConfig(), num_classes=2).eval()
        path = export_student_qonnx(model, (1, 1, 48, 48), Path(tmp))
        qonnx = ModelWrapper(str(path))
        sizes = {op: p for _n, op, p in layer_products(qonnx)}
        products = [p for _n, _op, p in layer_products(qonnx)]
        assert products[0] == 46 * 46 * 16 * 9  # 304,704
        assert products[1] == 21 * 21 * 16 * 16 * 9
        assert sizes["MatMul"] == 10 * 10 * 16 * 2
        with pytest.raises(LayerTooLargeError, match="needs 1,016,064 multiplications"):
            check_io_parallel_budget(qonnx, "io_parallel", 16384)
        check_io_parallel_budget(qonnx, "io_stream", 16384)  # io_stream is not limited


@pytest.mark.slow
def test_csim_mismatch_stops_the_hls_step_and_resumes(prebuilt, tmp_path, monkeypatch):
    """The hls4ml model's first conv weight is changed after conversion (a converter bug): C-sim != QONNX."""
    import edgekd.hls.design as hls_step  # every task's hls step converts through edgekd.hls.design

    out = _copy(prebuilt, "export", tmp_path)
    before = _recorded(out)
    original = hls_step.convert_to_hls

    def miscompiled(*args, **kwargs):
        if kwargs.get("compile_model", True) is False:  # the fit search's probe: nothing compiled
            return original(*args, **kwargs)
        hls_model, config = original(*args, **kwargs)
        for layer in hls_model.get_layers():
            weights = [w for w in layer.get_weights() if w.name.startswith("w")]
            if layer.class_name.startswith("Conv") and weights:
                data = weights[0].data
                data.flat[0] = 0.5 if data.flat[0] != 0.5 else -0.5
                break
        hls_model.compile()
        return hls_model, config

    monkeypatch.setattr(hls_step, "convert_to_hls", miscompiled)
    code, text = _cli(tmp_path, out, "--to", "hls")
    assert code == 1 and "build failed at step hls" in text and "FidelityError" in text
    assert "C-simulation" in text and "QONNX" in text and "first diverging layer" in text
    assert manifest_steps(out) == ["data", "teacher", "distill", "export"] and not (out / "hls").exists()
    _assert_intact(out, before, ["data", "teacher", "distill", "export"])

    monkeypatch.setattr(hls_step, "convert_to_hls", original)
    code, text = _cli(tmp_path, out, "--to", "hls")
    assert code == 0, text
    assert reported_steps(text, "skipped") == ["data", "teacher", "distill", "export"]
    assert read_json(out / "hls" / "hls.json")["fidelity"]["exact"] == 1.0
