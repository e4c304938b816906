"""Rewrite 4 of edgekd.export.prepare: a float BatchNormalization between an integer-grid layer and an activation
quantizer, replaced by an affine on power-of-two grids with the same quantized outputs (`FoldBatchNormSteps`).

FINN / brevitas binary and ternary networks (the zoo's TFC_1W1A, TFC_1W2A, TFC_2W2A) compute
``Q(act(BN(x @ W)))`` with x and W on power-of-two grids and a BatchNormalization whose factors are arbitrary
floats, some negative. hls4ml 1.3.0 fuses BN + a bipolar / ternary quantizer into BatchNormalizationQuantizedTanh,
which compares with one threshold whatever the sign of the BN factor (wrong for negative factors) and whose
io_stream template does not compile (threshold type != data type). Neither is needed: the accumulator
``K = x_code . w_code`` takes integer values in a range known from the weights (|K| <= sum |w_code| * max
|x_code|), and the quantizer's output is a staircase in K. Any affine ``u = alpha*K + beta`` that keeps every
plateau of that staircase inside its rounding interval gives the same outputs; this module searches for one
with alpha and beta on the coarsest power-of-two grid (checked on every reachable K of every channel, against
the original nodes executed by ONNX Runtime), then writes it into the layer: weights ``w_code * alpha`` (an
exact fixed-point grid) and bias ``beta``. The BatchNormalization (and the layer's bias Add) disappear; the
result is exact by construction and `verify_preparation` checks it bit for bit.
"""

from __future__ import annotations

import copy
import math

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper

from edgekd.export.prepare_batchnorm import BatchNormFolder
from edgekd.export.prepare_graph import (
    _MAX_CONST_BITS,
    _QUANT_DOMAIN,
    _add_with_const,
    _consumers,
    _producer,
    _quant_params,
    exact_grid,
    is_power_of_two,
    quant_values,
    remove_dead_nodes,
)

__all__ = ["FoldBatchNormSteps"]

_MAX_RANGE = 1 << 16  # accumulator values enumerated per channel at most (2 * bound + 1)
_MAX_FRAC = 20  # finest grid tried for alpha and beta: 2^-20
_FLOAT32_EXACT = 1 << 24  # ONNX Runtime's float32 sums stay exact below this many grid steps


def _scalar_quant(model: ModelWrapper, node, any_scale: bool = False) -> tuple[float, int, int, bool] | None:
    """(scale, lowest code, highest code, bipolar) of a Quant / BipolarQuant with a constant scalar power-of-two
    (with `any_scale`: positive) scale and zero point 0, else None."""
    if node is None:
        return None
    if node.op_type == "BipolarQuant":
        s = model.get_initializer(node.input[1])
        if s is None or np.size(s) != 1 or not (is_power_of_two(s) or any_scale and float(np.ravel(s)[0]) > 0):
            return None
        return float(np.ravel(s)[0]), -1, 1, True
    if node.op_type != "Quant":
        return None
    p = _quant_params(model, node)
    if p is None or p["scale"].size != 1 or np.any(p["zero_point"] != 0):
        return None
    if not (is_power_of_two(p["scale"]) or any_scale and float(p["scale"].item()) > 0):
        return None
    if p["rounding"] != "ROUND" or p["bits"] != math.floor(p["bits"]):
        return None
    b = int(p["bits"])
    lo = (-(2 ** (b - 1)) + int(p["narrow"])) if p["signed"] else 0
    hi = 2 ** (b - 1) - 1 if p["signed"] else 2 ** b - 1 - int(p["narrow"])
    return float(p["scale"].item()), lo, hi, False


def _input_codes(model: ModelWrapper, tensor: str) -> tuple[float, int] | None:
    """(scale, max |code|) of a layer input that comes from a scalar power-of-two quantizer (through moves)."""
    node = _producer(model, tensor)
    while node is not None and node.op_type in ("Reshape", "Flatten", "Transpose"):
        node = _producer(model, node.input[0])
    q = _scalar_quant(model, node, any_scale=True)
    if q is None:
        return None
    s, lo, hi, _ = q
    return s, max(abs(lo), abs(hi))


