"""int8 ONNX of a float ONNX model, in a format that is accurate on every x86-64 CPU.

onnxruntime's x86 integer kernels for uint8 activations x int8 weights (U8S8) multiply with VPMADDUBSW on
AVX2 / AVX-512 CPUs without VNNI, which adds two u8 x s8 products into a *saturating* int16. With full 8-bit
weights the pair sum reaches 2 x 255 x 127 = 64,770 > 32,767, so on such CPUs (many lab PCs and cloud
machines) results are clipped; CPUs with VNNI (VPDPBUSD, 32-bit accumulation) are exact. The onnxruntime
quantization docs name the remedies: `reduce_range` (7-bit weights: 2 x 255 x 63 = 32,130 fits), U8U8, or
S8S8 QDQ. `benchmarks/int8_formats.py` measures every format below against the float model on the audio
test windows, natively and under an emulated AVX2-only CPU; `DEFAULT_FORMAT` is the one that stays closest
to float on both (the README quotes the table).

Formats (name -> what onnxruntime.quantization is asked for):
- dynamic_u8s8: `quantize_dynamic`, int8 weights per tensor (the format before; saturates without VNNI).
- dynamic_u8s8_reduce_range: the same with 7-bit weights (`reduce_range=True`).
- dynamic_u8s8_reduce_range_per_channel: 7-bit weights, one scale per output channel.
- dynamic_u8u8: uint8 weights (U8U8 kernels do not use VPMADDUBSW).
- static_qdq_s8s8: `quantize_static`, QDQ, int8 activations and weights, per-channel weights, activation
  ranges calibrated on given windows (MinMax).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMATS = (
    "dynamic_u8s8",
    "dynamic_u8s8_reduce_range",
    "dynamic_u8s8_reduce_range_per_channel",
    "dynamic_u8u8",
    "static_qdq_s8s8",
)
# Chosen by measurement (benchmarks/int8_formats.py, README "int8 ONNX on any x86-64 CPU").
DEFAULT_FORMAT = "dynamic_u8s8_reduce_range"


class _Windows:
    """onnxruntime CalibrationDataReader over a float array, one batch of `batch` rows per call."""

    def __init__(self, input_name: str, x: np.ndarray, batch: int = 32):
        self._feeds = iter([{input_name: np.ascontiguousarray(x[i : i + batch], np.float32)}
                            for i in range(0, len(x), batch)])

    def get_next(self) -> dict | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - part of the reader protocol, not used by MinMax
        raise NotImplementedError


def quantize_onnx_int8(float_onnx: Path | str, path: Path | str, fmt: str = DEFAULT_FORMAT, *,
                       exclude_nodes: Sequence[str] = (), calibration: np.ndarray | None = None) -> dict:
    """Write the int8 ONNX of `float_onnx` to `path` (atomically); returns {format, bytes, excluded_nodes}.

    `exclude_nodes` stay float (e.g. frozen spectral front-ends). `calibration` (the model's first input,
    a batch of representative rows) is required by the static format and ignored by the dynamic ones.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from edgekd.io import atomic_path

    if fmt not in FORMATS:
        raise ValueError(f"int8 format '{fmt}' is unknown; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    exclude = list(exclude_nodes)
    with atomic_path(path, suffix=".onnx") as tmp:
        if fmt.startswith("dynamic_"):
            quantize_dynamic(
                str(float_onnx), str(tmp), nodes_to_exclude=exclude,
                weight_type=QuantType.QUInt8 if fmt == "dynamic_u8u8" else QuantType.QInt8,
                reduce_range="reduce_range" in fmt, per_channel=fmt.endswith("per_channel"),
            )
        else:
            if calibration is None or len(calibration) == 0:
                raise ValueError(f"int8 format '{fmt}' needs calibration inputs")
            input_name = onnx.load(str(float_onnx), load_external_data=False).graph.input[0].name
            quantize_static(
                str(float_onnx), str(tmp), _Windows(input_name, np.asarray(calibration)),
                quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                per_channel=True, nodes_to_exclude=exclude,
            )
    return {"format": fmt, "bytes": path.stat().st_size, "excluded_nodes": exclude}


def onnx_session(path: Path | str, threads: int = 1):
    """A CPU onnxruntime session with a fixed thread count, so results and timings do not depend on the
    machine's core count (float reductions are split by thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx_batches(path: Path | str, x: np.ndarray | Iterable, batch: int = 64) -> np.ndarray:
    """First output of the model at `path` on `x` (first input), in batches, single-threaded."""
    sess = onnx_session(path)
    name = sess.get_inputs()[0].name
    x = np.asarray(x, dtype=np.float32)
    return np.concatenate([sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])
