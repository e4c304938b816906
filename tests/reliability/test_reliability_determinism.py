"""Determinism: the same config and seed, built in two separate processes, give byte-identical files.

Compared: every file the manifest records (weights, teacher logits, QONNX, the hls4ml project sources and
weights, the board project, report.json ...) by sha256. Timings aside: JSON files that hold wall-clock
fields (teacher.json history `seconds`, hls.json `*_per_s`, project.json csim `seconds`, report.json
`generated_at` / `timings_s`, and the C-sim cache's `reused` flag) are compared with those fields removed;
report.md / report.html are checked to be exactly the rendering of their report.json. hls4ml_config.yml
holds hls4ml's absolute OutputDir and is compared with the build folder's path replaced.
"""

from __future__ import annotations

import pytest
import torch
from _rel import assert_same_build, timing_free_report

from edgekd.determinism import seed_step
from edgekd.io import read_json

pytestmark = pytest.mark.slow


def test_two_processes_give_identical_builds(reference_build, concurrent_builds):
    """The two builds ran at the same time, in two processes (each with its own PYTHONHASHSEED)."""
    other = concurrent_builds["outs"][1]
    assert concurrent_builds["codes"][1] == 0, concurrent_builds["logs"][1][-3000:]
    checked = assert_same_build(reference_build, other)
    assert checked >= 40  # weights, logits, QONNX, hls4ml sources and weights, project files, report.json
    manifest = read_json(reference_build / "manifest.json")["steps"]
    for rel in ("teacher/teacher.pt", "distill/student.pt", "export/student.clean.onnx", "hls/project/firmware/myproject.cpp"):
        step = rel.split("/")[0]
        assert manifest[step]["outputs"][rel] == read_json(other / "manifest.json")["steps"][step]["outputs"][rel]
    report = timing_free_report(reference_build)
    assert report == timing_free_report(other)
    assert report["reproducibility"]["deterministic_algorithms"] is True
    assert report["reproducibility"]["torch_threads"] >= 1
    assert set(report["versions"]) >= {"torch", "brevitas", "qonnx", "hls4ml", "onnx", "g++"}


def test_hls4ml_stamp_is_derived_from_the_model(reference_build, concurrent_builds):
    stamps = set()
    for build in concurrent_builds["outs"]:
        line = [l for l in (build / "hls" / "project" / "build_lib.sh").read_text().splitlines() if l.startswith("LIB_STAMP=")]
        stamps.add(line[0])
    assert len(stamps) == 1 and len(stamps.pop()) == len("LIB_STAMP=") + 8
    from _rel import TINY

    from edgekd.config import parse_config
    from edgekd.hls.convert import model_stamp

    hls = parse_config(TINY).hls
    qonnx = reference_build / "export" / "student.clean.onnx"
    assert model_stamp(qonnx, {"a": 1}, hls) == model_stamp(qonnx, {"a": 1}, hls) != model_stamp(qonnx, {"a": 2}, hls)


def test_step_seeding_does_not_depend_on_history():
    seed_step("teacher")
    a = torch.rand(4)
    torch.rand(1000)  # whatever ran before in the process
    seed_step("teacher")
    assert torch.equal(a, torch.rand(4))
    seed_step("distill")
    assert not torch.equal(a, torch.rand(4))
