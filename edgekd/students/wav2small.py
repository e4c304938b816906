"""Wav2Small students (arXiv 2408.13920, REFERENCE.md section 2): the float reference and the hardware twin.

``wav2small`` (float, raw 16 kHz waveform (N, L) in, (N, 3) A/D/V out), faithful to the release:
prenorm -> frozen DFT Conv1d pair -> power -> 26-band log-mel (edgekd.data.logmel.LogMel) ->
l1-l3 Conv2d 3x3 pad 1 (no bias) + BatchNorm + ReLU -> MaxPool 3x3 s2 p1 -> l4-l7 -> attention pooling
``sum_t lin(x) * softmax_t(sof(x))`` (two 1x1 convs) -> Gram features ``concat[x, x x^T]`` -> Linear -> 3.
Width w (StudentConfig.width): trainable parameters 59 w^2 + 64 w + 3 (convs 9w + 54w^2, BatchNorm 14w,
lin/sof 2(w^2 + w), head 3 w (13 + w) + 3); the frozen DFT kernels add 2 x 33 x 64 = 4,224 (they are
Conv1d parameters with requires_grad False, as in the release; the 33x26 mel filterbank is a buffer).
w = 13: 10,806 trainable, 15,030 with the DFT kernels (the "~17K" release); w = 34: 74,607 with the DFT
kernels (70,383 trainable), the paper's ~72K. `quantized` is ignored: this student is float only.

``wav2small_hw`` (hardware student): takes the host log-mel on its input grid (N, 1, F, 26)
(edgekd.data.logmel.features_on_grid) and keeps only ops that hls4ml 1.3.0 maps bit-exactly:
power-of-two brevitas quantizers, l1-l7 Conv2d 3x3 pad 1 with BatchNorm folded into weight and bias
(`load_float_weights`), ReLU, MaxPool2d 2x2 stride 2 after l1 and l3 (`student.hw_pool_after`, default
[1, 3]: the extra pool after l1 cuts the MACs ~4x; [3] pools only where Wav2Small does; hls4ml's streaming
pool takes no padding), the average over time as a frozen Conv2d with kernel (T, 1) over the whole time
axis T = F // 2^pools and
weight 2^-ceil(log2 T) on the channel diagonal (a sum times a power of two: exact), re-quantized,
Flatten, Dense (student.hw_head_hidden = h units, default 16) + ReLU, Linear -> 3 (in place of the Gram
features). `HW_REPLACEMENTS` says what replaced what. Trainable parameters, with B = 26 // 2^pools mel
bands left (6 by default): 9w + 54w^2 + 7w (folded BatchNorm biases) + (B w h + h) + (3h + 3); w = 13,
h = 16: 9,334 + 1,264 + 51 = 10,649 (pools [3], h = 0: 54 w^2 + 55 w + 3 = 9,844). The frozen
time-average weights (w^2 T) are counted apart (`count_wav2small_params`).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import numpy as np
import torch
from brevitas.inject.enum import ScalingImplType
from brevitas.quant.fixed_point import Int8WeightPerTensorFixedPoint
from torch import nn

from edgekd.config import StudentConfig
from edgekd.data.logmel import N_MELS, LogMel, n_frames
from edgekd.registry import STUDENTS
from edgekd.students.quant import act_quant, bias_quant, input_quant, weight_quant

log = logging.getLogger(__name__)

__all__ = [
    "HW_REPLACEMENTS",
    "N_LAYERS",
    "Wav2Small",
    "Wav2SmallHW",
    "build_wav2small",
    "build_wav2small_hw",
    "count_wav2small_params",
    "export_float_onnx",
    "export_int8_onnx",
    "frontend_nodes",
    "int8_agreement",
    "load_float_weights",
    "run_onnx",
]

N_LAYERS = 7
N_FREQ_POOLED = 13  # 26 mel bands after the stride-2 pool

HW_REPLACEMENTS = (
    "wav2small_hw differs from wav2small only where hls4ml 1.3.0 cannot compute exactly: "
    "(1) prenorm, DFT, mel and log10 run on the host (edgekd.data.logmel), quantized to the input grid; "
    "(2) BatchNorm is folded into the conv weights and biases; "
    "(3) MaxPool 3x3 stride 2 pad 1 after l3 becomes MaxPool 2x2 stride 2 (hls4ml's streaming pool has no "
    "padding), after l1 and l3 by default (student.hw_pool_after; ~4x fewer MACs); "
    "(4) attention pooling (softmax over time) becomes the plain average over time: a frozen Conv2d with "
    "kernel (T, 1) over the whole time axis and weight 2^-ceil(log2 T) on the channel diagonal, i.e. the sum "
    "over time times a power of two (exact in hls4ml; GlobalAveragePool converts but is computed wrongly, "
    "AveragePool is not taken channels-last by qonnx, and 1-D pooling fails); "
    "(5) the Gram product x x^T (second-order channel features) is replaced by a learned nonlinear head: "
    "Dense (student.hw_head_hidden units) + ReLU + Dense on the time-averaged channels x mel map, instead of "
    "one Linear on concat[x, x x^T] (hw_head_hidden 0: one Linear)."
)


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Wav2Small(nn.Module):
    """The float Wav2Small (see module docstring): (N, L) waveform -> (N, n_outputs)."""

    def __init__(self, width: int = 13, n_outputs: int = 3) -> None:
        super().__init__()
        self.width = width
        self.frontend = LogMel()
        self.l1 = _conv_bn_relu(1, width)
        self.l2 = _conv_bn_relu(width, width)
        self.l3 = _conv_bn_relu(width, width)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.l4 = _conv_bn_relu(width, width)
        self.l5 = _conv_bn_relu(width, width)
        self.l6 = _conv_bn_relu(width, width)
        self.l7 = _conv_bn_relu(width, width)
        self.lin = nn.Conv2d(width, width, 1)
        self.sof = nn.Conv2d(width, width, 1)
        self.head = nn.Linear(width * (N_FREQ_POOLED + width), n_outputs)

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """Log-mel (N, 1, F, 26) -> conv stack (N, w, F', 13)."""
        x = self.frontend(wav)
        x = self.pool(self.l3(self.l2(self.l1(x))))
        return self.l7(self.l6(self.l5(self.l4(x))))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.features(wav)  # (N, w, T, 13): time on axis 2
        x = (self.lin(x) * torch.softmax(self.sof(x), dim=2)).sum(dim=2)  # attention pooling -> (N, w, 13)
        gram = torch.bmm(x, x.transpose(1, 2))  # (N, w, w)
        return self.head(torch.cat([x, gram], dim=2).flatten(1))


class Wav2SmallHW(nn.Module):
    """Hardware Wav2Small on host log-mel features (N, 1, F, 26); quantized (brevitas) or float twin.

    Module names: `input_quant`, `conv{i}` (+ `bn{i}` in the float twin only), `relu{i}` for i = 1..7,
    `pool{i}` for i in student.hw_pool_after (default [1, 3]; after conv{i} (+ bn{i}), before relu{i}: max
    commutes with the monotone ReLU/round/clip, and the quantizer sees a quarter of the values), `time_avg`,
    `avg_quant`, `flatten`, (`hidden`, `relu_hidden` when student.hw_head_hidden > 0), `head`,
    `output_quant`. The quantized convs carry a bias (the folded BatchNorm).
    """

    def __init__(self, cfg: StudentConfig, n_outputs: int, quantized: bool, n_frames: int) -> None:
        super().__init__()
        self.pool_after = tuple(cfg.hw_pool_after)
        n_pools = len(self.pool_after)
        if n_frames >> n_pools < 1:
            raise ValueError(f"wav2small_hw: {n_frames} input frames do not survive {n_pools} 2x2 max pools "
                             "(student.hw_pool_after); use a longer window or fewer pools")
        for field in ("weight_bits", "act_bits"):
            if not isinstance(getattr(cfg, field), int):
                raise ValueError(f"student.{field}: wav2small_hw takes one bit width for all layers, "
                                 f"got {getattr(cfg, field)!r}")
        self.cfg = cfg
        self.quantized = quantized
        self.n_frames = n_frames
        self.n_outputs = n_outputs
        w = cfg.width
        t = n_frames >> n_pools  # time steps after the 2x2 max pools
        self.n_freq = N_MELS >> n_pools  # mel bands after the pools (26 -> 13 -> 6 -> 3)
        self.time_shift = max(0, (t - 1).bit_length())  # 2^time_shift >= t
        if quantized:
            from brevitas import nn as qnn

            self.input_quant: nn.Module = qnn.QuantIdentity(act_quant=input_quant(cfg.input_bits, cfg.input_max))
        else:
            self.input_quant = nn.Identity()
        for i in range(1, N_LAYERS + 1):
            c_in = 1 if i == 1 else w
            if quantized:
                conv: nn.Module = qnn.QuantConv2d(
                    c_in, w, 3, padding=1, bias=True,
                    weight_quant=weight_quant(cfg.weight_bits), bias_quant=bias_quant(cfg.bias_bits),
                )
                relu: nn.Module = qnn.QuantReLU(act_quant=act_quant(cfg.act_bits, signed=False))
            else:
                conv = nn.Conv2d(c_in, w, 3, padding=1, bias=False)
                self.add_module(f"bn{i}", nn.BatchNorm2d(w))
                relu = nn.ReLU()
            self.add_module(f"conv{i}", conv)
            self.add_module(f"relu{i}", relu)
        for i in self.pool_after:
            self.add_module(f"pool{i}", nn.MaxPool2d(2))
        # Average over time as a frozen conv: kernel (t, 1) over the whole time axis, weight 2^-time_shift
        # on the channel diagonal, 0 elsewhere (the sum over time times a power of two: the mean times
        # t / 2^time_shift, in (1/2, 1]). A plain Conv is exact in hls4ml; AveragePool cannot be
        # exported channels-last by qonnx and GlobalAveragePool is computed wrongly by hls4ml 1.3.0.
        if quantized:
            self.time_avg: nn.Module = qnn.QuantConv2d(
                w, w, (t, 1), bias=False, weight_quant=_fixed_weight_quant(self.time_shift)
            )
        else:
            self.time_avg = nn.Conv2d(w, w, (t, 1), bias=False)
        with torch.no_grad():
            self.time_avg.weight.copy_(torch.eye(w)[:, :, None, None].expand(w, w, t, 1) * 2.0**-self.time_shift)
        self.time_avg.weight.requires_grad_(False)
        self.flatten = nn.Flatten()
        n_feat = w * self.n_freq
        hidden = cfg.hw_head_hidden
        self.has_hidden = hidden > 0
        if quantized:
            self.avg_quant: nn.Module = qnn.QuantIdentity(act_quant=act_quant(cfg.act_bits, signed=False))
            if self.has_hidden:
                self.hidden = qnn.QuantLinear(
                    n_feat, hidden, bias=True,
                    weight_quant=weight_quant(cfg.weight_bits), bias_quant=bias_quant(cfg.bias_bits),
                )
                self.relu_hidden = qnn.QuantReLU(act_quant=act_quant(cfg.act_bits, signed=False))
            self.head: nn.Module = qnn.QuantLinear(
                hidden or n_feat, n_outputs, bias=True,
                weight_quant=weight_quant(cfg.weight_bits), bias_quant=bias_quant(cfg.bias_bits),
            )
            self.output_quant: nn.Module = qnn.QuantIdentity(act_quant=act_quant(cfg.output_bits, signed=True))
        else:
            self.avg_quant = nn.Identity()
            if self.has_hidden:
                self.hidden = nn.Linear(n_feat, hidden)
                self.relu_hidden = nn.ReLU()
            self.head = nn.Linear(hidden or n_feat, n_outputs)
            self.output_quant = nn.Identity()

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Batch-1 NCHW input shape for export: (1, 1, F, 26)."""
        return (1, 1, self.n_frames, N_MELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        for i in range(1, N_LAYERS + 1):
            x = getattr(self, f"conv{i}")(x)
            if not self.quantized:
                x = getattr(self, f"bn{i}")(x)
            if i in self.pool_after:
                x = getattr(self, f"pool{i}")(x)
            x = getattr(self, f"relu{i}")(x)
        x = self.avg_quant(self.time_avg(x))  # (N, w, 1, n_freq): time average (times t / 2^time_shift)
        x = self.flatten(x)
        if self.has_hidden:
            x = self.relu_hidden(self.hidden(x))
        return self.output_quant(self.head(x))

    def load_float_weights(self, float_state: dict) -> None:
        load_float_weights(self, float_state)


@cache
def _fixed_weight_quant(shift: int) -> type:
    """Constant-scale 2-bit weight quantizer whose grid holds 0 and 2^-shift exactly (frozen time-average weights).

    brevitas' signed fixed-point scale is threshold / 2^(bits - 1): threshold 2^(1 - shift) gives scale 2^-shift.
    """
    return type(
        f"Int2WeightConstPow2m{shift}",
        (Int8WeightPerTensorFixedPoint,),
        {"bit_width": 2, "scaling_impl_type": ScalingImplType.CONST, "scaling_init": 2.0 ** (1 - shift)},
    )


def _fold_bn(state: dict, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    w = state[f"conv{i}.weight"]
    gamma, beta = state[f"bn{i}.weight"], state[f"bn{i}.bias"]
    mean, var = state[f"bn{i}.running_mean"], state[f"bn{i}.running_var"]
    k = gamma / torch.sqrt(var + 1e-5)  # nn.BatchNorm2d's default eps
    return w * k[:, None, None, None], beta - mean * k


def load_float_weights(model: nn.Module, float_state: dict) -> None:
    """Initialise a quantized `wav2small_hw` from its float twin's state dict, BatchNorm folded in.

    ``conv(x) -> BN`` equals a conv with weight ``w * g / sqrt(v + eps)`` and bias ``b - m g / sqrt(v + eps)``
    (eval-mode statistics). Raises ValueError naming the missing key when the state does not fit.
    """
    if not isinstance(model, Wav2SmallHW) or not model.quantized:
        raise ValueError("load_float_weights: give the quantized wav2small_hw (quantized=True)")
    try:
        new = {}
        for i in range(1, N_LAYERS + 1):
            new[f"conv{i}.weight"], new[f"conv{i}.bias"] = _fold_bn(float_state, i)
        for layer in ("hidden", "head") if model.has_hidden else ("head",):
            new[f"{layer}.weight"], new[f"{layer}.bias"] = float_state[f"{layer}.weight"], float_state[f"{layer}.bias"]
        new["time_avg.weight"] = float_state["time_avg.weight"]
    except KeyError as err:
        raise ValueError(f"float weights do not fit wav2small_hw: missing {err}") from None
    own = model.state_dict()
    for key, value in new.items():
        if own[key].shape != value.shape:
            raise ValueError(f"float weights do not fit wav2small_hw: {key} has shape {tuple(value.shape)}, "
                             f"expected {tuple(own[key].shape)} (same student config?)")
    model.load_state_dict(new, strict=False)


@STUDENTS.register("wav2small")
def build_wav2small(cfg: StudentConfig, n_outputs: int, quantized: bool = False, *, n_samples: int) -> Wav2Small:
    """Float Wav2Small on raw 16 kHz waveforms of `n_samples`; `quantized` is ignored (float only)."""
    n_frames(n_samples)  # refuses windows shorter than one DFT frame
    if quantized:
        log.debug("wav2small is float only; quantized=True ignored (use wav2small_hw for hardware)")
    return Wav2Small(cfg.width, n_outputs)


@STUDENTS.register("wav2small_hw")
def build_wav2small_hw(cfg: StudentConfig, n_outputs: int, quantized: bool = True, *, n_samples: int) -> Wav2SmallHW:
    """Hardware Wav2Small for windows of `n_samples` at 16 kHz; input (N, 1, F, 26), F = (n_samples - 64) // 32 + 1."""
    return Wav2SmallHW(cfg, n_outputs, quantized, n_frames(n_samples))


def count_wav2small_params(model: nn.Module) -> dict[str, int]:
    """{trainable, frozen, total} weights and biases of the Conv / Linear / BatchNorm layers.

    frozen = tensors with requires_grad False (the float student's DFT kernels, the hardware student's
    time-average conv). Buffers (mel filterbank, BatchNorm statistics) and brevitas quantizer scales
    are not counted.
    """
    trainable = frozen = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm2d)):  # brevitas layers subclass these
            for p in (m.weight, m.bias):
                if p is not None:
                    if p.requires_grad:
                        trainable += p.numel()
                    else:
                        frozen += p.numel()
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}


