"""The manifest/resume machinery, on fake steps that record when they run."""

from pathlib import Path

import pytest

from edgekd import pipeline
from edgekd.config import parse_config
from edgekd.io import read_json
from edgekd.pipeline import BuildError, Step, run_build

CALLS: list[str] = []


def _fake(name: str, fail: bool = False):
    def run(ctx):
        CALLS.append(name)
        upstream = "".join((ctx.dir(d) / "out.txt").read_text() for d in ("a", "b") if d < name and d != name)
        (ctx.work / "out.txt").write_text(f"{name}:{ctx.config.seed}:{upstream}")
        if fail:
            raise RuntimeError(f"{name} broke")

    return run


@pytest.fixture
def fake_steps(monkeypatch):
    CALLS.clear()
    steps = [
        Step("a", _fake("a"), ("seed",), (), ""),
        Step("b", _fake("b"), ("student",), ("a",), ""),
        Step("c", _fake("c"), ("hls",), ("b",), ""),
    ]
    monkeypatch.setattr(pipeline, "step_list", lambda cfg=None: steps)
    monkeypatch.setattr(pipeline, "STEP_NAMES", ("a", "b", "c"))
    return steps


def test_second_run_skips_everything(tmp_path, fake_steps):
    cfg = parse_config({"name": "t"})
    first = run_build(cfg, tmp_path)
    assert [r["status"] for r in first.values()] == ["ran"] * 3
    second = run_build(cfg, tmp_path)
    assert [r["status"] for r in second.values()] == ["skipped"] * 3
    assert CALLS == ["a", "b", "c"]
    manifest = read_json(tmp_path / "manifest.json")
    assert set(manifest["steps"]) == {"a", "b", "c"}
    assert manifest["steps"]["b"]["outputs"]["b/out.txt"]
    assert set(read_json(tmp_path / "time_per_step.json")) == {"a", "b", "c"}


def test_config_change_reruns_only_the_affected_steps(tmp_path, fake_steps):
    run_build(parse_config({"name": "t"}), tmp_path)
    CALLS.clear()
    run_build(parse_config({"name": "t", "hls": {"reuse_factor": 4}}), tmp_path)
    assert CALLS == ["c"]
    CALLS.clear()
    run_build(parse_config({"name": "t", "seed": 3, "hls": {"reuse_factor": 4}}), tmp_path)
    assert CALLS == ["a", "b", "c"]  # a's output changed, so everything downstream is stale


def test_tampered_output_reruns_its_step(tmp_path, fake_steps):
    cfg = parse_config({"name": "t"})
    run_build(cfg, tmp_path)
    (tmp_path / "b" / "out.txt").write_text("edited by hand")
    CALLS.clear()
    run_build(cfg, tmp_path)
    assert CALLS == ["b"]  # b's fresh output equals the old one, so c stays current


def test_failed_step_leaves_no_folder_and_resumes(tmp_path, fake_steps, monkeypatch):
    cfg = parse_config({"name": "t"})
    fake_steps[1] = Step("b", _fake("b", fail=True), ("student",), ("a",), "")
    with pytest.raises(RuntimeError, match="b broke"):
        run_build(cfg, tmp_path)
    assert not (tmp_path / "b").exists() and not (tmp_path / ".b.staging").exists()
    assert set(read_json(tmp_path / "manifest.json")["steps"]) == {"a"}
    fake_steps[1] = Step("b", _fake("b"), ("student",), ("a",), "")
    CALLS.clear()
    results = run_build(cfg, tmp_path)
    assert CALLS == ["b", "c"] and results["a"]["status"] == "skipped"


def test_from_and_to(tmp_path, fake_steps):
    cfg = parse_config({"name": "t"})
    run_build(cfg, tmp_path, to_step="b")
    assert CALLS == ["a", "b"] and not (tmp_path / "c").exists()
    CALLS.clear()
    run_build(cfg, tmp_path, from_step="b")
    assert CALLS == ["b", "c"]
    CALLS.clear()
    run_build(cfg, tmp_path, force=True)
    assert CALLS == ["a", "b", "c"]
    with pytest.raises(BuildError, match="unknown step"):
        run_build(cfg, tmp_path, from_step="zzz")


def test_from_refuses_when_an_earlier_step_is_stale(tmp_path, fake_steps):
    run_build(parse_config({"name": "t"}), tmp_path)
    with pytest.raises(BuildError, match="out of date"):
        run_build(parse_config({"name": "t", "seed": 9}), tmp_path, from_step="c")


def test_from_without_upstream_is_refused(tmp_path, fake_steps):
    with pytest.raises(BuildError, match="have not been built"):
        run_build(parse_config({"name": "t"}), tmp_path, from_step="c")


def test_corrupt_manifest_only_costs_a_rebuild(tmp_path, fake_steps):
    cfg = parse_config({"name": "t"})
    run_build(cfg, tmp_path)
    (tmp_path / "manifest.json").write_text("{ not json")
    CALLS.clear()
    run_build(cfg, tmp_path)
    assert CALLS == ["a", "b", "c"]


def test_real_step_list_order():
    assert [s.name for s in pipeline.step_list()] == ["data", "teacher", "distill", "export", "hls", "project", "report"]


def test_second_build_into_the_same_folder_is_refused(tmp_path, fake_steps):
    from edgekd.pipeline import BuildFolderError, build_lock

    with build_lock(tmp_path):
        with pytest.raises(BuildFolderError, match="another edgekd build is running"):
            run_build(parse_config({"name": "t"}), tmp_path)
    assert CALLS == []
    run_build(parse_config({"name": "t"}), tmp_path)  # the lock is released with its holder
    assert CALLS == ["a", "b", "c"]


def test_build_folder_that_is_a_file_is_refused(tmp_path, fake_steps):
    from edgekd.pipeline import BuildFolderError

    target = tmp_path / "out"
    target.write_text("not a folder")
    with pytest.raises(BuildFolderError, match="not a folder"):
        run_build(parse_config({"name": "t"}), target)
    assert target.read_text() == "not a folder"


def test_failed_step_is_named_by_the_cli(tmp_path, fake_steps, monkeypatch):
    from typer.testing import CliRunner

    from edgekd.cli import app

    fake_steps[1] = Step("b", _fake("b", fail=True), ("student",), ("a",), "")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\n")
    result = CliRunner().invoke(app, ["build", str(cfg), "--out", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "build failed at step b" in result.output and "b broke" in result.output
    assert "Traceback" not in result.output
