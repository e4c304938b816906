"""Whole tiny builds in their own processes, in one module so the suite pays for the two reference builds
once (a session fixture is made once per test worker, and files are spread over the workers).

Concurrency: a second build into a running build's folder is refused by the lock (exit 2, clear message,
the running build unharmed); two builds into different folders at the same time both succeed and agree.

Determinism: the same config and seed, built in two separate processes, give byte-identical files.
Compared: every file the manifest records (weights, teacher logits, QONNX, the hls4ml project sources and
weights, the board project, report.json ...) by sha256. Timings aside: JSON files that hold wall-clock
fields (teacher.json history `seconds`, hls.json `*_per_s`, project.json csim `seconds`, report.json
`generated_at` / `timings_s`, and the C-sim cache's `reused` flag) are compared with those fields removed;
report.md / report.html are checked to be exactly the rendering of their report.json. hls4ml_config.yml
holds hls4ml's absolute OutputDir and is compared with the build folder's path replaced.

Interruption: a real tiny build killed with SIGINT (during teacher), SIGTERM (during distill) and SIGKILL
(during hls), re-run after each kill; every re-run skips exactly the steps recorded before it, and the final
build equals an uninterrupted one file for file (sha256; timings aside, as above).
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
from _rel import (
    STEPS,
    FakeHlsModel,
    assert_same_build,
    cli_env,
    edgekd_cmd,
    manifest_steps,
    one_line,
    reported_steps,
    timing_free_report,
    write_config,
)
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.determinism import seed_step
from edgekd.io import file_sha256, read_json
from edgekd.pipeline import BuildFolderError, Manifest, build_lock



# -- concurrency ----------------------------------------------------------------------------------

def test_second_build_into_a_locked_folder_is_refused(tmp_path):
    out = tmp_path / "build"
    cfg = write_config(tmp_path)
    with build_lock(out):  # another build holds the folder
        result = CliRunner().invoke(app, ["build", str(cfg), "--out", str(out)], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert "another edgekd build is running in this folder" in one_line(result.output)
    assert sorted(p.name for p in out.iterdir()) == [".edgekd.lock"]  # the refused build wrote nothing


def test_lock_is_released_when_the_holder_fails(tmp_path):
    out = tmp_path / "build"
    with pytest.raises(RuntimeError), build_lock(out):
        raise RuntimeError("step broke")
    with open(out / ".edgekd.lock") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again: no exception


def test_threads_of_one_process_cannot_share_a_folder(tmp_path):
    out = tmp_path / "build"
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with build_lock(out):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert entered.wait(10)
    try:
        with pytest.raises(BuildFolderError, match="another edgekd build is running"), build_lock(out):
            pass
    finally:
        release.set()
        t.join()


@pytest.mark.slow
def test_concurrent_builds_in_two_folders(concurrent_builds):
    one, two = concurrent_builds["outs"]
    assert concurrent_builds["codes"] == [0, 0], [log[-2000:] for log in concurrent_builds["logs"]]
    assert_same_build(one, two)  # neither disturbed the other: same bytes as each other
    for build in (one, two):
        assert not list(build.glob(".*.staging"))
        assert read_json(build / "report" / "report.json")["fidelity"]["qonnx_vs_csim_exact"] == 1.0
        assert (build / "cache" / "csim").is_dir()  # each build folder has its own compile cache


@pytest.mark.slow
def test_intruder_into_a_running_build_is_refused(concurrent_builds):
    intruder = concurrent_builds["intruder"]
    assert concurrent_builds["running_when_refused"], "the first build ended before the second one started"
    assert intruder.returncode == 2, intruder.stderr[-2000:]
    assert "another edgekd build is running in this folder" in one_line(intruder.stderr)
    assert "Traceback" not in intruder.stderr
    assert concurrent_builds["codes"][0] == 0  # the running build finished normally


def test_compile_cache_is_safe_for_concurrent_writers(tmp_path):
    """Two builds sharing one C-sim cache compile the same firmware at once: one compiles, the other reuses."""
    from edgekd.hls.csim_cache import compile_cached

    cache = tmp_path / "cache"
    models = [FakeHlsModel(tmp_path / f"p{i}") for i in range(2)]
    results: list[dict] = []
    errors: list[BaseException] = []

    def work(model) -> None:
        try:
            results.append(compile_cached(model, cache))
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(r["cached"] for r in results) == [False, True]
    assert len({r["hash"] for r in results}) == 1
    assert all(m._top_function_lib.answer() == 7 for m in models)
    assert len(list(cache.glob("*/csim_lib.txt"))) == 1


def test_teacher_cache_is_safe_for_concurrent_writers(tmp_path):
    """Two annotators writing the same cache entry at once: each rename is atomic, the entry stays valid."""
    import numpy as np

    from edgekd.teachers.annotate import annotate_with_teacher, cache_path

    class Runner:
        sha256, num_classes = "f" * 64, 2

        def logits(self, images, batch_size=256):
            time.sleep(0.2)
            return np.stack([images.mean(axis=(1, 2)), -images.mean(axis=(1, 2))], axis=1).astype(np.float32)

    images = np.arange(4 * 8 * 8, dtype=np.uint8).reshape(4, 8, 8)
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(annotate_with_teacher(Runner(), images, tmp_path, "d" * 64)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(out) == 3 and all(np.array_equal(o, out[0]) for o in out)
    assert np.array_equal(np.load(cache_path(tmp_path, "f" * 64, "d" * 64)), out[0])
    assert [p.name for p in tmp_path.iterdir()] == [cache_path(tmp_path, "f" * 64, "d" * 64).name]  # no temp files left


# -- determinism ----------------------------------------------------------------------------------

@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_step_seeding_does_not_depend_on_history():
    seed_step("teacher")
    a = torch.rand(4)
    torch.rand(1000)  # whatever ran before in the process
    seed_step("teacher")
    assert torch.equal(a, torch.rand(4))
    seed_step("distill")
    assert not torch.equal(a, torch.rand(4))


# -- interruption ---------------------------------------------------------------------------------

def _start(cfg: Path, out: Path, log: Path) -> subprocess.Popen:
    # own process group: the signal reaches the build and its compilers, as Ctrl-C or a job killer would
    # SIGINT restored to its default: a library imported earlier in the test process may have left it ignored,
    # and an ignored SIGINT is inherited by the child, which would then never see Ctrl-C
    return subprocess.Popen(edgekd_cmd("build", str(cfg), "--out", str(out)), stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), env=cli_env(), start_new_session=True,
                            preexec_fn=_default_signals)


def _default_signals() -> None:
    """In the child before exec: SIGINT handled by default and SIGINT / SIGTERM not blocked (both are inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def _kill_during(proc: subprocess.Popen, out: Path, step: str, sig: signal.Signals, delay: float) -> bool:
    """Wait until `step` runs (its staging folder exists), let it work `delay` s, send `sig` to the group.

    Returns True when the step was still running at the kill (False: it finished in the meantime)."""
    staging = out / f".{step}.staging"
    deadline = time.time() + 600
    while not staging.exists():
        if proc.poll() is not None:
            pytest.fail(f"the build ended (status {proc.returncode}) before step {step} started")
        if time.time() > deadline:
            pytest.fail(f"step {step} did not start within 600 s")
        time.sleep(0.01)
    time.sleep(delay)
    still_running = staging.exists() and step not in manifest_steps(out)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    return still_running


def _assert_recorded_steps_intact(out: Path) -> list[str]:
    """Every step in the manifest has all its files with the recorded hashes (nothing half-written is trusted)."""
    manifest = Manifest(out)
    steps = list(manifest.steps)
    assert steps == STEPS[: len(steps)], steps  # a prefix: a step is recorded only after its inputs
    for step in steps:
        for rel, digest in manifest.steps[step]["outputs"].items():
            assert file_sha256(out / rel) == digest, rel
        # nothing in the step folder that the manifest does not know about
        on_disk = {str(p.relative_to(out)) for p in (out / step).rglob("*") if p.is_file()}
        assert on_disk == set(manifest.steps[step]["outputs"]), step
    for step in STEPS[len(steps):]:
        assert not (out / step).exists() or step not in manifest.steps
    return steps


@pytest.mark.slow
def test_killed_build_resumes_to_identical_files(tmp_path, reference_build):
    cfg = write_config(tmp_path)
    out = tmp_path / "build"
    plan = [("teacher", signal.SIGINT, 0.3), ("distill", signal.SIGTERM, 0.5), ("hls", signal.SIGKILL, 2.0)]
    for i, (step, sig, delay) in enumerate(plan):
        before = manifest_steps(out)
        log = tmp_path / f"run{i}.log"
        proc = _start(cfg, out, log)
        hit = _kill_during(proc, out, step, sig, delay)
        stderr = log.read_text()
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:  # SIGINT / SIGTERM: the CLI cleans up, says where it stopped, exits 130, no traceback
            assert proc.returncode == 130, stderr[-3000:]
            assert "Traceback" not in stderr
            if hit:
                assert f"interrupted during step {step}" in one_line(stderr)
            assert not list(out.glob(".*.staging"))  # the interrupted step's staging folder was removed
        recorded = _assert_recorded_steps_intact(out)
        assert set(before) <= set(recorded)
        if hit:
            assert step not in recorded and STEPS.index(step) == len(recorded)

    # run to completion: it skips exactly the steps that were complete, and leaves no staging behind
    recorded = manifest_steps(out)
    final = subprocess.run(edgekd_cmd("build", str(cfg), "--out", str(out)), capture_output=True, text=True,
                           timeout=900, env=cli_env())
    assert final.returncode == 0, final.stderr[-3000:]
    assert reported_steps(final.stderr, "skipped") == recorded
    assert reported_steps(final.stderr, "ran") == STEPS[len(recorded):]
    assert not list(out.glob(".*.staging"))
    assert assert_same_build(reference_build, out) >= 40
    assert read_json(out / "report" / "report.json")["fidelity"]["qonnx_vs_csim_exact"] == 1.0
