"""Sweep files: expansion (grid x zip, then points), validation before anything runs (exit 2 naming the point
and the key), budgets and the Pareto set on hand-made results."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.sweep.points import resolve_points, set_dotted
from edgekd.sweep.select import choose_best, pareto_indices
from edgekd.sweep.spec import Budgets, SweepSpecError, expand_overrides, parse_sweep_spec

BASE = {"name": "tiny", "student": {"input_size": 16, "channels": [4, 4], "kernel_sizes": [3, 3]}}


def _write(tmp_path: Path, sweep: dict) -> tuple[Path, Path]:
    cfg, spec = tmp_path / "tiny.yaml", tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump(BASE))
    spec.write_text(yaml.safe_dump(sweep))
    return cfg, spec


def test_grid_crossed_with_zip_then_points():
    spec = parse_sweep_spec({
        "grid": {"student.weight_bits": [4, 8], "hls.reuse_factor": [1, "auto"]},
        "zip": {"student.channels": [[2, 2], [8, 8]], "student.kernel_sizes": [[3, 3], [5, 5]]},
        "points": [{"distill.epochs": 3}],
    })
    rows = expand_overrides(spec)
    assert len(rows) == 2 * 2 * 2 + 1
    assert rows[0] == {"student.weight_bits": 4, "hls.reuse_factor": 1, "student.channels": [2, 2],
                       "student.kernel_sizes": [3, 3]}
    assert rows[1]["student.channels"] == [8, 8] and rows[1]["student.kernel_sizes"] == [5, 5]  # zipped
    assert rows[-1] == {"distill.epochs": 3}
    assert expand_overrides(parse_sweep_spec({})) == [{}]  # no keys: the base config itself


@pytest.mark.parametrize("sweep, message", [
    ({"gird": {"seed": [1]}}, "gird: unknown key"),
    ({"zip": {"seed": [1, 2], "distill.seed": [1]}}, "same number of values"),
    ({"grid": {"seed": [1, 2, 3]}, "max_points": 2}, "3 points, more than max_points 2"),
    ({"grid": {"name": ["a", "b"]}}, "'name' cannot vary"),
    ({"budgets": {"latency_us": -1}}, "budgets.latency_us"),
    ({"grid": {"seed": []}}, "at least one value"),
], ids=["unknown-sweep-key", "zip-lengths", "max-points", "name", "budget", "empty-list"])
def test_bad_sweep_files_are_refused(sweep, message):
    with pytest.raises(SweepSpecError, match=message):
        parse_sweep_spec(sweep, "s.yaml")


def test_set_dotted_creates_sections_and_refuses_scalars():
    data = {"student": {"channels": [4]}}
    set_dotted(data, "distill.dts.t0", 3.0)
    assert data["distill"] == {"dts": {"t0": 3.0}}
    with pytest.raises(ValueError, match="student.channels is"):
        set_dotted(data, "student.channels.x", 1)


@pytest.mark.parametrize("points, needle", [
    ([{"student.chanels": [4]}], ["point 1", "student.chanels: unknown key"]),
    ([{"hls.reuse_factor": 0}], ["point 1", "hls.reuse_factor", "greater than or equal to 1"]),
    ([{"student.input_block": 3}], ["point 1", "student.input_block"]),
    ([{"student.channels": [4], "student.kernel_sizes": [3, 3]}], ["point 1", "kernel_sizes"]),
    ([{"student": 3}], ["point 1", "student"]),
], ids=["unknown-key", "refused-value", "literal", "cross-field", "section-replaced"])
def test_cli_names_the_point_and_key_and_runs_nothing(tmp_path, points, needle):
    cfg, spec = _write(tmp_path, {"points": [{"student.channels": [2, 2]}, *points]})
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(cfg), str(spec), "--out", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for n in needle:
        assert n in text, text
    assert not out.exists()  # validated before anything ran


def test_duplicate_points_and_resolved_configs(tmp_path):
    cfg, _ = _write(tmp_path, {})
    spec = parse_sweep_spec({"points": [{"student.channels": [4, 4]}, {}]})
    with pytest.raises(SweepSpecError, match="point 1 .* same config as point 0"):
        resolve_points(cfg, spec, "s.yaml")
    spec = parse_sweep_spec({"grid": {"hls.reuse_factor": [1, 2]}})
    points = resolve_points(cfg, spec, "s.yaml")
    assert [p.config.hls.reuse_factor for p in points] == [1, 2]
    assert points[0].config.hls.part  # resolved like `edgekd build` (board defaults)


def _row(index, acc, us, frac, params=100, fits=True, status="ok"):
    return {"index": index, "status": status, "accuracy": {"hardware": acc}, "latency": {"us": us}, "params": params,
            "resources": {"fits": fits, "binding": "lut", "binding_fraction": frac, "board": "b"}}


def test_budgets_and_pareto_on_results():
    rows = [_row(0, 0.90, 2.0, 0.4), _row(1, 0.93, 4.0, 0.7, params=900), _row(2, 0.95, 9.0, 0.9, fits=False),
            _row(3, 0.89, 3.0, 0.3), _row(4, None, None, None, status="failed")]
    assert pareto_indices(rows, "latency") == [0, 1, 2]
    assert pareto_indices(rows, "utilization") == [0, 1, 2, 3]  # 0 and 3 trade 1 point for 10% LUT
    assert choose_best(rows, Budgets())["index"] == 1  # 2 is more accurate but does not fit its board
    assert choose_best(rows, Budgets(latency_us=3.0))["index"] == 0
    assert choose_best(rows, Budgets(max_utilization=0.35))["index"] == 3
    assert choose_best(rows, Budgets(params=500))["index"] == 0
    assert choose_best(rows, Budgets(latency_us=1.0)) is None


def test_speech_configs_are_refused_before_anything_runs(tmp_path):
    cfg, spec = tmp_path / "speech.yaml", tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({"name": "s", "task": "regression", "data": {"source": "synthetic_speech"}}))
    spec.write_text(yaml.safe_dump({"grid": {"distill.epochs": [1, 2]}}))
    result = CliRunner().invoke(app, ["sweep", str(cfg), str(spec), "--out", str(tmp_path / "out")])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "point 0" in text and "not supported" in text
    assert not (tmp_path / "out").exists()
