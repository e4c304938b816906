"""Images/s of the fixed-point emulator (edgekd.hls.emulate) vs hls4ml `predict()` (g++ C-simulation).

Same compiled design and the same images in the same run: the default 48x48 cell student (5,682
params, random calibrated weights: the cost does not depend on training) converted to an hls4ml
Vitis io_stream project. Also checks emulator == predict() bit for bit on the timed predict() images.
The audio hardware student does not exist in edgekd yet, so it is reported as not available.

    .venv/bin/python benchmarks/emulator_throughput.py [n_predict] [n_emulator]

Prints and saves JSON (benchmarks/results/emulator_throughput.json); never part of the tests.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgekd.config import HLSConfig, StudentConfig
from edgekd.export.qonnx import export_student_qonnx
from edgekd.hls.convert import convert_to_hls
from edgekd.hls.csim import predict_csim
from edgekd.hls.emulate import Emulator
from edgekd.students.cell_cnn import build_cell_cnn, calibrate, count_params, input_quant_format, quantize_input


def _emulator_rate(emu: Emulator, x: np.ndarray, batch_size: int, repeats: int = 3) -> float:
    emu.predict(x[:batch_size], batch_size=batch_size)  # warm-up
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        emu.predict(x, batch_size=batch_size)
        best = max(best, x.shape[0] / (time.perf_counter() - t0))
    return best


def main(n_predict: int = 200, n_emulator: int = 8192) -> dict:
    torch.manual_seed(0)
    cfg = StudentConfig()
    model = build_cell_cnn(cfg, num_classes=2)
    x = torch.randn(max(n_predict, 512), 1, 48, 48) * 1.1
    calibrate(model, x[:128], steps=16)
    model.eval()
    xq = quantize_input(model, x).numpy()
    reps = -(-n_emulator // xq.shape[0])
    x_emu = np.concatenate([xq] * reps)[:n_emulator]
    with tempfile.TemporaryDirectory() as tmp:
        path = export_student_qonnx(model, (1, 48, 48), Path(tmp))
        t0 = time.perf_counter()
        hls_model, _ = convert_to_hls(path, HLSConfig(io_type="io_stream"), Path(tmp) / "prj",
                                      input_quant_format(model).hls_type())
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        emu = Emulator(hls_model)
        plan_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_csim = predict_csim(hls_model, xq[:n_predict], progress=False)
        predict_rate = n_predict / (time.perf_counter() - t0)
        y_emu = emu.predict(xq[:n_predict])
        rates = {bs: _emulator_rate(emu, x_emu, bs) for bs in (256, 1024)}
    best_bs = max(rates, key=rates.get)
    emu_rate = rates[best_bs]
    return {
        "cell_student": {
            "student": f"cell_cnn default (1x48x48, {count_params(model):,} params), random calibrated weights",
            "io_type": "io_stream", "backend": "Vitis",
            "convert_write_compile_s": round(compile_s, 2), "emulator_plan_s": round(plan_s, 3),
            "predict_images": n_predict, "predict_images_per_s": round(predict_rate, 1),
            "emulator_images": n_emulator, "emulator_batch_size": best_bs,
            "emulator_images_per_s": round(emu_rate, 1),
            "emulator_images_per_s_by_batch": {str(k): round(v, 1) for k, v in rates.items()},
            "ratio": round(emu_rate / predict_rate, 1),
            "emulator_equals_predict": bool(np.array_equal(y_emu, y_csim)),
            "targets": {"emulator_images_per_s": 10000, "ratio": 300},
            "meets_targets": bool(emu_rate >= 10000 and emu_rate / predict_rate >= 300),
        },
        "audio_student": {"available": False,
                          "note": "edgekd has no audio hardware student yet; nothing to measure"},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    args = [int(a) for a in sys.argv[1:3]]
    result = main(*args)
    print(json.dumps(result, indent=2))
    dest = Path(__file__).parent / "results" / "emulator_throughput.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(result, indent=2) + "\n")
