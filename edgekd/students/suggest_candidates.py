"""The candidates of suggest-student: cell_cnn variants of the configured student, their hls4ml layer list, and
the budgets (parameters, estimated latency, board fit) that decide which ones are scored.

The latency of a candidate is the analytical estimate of edgekd.estimate on LayerSpecs built here from
the student config (`cell_cnn_layer_specs`: the layer list hls4ml 1.3.0 builds from the exported QONNX),
without exporting or converting each candidate. Nothing here trains or runs a model; the similarity score is
edgekd.students.suggest_score's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from edgekd.config import HLSConfig, StudentConfig
from edgekd.estimate import LayerSpec
from edgekd.students.cell_cnn import _feature_shapes, build_cell_cnn, count_params, model_input_shape

DEFAULT_WIDTHS = (4, 8, 16, 32)
DEFAULT_DEPTHS = (1, 2, 3)
DEFAULT_BITS = (4, 6, 8)


class SuggestError(ValueError):
    """suggest-student cannot run on this config or build folder; the message says what to change."""


@dataclass
class Candidate:
    student: StudentConfig
    params: int
    latency: dict
    score: float | None = None
    d_semantic: float | None = None
    d_relation: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        bits = self.student.weight_bits
        return f"conv {'-'.join(map(str, self.student.channels))} @{bits}b"

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "channels": list(self.student.channels),
            "kernel_sizes": list(self.student.kernel_sizes),
            "weight_bits": self.student.weight_bits,
            "act_bits": self.student.act_bits,
            "params": self.params,
            "latency_us": self.latency["us"],
            "latency_cycles": self.latency["cycles"],
            "ii_cycles": self.latency["ii_cycles"],
            "lut_estimate": self.latency["resources"]["lut"],
            "dsp_estimate": self.latency["resources"]["dsp"],
            "score": self.score,
            "d_semantic": self.d_semantic,
            "d_relation": self.d_relation,
            "student_config": self.student.model_dump(mode="json"),
        }


# --- candidates ---------------------------------------------------------------------------------------------


def candidate_configs(
    base: StudentConfig,
    widths: Iterable[int] = DEFAULT_WIDTHS,
    depths: Iterable[int] = DEFAULT_DEPTHS,
    bits: Iterable[int] = DEFAULT_BITS,
) -> list[StudentConfig]:
    """cell_cnn variants of `base`: non-decreasing conv widths from `widths` for each depth, kernel 3 (or the
    base's first kernel size), one bit width for weights and activations; input, pool and the other
    quantizers as in `base`. Variants whose feature maps shrink to nothing are left out."""
    if base.name != "cell_cnn":
        raise SuggestError(f"student.name is '{base.name}': suggest-student only knows cell_cnn variants")
    kernel = base.kernel_sizes[0]
    out = []
    for depth in depths:
        for channels in itertools.combinations_with_replacement(sorted(set(widths)), depth):
            for b in bits:
                data = base.model_dump()
                data.update(channels=list(channels), kernel_sizes=[kernel] * depth, weight_bits=b, act_bits=b)
                cfg = StudentConfig.model_validate(data)
                try:
                    _feature_shapes(cfg)
                except ValueError:
                    continue
                out.append(cfg)
    return out


def _accumulator_bits(in_bits: int, w_bits: int, n_in: int, bias_bits: int) -> int:
    # hls4ml's inferred accumulator: products plus log2 of the fan-in, at least as wide as the bias (approximate)
    return max(in_bits + w_bits + math.ceil(math.log2(max(2, n_in))), bias_bits + 8)


def cell_cnn_layer_specs(cfg: StudentConfig, num_classes: int, hls: HLSConfig,
                         in_channels: int = 1) -> list[LayerSpec]:
    """The LayerSpecs hls4ml 1.3.0 builds for this cell_cnn (checked against the ModelGraph in the tests)."""
    from edgekd.hls.convert import model_defaults

    rf, strategy = model_defaults(hls)  # 'auto': the fastest setting; make_candidates then fits it to the board
    kw = {"reuse_factor": rf, "strategy": strategy.lower()}
    c0, s, _ = model_input_shape(cfg, in_channels)  # (C, S, S), or (C k^2, S/k, S/k) with input_block k
    n_conv = len(cfg.channels)
    w_bits = [cfg.weight_bits] * (n_conv + 1) if isinstance(cfg.weight_bits, int) else list(cfg.weight_bits)
    a_bits = [cfg.act_bits] * n_conv if isinstance(cfg.act_bits, int) else list(cfg.act_bits)
    ib = cfg.input_bits
    specs = [
        # channels-last input (edgekd.export.qonnx): no input Transpose
        LayerSpec("global_in", "Input", (s, s, c0), (s, s, c0), input_bits=ib, result_bits=ib, **kw),
        LayerSpec("input_quant", "Activation", (s, s, c0), (s, s, c0), activation="linear", input_bits=ib,
                  result_bits=ib, **kw),
    ]
    h, c, bits = s, c0, ib
    for i, ((out_c, k), (_, ph, _)) in enumerate(zip(zip(cfg.channels, cfg.kernel_sizes), _feature_shapes(cfg))):
        oh = h - k + 1
        acc = _accumulator_bits(bits, w_bits[i], k * k * c, cfg.bias_bits)
        specs.append(LayerSpec(f"Conv2D_{i}", "Conv2D", (h, h, c), (oh, oh, out_c), filt_height=k, filt_width=k,
                               weight_bits=w_bits[i], input_bits=bits, result_bits=acc, **kw))
        if cfg.pool > 1:
            specs.append(LayerSpec(f"MaxPool_{i}", "Pooling2D", (oh, oh, out_c), (ph, ph, out_c),
                                   filt_height=cfg.pool, filt_width=cfg.pool, stride_height=cfg.pool,
                                   stride_width=cfg.pool, pool_height=cfg.pool, pool_width=cfg.pool,
                                   input_bits=acc, result_bits=acc, **kw))
        specs.append(LayerSpec(f"Relu_{i}", "Activation", (ph, ph, out_c), (ph, ph, out_c), activation="ReLU",
                               input_bits=acc, result_bits=a_bits[i], **kw))
        h, c, bits = ph, out_c, a_bits[i]
    flat = h * h * c
    specs.append(LayerSpec("Flatten_0", "Reshape", (h, h, c), (flat,), input_bits=bits, result_bits=bits, **kw))
    specs.append(LayerSpec("Dense_0", "Dense", (flat,), (num_classes,), weight_bits=w_bits[-1], input_bits=bits,
                           result_bits=cfg.output_bits, **kw))
    return specs


def make_candidates(base: StudentConfig, num_classes: int, hls: HLSConfig, budget_params: int | None,
                    budget_latency_us: float | None, in_channels: int = 1, **grid) -> list[Candidate]:
    """Enumerate variants and keep those within the budgets (params from the built model, latency estimated)
    that fit the board (hls.max_utilization, unless hls.on_overflow is warn). `in_channels`: 1 grey, 3 colour."""
    from edgekd.hls.fit import choose_settings
    from edgekd.hw import load_board

    board = load_board(hls.board)
    out = []
    for cfg in candidate_configs(base, **grid):
        params = count_params(build_cell_cnn(cfg, num_classes, quantized=False, in_channels=in_channels))
        if budget_params is not None and params > budget_params:
            continue
        specs = cell_cnn_layer_specs(cfg, num_classes, hls, in_channels)
        # per-layer reuse factors, as the hls step will choose them (a pixel stream: P pixels per clock, k x k blocks)
        arrival = {"pixels_per_clock": board.pixels_per_clock, "input_block": cfg.input_block} \
            if board.interface == "pixel_stream" and hls.io_type == "io_stream" else {}
        fit = choose_settings(specs, hls, board, arrival)
        if not fit.fits and hls.on_overflow == "fail":
            continue
        latency = {**fit.estimate, "fit": fit.to_json()}
        if budget_latency_us is not None and latency["us"] > budget_latency_us:
            continue
        out.append(Candidate(cfg, params, latency))
    return out
