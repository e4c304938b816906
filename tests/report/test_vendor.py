from pathlib import Path

import pytest

from edgekd.report.vendor import (
    VendorReportError,
    find_vendor_reports,
    parse_board_measurements,
    parse_cosim_rpt,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_timing_summary_rpt,
    parse_utilization_rpt,
    parse_vendor_reports,
)

FIX = Path(__file__).parent / "fixtures"
VIVADO = FIX / "vivado_hls_2019_project"
VIVADO_REPORT = VIVADO / "myproject_prj" / "solution1" / "syn" / "report"
VITIS = FIX / "vitis_hls_2023"


def _all_numbers(d):
    for k, v in d.items():
        if isinstance(v, dict):
            _all_numbers(v)
        elif k not in {"tool_version", "part", "top", "source", "file", "rtl", "status", "pipeline_type", "board"}:
            assert v is None or (isinstance(v, (int, float)) and not isinstance(v, str)), (k, v)


@pytest.mark.parametrize(
    "path,dsp,version",
    [(VIVADO_REPORT / "myproject_csynth.xml", 38, "2019.2"), (VITIS / "myproject_csynth.xml", 18, "2023.2")],
    ids=["vivado_hls_2019_DSP48E", "vitis_hls_2023_DSP"],
)
def test_csynth_xml_both_dialects(path, dsp, version):
    r = parse_csynth_xml(path)
    _all_numbers(r)
    assert r["tool_version"] == version
    assert r["resources"]["dsp"] == dsp and r["available"]["dsp"] in (1700, 220)
    assert set(r["resources"]) == {"dsp", "lut", "ff", "bram_18k", "uram"}
    assert isinstance(r["latency_best"], int) and isinstance(r["target_clock_ns"], float)
    assert r["source"] == "synthesis"


def test_csynth_xml_values():
    r = parse_csynth_xml(VIVADO_REPORT / "myproject_csynth.xml")
    assert (r["latency_best"], r["latency_worst"], r["interval_min"], r["interval_max"]) == (2341, 2343, 2309, 2311)
    assert r["target_clock_ns"] == 4.0 and r["estimated_clock_ns"] == 3.647
    assert r["resources"] == {"bram_18k": 24, "dsp": 38, "ff": 21894, "lut": 58311, "uram": 0}
    v = parse_csynth_xml(VITIS / "myproject_csynth.xml")
    assert v["latency_avg"] is None  # "undef" in Vitis' dataflow report


@pytest.mark.parametrize("path", [VIVADO_REPORT / "myproject_csynth.rpt", VITIS / "myproject_csynth.rpt"],
                         ids=["vivado_hls_2019", "vitis_hls_2023"])
def test_csynth_rpt_matches_xml(path):
    r = parse_csynth_rpt(path)
    x = parse_csynth_xml(path.with_suffix(".xml"))
    _all_numbers(r)
    for k in ("latency_best", "latency_worst", "interval_min", "interval_max", "target_clock_ns", "estimated_clock_ns"):
        assert r[k] == x[k], k
    assert r["resources"] == x["resources"]
    assert r["available"] == x["available"]


@pytest.mark.parametrize(
    "path,expected",
    [
        (VIVADO / "myproject_prj/solution1/sim/report/myproject_cosim.rpt", (2342, 2345, 2349, 2310, 2312, 2316, None)),
        (VITIS / "myproject_cosim.rpt", (1031, 1031, 1031, 1029, 1029, 1029, 10321)),
    ],
    ids=["vivado_hls_2019", "vitis_hls_2023"],
)
def test_cosim(path, expected):
    r = parse_cosim_rpt(path)
    _all_numbers(r)
    keys = ("latency_min", "latency_avg", "latency_max", "interval_min", "interval_avg", "interval_max", "total_cycles")
    assert tuple(r[k] for k in keys) == expected
    assert r["rtl"] == "Verilog"


