"""The estimator's input: one hls4ml layer as plain data (`LayerSpec`), its cost (`LayerCost`), and both built
from a converted hls4ml `ModelGraph`.

`LayerSpec` records are JSON-serialisable, so the estimator can be tested and calibrated without hls4ml;
`layers_from_hls_model` is the one place that reads hls4ml's layer attributes. The layer-type families
decide which cost model prices a layer (edgekd.estimate.cost). It imports no other part of the
estimator, so every other part can import it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Literal, Mapping

from edgekd.errors import EstimateError

IOType = Literal["io_parallel", "io_stream"]

#: layer types that cost nothing in hardware (wiring / re-labelling of the same data)
FREE_TYPES = frozenset({"Input", "InputLayer", "Flatten", "Reshape", "Quant", "Dropout", "Identity"})
_CONV_TYPES = frozenset({"Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "PointwiseConv1D",
                         "PointwiseConv2D", "Conv2DBatchnorm", "Conv1DBatchnorm"})
_POOL_TYPES = frozenset({"Pooling1D", "Pooling2D"})
_GLOBAL_POOL_TYPES = frozenset({"GlobalPooling1D", "GlobalPooling2D"})
_ACT_TYPES = frozenset({"Activation", "ParametrizedActivation", "HardActivation", "PReLU", "Softmax",
                        "TernaryTanh", "LeakyReLU", "ReLU", "ELU", "ThresholdedReLU"})
_SCALE_TYPES = frozenset({"BatchNormalization", "ApplyAlpha"})
_PAD_TYPES = frozenset({"ZeroPadding1D", "ZeroPadding2D"})
_MATH_TYPES = frozenset({"Dense"}) | _CONV_TYPES


@dataclass
class LayerSpec:
    """One hls4ml layer as plain data (all shapes channels-last, without the batch dimension).

    `in_shape`/`out_shape`: (n,) for dense data, (width, channels) for 1D maps, (height, width, channels)
    for 2D maps. Kernel/pool geometry is only needed for conv and pooling layers. Bit widths are the total
    widths of the fixed-point types (ap_fixed<W, I> -> W).
    """

    name: str
    type: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    filt_height: int = 1
    filt_width: int = 1
    stride_height: int = 1
    stride_width: int = 1
    pool_height: int = 1
    pool_width: int = 1
    pool_op: str = "max"
    activation: str | None = None
    reuse_factor: int = 1
    strategy: str = "latency"
    parallelization_factor: int = 1
    weight_bits: int = 16
    input_bits: int = 16
    result_bits: int = 16
    n_weights: int | None = None
    n_nonzero_weights: int | None = None
    #: io_stream: stream items this layer reads per image when they differ from its input pixels (a Dense
    #: after an aliased flatten reads the flatten's input items); None = `in_pixels`
    in_packets: int | None = None
    #: strategy distributed_arithmetic: LUT / FF / pipeline depth of one kernel evaluation from da4ml's cost
    #: model (edgekd.hls.da); DA layers use no DSPs and run at reuse factor 1
    da_lut: int | None = None
    da_ff: int | None = None
    da_depth: int | None = None

    def __post_init__(self) -> None:
        self.in_shape = tuple(int(d) for d in self.in_shape)
        self.out_shape = tuple(int(d) for d in self.out_shape)
        self.strategy = str(self.strategy).lower()
        self.pool_op = str(self.pool_op).lower()
        if self.pool_op == "average":
            self.pool_op = "avg"
        if self.reuse_factor < 1:
            raise EstimateError(f"layer {self.name!r}: reuse_factor must be >= 1 (got {self.reuse_factor})")
        if self.parallelization_factor < 1:
            raise EstimateError(f"layer {self.name!r}: parallelization_factor must be >= 1")
        if not self.in_shape or not self.out_shape or min(self.in_shape + self.out_shape) < 1:
            raise EstimateError(f"layer {self.name!r}: shapes must be non-empty and positive "
                                f"(in {self.in_shape}, out {self.out_shape})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in_shape"], d["out_shape"] = list(self.in_shape), list(self.out_shape)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LayerSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise EstimateError(f"layer {d.get('name', '?')!r}: unknown LayerSpec keys {sorted(unknown)}")
        return cls(**dict(d))

    # derived geometry -----------------------------------------------------------------------------------
    @property
    def n_chan(self) -> int:
        return self.in_shape[-1]

    @property
    def n_filt(self) -> int:
        return self.out_shape[-1]

    @property
    def in_pixels(self) -> int:
        return math.prod(self.in_shape[:-1]) if len(self.in_shape) > 1 else 1

    @property
    def out_pixels(self) -> int:
        return math.prod(self.out_shape[:-1]) if len(self.out_shape) > 1 else 1

    @property
    def in_width(self) -> int:
        return self.in_shape[-2] if len(self.in_shape) > 1 else 1

    @property
    def kernel_inputs(self) -> int:
        """Inputs of one kernel evaluation (dense n_in, conv filt_h*filt_w*n_chan, depthwise filt_h*filt_w)."""
        if self.type == "Dense":
            return self.in_shape[-1]
        k = self.filt_width * (self.filt_height if self.is_2d else 1)
        return k if self.is_depthwise else k * self.n_chan

    @property
    def is_2d(self) -> bool:
        return self.type.endswith("2D") or self.type.endswith("2DBatchnorm")

    @property
    def is_depthwise(self) -> bool:
        return self.type.startswith("Depthwise")

    @property
    def weights_total(self) -> int:
        if self.n_weights is not None:
            return self.n_weights
        if self.type == "Dense":
            return self.in_shape[-1] * self.out_shape[-1]
        if self.is_depthwise:
            return self.kernel_inputs * self.n_chan
        return self.kernel_inputs * self.n_filt

    @property
    def weights_nonzero(self) -> int:
        return self.weights_total if self.n_nonzero_weights is None else self.n_nonzero_weights


def layer_specs_from_dicts(items: Iterable[Mapping[str, Any]]) -> list[LayerSpec]:
    return [LayerSpec.from_dict(d) for d in items]


@dataclass
class LayerCost:
    """Cost of one layer. For io_stream the streaming fields drive the dataflow schedule."""

    name: str
    type: str
    cycles: int  # latency of this layer alone (io_stream: one image through this process)
    ii: int  # cycles before the layer accepts the next image
    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram_18k: int = 0
    # io_stream schedule terms
    items_in: int = 1  # stream items (pixels) read per image
    item_ii: int = 1  # cycles per input item
    fill_items: int = 1  # input items needed before the first output item
    depth: int = 0  # pipeline depth from the item that completes an output to that output
    tail: int = 0  # cycles after the last input item that are not pipeline depth (e.g. writing outputs)
    #: index of the input item that completes the LAST output (None: the last item); a pool or strided conv
    #: that floors (9 -> 4) reads the rest of its input without producing anything from it
    last_item: int | None = None
    exit: int = 0  # cycles from the last output to the process's done (loop exit): csynth's latency, not data
    notes: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "cycles": self.cycles, "ii": self.ii, "dsp": self.dsp,
                "lut": self.lut, "ff": self.ff, "bram_18k": self.bram_18k}


# --- from an hls4ml ModelGraph -----------------------------------------------------------------------------

def _width(precision: Any, default: int) -> int:
    w = getattr(precision, "width", None)
    return int(w) if w is not None else default


def layers_from_hls_model(hls_model: Any) -> list[LayerSpec]:
    """LayerSpecs from a converted hls4ml 1.3.0 ModelGraph (reads attributes only; no compile needed)."""
    cfg = getattr(hls_model, "config", None)
    model_strategy = "latency"
    try:
        model_strategy = str(cfg.get_config_value("HLSConfig")["Model"].get("Strategy", "latency")).lower()
    except Exception:  # noqa: BLE001 - a config without the key: keep the default
        pass
    specs: list[LayerSpec] = []
    for layer in hls_model.get_layers():
        attr = layer.attributes
        kind = layer.class_name
        out_var = layer.get_output_variable()
        out_shape = tuple(int(d) for d in out_var.shape)
        if kind == "Input":
            in_shape = out_shape
        else:
            in_var = layer.get_input_variable()
            in_shape = tuple(int(d) for d in in_var.shape)
        in_bits = _width(getattr(layer.get_input_variable(), "type", None) and layer.get_input_variable().type.precision, 16) \
            if kind != "Input" else _width(out_var.type.precision, 16)
        weight_bits, n_w, n_nz = 16, None, None
        w = layer.weights.get("weight") if hasattr(layer, "weights") else None
        if w is not None:
            weight_bits = _width(w.type.precision, 16)
            data = getattr(w, "data", None)
            if data is not None:
                import numpy as np

                arr = np.asarray(data)
                n_w = int(arr.size)
                n_nz = int(np.count_nonzero(arr))
        elif kind in _SCALE_TYPES and layer.weights.get("scale") is not None:
            weight_bits = _width(layer.weights["scale"].type.precision, 16)
        pool_op = str(attr.get("pool_op", "Max")).lower()
        strategy = str(attr.get("strategy", model_strategy) or model_strategy).lower()
        spec = LayerSpec(
            name=layer.name,
            type=kind,
            in_shape=in_shape,
            out_shape=out_shape,
            filt_height=int(attr.get("filt_height", attr.get("pool_height", 1)) or 1),
            filt_width=int(attr.get("filt_width", attr.get("pool_width", 1)) or 1),
            stride_height=int(attr.get("stride_height", 1) or 1),
            stride_width=int(attr.get("stride_width", 1) or 1),
            pool_height=int(attr.get("pool_height", 1) or 1),
            pool_width=int(attr.get("pool_width", 1) or 1),
            pool_op="avg" if pool_op.startswith("av") else "max",
            activation=attr.get("activation"),
            reuse_factor=int(attr.get("reuse_factor", 1) or 1),
            strategy=strategy,
            parallelization_factor=int(attr.get("parallelization_factor", 1) or 1),
            weight_bits=weight_bits,
            input_bits=in_bits,
            result_bits=_width(out_var.type.precision, 16),
            n_weights=n_w,
            n_nonzero_weights=n_nz,
        )
        specs.append(spec)
    return specs
