"""Fuzzing (hypothesis): the config loader, the vendor report parsers and lab ingestion raise only the
project's own error types (ConfigError, BoardError, VendorReportError), never anything else, on random
and mutated inputs. Mutations start from real files: examples/*.yaml and tests/report/fixtures."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekd.config import ConfigError, load_config, parse_config
from edgekd.hw import BoardError
from edgekd.report.lab import ingest, parse_synthesis_path
from edgekd.report.vendor import VendorReportError, parse_board_measurements

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "report" / "fixtures"
# Real report files of every kind the parsers take (the file name tells parse_synthesis_path the kind).
REPORTS = sorted(
    p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix in (".xml", ".rpt") and "malformed" not in p.parts
)
BOARD_LOGS = sorted((FIXTURES / "board").iterdir())
CONFIG_TEXTS = [(ROOT / "examples" / "cells.yaml").read_text(), yaml.safe_dump(
    {"name": "t", "data": {"synthetic": {"n_train": 64}}, "teacher": {"epochs": 1}, "student": {"channels": [4, 4]},
     "hls": {"io_type": "io_parallel", "reuse_factor": 2}}
)]
SETTINGS = settings(max_examples=int(os.environ.get("EDGEKD_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=list(HealthCheck),
                    derandomize="EDGEKD_FUZZ_EXAMPLES" not in os.environ)  # fixed examples in the suite; random when hunting
WORK = Path(tempfile.mkdtemp(prefix="edgekd-fuzz-"))
atexit.register(shutil.rmtree, WORK, True)

# JSON-like values, with the scalars YAML produces.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["io_parallel", "Vitis", "kd", "synthetic", "..", "/etc/passwd", "pynq-z2",
                                           "board.yaml", "-1", "1e9", "", "train", "onnx", "regression"]),
)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                      max_leaves=12)
KEYS = {
    "": ["name", "task", "seed", "data", "teacher", "student", "distill", "hls"],
    "data": ["source", "path", "num_classes", "val_fraction", "max_train", "synthetic", "csv"],
    "teacher": ["source", "path", "epochs", "width", "input_size", "lr"],
    "student": ["name", "channels", "kernel_sizes", "weight_bits", "act_bits", "input_size", "qonnx", "inputs"],
    "distill": ["loss", "temperature", "alpha", "epochs", "batch_size"],
    "hls": ["board", "io_type", "reuse_factor", "clock_period_ns", "part", "max_parallel_products"],
}


@st.composite
def config_mappings(draw) -> dict:
    """Mostly well-shaped configs with random values at real keys (reaches the validators), sometimes junk."""
    out: dict = {"name": draw(st.sampled_from(["t", "a.b", "..", "x/y", "", "ok-1"]))}
    for section in draw(st.lists(st.sampled_from(KEYS[""][1:]), max_size=4, unique=True)):
        if section in KEYS:
            keys = draw(st.lists(st.sampled_from(KEYS[section]), max_size=3, unique=True))
            out[section] = {k: draw(values) for k in keys}
        else:
            out[section] = draw(values)
    if draw(st.booleans()):
        out[draw(st.text(max_size=6))] = draw(values)
    return out


def _expect_own_error(fn, *errors: type[Exception]):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except errors:
        return None


@SETTINGS
@given(config_mappings())
def test_parse_config_raises_only_config_errors(data):
    _expect_own_error(lambda: parse_config(data, source="fuzz.yaml", base_dir=WORK), ConfigError)


@SETTINGS
@given(values)
def test_parse_config_on_any_value(data):
    _expect_own_error(lambda: parse_config(data, source="fuzz.yaml", base_dir=WORK), ConfigError)


@st.composite
def mutated_text(draw, texts: list[str]) -> str:
    """A real file's text with a few byte-level edits: deletions, insertions, duplications, truncation."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = min(len(text), i + draw(st.integers(0, 40)))
        op = draw(st.sampled_from(["delete", "insert", "dup", "truncate", "replace"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.text(max_size=12)) + text[i:]
        elif op == "dup":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "truncate":
            text = text[:i]
        else:
            text = text[:i] + draw(st.sampled_from(["-", "0", "x", ":", "\n", "<", ">", "&", "|", " ", "\t", "{", "!!"])) + text[i + 1:]
    return text


@SETTINGS
@given(mutated_text(CONFIG_TEXTS))
def test_load_config_on_mutated_yaml(text):
    path = WORK / "mutated.yaml"
    path.write_text(text)
    _expect_own_error(lambda: load_config(path), ConfigError)


@SETTINGS
@given(st.binary(max_size=200))
def test_load_config_on_random_bytes(raw):
    path = WORK / "random.yaml"
    path.write_bytes(raw)
    _expect_own_error(lambda: load_config(path), ConfigError)


def test_board_file_errors_are_config_errors():
    """A config naming a broken board file: the board's own error type (a ValueError) surfaces as ConfigError."""
    bad = WORK / "bad_board.yaml"
    bad.write_text("name: b\npart: [1, 2]\n")
    with pytest.raises(ConfigError, match="bad_board.yaml"):
        parse_config({"name": "t", "hls": {"board": str(bad)}})
    assert issubclass(BoardError, ValueError)


REPORT_TEXTS = {p: p.read_text(errors="replace") for p in REPORTS}


@SETTINGS
@given(st.sampled_from(REPORTS), st.data())
def test_vendor_parsers_on_mutated_reports(original, data):
    text = data.draw(mutated_text([REPORT_TEXTS[original]]))
    folder = WORK / "reports"
    folder.mkdir(exist_ok=True)
    path = folder / original.name
    path.write_text(text)
    _expect_own_error(lambda: parse_synthesis_path(path), VendorReportError)


@SETTINGS
@given(st.sampled_from([p.name for p in REPORTS] + ["x_cosim.rpt", "a_utilization.rpt", "b_timing_summary.rpt"]),
       st.binary(max_size=300))
def test_vendor_parsers_on_random_bytes(name, raw):
    folder = WORK / "random_reports"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(raw)
    _expect_own_error(lambda: parse_synthesis_path(path), VendorReportError)


BOARD_TEXTS = {p: p.read_text() for p in BOARD_LOGS}


@SETTINGS
@given(st.sampled_from(BOARD_LOGS), st.data())
def test_board_log_parser_on_mutated_logs(original, data):
    text = data.draw(mutated_text([BOARD_TEXTS[original]]))
    path = WORK / f"board{original.suffix}"
    path.write_text(text)
    _expect_own_error(lambda: parse_board_measurements(path), VendorReportError)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["unit", "latencies", "clock_mhz", "board", "n", "x"]), values, max_size=5))
