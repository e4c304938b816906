"""Interruption: a real tiny build killed with SIGINT (during teacher), SIGTERM (during distill) and SIGKILL
(during hls), re-run after each kill; every re-run skips exactly the steps recorded before it, and the final
build equals an uninterrupted one file for file (sha256; timings aside, see test_reliability_determinism)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _rel import (
    STEPS,
    assert_same_build,
    cli_env,
    edgekd_cmd,
    manifest_steps,
    one_line,
    reported_steps,
    write_config,
)

from edgekd.io import file_sha256, read_json
from edgekd.pipeline import Manifest

pytestmark = pytest.mark.slow


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
