"""Latency estimate of the 48x48 cell student with and without the layout-only input Transpose (issue 19).

    .venv/bin/python benchmarks/input_transpose_latency.py

Exports the paper's Student2 (random, calibrated weights: the layer list does not depend on training), cleans
it twice (qonnx's default `ConvertToChannelsLastAndClean()`: NCHW input + Transpose; edgekd's
`make_input_channels_last=True`: NHWC input), converts both with hls4ml 1.3.0 (no compile) and prints the
estimate from each ModelGraph at the board top's rate (one element per clock) and at the old assumption
(one stream word per clock). Never part of the tests.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model

from edgekd.config import HLSConfig, StudentConfig
from edgekd.export.qonnx import RAW_NAME, export_student_qonnx
from edgekd.hls.convert import convert_to_hls
from edgekd.estimate import estimate, layers_from_hls_model
from edgekd.students.cell_cnn import build_cell_cnn, calibrate, input_quant_format


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    model = build_cell_cnn(StudentConfig(input_size=48, channels=[16, 16]), 2)
    calibrate(model, torch.randn(32, 1, 48, 48))
    model.eval()
    tmp = Path(tempfile.mkdtemp(prefix="edgekd-transpose-"))
    channels_last = export_student_qonnx(model, (1, 48, 48), tmp)
    raw = cleanup_model(ModelWrapper(str(tmp / RAW_NAME)))
    default = cleanup_model(raw.transform(ConvertToChannelsLastAndClean()).transform(GemmToMatMul()))
    default.save(str(tmp / "nchw_input.onnx"))
    precision = input_quant_format(model).hls_type()
    hls = HLSConfig()
    for label, path in (("NCHW input + Transpose (qonnx default)", tmp / "nchw_input.onnx"),
                        ("NHWC input (edgekd)", channels_last)):
        hls_model, _ = convert_to_hls(path, hls, tmp / path.stem, precision, compile_model=False)
        specs = layers_from_hls_model(hls_model)
        print(f"{label}: layers {[s.type for s in specs][:3]}...")
        for rate, kw in (("one element per clock (board top)", {}), ("one stream word per clock (old)", {"input_interval": 1})):
            r = estimate(specs, hls.clock_mhz, "io_stream", **kw)
            print(f"  {rate}: {r['cycles']} cycles = {r['us']} us, II {r['ii_cycles']}, "
                  f"FF {r['resources']['ff']}, LUT {r['resources']['lut']}")


if __name__ == "__main__":
    main()
