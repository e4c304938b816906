"""Untrusted files: pickled checkpoints never run code (weights_only), ONNX files pass onnx.checker before
onnxruntime sees them (malformed graphs, external data outside the model folder), XML bombs are refused
(defusedxml), YAML never builds Python objects, manifests cannot point outside the build folder, and the
source tree holds no eval/exec/pickle/unsafe loader."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _rel import TINY, manifest_steps, one_line
from onnx import TensorProto, helper
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.config import dump_config, parse_config
from edgekd.io import file_sha256, read_json
from edgekd.safety import check_onnx_model, is_inside
from edgekd.teachers.runner import TeacherLoadError

ROOT = Path(__file__).resolve().parents[2]


def _build(tmp_path: Path, teacher: dict, *args: str) -> tuple[int, str, Path]:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "teacher": {**TINY["teacher"], **teacher}}))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", str(cfg), "--out", str(out), "--to", "teacher", *args],
                                env={"COLUMNS": "400"})
    return result.exit_code, one_line(result.output), out


def _assert_teacher_refused(code: int, text: str, out: Path, path: Path) -> None:
    assert code == 1 and "build failed at step teacher" in text and "TeacherLoadError" in text
    assert str(path) in text and "Traceback" not in text
    assert manifest_steps(out) == ["data"]  # the data step is kept and valid for a resume
    data = read_json(out / "manifest.json")["steps"]["data"]["outputs"]
    assert all(file_sha256(out / rel) == digest for rel, digest in data.items())
    assert not (out / "teacher").exists() and not list(out.glob(".*.staging"))
    assert not (out / "cache" / "teacher_logits").exists()


class _Payload:
    """Unpickling this calls os.system: a checkpoint that runs code when loaded without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_in_a_checkpoint_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "teacher.pt"
    torch.save({"stem.0.weight": torch.zeros(4, 1, 3, 3), "payload": _Payload(marker)}, ckpt)
    code, text, out = _build(tmp_path, {"source": "checkpoint", "path": str(ckpt)})
    _assert_teacher_refused(code, text, out, ckpt)
    assert "cannot load checkpoint (UnpicklingError" in text
    assert not marker.exists()


def _onnx_teacher(path: Path, *, dangling: bool = False, external: str | None = None) -> Path:
    """A 1x1x32x32 -> 2 logits model (Flatten, MatMul); optionally broken."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [32 * 32, 2], np.zeros(32 * 32 * 2, np.float32).tolist())
    if external is not None:
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[32 * 32, 2])
        w.data_location = TensorProto.EXTERNAL
        w.external_data.add(key="location", value=external)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("MatMul", ["f", "w" if not dangling else "nowhere"], ["logits"])]
    graph = helper.make_graph(nodes, "teacher", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_valid_onnx_teacher_passes_the_checker(tmp_path):
    check_onnx_model(_onnx_teacher(tmp_path / "ok.onnx"), TeacherLoadError)


def test_malformed_onnx_teacher_is_refused_by_the_checker(tmp_path):
    path = _onnx_teacher(tmp_path / "teacher.onnx", dangling=True)
    code, text, out = _build(tmp_path, {"source": "onnx", "path": str(path), "input_size": 32})
    _assert_teacher_refused(code, text, out, path)
    assert "ONNX teacher failed the ONNX checker" in text and "nowhere" in text


def test_onnx_external_data_outside_the_model_folder_is_refused(tmp_path):
    (tmp_path / "models").mkdir()
    path = _onnx_teacher(tmp_path / "models" / "teacher.onnx", external="../../../../etc/passwd")
    with pytest.raises(TeacherLoadError, match="failed the ONNX checker .* points outside the directory"):
        check_onnx_model(path, TeacherLoadError, "ONNX teacher")


def test_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "teacher.onnx"
    path.write_bytes(b"\x00\x01not a protobuf" * 10)
    code, text, out = _build(tmp_path, {"source": "onnx", "path": str(path), "input_size": 32})
    _assert_teacher_refused(code, text, out, path)


def test_xml_entity_bomb_in_a_vendor_report(tmp_path):
    """`edgekd report --synthesis bomb.xml`: refused by defusedxml, exit 2, lab/ not created."""
    build = tmp_path / "build"
    build.mkdir()
    (build / "config.resolved.yaml").write_text(dump_config(parse_config(TINY)))
    bomb = ROOT / "tests" / "report" / "fixtures" / "malformed" / "entity_bomb_csynth.xml"
    result = CliRunner().invoke(app, ["report", str(build), "--synthesis", str(bomb)], env={"COLUMNS": "300"})
    text = one_line(result.output)
    assert result.exit_code == 2 and "entity_bomb_csynth.xml: refused unsafe XML" in text
    assert not (build / "lab").exists()


def test_board_yaml_with_python_tags_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    board = tmp_path / "board.yaml"
    board.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    result = CliRunner().invoke(app, ["build", str(cfg), "--out", str(tmp_path / "out"), "--board-file", str(board)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "board.yaml: not valid YAML" in one_line(result.output)
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("rel, inside", [
    ("data/splits.npz", True), ("../outside.txt", False), ("/etc/passwd", False), ("data/../../x", False),
    ("~/x", False), ("link/escape.txt", False)])
def test_manifest_paths_must_stay_inside_the_build(tmp_path, rel, inside):
    (tmp_path / "build" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "build" / "link").symlink_to(tmp_path / "elsewhere")
    assert is_inside(tmp_path / "build", rel) is inside


def test_tampered_manifest_pointing_outside_is_not_trusted(tmp_path, monkeypatch):
    """A manifest that lists a file outside the build folder makes that step run again (never read as valid)."""
    from edgekd import pipeline
    from edgekd.pipeline import Step, run_build

    calls: list[str] = []

    def step(ctx):
        calls.append("a")
        (ctx.work / "out.txt").write_text("a")

    monkeypatch.setattr(pipeline, "step_list", lambda *a: [Step("a", step, ("seed",), (), "")])
    monkeypatch.setattr(pipeline, "STEP_NAMES", ("a",))
    cfg = parse_config({"name": "t"})
    build = tmp_path / "build"
    run_build(cfg, build)
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    manifest = read_json(build / "manifest.json")
    manifest["steps"]["a"]["outputs"]["../outside.txt"] = file_sha256(outside)
    (build / "manifest.json").write_text(__import__("json").dumps(manifest))
    run_build(cfg, build)
    assert calls == ["a", "a"]
    assert "../outside.txt" not in read_json(build / "manifest.json")["steps"]["a"]["outputs"]
    assert outside.read_text() == "secret"


FORBIDDEN = [
    (re.compile(r"(?<![.\w>])eval\("), "eval of strings"),  # `->eval(` is a Verilated C++ model call
    (re.compile(r"(?<![.\w])exec\("), "exec of strings"),
    (re.compile(r"\bimport pickle\b|\bpickle\.loads?\("), "pickle"),
    (re.compile(r"yaml\.(unsafe_)?load\(|yaml\.(Full)?Loader\b|yaml\.UnsafeLoader"), "unsafe YAML loader"),
    (re.compile(r"xml\.etree|xml\.dom|\blxml\b|xml\.sax"), "XML without defusedxml"),
    (re.compile(r"allow_pickle=True"), "pickled numpy arrays"),
]


def test_source_tree_has_no_unsafe_loaders():
    offenders = []
    for path in sorted((ROOT / "edgekd").rglob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, what in FORBIDDEN:
                if pattern.search(code) and "defusedxml" not in code:
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {what}: {line.strip()}")
            if "torch.load(" in code and "weights_only=True" not in code:
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: torch.load without weights_only=True")
    assert offenders == []
