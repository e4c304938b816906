"""Concurrency: a second build into a running build's folder is refused by the lock (exit 2, clear message,
the running build unharmed); two builds into different folders at the same time both succeed and agree."""

from __future__ import annotations

import fcntl
import threading
import time

import pytest
from _rel import FakeHlsModel, assert_same_build, one_line, write_config
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.io import read_json
from edgekd.pipeline import BuildFolderError, build_lock


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
