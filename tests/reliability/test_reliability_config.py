"""Bad config and bad output folders: exit status 2, one message naming the field or path and the fix, no
traceback (unless --debug), and the build folder untouched (or never created)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from _rel import TINY, one_line, write_config
from typer.testing import CliRunner

from edgekd.cli import app


def _build(*args: str):
    result = CliRunner().invoke(app, ["build", *args], env={"COLUMNS": "250"})
    return result.exit_code, one_line(result.output)


def _config(tmp_path: Path, data: dict, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"teacher": {"epochz": 3}}, "teacher.epochz", "unknown key"),
        ({"teacher": {"epochs": "many"}}, "teacher.epochs", "valid integer"),
        ({"hls": {"reuse_factor": 0}}, "hls.reuse_factor", "greater than or equal to 1"),
        ({"student": {"channels": [4, 4], "kernel_sizes": [3]}}, "student.kernel_sizes", "one kernel size per conv"),
        ({"hls": {"io_type": "io_serial"}}, "hls.io_type", "io_stream"),
        ({"name": "../escape"}, "name", "should match pattern"),
        ({"name": "/abs/path"}, "name", "should match pattern"),
        ({"name": ".."}, "name", "must not be only dots"),
    ],
    ids=["unknown-key", "wrong-type", "out-of-range", "inconsistent", "bad-choice", "name-dotdot", "name-absolute",
         "name-dots"],
)
def test_invalid_values_exit_2_naming_the_field(tmp_path, overrides, field, words):
    cfg = _config(tmp_path, {**{k: v for k, v in TINY.items()}, **overrides})
    out = tmp_path / "out"
    code, text = _build(str(cfg), "--out", str(out))
    assert code == 2
    assert f"{cfg}: invalid config" in text and field in text and words in text
    assert "Traceback" not in text
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # nothing written anywhere


def test_missing_config_file(tmp_path):
    code, text = _build(str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out"))
    assert code == 2 and "nope.yaml: cannot read config (No such file or directory)" in text
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "section, field",
    [({"data": {"source": "lymphomnist", "path": "no_such_folder"}}, "data.path"),
     ({"teacher": {"source": "checkpoint", "path": "missing_teacher.pt"}}, "teacher.path"),
     ({"teacher": {"source": "onnx", "path": "missing_teacher.onnx"}}, "teacher.path")],
    ids=["data-path", "checkpoint", "onnx"],
)
def test_missing_input_files_exit_2_before_any_step(tmp_path, section, field):
    cfg = _config(tmp_path, {**TINY, **section})
    out = tmp_path / "out"
    code, text = _build(str(cfg), "--out", str(out))
    missing = tmp_path / next(iter(section.values()))["path"]
    assert code == 2
    assert f"{field}: {missing} does not exist" in text and "relative to the config file" in text
    assert not out.exists()


def test_yaml_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    code, text = _build(str(cfg), "--out", str(tmp_path / "out"))
    assert code == 2 and "evil.yaml: not valid YAML" in text and "python/object/apply" in text
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_binary_config_file_is_refused(tmp_path):
    cfg = tmp_path / "image.yaml"
    cfg.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    code, text = _build(str(cfg), "--out", str(tmp_path / "out"))
    assert code == 2 and "image.yaml: not a text file" in text


def test_output_folder_that_is_a_file(tmp_path):
    cfg = write_config(tmp_path)
    out = tmp_path / "out"
    out.write_text("precious")
    code, text = _build(str(cfg), "--out", str(out))
    assert code == 2 and f"{out}: exists and is not a folder; choose another --out" in text
    assert out.read_text() == "precious"


def test_output_folder_below_a_file(tmp_path):
    cfg = write_config(tmp_path)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "build"
    code, text = _build(str(cfg), "--out", str(out))
    assert code == 2 and "cannot write the build folder" in text and "choose another --out" in text
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_folder_not_writable(tmp_path):
    cfg = write_config(tmp_path)
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        code, text = _build(str(cfg), "--out", str(parent / "build"))
    finally:
        parent.chmod(0o700)
    assert code == 2 and "cannot write the build folder (Permission denied)" in text
    assert list(parent.iterdir()) == []


def test_existing_folder_that_is_not_a_build_is_left_alone(tmp_path):
    """`--out ~/my_project` holding a `data/` folder: the data step would replace it, so the build is refused."""
    cfg = write_config(tmp_path)
    out = tmp_path / "my_project"
    (out / "data").mkdir(parents=True)
    (out / "data" / "cells.npy").write_bytes(b"mine")
    code, text = _build(str(cfg), "--out", str(out))
    assert code == 2
    assert "is not an edgekd build folder (no manifest.json); choose a new or empty folder for --out" in text
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["data", "data/cells.npy"]
    assert (out / "data" / "cells.npy").read_bytes() == b"mine"


def test_unknown_step_and_missing_board_file(tmp_path):
    cfg = write_config(tmp_path)
    code, text = _build(str(cfg), "--out", str(tmp_path / "out"), "--from", "synthesis")
    assert code == 2 and "--from synthesis: unknown step; steps are data, teacher" in text
    code, text = _build(str(cfg), "--out", str(tmp_path / "out"), "--board-file", str(tmp_path / "board.yaml"))
    assert code == 2 and f"--board-file {tmp_path / 'board.yaml'}: no such file" in text
    assert not (tmp_path / "out").exists()


def test_validate_command_exits_2_on_a_bad_config(tmp_path):
    cfg = _config(tmp_path, {"name": "t", "distill": {"temperature": -1}})
    result = CliRunner().invoke(app, ["validate", str(cfg)], env={"COLUMNS": "250"})
    assert result.exit_code == 2 and "distill.temperature: Input should be greater than 0" in one_line(result.output)


def test_debug_flag_shows_the_traceback_of_a_failed_step(tmp_path):
    """A step failure is exit 1 with the step named; --debug adds the traceback."""
    images = tmp_path / "images" / "B"
    images.mkdir(parents=True)  # one class folder only: the data step refuses it
    cfg = _config(tmp_path, {**TINY, "data": {"source": "folder", "path": str(tmp_path / "images")}})
    code, text = _build(str(cfg), "--out", str(tmp_path / "out"))
    assert code == 1 and "build failed at step data" in text and "need at least 2" in text
    assert "Traceback" not in text
    code, text = _build(str(cfg), "--out", str(tmp_path / "out"), "--debug")
    assert code == 1 and "Traceback" in text and "load_image_folder" in text