def test_utilization_ultrascale_half_tiles():
    r = parse_utilization_rpt(VIVADO / "vivado/reports/myproject_post_route_utilization.rpt")
    _all_numbers(r)
    assert r["resources"] == {"lut": 41287, "ff": 19765, "dsp": 38, "bram_18k": 21, "uram": 0}
    assert r["available"]["bram_18k"] == 1080 and r["available"]["lut"] == 203128


def test_utilization_7series_with_prohibited_column():
    r = parse_utilization_rpt(VITIS / "pynq_post_synth_utilization.rpt")
    assert r["resources"] == {"lut": 9431, "ff": 11207, "dsp": 18, "bram_18k": 6, "uram": 0}
    assert r["available"] == {"lut": 53200, "ff": 106400, "dsp": 220, "bram_18k": 280, "uram": 0}


def test_timing_met_and_not_met():
    ok = parse_timing_summary_rpt(VIVADO / "vivado/reports/myproject_post_route_timing_summary.rpt")
    assert ok["met"] is True and ok["wns_ns"] == 0.412 and ok["whs_ns"] == 0.021
    bad = parse_timing_summary_rpt(VITIS / "pynq_post_route_timing_summary.rpt")
    assert bad["met"] is False and bad["wns_ns"] == -0.237 and bad["tns_failing_endpoints"] == 41
    _all_numbers({k: v for k, v in bad.items() if k != "met"})


def test_find_reports_picks_the_top_not_a_sub_function():
    found = find_vendor_reports(VIVADO)
    assert found["csynth_xml"].name == "myproject_csynth.xml"
    assert found["cosim_rpt"].name == "myproject_cosim.rpt"
    assert found["utilization_rpt"].name.endswith("utilization.rpt")
    assert found["timing_summary_rpt"] is not None
    parsed = parse_vendor_reports(VIVADO)
    assert set(parsed) == {"csynth", "cosim", "utilization", "timing"}
    assert parsed["csynth"]["latency_best"] == 2341


def test_find_reports_in_empty_project(tmp_path):
    assert all(v is None for v in find_vendor_reports(tmp_path).values())
    assert parse_vendor_reports(tmp_path) == {}
    with pytest.raises(VendorReportError):
        find_vendor_reports(tmp_path / "missing")


def test_board_json():
    r = parse_board_measurements(FIX / "board/pynq_latency.json")
    assert r["n"] == 10 and r["median_us"] == pytest.approx(24.2) and r["max_us"] == 31.9
    assert r["min_us"] == 24.0 and r["p99_us"] > r["median_us"] and r["board"] == "pynq-z2"
    assert sum(r["histogram"]["counts"]) == 10 and len(r["histogram"]["edges"]) == len(r["histogram"]["counts"]) + 1
    assert r["source"] == "board"


def test_board_csv_and_cycles():
    r = parse_board_measurements(FIX / "board/framegrabber_latency.csv")
    assert r["n"] == 5 and r["median_us"] == pytest.approx(14.5) and r["mean_us"] == pytest.approx(14.56)
    c = parse_board_measurements(FIX / "board/cycles.json")
    assert c["min_us"] == pytest.approx(10.0) and c["max_us"] == pytest.approx(11.0)


@pytest.mark.parametrize(
    "name,parser,where",
    [
        ("truncated_csynth.xml", parse_csynth_xml, "not well-formed"),
        ("bad_number_csynth.xml", parse_csynth_xml, "Best-caseLatency"),
        ("no_resources_csynth.xml", parse_csynth_xml, "AreaEstimates/Resources"),
        ("entity_bomb_csynth.xml", parse_csynth_xml, "unsafe XML"),
        ("bad_csynth.rpt", parse_csynth_rpt, "line 32"),
        ("bad_cosim.rpt", parse_cosim_rpt, "line 25"),
        ("failed_cosim.rpt", parse_cosim_rpt, "Fail"),
        ("no_luts_utilization.rpt", parse_utilization_rpt, "LUTs"),
        ("bad_timing_summary.rpt", parse_timing_summary_rpt, "line 29"),
        ("board_bad_value.json", parse_board_measurements, "latencies[1]"),
        ("board_truncated.json", parse_board_measurements, "line 1"),
        ("board_bad_row.csv", parse_board_measurements, "line 3"),
        ("board_no_column.csv", parse_board_measurements, "latency_us"),
    ],
)
def test_malformed_files_name_file_and_place(name, parser, where):
    path = FIX / "malformed" / name
    with pytest.raises(VendorReportError) as err:
        parser(path)
    assert isinstance(err.value, ValueError)
    assert name in str(err.value) and where in str(err.value)


