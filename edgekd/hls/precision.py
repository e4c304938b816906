"""hls4ml precisions from value ranges, for models whose quantizer scales are not powers of two.

hls4ml 1.3.0 converts a Quant with a float scale s into ApplyAlpha(1/s) -> integer quantizer -> ApplyAlpha(s)
and moves the rescaling ApplyAlpha layers down the graph. Every type it cannot infer gets the model's default
`fixed<16,6>`: an ApplyAlpha scale of 75.3 wraps around, a rescale of 3e-5 rounds to 0, the activations
between layers keep 10 fractional bits. That, not the hardware, is why plain hls4ml agrees with QONNX on only
60-98% of the predicted classes of such models.

`assign_range_precisions` replaces every type hls4ml left at a default with one chosen for the job:

* constants (ApplyAlpha scales and shifts, float weights and biases without a quantizer): from their own
  values, `CONST_SIGNIFICANT_BITS` significant bits for the smallest non-zero one, integer bits for the
  largest (an 18-bit scale, say, fits a DSP multiplier port);
* data (layer results, accumulators; quantizer outputs are left alone, they are the model): from the value
  range seen on the given inputs (a C-simulation trace of the design with wide data types and the final
  constant types), one extra integer bit of headroom, saturation on results; fractional bits exact where the
  traced values lie on a grid (integers after an integer quantizer: no rounding at all), else a
  `DATA_WIDTH`-bit type (relative error 2^-DATA_WIDTH of the largest value).

The result is measured, not assumed: the `hls` step compares the C-simulation with the QONNX execution.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["CONST_SIGNIFICANT_BITS", "DATA_WIDTH", "assign_range_precisions", "const_type", "data_type"]

CONST_SIGNIFICANT_BITS = 18  # an 18-bit constant feeds one DSP48 port
DATA_WIDTH = 32  # width of a data type whose values lie on no coarse grid
_MAX_EXACT_FRAC = 24  # finest grid accepted as "exact" (beyond it the values are treated as reals)
_MOVES_DATA = ("Reshape", "Transpose", "Clone", "Resize", "ZeroPadding1D", "ZeroPadding2D")
_WIDE = (64, 32)  # data types of the ranging pass: wide enough for any value of these small models


def _fixed(width: int, integer: int, signed: bool = True, rounding: str | None = None, saturation: str | None = None):
    from hls4ml.model.types import FixedPrecisionType

    return FixedPrecisionType(width=width, integer=integer, signed=signed, rounding_mode=rounding,
                              saturation_mode=saturation)


def _is_default(precision: Any) -> bool:
    """A type hls4ml picked by default or inference (TRN, WRAP), not one a quantizer of the model dictates."""
    from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType

    if isinstance(precision, IntegerPrecisionType) and not isinstance(precision, FixedPrecisionType):
        return False
    return (isinstance(precision, FixedPrecisionType) and str(precision.rounding_mode) == "TRN"
            and str(precision.saturation_mode) == "WRAP")


def const_type(values: np.ndarray, significant: int = CONST_SIGNIFICANT_BITS):
    """Signed fixed type holding every value with `significant` bits for the smallest non-zero magnitude
    (exact when the values lie on a coarser grid), rounded to nearest."""
    v = np.abs(np.asarray(values, dtype=np.float64).ravel())
    nz = v[v > 0]
    if nz.size == 0:
        return _fixed(2, 2, rounding="RND")
    integer = int(math.floor(math.log2(float(nz.max())))) + 2  # sign bit + the top bit
    frac = significant - 1 - int(math.floor(math.log2(float(nz.min()))))
    exact = _grid_frac(nz)
    if exact is not None:
        frac = min(frac, exact)
    frac = max(frac, 1 - integer)  # width >= 1
    return _fixed(integer + frac, integer, rounding="RND", saturation="SAT")


def _grid_frac(v: np.ndarray) -> int | None:
    """Smallest f <= _MAX_EXACT_FRAC with every value a multiple of 2^-f, else None."""
    v = np.asarray(v, dtype=np.float64).ravel()
    for f in range(-16, _MAX_EXACT_FRAC + 1):
        s = v * 2.0 ** f
        if np.all(s == np.round(s)):
            return f
    return None


def data_type(values: np.ndarray, accumulator: bool = False, min_frac: int | None = None):
    """Type for a layer's data from the values it held on the given inputs: one integer bit of headroom,
    exact fractional bits where the values lie on a grid, else `DATA_WIDTH` bits in all."""
    v = np.asarray(values, dtype=np.float64).ravel()
    max_abs = float(np.max(np.abs(v), initial=0.0))
    integer = (int(math.floor(math.log2(max_abs))) + 1 if max_abs > 0 else 0) + 2  # sign + headroom
    frac = _grid_frac(v)
    if frac is None or integer + frac > 2 * DATA_WIDTH:
        frac = DATA_WIDTH - integer
    if min_frac is not None:
        frac = max(frac, min_frac)
    frac = max(frac, 1 - integer)  # width >= 1
    if accumulator:  # WRAP: partial sums may overflow, the final sum fits (two's complement)
        return _fixed(integer + frac, integer)
    return _fixed(integer + frac, integer, rounding="RND", saturation="SAT")


def _like(old: Any, new: Any) -> Any:
    """`new` with the backend's C++ definition of `old` (hls4ml wraps each precision in an AP/AC class)."""
    from hls4ml.model.types import FixedPrecisionType

    if isinstance(old, FixedPrecisionType) and type(old) is not FixedPrecisionType:
        new.__class__ = old.__class__
    return new


