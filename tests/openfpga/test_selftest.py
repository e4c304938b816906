"""The self-test top of open boards (issue 26): its UART line, the host's reader, and the top itself under
Verilator around a stand-in network with the RTL backend's ports: it passes, and fails on a wrong vector."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgekd.hw import load_board
from edgekd.openfpga.design import load_rtl_design
from edgekd.openfpga.selftest import (
    IN_HEX,
    OUT_HEX,
    SelfTestError,
    _line_chars,
    parse_line,
    read_result,
    selftest_params,
    write_selftest,
)
from edgekd.openfpga.standin import reference, standin_design
from edgekd.openfpga.verilator import run_selftest_sim

LINE = ("EDGEKD PASS images=000A errors=0000 first=0000001C max=0000001E total=00000046 clock_hz=017D7840 "
        "design=1A2B3C4D\r\n")


def test_line_parses_to_numbers():
    r = parse_line(LINE)
    assert (r.status, r.images, r.errors, r.first_cycles, r.max_cycles, r.total_cycles, r.clock_hz, r.design) == (
        "PASS", 10, 0, 28, 30, 70, 25_000_000, "1A2B3C4D")
    assert r.passed and r.first_us == pytest.approx(28 / 25.0)
    assert r.as_dict()["interval_cycles"] == 7.0
    assert parse_line(LINE.replace("PASS", "FAIL")).passed is False
    assert parse_line("EDGEKD PASS images=00") is None          # a partial line


def test_host_reader_skips_noise_and_partial_lines():
    raw = b"\x00\xffKD PASS images=0003 err\r\n" + b"boot noise\r\n" + LINE.replace("PASS", "FAIL").encode()
    r = read_result(io.BytesIO(raw))
    assert r.status == "FAIL" and r.images == 10
    assert read_result(io.StringIO(LINE)).total_cycles == 70
    with pytest.raises(SelfTestError, match="no self-test line"):
        read_result(io.StringIO("nothing\nhere\n"))


def test_line_table_spells_the_documented_format():
    chars = _line_chars(25_000_000, 0x1A2B3C4D)
    assert [i for i, _, _ in chars] == list(range(len(chars)))
    text = "".join(chr(v) if k == "char" else "#" for _, k, v in chars)
    assert text == ("EDGEKD #### images=#### errors=#### first=######## max=######## total=######## "
                    "clock_hz=017D7840 design=1A2B3C4D\r\n")
    assert len(chars) == len(LINE)


def test_standin_vectors_are_the_reference(tmp_path: Path):
    d = standin_design(tmp_path, lanes=3, pixels=2, beats_per_image=2, images=4, out_width=12, seed=5)
    assert (d.n_images, d.in_width, d.out_width, len(d.out_beats)) == (4, 16, 12, 4)
    x = np.array([[(b >> (8 * p)) & 0xFF for p in range(2)] for b in d.in_beats]).reshape(4, 2, 2)
    w = np.random.default_rng(5).integers(-127, 128, size=(3, 2))
    assert list(reference(x, w, 12)) == list(d.out_beats)
    # by hand for image 0: XOR over lanes of the low 12 bits of sum w*x
    sums = [int((w[j] * x[0]).sum()) & 0xFFF for j in range(3)]
    assert d.out_beats[0] == sums[0] ^ sums[1] ^ sums[2]


def test_design_files_are_checked(tmp_path: Path):
    d = standin_design(tmp_path, images=2)
    (tmp_path / "standin_net.v").unlink()
    with pytest.raises(SelfTestError, match="standin_net.v"):
        load_rtl_design(tmp_path)
    with pytest.raises(SelfTestError, match="whole images"):
        replace(d, in_beats=d.in_beats[:-1]).check()
    with pytest.raises(SelfTestError, match="rtl.json"):
        load_rtl_design(tmp_path / "nowhere")


@pytest.mark.slow
def test_selftest_passes_under_verilator_and_catches_a_wrong_output(tmp_path: Path):
    board = load_board("ulx3s-85f")
    d = standin_design(tmp_path / "net", lanes=4, pixels=4, beats_per_image=3, images=6)
    info = write_selftest(tmp_path / "top", d, board)
    assert info["images"] == 6 and info["clock_hz"] == 25_000_000
    params = selftest_params(d, board, info["clock_hz"])
    result, facts = run_selftest_sim(tmp_path / "sim", d, tmp_path / "top", params)
    assert result.passed and (result.images, result.errors) == (6, 0)
    # 3 beats in, then the stand-in's 3 register stages: the decision 5 cycles after the first beat
    assert result.first_cycles == 5 and result.max_cycles == 5
    # back to back: the last image starts 15 cycles after the first and decides 5 cycles later
    assert result.total_cycles == 20
    assert result.design == info["design_id"] and result.clock_hz == 25_000_000
    assert facts["simulated_cycles"] > 0
    assert (tmp_path / "top" / IN_HEX).read_text().splitlines()[0] == f"{d.in_beats[0]:08x}"

    # the same binary reads its vectors at start: a wrong expected output must fail (re-run, no recompile)
    sim = tmp_path / "sim"
    lines = (sim / OUT_HEX).read_text().splitlines()
    lines[4] = f"{int(lines[4], 16) ^ 1:04x}"
    (sim / OUT_HEX).write_text("\n".join(lines) + "\n")
    import subprocess

    out = subprocess.run(["./obj/Vedgekd_board_top"], cwd=sim, capture_output=True, text=True, timeout=60).stdout
    bad = read_result(io.StringIO(out))
    assert (bad.status, bad.errors, bad.images) == ("FAIL", 1, 6) and not bad.passed


@pytest.mark.slow
def test_selftest_of_an_rtl_backend_network_passes_and_counts_its_pipeline(tmp_path: Path):
    """A network from the RTL backend (alkaid kernels, edgekd.rtl) in the self-test top: every output equals
    QONNX's, and the hardware counter sees the backend's latency (its stages + the output register)."""
    from edgekd.rtl.generate import generate_rtl
    from edgekd.rtl.testnets import make_contract

    contract = make_contract(tmp_path / "export", (6,), [{"dense": 8}, {"relu_q": (6, 4)}, {"dense": 3},
                                                          {"q": (12, 8)}], n=10)
    manifest = generate_rtl(contract, tmp_path / "rtl", family="ecp5")
    d = load_rtl_design(tmp_path / "rtl")
    assert (d.n_images, d.beats_per_image, d.outputs_per_image) == (10, 1, 1)
    board = load_board("ulx3s-85f")
    info = write_selftest(tmp_path / "top", d, board)
    result, _ = run_selftest_sim(tmp_path / "sim", d, tmp_path / "top", selftest_params(d, board, info["clock_hz"]))
    assert result.passed and (result.images, result.errors) == (10, 0)
    stages = sum(s["latency"] for s in manifest["stages"])
    assert result.first_cycles == result.max_cycles == stages + 1
    assert result.total_cycles == 9 + stages + 1   # one image per clock: the last starts 9 cycles after the first


def test_host_script_reads_a_capture_file(tmp_path: Path, capsys):
    from edgekd.openfpga.host import main

    cap = tmp_path / "capture.txt"
    cap.write_bytes(b"garbage\r\n" + LINE.encode() + LINE.encode())
    assert main([str(cap)]) == 0
    out = capsys.readouterr().out
    assert '"latency_cycles": 28' in out and '"latency_us": 1.12' in out
    cap.write_text(LINE.replace("PASS", "FAIL").replace("errors=0000", "errors=0002"))
    assert main([str(cap)]) == 1
    cap.write_text("no line\n")
    assert main([str(cap)]) == 2