def export_float_onnx(model: Wav2Small, path: Path | str, n_samples: int, opset: int = 17) -> Path:
    """Plain ONNX of the float student: input `waveform` (N, L) float32, output `adv` (N, 3).

    Traced at (1, n_samples); batch and length are dynamic axes (the student takes any length >= 64).
    """
    from edgekd.io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with atomic_path(path, suffix=".onnx") as tmp:
            torch.onnx.export(
                model, (torch.zeros(1, n_samples),), str(tmp), input_names=["waveform"], output_names=["adv"],
                dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "adv": {0: "batch"}}, opset_version=opset,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    return path


def frontend_nodes(float_onnx: Path | str) -> list[str]:
    """Names of the spectral front-end's weighted nodes in an exported wav2small (the frozen DFT convs and the
    mel filterbank MatMul): they are the spectrum, not learned weights, and stay float in the int8 model.
    Quantizing the mel MatMul's input, a power spectrum spanning many decades, to 8 bits per tensor zeroes the
    quiet bands and leaves the int8 model uncorrelated with float (measured: -0.04 on the example's test
    windows, benchmarks/int8_formats.py)."""
    import onnx

    graph = onnx.load(str(float_onnx)).graph
    # by node scope: l1's data input comes out of the front-end too, but its weights are learned
    return [n.name for n in graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and n.name.startswith("/frontend/")]


