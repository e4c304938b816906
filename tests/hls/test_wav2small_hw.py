"""wav2small_hw through the whole hardware path: torch == QONNX == C-simulation == emulator, bit for bit.

A small window (22 frames: 736 samples) and width 4 keep it fast. The default pools (after l1 and l3) floor
odd extents (22 x 26 -> 11 x 13 -> 5 x 6), and T = 5 time steps is not a power of two, so the time
average's 2^-3 weight is exercised as a scaled sum, not as an exact mean.
"""

import numpy as np
import pytest
import torch

from edgekd.config import HLSConfig, StudentConfig
from edgekd.data.logmel import features_on_grid, log_mel
from edgekd.export.qonnx import export_student_qonnx
from edgekd.export.support import SUPPORTED, check_hardware_support
from edgekd.export.verify import verify_torch_against_qonnx
from edgekd.hls.convert import convert_to_hls
from edgekd.hls.emulate import Emulator
from edgekd.hls.verify import verify_csim_against_qonnx, verify_emulator_against_csim, verify_emulator_against_qonnx
from edgekd.registry import STUDENTS
from edgekd.estimate import estimate, layers_from_hls_model
from edgekd.students.cell_cnn import calibrate, input_quant_format
from edgekd.students.wav2small import load_float_weights

pytestmark = pytest.mark.slow  # one g++ compile (~25 s on 2 cores)

N_SAMPLES = 64 + 32 * 21  # 22 frames
N_WINDOWS = 256


def _speechlike(n: int, length: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(length) / 16000.0
    f0 = rng.uniform(80, 400, (n, 1)) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(1, 8, (n, 1)) * t))
    phase = 2 * np.pi * np.cumsum(f0, axis=1) / 16000.0
    voiced = sum(np.sin(k * phase) * rng.uniform(0, 1, (n, 1)) / k for k in range(1, 10))
    noise = rng.standard_normal((n, length)) * rng.uniform(0.01, 1.0, (n, 1))
    return (voiced * rng.uniform(0.0, 2.0, (n, 1)) + noise).astype(np.float32)


def _fit(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for i in range(steps):
        batch = slice((i * 64) % len(x), (i * 64) % len(x) + 64)
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.fixture(scope="module")
def hw_build(tmp_path_factory):
    torch.manual_seed(0)
    cfg = StudentConfig(name="wav2small_hw", width=4)
    build = STUDENTS.get("wav2small_hw")
    x = features_on_grid(log_mel(_speechlike(N_WINDOWS, N_SAMPLES)), cfg)
    xt = torch.as_tensor(x)
    # briefly trained (float twin with BatchNorm -> folded -> calibrated -> a few QAT steps) on a target
    # the features determine (low-band level, high-band level, spread), so every layer carries signal
    target = torch.stack([xt[:, 0, :, 1:9].mean((1, 2)), xt[:, 0, :, 17:].mean((1, 2)), xt.std((1, 2, 3))], 1)
    twin = build(cfg, 3, False, n_samples=N_SAMPLES)
    _fit(twin, xt, target, steps=60)
    model = build(cfg, 3, True, n_samples=N_SAMPLES)
    load_float_weights(model, twin.state_dict())
    calibrate(model, xt, steps=4)
    _fit(model, xt, target, steps=10)
    model.eval()
    out = tmp_path_factory.mktemp("wav2small_hw")
    qonnx_path = export_student_qonnx(model, model.input_shape, out)
    precision = input_quant_format(model).hls_type()
    hls_model, _ = convert_to_hls(qonnx_path, HLSConfig(), out / "project", precision, csim_cache=out / "csim")
    return model, qonnx_path, hls_model, x


def test_every_node_supported(hw_build):
    _, qonnx_path, _, _ = hw_build
    report = check_hardware_support(qonnx_path)
    assert {r["verdict"] for r in report} == {SUPPORTED}
    ops = [r["op_type"] for r in report]
    assert ops.count("Conv") == 8 and "MaxPool" in ops and "AveragePool" not in ops and "GlobalAveragePool" not in ops


def test_torch_qonnx_csim_emulator_bit_exact(hw_build):
    model, qonnx_path, hls_model, x = hw_build
    assert x.shape == (N_WINDOWS, 1, 22, 26)
    with torch.no_grad():
        y = model(torch.as_tensor(x)).numpy()
    # non-trivial: the windows give distinct outputs, not a constant
    assert len({tuple(r) for r in y}) > N_WINDOWS // 2 and y.std(axis=0).min() > 0
    torch_vs_qonnx = verify_torch_against_qonnx(model, qonnx_path, x)
    csim_vs_qonnx = verify_csim_against_qonnx(hls_model, qonnx_path, x, progress=False, return_outputs=True)
    assert torch_vs_qonnx["n"] == csim_vs_qonnx["n"] == N_WINDOWS
    assert torch_vs_qonnx["exact"] == csim_vs_qonnx["exact"] == 1.0
    assert np.array_equal(csim_vs_qonnx["csim_outputs"].astype(np.float32), y)
    emulator = Emulator(hls_model)
    assert {s["op"] for s in emulator.plan()} >= {"zeropad", "conv", "maxpool", "dense"}
    assert verify_emulator_against_csim(emulator, hls_model, x, y_csim=csim_vs_qonnx["csim_outputs"])["exact"] == 1.0
    assert verify_emulator_against_qonnx(emulator, qonnx_path, x)["exact"] == 1.0


def test_latency_estimate_prices_every_layer(hw_build):
    _, _, hls_model, _ = hw_build
    specs = layers_from_hls_model(hls_model)
    types = {s.type for s in specs}
    assert {"ZeroPadding2D", "Conv2D", "Pooling2D", "Dense"} <= types
    est = estimate(specs, 200.0, "io_stream")
    assert len(est["per_layer"]) == len(specs) and est["cycles"] > 0 and est["source"] == "estimate"
    time_avg = [p for p in est["per_layer"] if p["name"] == "Conv2D_Conv_7"]
    assert len(time_avg) == 1 and time_avg[0]["cycles"] > 0
