from pathlib import Path

import pytest

from edgekd.hw import Board, BoardError, list_boards, load_board

EXPECTED = {
    "pynq-z2": ("xc7z020clg400-1", 100, "axi_stream_dma", "vivado"),
    "zcu104": ("xczu7ev-ffvc1156-2-e", None, "axi_stream_dma", "vivado"),
    "zcu102": ("xczu9eg-ffvb1156-2-e", None, "axi_stream_dma", "vivado"),
    "alveo-u250": ("xcu250-figd2104-2L-e", None, "xrt_kernel", "vitis"),
    "frame-grabber-ku035": ("xcku035-fbva676-2-e", 250, "pixel_stream", "vivado"),
}


def test_all_expected_boards_are_listed():
    assert set(EXPECTED) <= set(list_boards())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_board_loads(name):
    b = load_board(name)
    part, clock, interface, flow = EXPECTED[name]
    assert isinstance(b, Board)
    assert b.name == name and b.part == part and b.interface == interface and b.vendor_flow == flow
    if clock is not None:
        assert b.default_clock_mhz == clock
    r = b.resources
    assert r.lut > 0 and r.ff >= r.lut and r.dsp > 0 and r.bram_18k > 0


def test_datasheet_counts():
    z = load_board("pynq-z2").resources
    assert (z.lut, z.ff, z.dsp, z.bram_18k) == (53200, 106400, 220, 280)
    k = load_board("frame-grabber-ku035").resources
    assert (k.lut, k.ff, k.dsp, k.bram_18k) == (203128, 406256, 1700, 1080)


def test_load_by_path(tmp_path: Path):
    src = Path(__file__).parents[1] / "hw" / "boards" / "pynq-z2.yaml"
    dst = tmp_path / "mine.yaml"
    dst.write_text(src.read_text())
    assert load_board(dst).part == "xc7z020clg400-1"


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(BoardError, match="pynq-z2"):
        load_board("no-such-board")


def test_bad_board_file_names_file_and_field(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text(
        "name: bad\npart: xc7z020clg400-1\ndefault_clock_mhz: 100\ninterface: pcie\nvendor_flow: vivado\n"
        "resources: {lut: 1, ff: 1, dsp: 1, bram_18k: 1, lutz: 3}\n"
    )
    with pytest.raises(BoardError) as err:
        load_board(p)
    msg = str(err.value)
    assert str(p) in msg and "interface" in msg and "resources.lutz" in msg


def test_board_yaml_cannot_execute_code(tmp_path: Path):
    p = tmp_path / "evil.yaml"
    p.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(BoardError, match="not valid YAML"):
        load_board(p)
