"""The open-board fit search (edgekd.estimate.rtl_fit): the RTL cost model calibrated on ECP5, the clock model's
provenance and the choice between unrolled and time-multiplexed (reuse) kernels. Pure arithmetic on stored
plans (tests/estimate/data/open_fit_plans.json: the zoo's jet tagger and the ECP5 cell student as
edgekd.rtl.plan planned them): nothing is traced, compiled or synthesised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekd.estimate.rtl import SELFTEST_OVERHEAD, ecp5_counts, estimate_reuse_dense, estimate_rtl, reuse_candidates
from edgekd.estimate.rtl_clock import MEASURED, predict_fmax
from edgekd.estimate.rtl_fit import CALIBRATION_ERROR_PCT, fit_open_board
from edgekd.hw import load_board

ROOT = Path(__file__).resolve().parents[2]
PLANS = json.loads((Path(__file__).parent / "data" / "open_fit_plans.json").read_text())
LIMITS = {"logic_slots": 0.5, "ff": 0.8, "dsp": 0.8, "bram_18k": 0.8}
NO_REUSE = {"available": False, "why": "no reuse kernel (test)"}


@pytest.fixture(scope="module")
def board():
    return load_board("ulx3s-85f")


def _fit(name, board, reuse, **kw):
    p = PLANS[name]
    return fit_open_board(p["plan"], board, LIMITS, weight_bits=p["weight_bits"], reuse=reuse, **kw)


def test_jet_tagger_refused_without_reuse_and_says_which_reuse_would_fit(board):
    res = _fit("jet_tagger", board, NO_REUSE)
    assert not res.fits and res.binding == "logic_slots"
    assert all(c.impl == "unrolled" for c in res.settings.values())
    # the model's figure for the self-test top, and Yosys's (44,918 slots = 53.7% of the 85F)
    measured = PLANS["jet_tagger"]["measured"]["selftest_synthesis"]["logic_slots"]
    assert abs(res.resources["logic_slots"] - measured) / measured * 100 <= CALIBRATION_ERROR_PCT
    assert 0.48 < res.fractions["logic_slots"] < 0.56
    alt = res.with_unavailable
    assert alt is not None and alt["fits"] and alt["reuse_factors"]
    assert "not available" in res.advice and "no reuse kernel (test)" in res.advice
    assert "bitstream.max_utilisation" in res.advice


def test_jet_tagger_fits_with_reuse_at_the_lowest_latency(board):
    res = _fit("jet_tagger", board, {"available": True})
    assert res.fits
    rf = res.reuse_factors()
    assert rf, "a reuse kernel must be chosen: the unrolled design is over the cap"
    slots = res.resources["logic_slots"]
    assert slots * (1 + CALIBRATION_ERROR_PCT / 100) <= 0.5 * board.resources.lut
    assert res.resources["dsp"] <= 0.8 * board.resources.dsp
    # the lowest latency among all fitting combinations (exhaustive): no single layer can go back to unrolled
    for name in rf:
        back = _fit("jet_tagger", board, {"available": True}, fixed={**rf, name: 1})
        assert not back.fits or back.cycles >= res.cycles
    assert res.cycles > 18 and res.interval_cycles == max(rf.values())
    # the choice is stated in the config key's form and in the JSON
    j = res.to_json()
    assert j["reuse_factors"] == rf and j["settings"][next(iter(rf))]["impl"] == "reuse"


def test_cell_student_fits_unrolled_with_the_measured_latency(board):
    res = _fit("cells_ecp5", board, NO_REUSE)
    assert res.fits and not res.reuse_factors() and res.with_unavailable is None
    assert res.cycles == PLANS["cells_ecp5"]["measured"]["selftest_latency_cycles"]  # 548, Verilator
    measured = PLANS["cells_ecp5"]["measured"]["selftest_synthesis"]["logic_slots"]
    assert abs(res.resources["logic_slots"] - measured) / measured * 100 <= CALIBRATION_ERROR_PCT
    assert res.clock["from"] == "build:cells_ecp5" and not res.clock["extrapolated"]
    assert res.us == pytest.approx(548 / res.clock["mhz"])


def test_a_lower_cap_refuses_the_cell_student_naming_the_resource(board):
    p = PLANS["cells_ecp5"]
    res = fit_open_board(p["plan"], board, {**LIMITS, "logic_slots": 0.05}, weight_bits=p["weight_bits"],
                         reuse=NO_REUSE)
    assert not res.fits and "logic slots" in res.advice and "5% limit" in res.advice


def test_fixed_reuse_factor_is_checked(board):
    with pytest.raises(ValueError, match="not one of its candidates"):
        _fit("jet_tagger", board, {"available": True}, fixed={"MatMul_3": 192})  # r_out 6 > 5 outputs
    # a factor the kernel takes with a padded output group is priced when the config fixes it
    padded = _fit("jet_tagger", board, {"available": True}, fixed={"MatMul_3": 64})
    assert padded.reuse_factors()["MatMul_3"] == 64 and padded.interval_cycles == 64
    with pytest.raises(ValueError, match="does not have"):
        _fit("jet_tagger", board, {"available": True}, fixed={"Dense_9": 2})
    with pytest.raises(ValueError, match="no reuse kernel"):
        _fit("jet_tagger", board, NO_REUSE, fixed={"MatMul_1": 8})


def test_reuse_candidates_are_priced_by_the_reuse_kernels_cost_model(board):
    res = _fit("jet_tagger", board, {"available": True})
    cands = {c.reuse_factor: c for c in res.candidates["MatMul_1"] if c.impl == "reuse"}  # 64 x 32, 6-bit
    assert sorted(cands) == reuse_candidates(64, 32) and 2048 in cands and 7 not in cands  # 7: idle multipliers
    term = PLANS["jet_tagger"]["plan"]
    c16 = estimate_reuse_dense(64, 32, 6, 6, 16, in_signed=False, out_bits=6, family="ecp5")
    assert (cands[16].lut4, cands[16].ccu2c, cands[16].ff, cands[16].dsp) == \
        (c16["lut"], c16["carry"], c16["ff"], c16["dsp"]) and c16["multipliers"] == 128
    assert cands[16].ii_cycles == 16 and cands[32].dsp == cands[16].dsp // 2
    unrolled = res.candidates["MatMul_1"][0]
    assert unrolled.impl == "unrolled" and cands[32].logic_slots < unrolled.logic_slots
    assert term["stages"][1]["latency"] == unrolled.cycles


def test_clock_model_provenance_matches_the_measured_bitstreams():
    doc = json.loads((ROOT / "benchmarks" / "results" / "open_bitstream.json").read_text())
    rows = {r["design"]: r for r in doc["designs"] if r.get("finished")}
    assert {m[0] for m in MEASURED} <= set(rows)  # every table row is a measured bitstream
    for name, slots, _cutoff, mhz in MEASURED:
        s = rows[name]["synthesis"]
        assert slots == s["lut4"] + 2 * s["ccu2c"]
        assert mhz == rows[name]["fmax_mhz"]
    small = predict_fmax(5000, 3.0)
    assert small["from"] == "cnn-9x7x3" and small["mhz"] == 88.402 and not small["extrapolated"]
    big = predict_fmax(43000, 3.0)
    assert big["from"] == "mlp-16-32-5" and big["extrapolated"] and "upper bound" in big["note"]
    other = predict_fmax(6000, 1.0)
    assert other["extrapolated"] and "latency_cutoff 1.0" in other["note"]
    with pytest.raises(ValueError, match="xcu"):
        predict_fmax(1000, 3.0, family="xcu")


def test_cost_model_against_the_stored_yosys_rows():
    doc = json.loads((ROOT / "benchmarks" / "results" / "rtl_ecp5_calibration.json").read_text())
    checked = 0
    for r in doc["rows"]:
        if r.get("kind") == "reuse build":  # time-multiplexed layers: estimate_reuse_design, checked below
            continue
        est = ecp5_counts(r["alkaid_cost"], r["stream_bits"])
        if r.get("network"):
            n = r["network"]
            slots = n["lut4"] + 2 * n["ccu2c"]
            assert abs(est["logic_slots"] - slots) / slots * 100 <= CALIBRATION_ERROR_PCT, r["design"]
            checked += 1
        if r.get("selftest"):
            s = r["selftest"]
            e = ecp5_counts(r["alkaid_cost"], r["stream_bits"], selftest=True)
            slots = s["lut4"] + 2 * s["ccu2c"]
            assert abs(e["logic_slots"] - slots) / slots * 100 <= CALIBRATION_ERROR_PCT, r["design"]
            assert e["lut4"] - est["lut4"] == SELFTEST_OVERHEAD["lut4"]
            checked += 1
    assert checked >= 4
    assert doc["max_abs_error_pct"]["selftest_logic_slots"] <= CALIBRATION_ERROR_PCT
    assert doc["max_abs_error_pct"]["network_logic_slots"] <= CALIBRATION_ERROR_PCT
    # the coefficients in the package are the benchmark's fit
    from edgekd.estimate.rtl import ECP5_CALIBRATION

    for key in ("lut4", "ccu2c", "ff"):
        assert ECP5_CALIBRATION[key] == {"cost": doc["fit"][key]["cost"], "bits": doc["fit"][key]["bits"]}
    assert SELFTEST_OVERHEAD == doc["fit"]["selftest_overhead"]
    # the reuse kernels (time-multiplexed dense layers): the package's factors against every reuse build's Yosys
    from edgekd.estimate.rtl import estimate_reuse_design

    reuse_rows = [r for r in doc["rows"] if r.get("kind") == "reuse build"]
    assert len(reuse_rows) >= 3
    for r in reuse_rows:
        est, n = estimate_reuse_design(r["manifest"], "ecp5"), r["network"]
        slots = n["lut4"] + 2 * n["ccu2c"]
        assert abs(est["logic_slots"] - slots) / slots * 100 <= CALIBRATION_ERROR_PCT, r["design"]
        assert est["dsp"] == n["dsp"]


def test_estimate_rtl_reports_ecp5_slots():
    p = PLANS["jet_tagger"]["plan"]
    est = estimate_rtl(p, "ecp5")
    assert est["logic_slots"] == est["lut4"] + 2 * est["ccu2c"] and est["carry"] == est["ccu2c"]
    assert est["latency_cycles"] == 18


def test_open_board_estimate_json_has_what_the_report_and_the_sweep_read(board):
    from edgekd.steps.hls import open_fit_estimate

    res = _fit("jet_tagger", board, {"available": True})
    est = open_fit_estimate(res, board, {"board": board.model_dump(mode="json"), "cycles": 14, "us": 0.56})
    for key in ("cycles", "us", "ii_cycles", "throughput_per_s", "per_layer", "source", "clock_mhz", "resources"):
        assert key in est
    assert est["clock_mhz"] == res.clock["mhz"] and est["clock"]["from"] == "mlp-16-32-5"
    assert est["resources"]["lut"] == res.resources["logic_slots"]
    fit = est["fit"]
    assert fit["fits_limits"] and fit["binding"] in fit["resources"] and fit["limits"]["lut"] == 0.5
    assert fit["resources"]["lut"]["available"] == board.resources.lut
    assert fit["search"]["reuse_factors"] == res.reuse_factors()
    assert est["hls_estimate"] == {"cycles": 14, "us": 0.56}


def test_rtl_step_takes_the_fit_search_choice_for_reuse_auto(tmp_path, board):
    from types import SimpleNamespace

    from edgekd.config import RTLConfig
    from edgekd.errors import BuildError
    from edgekd.io import write_json
    from edgekd.steps.hls import open_fit_estimate
    from edgekd.steps.rtl import _reuse

    res = _fit("jet_tagger", board, {"available": True})
    (tmp_path / "hls").mkdir()
    ctx = SimpleNamespace(dir=lambda name: tmp_path / name)
    assert RTLConfig().reuse == "auto"
    with pytest.raises(BuildError, match="no RTL fit search"):
        _reuse(ctx, RTLConfig(), board)
    write_json(tmp_path / "hls" / "estimate.json", open_fit_estimate(res, board, {"board": {}}))
    assert _reuse(ctx, RTLConfig(), board) == res.reuse_factors() and res.reuse_factors()
    assert _reuse(ctx, RTLConfig(reuse=4), board) == 4  # a fixed factor is the config's
    assert _reuse(ctx, RTLConfig(), load_board("zcu104")) == 1  # not an open board: unrolled


def test_report_renders_the_open_board_fit(board):
    from edgekd.report.render import _env
    from edgekd.steps.hls import open_fit_estimate

    res = _fit("jet_tagger", board, NO_REUSE)
    est = open_fit_estimate(res, board, {"board": board.model_dump(mode="json")})
    text = _env().get_template("_fit_search.md.j2").render(r={"resources": {"fit": est["fit"]}})
    assert "the achieved post-route Fmax of the measured design mlp-16-32-5" in text
    assert "| MatMul_0 | unrolled | 1 |" in text and "Not available: no reuse kernel (test)" in text
    assert {"name", "type", "cycles", "ii", "dsp", "lut"} <= set(est["per_layer"][0])