def test_wrong_kind_of_file():
    with pytest.raises(VendorReportError, match="not a cosim report"):
        parse_cosim_rpt(VIVADO / "vivado/reports/myproject_post_route_timing_summary.rpt")
    with pytest.raises(VendorReportError, match="Design Timing Summary"):
        parse_timing_summary_rpt(VIVADO_REPORT / "myproject_csynth.rpt")


def test_board_json_unknown_key_and_count(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{"unit": "us", "latencies": [1, 2], "n": 3}')
    with pytest.raises(VendorReportError, match="n: says 3"):
        parse_board_measurements(p)
    p.write_text('{"unit": "us", "latencies": [1], "colour": "red"}')
    with pytest.raises(VendorReportError, match="colour"):
        parse_board_measurements(p)
    p.write_text('{"unit": "cycles", "latencies": [1]}')
    with pytest.raises(VendorReportError, match="clock_mhz"):
        parse_board_measurements(p)


PUBLIC_COSIM = Path(__file__).parent / "fixtures" / "cosim_public"  # real reports, sources in SOURCES.md


def test_cosim_real_reports_from_public_projects():
    # pre-2023 layout, one transaction: latency 777, no interval (NA) and no total column
    r = parse_cosim_rpt(PUBLIC_COSIM / "conv2d_test_myproject_cosim.rpt")
    keys = ("latency_min", "latency_avg", "latency_max", "interval_min", "interval_avg", "interval_max", "total_cycles")
    assert tuple(r[k] for k in keys) == (777, 777, 777, None, None, None, None)
    assert r["status"] == "pass" and r["source"] == "cosim"
    # 2023+ layout, a failed co-simulation: an error naming the file and the status, never figures
    with pytest.raises(VendorReportError, match="hg_dream_myproject_cosim.rpt.*'Fail'"):
        parse_cosim_rpt(PUBLIC_COSIM / "hg_dream_myproject_cosim.rpt")


def test_cosim_figures_win_in_the_report_latency(tmp_path):
    """`edgekd report --synthesis` with a cosim report: its measured latency / interval are the report's figures
    (source cosim), csynth's are kept beside them."""
    from edgekd.report.assemble import _synthesis_section
    from edgekd.report.lab import parse_synthesis_path

    vendor = {**parse_synthesis_path(VITIS / "myproject_csynth.xml"),
              **parse_synthesis_path(PUBLIC_COSIM / "conv2d_test_myproject_cosim.rpt")}
    s = _synthesis_section(vendor, 200.0)
    assert (s["source"], s["cycles"]) == ("cosim", 777)
    assert s["csynth_cycles"] == vendor["csynth"]["latency_worst"]
    assert s["ii_cycles"] == vendor["csynth"]["interval_max"]  # cosim gave no interval (one transaction)
    assert s["us"] == round(777 / (1000.0 / vendor["csynth"]["target_clock_ns"]), 4)
    both = {**vendor, "cosim": parse_cosim_rpt(VITIS / "myproject_cosim.rpt")}
    assert _synthesis_section(both, 200.0)["ii_cycles"] == 1029
    alone = _synthesis_section({"cosim": vendor["cosim"]}, 250.0)
    assert (alone["cycles"], alone["us"], alone["ii_cycles"]) == (777, 3.108, None)
