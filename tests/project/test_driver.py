"""The generated host drivers' logic (vector check, latency log) with fake PYNQ / XRT objects."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekd.project.generate import template_env
from edgekd.report.vendor import parse_board_measurements

N_IN, N_OUT = 16, 3


def _ctx(interface: str) -> dict:
    return {
        "board": {"name": "pynq-z2" if interface == "axi_stream_dma" else "alveo-u250"},
        "interface": interface, "edgekd_version": "test", "clock_mhz": 100.0, "n_in": N_IN, "n_out": N_OUT,
        "in_t": {"ctype": "ap_fixed<8,3>", "width": 8, "integer": 3, "signed": True, "frac": 5},
        "out_t": {"ctype": "ap_fixed<16,4>", "width": 16, "integer": 4, "signed": True, "frac": 12},
        "class_names": ["B", "T4", "T8"], "top": "edgekd_top",
    }


def _load_driver(tmp_path: Path, interface: str):
    folder = tmp_path / interface
    (folder / "driver").mkdir(parents=True)
    path = folder / "driver" / "edgekd_driver.py"
    path.write_text(template_env().get_template("driver/edgekd_driver.py.j2").render(**_ctx(interface)))
    spec = importlib.util.spec_from_file_location(f"edgekd_driver_{interface}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, folder


def _vectors(folder: Path, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(n, 1, 4, 4)) / 32.0
    y = rng.integers(-(2**15), 2**15, size=(n, N_OUT)) / 4096.0
    (folder / "test_vectors").mkdir()
    np.save(folder / "test_vectors" / "inputs.npy", x)
    np.save(folder / "test_vectors" / "expected.npy", y)
    return x, y


class FakeHardware:
    """Answers each input (raw words) with the expected raw outputs; `corrupt` flips one output of sample 2."""

    def __init__(self, drv, x, y, corrupt=False):
        self.table = {tuple(drv.to_words(xi.reshape(-1))): np.round(yi * 4096).astype(np.int32) for xi, yi in zip(x, y)}
        self.corrupt = corrupt
        self.calls = 0

    def __call__(self, words) -> np.ndarray:
        out = self.table[tuple(np.asarray(words, dtype=np.int32))].copy()
        self.calls += 1
        if self.corrupt and np.array_equal(words, list(self.table)[2]):
            out[0] += 1
        return out


class FakeChannel:
    def __init__(self, dma, role):
        self.dma, self.role, self.buf = dma, role, None

    def transfer(self, buf):
        self.buf = buf

    def wait(self):
        if self.role == "recv":
            self.buf[:] = self.dma.hw(self.dma.sendchannel.buf)


class FakeDMA:
    def __init__(self, hw):
        self.hw = hw
        self.sendchannel = FakeChannel(self, "send")
        self.recvchannel = FakeChannel(self, "recv")


class FakeOverlay:
    def __init__(self, hw):
        self.dma = FakeDMA(hw)


def _allocate(shape, dtype):
    return np.zeros(shape, dtype=dtype)


def test_driver_imports_without_board_libraries(tmp_path):
    for interface in ("axi_stream_dma", "xrt_kernel"):
        _load_driver(tmp_path, interface)
    assert "pynq" not in sys.modules and "pyxrt" not in sys.modules


def test_words_round_trip_sign_extension(tmp_path):
    drv, _ = _load_driver(tmp_path, "axi_stream_dma")
    assert drv.to_words(np.array([-4.0, 3.96875, 0.03125])).tolist() == [-128, 127, 1]
    raw16 = np.array([0xFFFF, 0x8000, 0x7FFF, -1], dtype=np.int64)
    assert drv.from_words(raw16).tolist() == [-1 / 4096, -8.0, 32767 / 4096, -1 / 4096]
    with pytest.raises(ValueError, match="grid"):
        drv.to_words(np.array([0.01]))


@pytest.mark.parametrize("corrupt", [False, True], ids=["exact", "one-output-off"])
def test_pynq_driver_checks_vectors_and_writes_latency_log(tmp_path, corrupt):
    drv, folder = _load_driver(tmp_path, "axi_stream_dma")
    x, y = _vectors(folder)
    hw = FakeHardware(drv, x, y, corrupt=corrupt)
    accel = drv.PynqAccelerator(overlay=FakeOverlay(hw), allocate=_allocate)
    inputs, expected = drv.load_vectors(folder / "test_vectors")
    check, latencies = drv.run_vectors(accel, inputs, expected, repeat=2)
    assert hw.calls == 1 + 2 * len(x)  # one warm-up run, then two timed passes
    assert len(latencies) == 2 * len(x)
    if corrupt:
        assert check["mismatched_samples"] == [2] and check["exact"] < 1.0
        assert check["max_abs_diff"] == pytest.approx(1 / 4096)
    else:
        assert check["exact"] == 1.0 and check["max_abs_diff"] == 0.0 and check["mismatched_samples"] == []
    log = folder / "latency.json"
    drv.write_latency_log(log, latencies, accel.description)
    parsed = parse_board_measurements(log)
    assert parsed["n"] == len(latencies) and parsed["board"] == "pynq-z2" and parsed["clock_mhz"] == 100.0
    assert parsed["source"] == "board"


class FakeBo:
    def __init__(self, nbytes):
        self.data = bytearray(nbytes)

    def write(self, data, offset):
        self.data[offset:offset + len(data)] = data

    def sync(self, direction, nbytes, offset):
        pass

    def read(self, nbytes, offset):
        return bytes(self.data[offset:offset + nbytes])


class FakeKernel:
    def __init__(self, hw):
        self.hw = hw

    def __call__(self, bo_in, bo_out, n):
        words = np.frombuffer(bytes(bo_in.data), dtype=np.int32)
        bo_out.write(self.hw(words).astype(np.int32).tobytes(), 0)

        class Run:
            def wait(self_inner):
                return None

        return Run()


def test_xrt_driver_checks_vectors(tmp_path):
    drv, folder = _load_driver(tmp_path, "xrt_kernel")
    x, y = _vectors(folder)
    accel = drv.XrtAccelerator(device=object(), kernel=FakeKernel(FakeHardware(drv, x, y)),
                               bo_factory=lambda nbytes, arg: FakeBo(nbytes))
    check, latencies = drv.run_vectors(accel, *drv.load_vectors(folder / "test_vectors"))
    assert check["exact"] == 1.0 and len(latencies) == len(x)


def test_driver_main_refuses_a_missing_bitstream(tmp_path, capsys):
    drv, folder = _load_driver(tmp_path, "axi_stream_dma")
    assert drv.main(["--bitstream", str(folder / "nope.bit")]) == 2
    assert "no such file" in capsys.readouterr().err