def _retype(layer: Any, key: str, precision: Any) -> None:
    """Give the layer's type `key` ('result_t', 'accum_t', 'scale_t', ...) a new precision. hls4ml shares one
    NamedType between layers for defaults (`model_default_t`), so every type but the result (the output
    variable's own) becomes a new named type of this layer."""
    old = layer.types[key]
    precision = _like(old.precision, precision)
    if key == "result_t":
        old.precision = precision
        return
    new = copy.copy(old)
    new.name = f"{layer.name}_{key}"
    new.precision = precision
    layer.set_attr(key, new)
    weight = layer.weights.get(key[:-2]) if key.endswith("_t") else None
    if weight is not None:
        weight.type = new
        weight.update_precision(precision)  # also the decimals the writer prints the values with


def _set_weight_type(layer: Any, key: str, precision: Any) -> None:
    _retype(layer, f"{key}_t", precision)


def _constant_types(layer: Any) -> list[str]:
    """Give the layer's unquantized constants their own exact-as-possible types; returns what changed."""
    changed = []
    quantized = {"weight": layer.get_attr("weight_quantizer"), "bias": layer.get_attr("bias_quantizer")}
    for key in ("scale", "bias", "weight"):
        if key not in layer.weights or quantized.get(key) is not None:
            continue
        wt = layer.weights[key]
        if not _is_default(wt.type.precision):
            continue
        _set_weight_type(layer, key, const_type(wt.data))
        changed.append(f"{key}_t")
    return changed


def _data_keys(layer: Any) -> list[str]:
    """Data types of the layer hls4ml left at a default (never a quantizer's type, never the input's)."""
    if layer.class_name == "Input":
        return []
    keys = []
    for key in ("result_t", "accum_t"):
        t = layer.types.get(key)
        if t is not None and _is_default(t.precision):
            keys.append(key)
    return keys


