"""A real sweep of 4 tiny points on a real distributed.LocalCluster (2 single-threaded worker processes):
killed after its first cached result and resumed, one point failing at `hls`, best.yaml rebuilt bit for bit
by `edgekd build`, the --scheduler path against a cluster the test starts, preselection with the shared
teacher. One sweep is shared by the module's tests (about 1.5 min on 2 cores)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edgekd.sweep.figures import point_figures

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny",
    "data": {"synthetic": {"n_train": 360, "n_test": 120, "seed": 1}, "val_fraction": 0.1},
    "teacher": {"width": 8, "epochs": 1, "input_size": 32, "batch_size": 64},
    "student": {"input_size": 16, "channels": [4, 4], "kernel_sizes": [3, 3]},
    "distill": {"epochs": 2, "qat_epochs": 1, "batch_size": 64},
    "hls": {"verify_samples": 24},
}
SWEEP = {
    "points": [
        {},                                                                                # the base config
        {"student.channels": [2, 2]},
        {"student.channels": [4], "student.kernel_sizes": [3], "student.input_block": 2},  # 4 pixels per item
        {"hls.max_utilization": 0.001},                                                    # cannot fit: fails
    ],
    "budgets": {"latency_us": 50.0},
}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgekd", "sweep", *args]


def _env() -> dict:
    env = {**os.environ, "COLUMNS": "200"}
    return env


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("sweep")
    cfg, spec = root / "tiny.yaml", root / "sweep.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    spec.write_text(yaml.safe_dump(SWEEP))
    return cfg, spec, root


@pytest.fixture(scope="module")
def resumed(files) -> dict:
    """Run the sweep CLI, SIGKILL its whole process group (client, scheduler, workers) as soon as one point's
    result is cached, run it again to the end."""
    cfg, spec, root = files
    out = root / "out"
    proc = subprocess.Popen(_cli(str(cfg), str(spec), "--out", str(out), "--workers", "2"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while not list((out / "results").glob("*.json")):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no point finished in 300 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {p.name: p.read_text() for p in (out / "results").glob("*.json")}
    assert not (out / "sweep.json").exists()
    run = subprocess.run(_cli(str(cfg), str(spec), "--out", str(out), "--workers", "2"), env=_env(),
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads((out / "sweep.json").read_text())
    return {"out": out, "before": before, "doc": doc, "stderr": run.stderr}


def test_resume_after_kill_builds_only_the_missing_points(resumed):
    doc, before = resumed["doc"], resumed["before"]
    cached = {r["index"] for r in doc["points"] if r["cached"]}
    assert len(cached) == len(before) >= 1
    assert doc["summary"]["cached"] == len(before) and doc["summary"]["built"] == 4 - len(before)
    for r in doc["points"]:
        if r["cached"]:  # the very record written before the kill
            assert json.loads(before[f"{r['key']}.json"])["wall_s"] == r["wall_s"]
    assert doc["base"]["steps"] == {"data": "skipped", "teacher": "skipped"}  # one teacher, built once


def test_results_of_every_point(resumed):
    doc = resumed["doc"]
    rows = {r["index"]: r for r in doc["points"]}
    assert [r["status"] for r in doc["points"]] == ["ok", "ok", "ok", "failed"]
    assert doc["cluster"]["kind"] == "LocalCluster" and doc["cluster"]["workers"] == 2
    for r in (rows[0], rows[1], rows[2]):
        assert all(r["bit_exact"][k] for k in ("torch_vs_qonnx", "qonnx_vs_csim", "emulator_vs_csim", "emulator_vs_qonnx"))
        assert r["bit_exact"]["test_samples"] == 120  # the emulator on the whole test split
        assert r["params"] > 0 and r["macs"] > 0 and r["wall_s"] > 0 and r["worker"].startswith("tcp://")
        assert set(r["accuracy"]) >= {"hardware", "quant", "float", "labels_only"}
        assert r["resources"]["fits"] and r["resources"]["board"] == "frame-grabber-ku035"
        assert r["config"]["student"]["channels"] == r["overrides"].get("student.channels", [4, 4])
        assert r["steps"]["data"] == r["steps"]["teacher"] == "skipped"  # seeded from the shared teacher
        # the figures sweep.json holds are the point's build folder's own
        assert point_figures(Path(r["build_dir"]))["hashes"] == r["hashes"]
    # 2x2 blocks: a quarter of the stream items, so a lower latency than the same network on pixels
    assert rows[2]["latency"]["us"] < rows[0]["latency"]["us"] and rows[2]["latency"]["kind"] == "trigger"
    assert rows[1]["params"] < rows[0]["params"]


def test_failing_point_is_recorded_and_the_sweep_goes_on(resumed):
    failed = resumed["doc"]["points"][3]
    assert failed["failed_step"] == "hls" and "does not fit" in failed["error"]
    assert failed["config"]["hls"]["max_utilization"] == 0.001 and not failed["within_budgets"]
    assert resumed["doc"]["summary"]["failed"] == 1 and resumed["doc"]["summary"]["ok"] == 3


def test_outputs_and_budget_selection(resumed):
    doc, out = resumed["doc"], resumed["out"]
    s = doc["summary"]
    rows = [r for r in doc["points"] if r["status"] == "ok"]
    best = max((r for r in rows if r["latency"]["us"] <= 50.0),
               key=lambda r: (r["accuracy"]["hardware"], -r["latency"]["us"], -r["params"], -r["index"]))
    assert s["best"] == best["index"] and s["within_budgets"] == [0, 1, 2]
    assert s["pareto_latency"] and all(doc["points"][i]["pareto_latency"] for i in s["pareto_latency"])
    md, html = (out / "sweep.md").read_text(), (out / "sweep.html").read_text()
    assert f"best.yaml: point {s['best']}" in md and "failed at step hls" in md
    assert html.count("data:image/png;base64,") == 2
    assert (out / "best.yaml").read_text().count("EDGEKD_THREADS=1 edgekd build best.yaml") == 1


def test_best_yaml_rebuilds_the_same_weights_and_figures(resumed, tmp_path):
    """`edgekd build best.yaml` (the sweep's thread count) gives the chosen point's weights, QONNX, HLS
    firmware, accuracies, latency and resources exactly; --to hls (the steps a point runs) for time."""
    doc, out = resumed["doc"], resumed["out"]
    best = doc["points"][doc["summary"]["best"]]
    rebuild = tmp_path / "rebuild"
    run = subprocess.run([sys.executable, "-m", "edgekd", "build", str(out / "best.yaml"), "--to", "hls", "--out",
                          str(rebuild)], env={**_env(), "EDGEKD_THREADS": "1"}, capture_output=True, text=True,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    again = point_figures(rebuild)
    assert again["hashes"] == best["hashes"] and "distill/student.pt" in again["hashes"]
    for key in ("params", "macs", "accuracy", "bit_exact", "latency", "resources", "layer_settings"):
        assert again[key] == best[key], key
    assert (rebuild / "config.resolved.yaml").read_text() == \
        (Path(best["build_dir"]) / "config.resolved.yaml").read_text()


def test_scheduler_path_builds_on_a_cluster_the_test_starts(resumed, files, tmp_path):
    """--scheduler ADDRESS: an existing cluster (1 worker that builds in its own scratch folder, as one
    without the shared folder would, so the teacher travels as bytes); the cached points stay cached and
    only the new point is built there."""
    from distributed import LocalCluster

    from edgekd.sweep.run import run_sweep

    cfg = files[0]
    out = tmp_path / "copy"
    shutil.copytree(resumed["out"], out)
    spec = tmp_path / "more.yaml"
    spec.write_text(yaml.safe_dump({**SWEEP, "points": [*SWEEP["points"], {"student.channels": [3, 3]}]}))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env={"EDGEKD_SWEEP_SHARED": "0", "EDGEKD_SWEEP_SCRATCH": str(scratch)}) as cluster:
        worker = next(iter(cluster.scheduler_info["workers"]))
        doc = run_sweep(cfg, spec, out=out, scheduler=cluster.scheduler_address)
    assert doc["cluster"]["kind"] == "scheduler" and doc["base"]["shared"] is False
    new = doc["points"][4]
    assert new["status"] == "ok" and not new["cached"] and new["worker"] == worker and new["build_dir"] is None
    assert doc["summary"]["cached"] == 4 and doc["summary"]["built"] == 1  # same teacher bits: same keys
    assert list(scratch.iterdir()) == []  # scratch builds are removed once their figures are back


def test_preselect_ranks_students_with_the_shared_teacher(resumed, files):
    from edgekd.sweep.points import resolve_points
    from edgekd.sweep.preselect import preselect_points
    from edgekd.sweep.spec import parse_sweep_spec

    cfg, _, _ = files
    points = resolve_points(cfg, parse_sweep_spec(SWEEP), "sweep.yaml")
    kept, info = preselect_points(points, 1, resumed["out"] / "base")
    assert len(info["ranking"]) == 3  # points 0 and 3 share their student
    assert [r["kept"] for r in info["ranking"]] == [True, False, False]
    assert {p.index for p in kept} == set(info["ranking"][0]["points"])
    scores = [r["score"] for r in info["ranking"]]
    assert scores == sorted(scores, reverse=True)
