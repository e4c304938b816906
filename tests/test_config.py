from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.config import ConfigError, load_config, parse_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_example_config_loads_with_paper_defaults():
    cfg = load_config(EXAMPLES / "cells.yaml")
    assert cfg.name == "cells"
    assert cfg.student.channels == [16, 16]
    assert cfg.hls.clock_mhz == pytest.approx(250.0)
    assert cfg.hls.part == "xcku035-fbva676-2-e"
    assert len(cfg.sha256()) == 64
    # the label-budget setting: 5% labelled, a teacher trained on another pool; the paper's setting beside it
    assert cfg.data.labelled == 0.05 and cfg.teacher.data.synthetic.seed != cfg.data.synthetic.seed
    paper = load_config(EXAMPLES / "cells_paper.yaml")
    assert paper.data.labelled is None and paper.teacher.data is None
    # the same layers and recipe; the example reads 2x2 pixel blocks (issue 14), the paper's Student2 one pixel
    assert cfg.student.input_block == 2 and paper.student.input_block == 1
    assert paper.student == cfg.student.model_copy(update={"input_block": 1})
    assert paper.distill == cfg.distill and paper.hls == cfg.hls
    assert cfg.hls.reuse_factor == "auto" and cfg.hls.max_utilization == 0.8 and cfg.hls.on_overflow == "fail"


def test_hash_changes_with_any_value():
    a = parse_config({"name": "x"})
    b = parse_config({"name": "x", "distill": {"temperature": 3.0}})
    assert a.sha256() != b.sha256()
    assert a.section_sha256("data") == b.section_sha256("data")
    assert a.section_sha256("distill") != b.section_sha256("distill")


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "x", "distil": {}}, "distil"),
        ({"name": "x", "student": {"chanels": [4]}}, "student.chanels"),
        ({"name": "x", "hls": {"io_type": "io_magic"}}, "hls.io_type"),
        ({"name": "x", "distill": {"temperature": -1}}, "distill.temperature"),
        ({"name": "x", "student": {"channels": [4, 4], "kernel_sizes": [3]}}, "kernel_sizes"),
        ({"name": "x", "data": {"source": "lymphomnist"}}, "data.path"),
        ({"name": "a/b"}, "name"),
        ({}, "name"),
    ],
)
def test_bad_config_names_the_field(data, field):
    with pytest.raises(ConfigError) as e:
        parse_config(data, source="my.yaml")
    assert "my.yaml" in str(e.value)
    assert field in str(e.value)


def test_yaml_is_parsed_safely(tmp_path):
    bad = tmp_path / "evil.yaml"
    bad.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "cfg").mkdir()
    p = tmp_path / "cfg" / "c.yaml"
    p.write_text("name: x\ndata: {source: folder, path: imgs}\n")
    assert load_config(p).data.path == (tmp_path / "cfg" / "imgs").resolve()


def test_cli_exits_2_on_bad_config(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\nstudent: {bogus: 1}\n")
    result = CliRunner().invoke(app, ["build", str(p)])
    assert result.exit_code == 2
    assert "student.bogus" in result.output
    assert not (tmp_path / "build").exists()


def test_cli_exits_2_on_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output