def _weight_codes(model: ModelWrapper, layer) -> tuple[object, float, np.ndarray] | None:
    q = _producer(model, layer.input[1])
    sq = _scalar_quant(model, q, any_scale=True)
    w = model.get_initializer(q.input[0]) if q is not None else None
    if sq is None or w is None or len(_consumers(model, q.output[0])) != 1:
        return None
    s = sq[0]
    if q.op_type == "BipolarQuant":
        codes = np.where(np.asarray(w, dtype=np.float64) >= 0, 1.0, -1.0)
    else:
        codes = quant_values(w, _quant_params(model, q)) / s
    return q, s, codes


def _plateaus(codes: np.ndarray) -> list[tuple[int, int, int]]:
    """[(first index, last index, level)] of a non-decreasing integer sequence."""
    out, start = [], 0
    for i in range(1, len(codes) + 1):
        if i == len(codes) or codes[i] != codes[start]:
            out.append((start, i - 1, int(codes[start])))
            start = i
    return out


def _bounds(level: int, lo: int, hi: int, bipolar: bool, relu: bool) -> tuple[float, float]:
    """(lower, upper) open bounds on u for the quantizer to output `level` (inf where it clips). A bipolar
    quantizer's levels are kept at |u| > 1/2, where a 2-bit narrow Quant gives the same +-1 (it replaces it)."""
    if bipolar:
        return (0.5, math.inf) if level > 0 else (-math.inf, -0.5)
    low = -math.inf if level == lo or (relu and level == 0) else level - 0.5
    high = math.inf if level == hi else level + 0.5
    return low, high


def _search(k: np.ndarray, codes: np.ndarray, lo: int, hi: int, bipolar: bool, relu: bool
            ) -> tuple[float, float, int] | None:
    """(alpha, beta, f): alpha*k + beta within every plateau's bounds, both on the grid 2^-f (smallest f)."""
    cons = []
    for p, q, level in _plateaus(codes):
        low, high = _bounds(level, lo, hi, bipolar, relu)
        cons.append((float(k[p]), float(k[q]), low, high))
    a_lo, a_hi = 0.0, math.inf
    for p_i, _q_i, l_i, _ in cons:
        for _p_j, q_j, _, u_j in cons:
            if math.isinf(l_i) or math.isinf(u_j):
                continue
            if q_j > p_i:
                a_hi = min(a_hi, (u_j - l_i) / (q_j - p_i))
            elif q_j < p_i:
                a_lo = max(a_lo, (l_i - u_j) / (p_i - q_j))
            elif u_j <= l_i:
                return None
    if not a_lo < a_hi:
        return None
    span = float(np.max(np.abs(k)))
    for f in range(0, _MAX_FRAC + 1):
        step = 2.0 ** -f
        first = math.floor(a_lo / step) + 1
        last = math.ceil(a_hi / step) - 1 if math.isfinite(a_hi) else first + 64
        if first > last:
            continue
        cands = sorted(range(first, last + 1), key=lambda m: (m & (m - 1) != 0, abs(m * step - (a_lo + min(a_hi, 2 * a_lo + 1)) / 2)))
        for m in cands[:64]:
            a = m * step
            b_lo = max((l - a * p for p, _q, l, _u in cons if math.isfinite(l)), default=-math.inf)
            b_hi = min((u - a * q for _p, q, _l, u in cons if math.isfinite(u)), default=math.inf)
            if not b_lo < b_hi:
                continue
            if math.isinf(b_lo) and math.isinf(b_hi):
                b = 0.0
            elif math.isinf(b_lo):
                b = (math.ceil(b_hi / step) - 1) * step
            elif math.isinf(b_hi):
                b = (math.floor(b_lo / step) + 1) * step
            else:
                b = (math.floor(((b_lo + b_hi) / 2) / step)) * step
                if not b_lo < b < b_hi:
                    b = (math.floor(b_lo / step) + 1) * step
            if not b_lo < b < b_hi:
                continue
            if (abs(a) * span + abs(b)) * 2 ** f >= _FLOAT32_EXACT:
                return None
            return a, b, f
    return None