def export_int8_onnx(float_onnx: Path | str, path: Path | str, fmt: str | None = None,
                     calibration: np.ndarray | None = None) -> dict:
    """int8 ONNX of the float wav2small (edgekd.export.int8_onnx; its DEFAULT_FORMAT is accurate on CPUs
    with and without VNNI); the frozen DFT convs stay float. Returns {format, bytes, excluded_nodes}."""
    from edgekd.export.int8_onnx import DEFAULT_FORMAT, quantize_onnx_int8

    return quantize_onnx_int8(float_onnx, path, fmt or DEFAULT_FORMAT, exclude_nodes=frontend_nodes(float_onnx),
                              calibration=calibration)


def int8_agreement(float_onnx: Path | str, int8_onnx: Path | str, x: np.ndarray | torch.Tensor) -> float | None:
    """Correlation of the int8 model's outputs with the float model's on `x` (all outputs pooled), on this
    CPU (the figure the README's int8 table compares across CPUs); None for fewer than 2 windows or a
    constant output."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) < 2:
        return None
    ref, q = run_onnx(float_onnx, x), run_onnx(int8_onnx, x)
    if np.std(ref) == 0 or np.std(q) == 0:  # a constant output has no correlation
        return None
    return round(float(np.corrcoef(q.ravel(), ref.ravel())[0, 1]), 5)


def run_onnx(path: Path | str, x: np.ndarray) -> np.ndarray:
    """onnxruntime CPU execution of an exported student (first input, first output), single-threaded so
    the float summation order does not depend on the machine's core count."""
    from edgekd.export.int8_onnx import run_onnx_batches

    return run_onnx_batches(path, x)



