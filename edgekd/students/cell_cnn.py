"""The cell-sorting micro-student ("Student2" of arXiv 2503.12622), quantization-aware with brevitas.

Default (StudentConfig()): 1x48x48 -> Conv 1->16 3x3 valid + ReLU -> MaxPool 2 -> Conv 16->16 3x3 +
ReLU -> MaxPool 2 -> Flatten 1600 -> Dense num_classes. 5,682 weights + biases for 2 classes, about
1.32M MACs per image. The output is quantized logits: no softmax (apply it on the host).

Every quantizer is power-of-two (edgekd.students.quant), so the model maps bit-exactly onto hls4ml.

Pixel blocks (`student.input_block` k = 2 or 4): the network reads the image as k x k blocks, space-to-depth
(edgekd.data.transforms.space_to_depth: channel dy * k + dx of block (by, bx) is pixel (by k + dy, bx k + dx)),
so its input is (k^2, H/k, W/k), one stream item per block, and the first convolution sees k^2 channels.
`forward` takes either the image (N, 1, H, W), which it blocks itself (training, with its rotated and flipped
views of the image), or the blocked tensor (N, k^2, H/k, W/k): the exported model's input, the verification
inputs and the hardware's stream. The input quantizer is elementwise, so blocking before it changes no value.

Colour (`in_channels` C = 3, from `data.channels`): the input is (C, S, S), or (C k^2, S/k, S/k) with blocks,
channel c k^2 + dy k + dx (edgekd.data.transforms); only the first convolution's input channels change.
C = 1 (the default) builds exactly the grey student.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekd.config import StudentConfig
from edgekd.data.transforms import space_to_depth
from edgekd.fixedpoint import FixedPointFormat  # noqa: F401 - the input grid's type, re-exported
from edgekd.registry import STUDENTS
from edgekd.students.quant import act_quant, bias_quant, input_quant, weight_quant

__all__ = [
    "CellCNN",
    "FixedPointFormat",
    "build_cell_cnn",
    "count_params",
    "count_macs",
    "input_quant_format",
    "model_input_shape",
    "quantize_input",
    "calibrate",
]


def _per_layer(bits: int | list[int], n: int) -> list[int]:
    return [bits] * n if isinstance(bits, int) else list(bits)


def model_input_shape(cfg: StudentConfig, in_channels: int = 1) -> tuple[int, int, int]:
    """(channels, height, width) of the network's input: (C, S, S), or (C k^2, S/k, S/k) with input_block k,
    for images of `in_channels` C (1 grey, 3 colour: `data.channels`)."""
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    k = cfg.input_block
    if cfg.input_size % k:
        raise ValueError(
            f"student.input_size {cfg.input_size} is not a multiple of student.input_block {k}: "
            f"use an input size divisible by {k} (e.g. {cfg.input_size - cfg.input_size % k})"
        )
    return in_channels * k * k, cfg.input_size // k, cfg.input_size // k


def _feature_shapes(cfg: StudentConfig) -> list[tuple[int, int, int]]:
    """(channels, height, width) after each conv+pool block; raises when a block shrinks to nothing."""
    shapes = []
    c, h, w = model_input_shape(cfg)  # the channel count does not change the spatial shapes
    for i, (out_c, k) in enumerate(zip(cfg.channels, cfg.kernel_sizes)):
        h, w = h - k + 1, w - k + 1
        if h < 1:
            raise ValueError(
                f"student conv{i}: kernel {k} does not fit a {h + k - 1}x{w + k - 1} input; "
                "use a larger student.input_size, a smaller student.input_block or fewer / smaller convs"
            )
        h, w = h // cfg.pool, w // cfg.pool
        if h < 1:
            raise ValueError(
                f"student pool{i}: pool {cfg.pool} leaves no pixels after conv{i}; "
                "use a larger student.input_size or a smaller student.pool"
            )
        c = out_c
        shapes.append((c, h, w))
    return shapes


class CellCNN(nn.Module):
    """Conv/ReLU/MaxPool blocks, flatten, one dense layer; quantized (brevitas) or float (torch).

    Module names are the same in both variants (`input_quant`, `conv{i}`, `relu{i}`, `pool{i}`,
    `dense`, `output_quant`), so exported node names and state-dict keys line up.
    """

    def __init__(self, cfg: StudentConfig, num_classes: int, quantized: bool = True, in_channels: int = 1) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"cell_cnn needs at least 2 classes, got {num_classes}")
        self.cfg = cfg
        self.num_classes = num_classes
        self.quantized = quantized
        self.input_block = cfg.input_block
        self.in_channels = in_channels
        self.input_shape = model_input_shape(cfg, in_channels)  # what forward takes after blocking (export)
        n_conv = len(cfg.channels)
        w_bits = _per_layer(cfg.weight_bits, n_conv + 1)
        a_bits = _per_layer(cfg.act_bits, n_conv)
        shapes = _feature_shapes(cfg)

        if quantized:
            from brevitas import nn as qnn

            self.input_quant: nn.Module = qnn.QuantIdentity(act_quant=input_quant(cfg.input_bits, cfg.input_max))
        else:
            self.input_quant = nn.Identity()

        in_c = self.input_shape[0]
        self.blocks = nn.ModuleList()
        for i, (out_c, k) in enumerate(zip(cfg.channels, cfg.kernel_sizes)):
            block = nn.Sequential()
            if quantized:
                block.add_module(
                    f"conv{i}",
                    qnn.QuantConv2d(
                        in_c, out_c, k, bias=True,
                        weight_quant=weight_quant(w_bits[i]), bias_quant=bias_quant(cfg.bias_bits),
                    ),
                )
            else:
                block.add_module(f"conv{i}", nn.Conv2d(in_c, out_c, k, bias=True))
            # Max-pool before the (quantized) ReLU: ReLU, round and clip are monotone, so they commute
            # with max and the function is the same as conv-relu-pool, while the activation quantizer
            # sees a quarter of the elements (QAT is 3-4x faster on 2 cores). hls4ml infers the pool's
            # types from the conv's, so the C-simulation stays bit-exact.
            if cfg.pool > 1:
                block.add_module(f"pool{i}", nn.MaxPool2d(cfg.pool))
            if quantized:
                block.add_module(f"relu{i}", qnn.QuantReLU(act_quant=act_quant(a_bits[i], signed=False)))
            else:
                block.add_module(f"relu{i}", nn.ReLU())
            self.blocks.append(block)
            in_c = out_c

        c, h, w = shapes[-1]
        self.flatten = nn.Flatten()
        if quantized:
            self.dense: nn.Module = qnn.QuantLinear(
                c * h * w, num_classes, bias=True,
                weight_quant=weight_quant(w_bits[-1]), bias_quant=bias_quant(cfg.bias_bits),
            )
            self.output_quant: nn.Module = qnn.QuantIdentity(act_quant=act_quant(cfg.output_bits, signed=True))
        else:
            self.dense = nn.Linear(c * h * w, num_classes, bias=True)
            self.output_quant = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, c = self.input_block, self.in_channels
        if k > 1:
            if x.shape[1] == c:  # the image: block it (a Python branch on a static shape; export sees blocks)
                x = space_to_depth(x, k)
            elif x.shape[1] != c * k * k:
                raise ValueError(f"cell_cnn with input_block {k} takes (N, {c}, H, W) images or (N, {c * k * k}, "
                                 f"H/{k}, W/{k}) blocks, got {tuple(x.shape)}")
        x = self.input_quant(x)
        for block in self.blocks:
            x = block(x)
        return self.output_quant(self.dense(self.flatten(x)))


def load_float_weights(model: nn.Module, float_state: dict) -> None:
    """Initialise a quantized student from a float one of the same config (QAT fine-tuning).

    Both variants share module names, so every float tensor has a quantized counterpart; the
    quantized model's own extra entries (quantizer scales and statistics) keep their initial values.
    """
    result = model.load_state_dict(float_state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"float weights do not fit this student: unexpected keys {result.unexpected_keys[:4]}")
    own = {n for n, _ in model.named_parameters() if n.endswith(("weight", "bias")) and "quant" not in n}
    missing = own & set(result.missing_keys)
    if missing:
        raise ValueError(f"float weights do not fit this student: missing {sorted(missing)[:4]}")


@STUDENTS.register("cell_cnn")
def build_cell_cnn(cfg: StudentConfig, num_classes: int, quantized: bool = True, in_channels: int = 1) -> nn.Module:
    """Build the cell student; `quantized=False` gives the same architecture in float torch; `in_channels` 3 for
    colour images (`data.channels`)."""
    return CellCNN(cfg, num_classes, quantized=quantized, in_channels=in_channels)


def count_params(model: nn.Module) -> int:
    """Weights and biases of conv and linear layers only (quantizer scales are not counted)."""
    total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):  # brevitas layers subclass these
            total += m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
    return total


def count_macs(cfg: StudentConfig, num_classes: int, in_channels: int = 1) -> int:
    """Multiply-accumulates per image (convs + dense); 1,323,968 for the default 2-class student. With
    input_block k the first conv runs on (C k^2, S/k, S/k) for images of `in_channels` C."""
    macs = 0
    in_c, h, w = model_input_shape(cfg, in_channels)
    for (out_c, k), (c, ph, pw) in zip(zip(cfg.channels, cfg.kernel_sizes), _feature_shapes(cfg)):
        oh, ow = h - k + 1, w - k + 1
        macs += oh * ow * out_c * in_c * k * k
        in_c, h, w = c, ph, pw
    return macs + in_c * h * w * num_classes


def input_quant_format(model: nn.Module) -> FixedPointFormat:
    """Fixed-point grid of the student's input quantizer (e.g. fixed<8,3> for 8 bits over [-4, 4))."""
    iq = getattr(model, "input_quant", None)
    if iq is None or not hasattr(iq, "act_quant"):
        raise ValueError(
            f"{type(model).__name__} has no brevitas input quantizer (`input_quant`); "
            "build it with quantized=True"
        )
    scale = float(iq.act_quant.scale().detach().reshape(-1)[0])
    bits = int(iq.act_quant.bit_width())
    frac = -math.log2(scale)
    if frac != round(frac):
        raise ValueError(f"input quantizer scale {scale} is not a power of two; use edgekd.students.quant.input_quant")
    signed = bool(iq.act_quant.is_signed)
    return FixedPointFormat(total_bits=bits, int_bits=bits - int(round(frac)), signed=signed)


def quantize_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Put `x` on the input quantizer's grid (what the hardware receives), as float values."""
    return input_quant_format(model).quantize(x)


@torch.no_grad()
def calibrate(model: nn.Module, batches: list[torch.Tensor] | torch.Tensor, steps: int = 8) -> None:
    """Set activation scales from data without training (runtime-statistics phase of brevitas).

    Runs `steps` forward passes in training mode under no_grad; the learned scales then start
    from those statistics. Use this for untrained students you want to export (tests, smoke runs).
    """
    if isinstance(batches, torch.Tensor):
        batches = [batches]
    was_training = model.training
    model.train()
    for i in range(steps):
        model(batches[i % len(batches)])
    model.train(was_training)
