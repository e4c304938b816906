"""Session fixtures of the reliability tests: two whole tiny builds run at the same time (the determinism,
concurrency and kill tests compare against them). Helpers live in _rel.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _rel import cli_env, edgekd_cmd, run_cli, write_config


@pytest.fixture(scope="session")
def reliability_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reliability")


@pytest.fixture(scope="session")
def reference_build(concurrent_builds) -> Path:
    """An uninterrupted tiny build in its own process (the kill test compares against it): the first of the
    two concurrent builds, so the suite pays for two whole builds, not three."""
    assert concurrent_builds["codes"][0] == 0, concurrent_builds["logs"][0][-3000:]
    return concurrent_builds["outs"][0]


@pytest.fixture(scope="session")
def concurrent_builds(reliability_root) -> dict:
    """Two builds of the same config started together into two folders, and a third process started into the
    first folder while it runs (it must be refused by the lock). Returns the folders and the third's result."""
    import time

    folder = reliability_root / "concurrent"
    folder.mkdir()
    cfg = write_config(folder)
    outs = [folder / "one", folder / "two"]
    logs = [open(folder / f"{o.name}.log", "w") for o in outs]
    procs = [subprocess.Popen(edgekd_cmd("build", str(cfg), "--out", str(o)), stdout=subprocess.DEVNULL, stderr=log,
                              env=cli_env()) for o, log in zip(outs, logs)]
    try:
        deadline = time.time() + 300
        while not (outs[0] / ".edgekd.lock").exists() and time.time() < deadline and procs[0].poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)  # the lock file is created just before it is locked
        intruder = run_cli("build", str(cfg), "--out", str(outs[0]), timeout=300)
        running_when_refused = procs[0].poll() is None
        codes = [p.wait(timeout=900) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for log in logs:
            log.close()
    return {"outs": outs, "codes": codes, "logs": [(folder / f"{o.name}.log").read_text() for o in outs],
            "intruder": intruder, "running_when_refused": running_when_refused}