def test_board_log_parser_on_random_json(obj):
    path = WORK / "random_board.json"
    path.write_text(json.dumps(obj, allow_nan=True))
    _expect_own_error(lambda: parse_board_measurements(path), VendorReportError)


@SETTINGS
@given(st.sampled_from(REPORTS), st.data())
def test_lab_ingestion_on_mutated_project_folder(original, data):
    """`edgekd report --synthesis FOLDER --board LOG`: mutated files in a project folder; lab/ only on success."""
    project = WORK / "project"
    if project.exists():
        shutil.rmtree(project)
    rel = original.relative_to(FIXTURES)
    target = project / rel
    target.parent.mkdir(parents=True)
    target.write_text(data.draw(mutated_text([REPORT_TEXTS[original]])))
    board = WORK / "lab_board.csv"
    board.write_text(data.draw(mutated_text([BOARD_TEXTS[FIXTURES / "board" / "framegrabber_latency.csv"]])))
    build = WORK / "build"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir()
    try:
        ingest(build, [project], board)
    except VendorReportError:
        assert not (build / "lab").exists()  # parse everything first, then write: nothing half-ingested


def test_leaks_the_fuzzers_found_stay_fixed():
    """Inputs that once escaped as IndexError / UnicodeDecodeError / zlib.error: now the project's own errors."""
    from edgekd.report.vendor import parse_cosim_rpt

    cut = WORK / "cut_cosim.rpt"
    cut.write_text("| Verilog |\n")  # a cosim row cut after its first cell
    with pytest.raises(VendorReportError, match="co-simulation status is '', not Pass"):
        parse_cosim_rpt(cut)
    binary = WORK / "binary.yaml"
    binary.write_bytes(b"\x80name: t\n")
    with pytest.raises(ConfigError, match="not a text file"):
        load_config(binary)