class FoldBatchNormSteps(BatchNormFolder):
    """See the module docstring. Records `folds` and, for BatchNormalizations it cannot rewrite, `skipped`."""

    def _fold(self, model: ModelWrapper, bn) -> str | None:  # noqa: C901 - one linear recipe
        if any(model.get_initializer(t) is None for t in bn.input[1:5]):
            return "its parameters are not constants"
        prod = _producer(model, bn.input[0])
        bias_add = None
        if _add_with_const(model, prod) is not None:
            bias_add = prod
            prod = _producer(model, prod.input[_add_with_const(model, prod)[0]])
        if prod is None or prod.op_type not in ("MatMul", "Conv"):
            return "it does not follow a MatMul or Conv"
        layer = prod
        chain = [c for c in _consumers(model, bn.output[0])]
        relu = None
        if len(chain) == 1 and chain[0].op_type == "Relu":
            relu = chain[0]
            chain = _consumers(model, relu.output[0])
        if len(chain) != 1 or _scalar_quant(model, chain[0], any_scale=True) is None:
            return ("it is not followed by one activation quantizer with one scale and no zero point, so its "
                    "outputs are not a staircase the layer can reproduce")
        act = chain[0]
        s_q, lo, hi, bipolar = _scalar_quant(model, act, any_scale=True)
        inp = _input_codes(model, layer.input[0])
        wc = _weight_codes(model, layer)
        if inp is None or wc is None:
            return (f"{layer.name}'s input or weights do not come from a quantizer with one power-of-two scale, so "
                    "its accumulator is not on an integer grid")
        if len(_consumers(model, layer.output[0])) != 1 or (
                bias_add is not None and len(_consumers(model, bias_add.output[0])) != 1):
            return f"{layer.name}'s output also feeds other nodes"
        if layer.op_type == "Conv" and len(layer.input) > 2:
            return f"{layer.name} has its own bias input"
        s_x, x_max = inp
        wq, s_w, w_codes = wc
        if not is_power_of_two(s_q / s_x):
            return (f"the activation scale {s_q:.6g} over {layer.name}'s input scale {s_x:.6g} is not a power of "
                    "two, so the rewritten weights would not be on a fixed-point grid")
        # float scales: the original's float32 sums of scaled products may round differently from g*K at a tie
        approximate = not (is_power_of_two(s_x) and is_power_of_two(s_w))
        g = s_x * s_w
        if layer.op_type == "MatMul":
            bound = np.sum(np.abs(w_codes), axis=0) * x_max
        else:
            bound = np.sum(np.abs(w_codes).reshape(w_codes.shape[0], -1), axis=1) * x_max
        big = int(bound.max())
        if 2 * big + 1 > _MAX_RANGE:
            return f"{layer.name}'s accumulator range (+-{big}) is too wide to check every value"
        k = np.arange(-big, big + 1, dtype=np.float64)
        codes = self._evaluate(model, layer, bias_add, bn, relu, act, g * k, len(bound)) / s_q
        if np.max(np.abs(codes - np.round(codes)), initial=0.0) > 1e-3:
            return "the quantizer after it does not give integer codes"
        codes = np.round(codes)
        alphas, betas, fs = [], [], []
        for c in range(len(bound)):
            sel = np.abs(k) <= bound[c]
            kc, cc = k[sel], codes[sel, c]
            d = np.diff(cc)
            sign = -1.0 if np.any(d < 0) else 1.0
            if np.any(d * sign < 0):
                return f"channel {c}: the quantized output is not monotone in the accumulator"
            found = _search(sign * kc[::int(sign)], cc[::int(sign)], lo, hi, bipolar, relu is not None)
            if found is None:
                return f"channel {c}: no affine on a power-of-two grid of at most 2^-{_MAX_FRAC} reproduces its steps"
            alphas.append(sign * found[0])
            betas.append(found[1])
            fs.append(found[2])
        alpha, beta, f = np.asarray(alphas), np.asarray(betas), max(fs)
        # the layer's new weights w_code * alpha (units: the quantizer's scale s_q), inputs x = s_x * x_code
        if layer.op_type == "MatMul":
            w_new = w_codes * alpha.reshape(1, -1) * (s_q / s_x)
        else:
            w_new = w_codes * alpha.reshape(-1, *([1] * (w_codes.ndim - 1))) * (s_q / s_x)
        grid = exact_grid(w_new)
        bias = beta * s_q
        if grid is None or grid[1] > _MAX_CONST_BITS:
            return f"the rewritten weights of {layer.name} need more than {_MAX_CONST_BITS} bits"
        # check: the rewritten affine gives the original codes on every reachable accumulator value
        u = k.reshape(-1, 1) * alpha.reshape(1, -1) + beta.reshape(1, -1)
        mine = np.clip(np.round(u), -1, 1) if bipolar else np.clip(np.round(np.maximum(u, 0) if relu else u), lo, hi)
        reach = np.abs(k).reshape(-1, 1) <= bound.reshape(1, -1)
        if not np.array_equal(mine[reach], codes[reach]):
            return "internal check failed: the rewritten affine changes a quantized output"
        if exact_grid(bias) is None:
            return (f"the rewritten bias of {layer.name} is not on a power-of-two grid of at most {_MAX_CONST_BITS} "
                    f"bits (activation scale {s_q:.6g})")
        self._rewrite(model, layer, wq, w_new, grid, bias, bias_add, bn, relu, act)
        self.folds.append({
            "kind": "batchnorm_steps", "approximate": approximate, "nodes": [bn.name] + ([bias_add.name] if bias_add is not None else []),
            "into": layer.name,
            "detail": f"{bn.name} (float factors, {int(np.sum(alpha < 0))} negative) before {act.op_type} "
                      f"'{act.name}' replaced by weights and bias on power-of-two grids (2^-{f}) giving the same "
                      f"quantized output for every accumulator value in +-{big}"})
        return None

    @staticmethod
    def _evaluate(model, layer, bias_add, bn, relu, act, z: np.ndarray, channels: int) -> np.ndarray:
        """The original nodes after the layer (bias Add, BN, Relu, quantizer) run by qonnx / ONNX Runtime on
        accumulator values z (the same z for every channel), shape (len(z), channels)."""
        from edgekd.export.byo_load import _run_original

        nodes = [n for n in (bias_add, bn, relu, act) if n is not None]
        used = {i for n in nodes for i in n.input}
        inits = [copy.deepcopy(i) for i in model.graph.initializer if i.name in used]
        shape = [1, channels] + ([1, 1] if layer.op_type == "Conv" else [])
        src = layer.output[0]
        graph = helper.make_graph([copy.deepcopy(n) for n in nodes], "steps",
                                  [helper.make_tensor_value_info(src, TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info(act.output[0], TensorProto.FLOAT, shape)],
                                  initializer=inits)
        proto = helper.make_model(graph, opset_imports=list(model.model.opset_import))
        proto.ir_version = model.model.ir_version
        sub = ModelWrapper(proto)
        x = np.broadcast_to(np.asarray(z, dtype=np.float32).reshape(-1, 1, *([1, 1] if len(shape) == 4 else [])),
                            (len(z), *shape[1:])).astype(np.float32)
        return np.asarray(_run_original(sub, x), dtype=np.float64).reshape(len(z), channels)

    @staticmethod
    def _rewrite(model, layer, wq, w_new, grid, bias, bias_add, bn, relu, act) -> None:
        from edgekd.export.prepare_graph import _const_quant

        f, bits = grid
        name = f"{layer.name}_steps_w"
        for suffix, value in (("raw", w_new), ("scale", 2.0 ** -f), ("zp", 0.0), ("bits", float(bits))):
            model.set_initializer(f"{name}_{suffix}", np.asarray(value, dtype=np.float32))
        qnode = helper.make_node("Quant", [f"{name}_raw", f"{name}_scale", f"{name}_zp", f"{name}_bits"],
                                 [f"{name}_out"], name=name, domain=_QUANT_DOMAIN, signed=1, narrow=0,
                                 rounding_mode="ROUND")
        model.graph.node.insert(0, qnode)
        model.set_tensor_shape(f"{name}_out", list(w_new.shape))
        layer.input[1] = f"{name}_out"
        bias_t = _const_quant(model, f"{layer.name}_steps_b", bias)
        out = bn.output[0]
        if layer.op_type == "Conv":
            layer.input.append(bias_t)
            layer.output[0] = out
        else:
            add = helper.make_node("Add", [layer.output[0], bias_t], [out], name=f"{layer.name}_steps_bias")
            model.graph.node.insert(list(model.graph.node).index(layer) + 1, add)
        for n in (bias_add, bn):
            if n is not None:
                model.graph.node.remove(n)
        if act.op_type == "BipolarQuant":  # the same +-1 on every value the layer now produces (see _bounds)
            _bipolar_to_quant(model, act)
        from qonnx.core.datatype import DataType

        for t in {layer.output[0], out, *(add.output if layer.op_type != "Conv" else [])}:
            model.set_tensor_datatype(t, DataType["FLOAT32"])  # no longer integers (InferDataTypes ran before)
        remove_dead_nodes(model)
        del wq


def _bipolar_to_quant(model: ModelWrapper, node) -> None:
    """Replace a BipolarQuant (scale s) by Quant(s, 2-bit signed narrow), in place: equal wherever the input is
    never within s/2 of 0 (an input already +-s, or a layer output kept away from 0). hls4ml 1.3.0 maps a
    BipolarQuant activation to binary_tanh with a 1-bit unsigned output (0 for -1), which a Dense layer with
    multi-bit weights then multiplies as 0."""
    name = node.name
    s = model.get_initializer(node.input[1])
    model.set_initializer(f"{name}_zp", np.asarray(0.0, dtype=np.float32))
    model.set_initializer(f"{name}_bits", np.asarray(2.0, dtype=np.float32))
    new = helper.make_node("Quant", [node.input[0], node.input[1], f"{name}_zp", f"{name}_bits"], list(node.output),
                           name=name, domain=_QUANT_DOMAIN, signed=1, narrow=1, rounding_mode="ROUND")
    idx = list(model.graph.node).index(node)
    model.graph.node.remove(node)
    model.graph.node.insert(idx, new)
    del s


def bipolar_inputs_as_quant(model: ModelWrapper, input_is_bipolar: bool) -> list[str]:
    """Every BipolarQuant of a constant (weights) or of a value that is already +-s (the graph input, when the
    host applied the same quantizer) becomes the equivalent 2-bit narrow Quant (see `_bipolar_to_quant`), unless
    some other BipolarQuant activation remains: then hls4ml's own binary (xnor) path stays consistent and nothing
    changes. Returns the rewritten nodes' names."""
    done = []
    x = model.graph.input[0].name if input_is_bipolar else None
    others = [n for n in model.graph.node if n.op_type == "BipolarQuant"
              and model.get_initializer(n.input[0]) is None and n.input[0] != x]
    if others:
        return done
    for node in list(model.graph.node):
        if node.op_type != "BipolarQuant" or np.size(model.get_initializer(node.input[1])) != 1:
            continue
        if model.get_initializer(node.input[0]) is not None:
            w = np.asarray(model.get_initializer(node.input[0]), dtype=np.float32)
            model.set_initializer(node.input[0], np.where(w >= 0, 1.0, -1.0).astype(np.float32)
                                  * np.asarray(model.get_initializer(node.input[1]), dtype=np.float32))
        elif node.input[0] != x:
            continue
        _bipolar_to_quant(model, node)
        done.append(node.name)
    return done