def assign_range_precisions(hls_model: Any, x: np.ndarray) -> list[dict]:
    """Choose the precisions described in the module docstring on the (unwritten) hls4ml model, in place.

    `x`: the inputs (NCHW like the QONNX model) whose value ranges decide the data types. Returns one row per
    changed type: {layer, type, before, after, max_abs (data types)}. Compiles one traced C-simulation.
    """
    from edgekd.hls.csim import trace_csim

    before: dict[tuple[str, str], str] = {}
    data: dict[str, list[str]] = {}
    rows: list[dict] = []
    for layer in hls_model.get_layers():
        for key in list(layer.types):
            before[(layer.name, key)] = str(layer.types[key].precision)
        for key in _constant_types(layer):
            rows.append({"layer": layer.name, "type": key, "before": before[(layer.name, key)],
                         "after": str(layer.types[key].precision), "source": "constants"})
        keys = _data_keys(layer)
        if keys:
            data[layer.name] = keys
            for key in keys:  # ranging pass: wide enough that nothing wraps or rounds noticeably
                _retype(layer, key, _fixed(*_WIDE))
    if not data:
        if rows:
            _restamp(hls_model, "constants")
        return rows
    _restamp(hls_model, "ranging")
    traces = trace_csim(hls_model, np.asarray(x, dtype=np.float32))
    for layer in hls_model.get_layers():
        keys = data.get(layer.name)
        if not keys:
            continue
        if layer.class_name in _MOVES_DATA and keys == ["result_t"]:
            # values moved, not computed (an io_stream Reshape is an alias of its input stream): the input's type
            new = copy.copy(layer.get_input_variable().type.precision)
            _retype(layer, "result_t", new)
            rows.append({"layer": layer.name, "type": "result_t", "before": before[(layer.name, "result_t")],
                         "after": str(new), "source": "its input's type"})
            continue
        values = traces.get(layer.name)
        if values is None:  # not traced (hls4ml traces only layers with a function call): a safe wide type
            log.warning("no trace of hls4ml layer %s: its types stay wide (fixed<%d,%d>)", layer.name, *_WIDE)
            continue
        in_frac = _input_frac(layer)
        for key in keys:
            min_frac = None
            if key == "accum_t" and in_frac is not None:
                min_frac = min(in_frac, _MAX_EXACT_FRAC)  # every product lands on the accumulator's grid
            new = data_type(values, accumulator=key == "accum_t", min_frac=min_frac)
            _retype(layer, key, new)
            rows.append({"layer": layer.name, "type": key, "before": before[(layer.name, key)], "after": str(new),
                         "max_abs": float(np.max(np.abs(values), initial=0.0)), "source": f"range on {len(x)} inputs"})
        if "accum_t" in keys and "result_t" not in keys:
            _widen_accum_to_result(layer)
    _restamp(hls_model, "ranged")
    return rows


def _input_frac(layer: Any) -> int | None:
    """Fractional bits of an exact product input x weight of a Dense/Conv layer (None for other layers)."""
    if "weight" not in layer.weights:
        return None
    try:
        a = layer.get_input_variable().type.precision
        w = layer.weights["weight"].type.precision
        return int(a.width - a.integer) + int(w.width - w.integer)
    except AttributeError:
        return None


def _widen_accum_to_result(layer: Any) -> None:
    acc, res = layer.types["accum_t"].precision, layer.types["result_t"].precision
    if getattr(res, "integer", 0) > acc.integer:
        _retype(layer, "accum_t", _fixed(acc.width + res.integer - acc.integer, res.integer))


def _rerender(hls_model: Any) -> None:
    """Render the layers' C++ config and call templates again: hls4ml renders them once, at conversion, with
    the type names of that moment."""
    from hls4ml.model.flow import get_flow
    from hls4ml.model.optimizer import optimize_model

    backend = hls_model.config.backend.name.lower()
    optimize_model(hls_model, get_flow(f"{backend}:apply_templates").optimizers)


def _restamp(hls_model: Any, tag: str) -> None:
    """A new library name for the retyped design (hls4ml names its library after the model's stamp), and the
    C++ templates rendered with the new types."""
    _rerender(hls_model)
    stamp = getattr(hls_model, "_edgekd_stamp", None)
    if stamp is not None:
        hls_model._edgekd_stamp = hashlib.sha256(f"{stamp}:{tag}".encode()).hexdigest()[:8]
