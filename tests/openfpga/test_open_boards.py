"""Open boards (issue 26): the ULX3S board file, the schema's family / toolchain / package / speed / pins, and
the refusal of unknown parts, packages and pins by name; the LPF written from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edgekd.hw import BoardError, list_boards, load_board, parse_board
from edgekd.openfpga.lpf import render_lpf
from edgekd.parts import PartError, family_of_part, nextpnr_device_args

ULX3S = Path(__file__).parents[2] / "hw" / "boards" / "ulx3s-85f.yaml"


def _ulx3s(**changes) -> dict:
    data = yaml.safe_load(ULX3S.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_ulx3s_board_states_what_it_has():
    b = load_board("ulx3s-85f")
    assert (b.part, b.package, b.speed, b.family, b.toolchain, b.interface) == (
        "LFE5U-85F", "CABGA381", 6, "ecp5", "open", "self_test")
    assert b.is_open and b.vendor_flow is None and b.default_clock_mhz == 25
    assert b.pins["clock"].sites == ["G2"]
    assert b.pins["led"].sites == ["B2", "C2", "C1", "D2", "D1", "E2", "E1", "H3"]
    assert (b.pins["uart_tx"].sites, b.pins["uart_tx"].names) == (["L4"], ["ftdi_rxd"])
    assert (b.pins["uart_rx"].sites, b.pins["uart_rx"].names) == (["M1"], ["ftdi_txd"])
    r = b.resources
    assert (r.lut, r.ff, r.dsp, r.bram_18k) == (83640, 83640, 156, 208)
    assert "ulx3s_v20.lpf" in b.source
    assert nextpnr_device_args(b.part, b.package, b.speed) == ["--85k", "--package", "CABGA381", "--speed", "6"]


@pytest.mark.parametrize("name,family", [("pynq-z2", "xc7"), ("frame-grabber-ku035", "xcu"), ("zcu104", "xcup"),
                                         ("zcu102", "xcup"), ("alveo-u250", "xcup"), ("ulx3s-85f", "ecp5")])
def test_every_board_has_its_family(name, family):
    b = load_board(name)
    assert b.family == family
    assert b.toolchain == ("open" if family == "ecp5" else b.vendor_flow)
    assert name in list_boards()


@pytest.mark.parametrize("part", ["LFE5U-99F", "LFE5UM-12F", "xcvx100", "ice40-hx8k", "lfe5u-85f"])
def test_unknown_parts_are_refused_by_name(part):
    with pytest.raises(PartError, match=part):
        family_of_part(part)
    with pytest.raises(BoardError, match=part):
        parse_board(_ulx3s(part=part), "ulx3s.yaml")


@pytest.mark.parametrize("changes,words", [
    ({"package": "CABGA756"}, ["CABGA756"]),            # the 85F has it, edgekd does not know its ball grid
    ({"package": "TQFP144"}, ["TQFP144", "LFE5U-85F"]),  # not made for the 85F
    ({"speed": 9}, ["speed", "9"]),
    ({"speed": None}, ["speed"]),
    ({"toolchain": "vivado"}, ["toolchain", "open"]),
    ({"interface": "axi_stream_dma"}, ["self_test"]),
    ({"family": "xc7"}, ["family", "xc7"]),
])
def test_bad_open_board_fields_are_named(changes, words):
    with pytest.raises(BoardError) as err:
        parse_board(_ulx3s(**changes), "mine.yaml")
    assert "mine.yaml" in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_unknown_pins_and_balls_are_refused_by_name():
    data = _ulx3s()
    data["pins"]["buzzer"] = {"sites": ["A1"]}
    with pytest.raises(BoardError, match="buzzer"):
        parse_board(data)
    data = _ulx3s()
    data["pins"]["led"]["sites"][3] = "Z99"
    with pytest.raises(BoardError, match=r"pins.*Z99.*CABGA381"):
        parse_board(data)
    data = _ulx3s()
    data["pins"]["uart_tx"]["sites"] = ["I4"]   # no row I on a BGA
    with pytest.raises(BoardError, match="I4"):
        parse_board(data)
    data = _ulx3s()
    del data["pins"]["uart_tx"]
    with pytest.raises(BoardError, match="uart_tx"):
        parse_board(data)


def test_resources_must_match_the_datasheet():
    data = _ulx3s()
    data["resources"]["lut"] = 84000
    with pytest.raises(BoardError, match="83640"):
        parse_board(data)


def test_amd_boards_cannot_claim_the_open_toolchain(tmp_path):
    src = (Path(__file__).parents[2] / "hw" / "boards" / "pynq-z2.yaml").read_text()
    data = yaml.safe_load(src)
    data.update(toolchain="open")
    data.pop("vendor_flow")
    with pytest.raises(BoardError, match="ECP5"):
        parse_board(data)
    data = yaml.safe_load(src)
    data["part"] = "xc9z020"
    with pytest.raises(BoardError, match="xc9z020"):
        parse_board(data)


def test_lpf_locates_every_pin_with_its_board_name_and_constrains_the_clock():
    b = load_board("ulx3s-85f")
    text = render_lpf(b, clock_mhz=25.0)
    assert 'LOCATE COMP "clk" SITE "G2";  # clk_25mhz' in text
    assert 'FREQUENCY PORT "clk" 25 MHZ;' in text
    for k, site in enumerate(b.pins["led"].sites):
        assert f'LOCATE COMP "led[{k}]" SITE "{site}";  # led[{k}]' in text
        assert f'IOBUF PORT "led[{k}]" IO_TYPE=LVCMOS33 PULLMODE=NONE DRIVE=4;' in text
    assert 'LOCATE COMP "uart_tx" SITE "L4";  # ftdi_rxd' in text
    assert 'LOCATE COMP "tie_high[0]" SITE "L2";  # wifi_gpio0' in text
    assert text.count("LOCATE COMP") == 1 + 8 + 1 + 1 + 1 + 1   # clock, leds, uart tx and rx, button, tie
    assert "FREQUENCY PORT \"clk\" 62.5 MHZ;" in render_lpf(b, clock_mhz=62.5)
    with pytest.raises(ValueError, match="open"):
        render_lpf(load_board("pynq-z2"), clock_mhz=100)


def test_fit_search_keeps_open_boards_within_what_open_place_and_route_finishes():
    from edgekd.config import OPEN_PNR_LUT_LIMIT, HLSConfig

    assert OPEN_PNR_LUT_LIMIT == 0.5
    open_board = HLSConfig(board="ulx3s-85f")
    assert open_board.utilization_limit("lut") == 0.5 and open_board.utilization_limit("dsp") == 0.8
    assert open_board.part == "LFE5U-85F" and open_board.clock_period_ns == 40.0
    assert HLSConfig(board="ulx3s-85f", max_utilization=0.7).utilization_limit("lut") == 0.7  # the config wins
    assert HLSConfig(board="pynq-z2").utilization_limit("lut") == 0.8
