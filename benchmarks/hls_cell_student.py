"""Default 48x48 cell student -> hls4ml io_stream: compile time, C-sim images/s, bit-exactness.

Random (calibrated) weights: the cost and fidelity of the flow do not depend on training.
Prints and saves JSON (benchmarks/results/hls_cell_student.json); never part of the tests.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgekd.config import HLSConfig, StudentConfig
from edgekd.export.qonnx import export_student_qonnx
from edgekd.export.verify import verify_torch_against_qonnx
from edgekd.hls.convert import convert_to_hls
from edgekd.hls.verify import verify_csim_against_qonnx
from edgekd.students.cell_cnn import build_cell_cnn, calibrate, input_quant_format, quantize_input


def main(n: int = 256) -> dict:
    torch.manual_seed(0)
    cfg = StudentConfig()
    model = build_cell_cnn(cfg, num_classes=2)
    x = torch.randn(n, 1, 48, 48) * 1.1
    calibrate(model, x[:128], steps=16)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = export_student_qonnx(model, (1, 48, 48), Path(tmp))
        torch_result = verify_torch_against_qonnx(model, path, x)
        t0 = time.perf_counter()
        hls_model, _ = convert_to_hls(path, HLSConfig(io_type="io_stream"), Path(tmp) / "prj",
                                      input_quant_format(model).hls_type())
        compile_s = time.perf_counter() - t0
        xq = quantize_input(model, x).numpy()
        csim = verify_csim_against_qonnx(hls_model, path, xq, raise_on_mismatch=False)
    out = {
        "student": "cell_cnn default (1x48x48, 5,682 params), random calibrated weights",
        "io_type": "io_stream", "backend": "Vitis", "machine": f"{platform.machine()}, 2 cores",
        "convert_write_compile_s": round(compile_s, 2),
        "csim_images": n, "csim_images_per_s": round(csim["csim_images_per_s"], 1),
        "csim_exact": csim["exact"], "torch_qonnx_exact": torch_result["exact"],
    }
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
    print(json.dumps(result, indent=2))
    dest = Path(__file__).parent / "results" / "hls_cell_student.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(result, indent=2) + "\n")
