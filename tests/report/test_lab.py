"""`edgekd report`: lab measurements are parsed once, kept in lab/, and shown beside the estimate."""

from pathlib import Path

import pytest

from edgekd.io import read_json
from edgekd.report.lab import ingest, lab_board, lab_synthesis, parse_synthesis_path
from edgekd.report.vendor import VendorReportError

FIX = Path(__file__).parent / "fixtures"


def test_project_folder_yields_every_report_kind():
    found = parse_synthesis_path(FIX / "vivado_hls_2019_project")
    assert set(found) == {"csynth", "cosim", "utilization", "timing"}
    assert isinstance(found["csynth"]["latency_worst"], int)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("vitis_hls_2023/myproject_csynth.xml", "csynth"),
        ("vitis_hls_2023/myproject_cosim.rpt", "cosim"),
        ("vitis_hls_2023/pynq_post_synth_utilization.rpt", "utilization"),
        ("vitis_hls_2023/pynq_post_route_timing_summary.rpt", "timing"),
    ],
)
def test_single_files_by_name(name, kind):
    assert set(parse_synthesis_path(FIX / name)) == {kind}


def test_ingest_keeps_parsed_numbers_and_a_bad_file_changes_nothing(tmp_path):
    ingest(tmp_path, [FIX / "vitis_hls_2023" / "myproject_csynth.xml"], FIX / "board" / "framegrabber_latency.csv")
    before = (tmp_path / "lab" / "synthesis.json").read_text()
    assert lab_synthesis(tmp_path)["csynth"]["source"] == "synthesis"
    board = lab_board(tmp_path)
    assert board["source"] == "board" and board["n"] == 5 and board["median_us"] == pytest.approx(14.5)
    with pytest.raises(VendorReportError, match="truncated_csynth.xml"):
        ingest(tmp_path, [FIX / "malformed" / "truncated_csynth.xml"], None)
    assert (tmp_path / "lab" / "synthesis.json").read_text() == before
    with pytest.raises(VendorReportError, match="unknown report kind"):
        parse_synthesis_path(FIX / "board" / "pynq_latency.json")


def test_nothing_found_is_an_error(tmp_path):
    with pytest.raises(VendorReportError, match="no csynth"):
        parse_synthesis_path(tmp_path)
