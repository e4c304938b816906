"""Convolution and pooling nodes as real exporters write them, made explicit before the channels-last conversion.

ONNX lets an exporter omit every Conv / MaxPool / AveragePool attribute that has a default, and tf2onnx (QKeras via
qonnx's converter), FINN and older brevitas exports do: `pads` (default 0), `strides` and `dilations` (default 1),
`group` (default 1), Conv's `kernel_shape` (default: the weight's spatial shape), or `auto_pad` instead of `pads`.
qonnx 1.0.0's channels-last ops declare those attributes required ("Required attribute pads unspecified") and
hls4ml 1.3.0's ONNX frontend reads them without defaults (`int(None)` for a missing `group`). `normalise_conv_nodes`
writes each one out as the ONNX specification defines it (operators Conv, MaxPool, AveragePool, opsets 1-22):

* kernel_shape: Conv: the weight's dims 2..; pools: required (refused when absent);
* strides, dilations: 1 per spatial axis; group: 1;
* auto_pad NOTSET: `pads` or 0; VALID: 0; SAME_UPPER / SAME_LOWER: output ceil(in / stride), total padding
  max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0), the odd unit at the end (UPPER) or the start (LOWER);
* ceil_mode 1 is kept only where it gives the floor-mode output size (else refused).

AveragePool has no channels-last form in qonnx 1.0.0 (hls4ml then refuses the whole graph), so it becomes what it
computes: a depthwise Conv (a plain Conv with the weights on the channel diagonal for one channel or after a
float-scale quantizer, whose scale hls4ml cannot move through a depthwise kernel) with every weight 1/(kh*kw) and
the pool's strides; with
`count_include_pad` 1 its padding is the Conv's zero padding. For a power-of-two window the weight 2^-k is exact and
so is the rewrite (the same sum, scaled by a power of two); otherwise the weight is rounded to 2^-16 and the fold is
marked approximate (measured, not assumed).

Everything hls4ml 1.3.0 cannot compute is refused here with the node, its op, the attribute and what would make it
convert: dilations other than 1 (no dilated kernels; its output-size formula is wrong for them), grouped convolutions
other than depthwise with multiplier 1, 3-D kernels, padded max pooling (the io_stream pooling asserts pads == 0),
averages that exclude the padding, and pools whose Indices output is used.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from onnx import helper

from edgekd.export.byo_load import ByoError
from edgekd.export.prepare_graph import _QUANT_DOMAIN, _attr, drop_attributes, set_attribute

__all__ = ["explicit_pads", "normalise_conv_nodes"]

_AVG_WEIGHT_BITS = 16  # fractional bits of 1/n for a non-power-of-two averaging window (approximate)


def explicit_pads(auto_pad: str, pads: list[int] | None, in_dims: list[int], kernel: list[int], strides: list[int],
                  dilations: list[int]) -> list[int]:
    """ONNX `pads` ([begin..., end...]) for an `auto_pad` setting, as the specification defines them."""
    r = len(kernel)
    if auto_pad in ("", "NOTSET"):
        return [int(p) for p in pads] if pads else [0] * (2 * r)
    if auto_pad == "VALID":
        return [0] * (2 * r)
    begin, end = [], []
    for i in range(r):
        out = -(-in_dims[i] // strides[i])
        total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_dims[i], 0)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin + end


def _out_dims(in_dims: list[int], kernel: list[int], strides: list[int], pads: list[int], dilations: list[int],
              ceil: bool) -> list[int]:
    r = len(kernel)
    rnd = math.ceil if ceil else math.floor
    return [int(rnd((in_dims[i] + pads[i] + pads[i + r] - ((kernel[i] - 1) * dilations[i] + 1)) / strides[i])) + 1
            for i in range(r)]


class _Refusal:
    def __init__(self, path: Path | str, node) -> None:
        self.where = f"{path}: node '{node.name}' ({node.op_type})"

    def __call__(self, what: str, fix: str) -> ByoError:
        return ByoError(f"{self.where}: {what}; {fix}")


def _spatial(model, node, refuse: _Refusal) -> tuple[list[int], list[int], list[int], list[int], list[int], str]:
    """(input spatial dims, kernel, strides, dilations, explicit pads, auto_pad) with the ONNX defaults filled."""
    shape = model.get_tensor_shape(node.input[0])
    if shape is None or len(shape) < 3:
        raise refuse(f"input shape {shape} is not (N, C, spatial...)", "export the model with fixed input shapes")
    in_dims = [int(d) for d in shape[2:]]
    r = len(in_dims)
    kernel = _attr(node, "kernel_shape")
    if kernel is None and node.op_type == "Conv":
        w = model.get_tensor_shape(node.input[1])
        kernel = list(w[2:]) if w is not None else None
    if kernel is None:
        raise refuse("attribute kernel_shape is missing (the ONNX spec requires it for pooling)",
                     "export the pool with its kernel_shape")
    kernel = [int(k) for k in kernel]
    if len(kernel) != r:
        raise refuse(f"kernel_shape {kernel} has {len(kernel)} axes for a {r}-D input {shape}",
                     "export a consistent model")
    strides = [int(s) for s in (_attr(node, "strides") or [1] * r)]
    dilations = [int(d) for d in (_attr(node, "dilations") or [1] * r)]
    auto_pad = _attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in ("NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise refuse(f"attribute auto_pad '{auto_pad}' is not an ONNX value", "use NOTSET with explicit pads")
    pads = explicit_pads(auto_pad, _attr(node, "pads"), in_dims, kernel, strides, dilations)
    return in_dims, kernel, strides, dilations, pads, auto_pad


def normalise_conv_nodes(model, path: Path | str = "<model>") -> list[dict]:
    """Rewrite `model` (a cleaned, channels-first qonnx ModelWrapper) in place as the module docstring says.
    Returns fold records ({kind, nodes, into, detail[, approximate]}) for the rewrites that change what a node
    is (AveragePool -> Conv); filling defaults is not recorded. Raises ByoError for what cannot convert."""
    folds: list[dict] = []
    for node in list(model.graph.node):
        if node.op_type not in ("Conv", "MaxPool", "AveragePool"):
            continue
        refuse = _Refusal(path, node)
        in_dims, kernel, strides, dilations, pads, auto_pad = _spatial(model, node, refuse)
        r = len(kernel)
        if r not in (1, 2):
            raise refuse(f"{r}-D kernel_shape {kernel}", "hls4ml 1.3.0 converts 1-D and 2-D convolutions and pools only")
        if any(d != 1 for d in dilations):
            raise refuse(f"attribute dilations {dilations}",
                         "hls4ml 1.3.0 has no dilated kernels (and sizes their output wrongly); use dilation 1, or "
                         "a kernel of the dilated extent with zeros between the taps")
        if node.op_type == "Conv":
            _conv(model, node, refuse, kernel, strides, dilations, pads)
            continue
        ceil = int(_attr(node, "ceil_mode", 0))
        if ceil and _out_dims(in_dims, kernel, strides, pads, dilations, True) != \
                _out_dims(in_dims, kernel, strides, pads, dilations, False):
            raise refuse(f"attribute ceil_mode 1 on a {in_dims} input adds a partial window at the edge "
                         f"(output {_out_dims(in_dims, kernel, strides, pads, dilations, True)} instead of "
                         f"{_out_dims(in_dims, kernel, strides, pads, dilations, False)})",
                         "hls4ml 1.3.0 pools whole windows only; use ceil_mode 0 or an input size the stride divides")
        if len(node.output) > 1 and node.output[1] and model.find_consumers(node.output[1]):
            raise refuse("its Indices output is used", "hls4ml has no arg-max pooling; use only the pooled values")
        if node.op_type == "MaxPool":
            if any(pads):
                raise refuse(f"attribute pads {pads} (auto_pad {auto_pad})",
                             "hls4ml 1.3.0's io_stream pooling takes no padding; pad the input with a Pad node "
                             "or a padded Conv before the pool, or use pads 0")
            drop_attributes(node, "auto_pad", "ceil_mode", "dilations", "storage_order")
            set_attribute(node, "kernel_shape", kernel)
            set_attribute(node, "strides", strides)
            set_attribute(node, "pads", pads)
            del node.output[1:]
            continue
        if any(pads) and not int(_attr(node, "count_include_pad", 0)):
            raise refuse(f"attribute pads {pads} with count_include_pad 0 divides the edge windows by fewer values",
                         "use count_include_pad 1 (a zero-padded average, exact) or pads 0")
        folds.append(_average_as_conv(model, node, kernel, strides, pads))
    return folds


def _conv(model, node, refuse: _Refusal, kernel: list[int], strides: list[int], dilations: list[int],
          pads: list[int]) -> None:
    w = model.get_tensor_shape(node.input[1])
    c_in = model.get_tensor_shape(node.input[0])[1]
    group = int(_attr(node, "group", 1))
    if group != 1 and not (group == c_in and w[0] == c_in):
        what = (f"depthwise with depth multiplier {w[0] // c_in}" if group == c_in
                else f"grouped: {group} groups of {c_in // max(group, 1)} input channels")
        raise refuse(f"attribute group {group} ({what}; weight {list(w)})",
                     "hls4ml 1.3.0 converts group 1 and depthwise convolutions with one filter per channel "
                     "(group == input channels == output channels); split the layer into one Conv per group, or "
                     "a depthwise Conv followed by a 1x1 Conv")
    if list(w[2:]) != kernel:
        raise refuse(f"attribute kernel_shape {kernel} differs from the weight's shape {list(w)}",
                     "export a consistent model")
    drop_attributes(node, "auto_pad")
    for name, value in (("kernel_shape", kernel), ("strides", strides), ("dilations", dilations), ("pads", pads),
                        ("group", group)):
        set_attribute(node, name, value)


def _power_of_two_source(model, tensor: str) -> bool:
    """True when the values of `tensor` come (through Relu / MaxPool / reshapes) from a Quant with one
    power-of-two scale, or from the graph input."""
    from edgekd.export.prepare_graph import is_power_of_two

    node = model.find_producer(tensor)
    while node is not None and node.op_type in ("Relu", "MaxPool", "Reshape", "Flatten", "Transpose"):
        node = model.find_producer(node.input[0])
    if node is None:
        return True
    if node.op_type != "Quant":
        return False
    scale = model.get_initializer(node.input[1])
    return scale is not None and np.size(scale) == 1 and is_power_of_two(scale)


def _average_as_conv(model, node, kernel: list[int], strides: list[int], pads: list[int]) -> dict:
    from edgekd.export.prepare_graph import is_power_of_two

    channels = int(model.get_tensor_shape(node.input[0])[1])
    # depthwise (C products per pixel) unless a float-scale quantizer feeds the pool: hls4ml 1.3.0 moves that scale
    # through the next layer's weights and fails on a depthwise kernel's shape ('operands could not be broadcast
    # together with shapes (2,2,4) (3,3,1,4)'); a plain Conv with the weights on the channel diagonal converts
    group = channels if _power_of_two_source(model, node.input[0]) else 1
    n = int(np.prod(kernel))
    exact = is_power_of_two(1.0 / n)
    value = 1.0 / n if exact else round((1.0 / n) * 2 ** _AVG_WEIGHT_BITS) * 2.0 ** -_AVG_WEIGHT_BITS
    if group == channels:
        weight = np.full((channels, 1, *kernel), value, dtype=np.float32)
    else:
        weight = np.zeros((channels, channels, *kernel), dtype=np.float32)
        weight[np.arange(channels), np.arange(channels)] = value
    frac = int(round(-math.log2(float(weight.flat[0])))) if exact else _AVG_WEIGHT_BITS
    bits = max(2, int(math.ceil(math.log2(float(weight.flat[0]) * 2 ** frac + 1))) + 1)
    name = node.name or model.make_new_valueinfo_name()
    raw = f"{name}_average_weight"
    model.set_initializer(raw, weight)
    for suffix, value in (("scale", 2.0 ** -frac), ("zp", 0.0), ("bits", float(bits))):
        model.set_initializer(f"{name}_average_{suffix}", np.asarray(value, dtype=np.float32))
    wq = helper.make_node("Quant", [raw, f"{name}_average_scale", f"{name}_average_zp", f"{name}_average_bits"],
                          [f"{name}_average_w"], name=f"{name}_average_quant", domain=_QUANT_DOMAIN, signed=1,
                          narrow=0, rounding_mode="ROUND")
    conv = helper.make_node("Conv", [node.input[0], f"{name}_average_w"], [node.output[0]], name=name,
                            kernel_shape=kernel, strides=strides, dilations=[1] * len(kernel), pads=pads,
                            group=group)
    idx = list(model.graph.node).index(node)
    model.graph.node.remove(node)
    model.graph.node.insert(idx, conv)
    model.graph.node.insert(idx, wq)
    model.set_tensor_shape(f"{name}_average_w", list(weight.shape))
    detail = (f"AveragePool {kernel} stride {strides}{' pads ' + str(pads) if any(pads) else ''} computed as a "
              f"{'depthwise Conv' if group > 1 else 'Conv' if channels == 1 else 'Conv (channel diagonal)'} with "
              f"weights 1/{n}")
    record = {"kind": "average_as_conv", "nodes": [name], "into": name,
              "detail": detail + (" = 2^-%d (exact)" % frac if exact else
                                  f" rounded to 2^-{_AVG_WEIGHT_BITS} ({n} is not a power of two: approximate)")}
    if not exact:
        record["approximate"] = True
    return record
