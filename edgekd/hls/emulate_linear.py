"""Planning Dense and Conv1D/Conv2D: the products, the accumulator and every shortcut that stays exact.

hls4ml's ``dense_latency`` / ``conv_*_latency_cl`` / io_stream line buffer: every product ``a*w`` is exact
and cast to accum_t, the accumulator starts at the bias cast to accum_t, adds the products in accum_t, and
the sum is cast to result_t. Weights and biases are what the C-simulation loads (decimal text -> double ->
ap_fixed). Strategy distributed_arithmetic reads the exact x @ W + b from the generated da4ml kernel
(edgekd.hls.emulate_da). The plan proves once which accumulator can never overflow, then runs the layer as
one float conv/matmul with bias and shift folded in, or falls back to exact Python integers. The largest
layer family, so it has the module to itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.hls.emulate_cast import _cast, _sat_range, _Step, _Tensor
from edgekd.hls.emulate_fixed import FixedType, UnsupportedLayerError, _precision, _type_bound
from edgekd.hls.emulate_int import _engine, _overflow, _to_engine, quantize_float, requantize


def _weights_as_loaded(layer: Any, key: str) -> tuple[np.ndarray, FixedType]:
    """Integers the C-simulation holds for `layer.weights[key]` (decimal text -> double -> ap_fixed)."""
    var = layer.weights[key]
    t = FixedType.from_hls(var.type.precision, layer.name)
    texts = [var.precision_fmt.format(v) for v in np.nditer(var.data, order="C")]
    values = np.array([float(s) for s in texts], dtype=np.float64).reshape(np.shape(var.data))
    return quantize_float(values, t), t


def _da_weights(layer: Any, x_t: FixedType) -> tuple[np.ndarray, FixedType, np.ndarray, FixedType, FixedType]:
    """A distributed_arithmetic layer's da4ml kernel (hls4ml drops a DA Dense's weights) read from its generated
    code: exact x @ W + b. Returned as (w, w_t, b, b_t, acc_t) with products and bias on the accumulator's
    grid and an accumulator that can hold any sum, so the Dense/Conv step computes it without rounding/wrap."""
    from edgekd.hls.emulate_da import DAKernelError, da_kernel_affine

    try:
        w, b, frac = da_kernel_affine(getattr(layer.attributes.get("da_codegen"), "code", ""), x_t.frac, x_t.lo, x_t.hi)
    except DAKernelError as err:
        raise UnsupportedLayerError(layer.name, str(err)) from None

    def signed(bound: int, f: int) -> FixedType:
        width = max(2, int(bound).bit_length() + 1)
        return FixedType(width, width - f, True)

    col = max((sum(abs(int(v)) for v in w[:, j]) for j in range(w.shape[1])), default=0)
    b_bound = max((abs(int(v)) for v in b), default=0)
    w_t = signed(max((abs(int(v)) for v in w.ravel()), default=0), frac - x_t.frac)
    return w, w_t, b, signed(b_bound, frac), signed(col * _type_bound(x_t) + b_bound + 1, frac)


def plan_linear(layer: Any, t: FixedType, base: dict) -> _Step:
    """A Dense/Conv layer's integer weights, bias and types (as loaded, or from its DA kernel) and geometry."""
    name = layer.name
    cls = layer.class_name
    if str(layer.get_attr("strategy", "")).lower() == "distributed_arithmetic":
        w_int, w_t, b_int, b_t, acc_t = _da_weights(layer, _input_type_of(layer))
    else:
        acc_t = _precision(layer, "accum_t")
        w_int, w_t = _weights_as_loaded(layer, "weight")
        from hls4ml.model.types import IntegerPrecisionType

        if isinstance(layer.weights["weight"].type.precision, IntegerPrecisionType) and w_t.width == 2 and w_t.signed:
            # weight_ternary product: w == -2 would act as +1
            if np.any(w_int == -2):
                raise UnsupportedLayerError(name, "2-bit integer weights equal to -2 (ternary product)")
        # the bias array is what the C-simulation adds, whatever 'use_bias' says (a fused Add sets it)
        if "bias" not in layer.weights:
            b_int, b_t = np.zeros(int(layer.get_output_variable().shape[-1]), dtype=object), acc_t
        else:
            b_int, b_t = _weights_as_loaded(layer, "bias")
    if str(layer.get_attr("data_format", "channels_last")) != "channels_last":
        raise UnsupportedLayerError(name, "channels_first convolution")

    if cls == "Dense" or type(layer).__name__.endswith("Dense"):
        n_in, n_out = int(layer.get_attr("n_in")), int(layer.get_attr("n_out"))
        if w_int.size != n_in * n_out:
            raise UnsupportedLayerError(name, f"weight shape {w_int.shape} for {n_in}x{n_out}")
        w2 = w_int.reshape(n_in, n_out)
        geom: dict = {"kind": "dense", "n_in": n_in, "n_out": n_out}
    else:
        two_d = cls == "Conv2D" or type(layer).__name__.endswith("Conv2D")
        dil = [int(layer.get_attr(k, 1) or 1) for k in ("dilation_height", "dilation_width")]
        if any(d != 1 for d in dil):
            raise UnsupportedLayerError(name, f"dilation {dil}")
        n_chan, n_filt = int(layer.get_attr("n_chan")), int(layer.get_attr("n_filt"))
        if two_d:
            k = (int(layer.get_attr("filt_height")), int(layer.get_attr("filt_width")))
            s = (int(layer.get_attr("stride_height")), int(layer.get_attr("stride_width")))
            pad = tuple(int(layer.get_attr(p, 0) or 0) for p in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
        else:
            k = (int(layer.get_attr("filt_width")),)
            s = (int(layer.get_attr("stride_width")),)
            pad = tuple(int(layer.get_attr(p, 0) or 0) for p in ("pad_left", "pad_right"))
        w2 = w_int.reshape(int(np.prod(k)) * n_chan, n_filt)  # (kh, kw, cin) x cout, C order
        geom = {"kind": "conv", "kernel": list(k), "stride": list(s), "pad": list(pad),
                "n_chan": n_chan, "n_filt": n_filt}

    x_in_t = _input_type_of(layer)
    return _linear_step(layer, t, acc_t, w_t, b_t, x_in_t, w2, b_int, geom, base)


def _input_type_of(layer: Any) -> FixedType:
    var = layer.get_input_variable()
    return FixedType.from_hls(var.type.precision, layer.name)


def _linear_step(layer, t, acc_t, w_t, b_t, x_t, w2, b_int, geom, base) -> _Step:
    """The step for x @ w2 + b (dense) or its convolution: proves once which shortcuts are exact, then runs."""
    name = layer.name
    p_frac = x_t.frac + w_t.frac
    shift = acc_t.frac - p_frac  # products -> accum grid
    xmax = _type_bound(x_t)
    abs_w = np.abs(w2).astype(object)
    # exact bound of |sum of products| for any input of the input type, per output column
    col = [int(sum(abs_w[:, j])) * xmax for j in range(abs_w.shape[1])]
    sum_bound = max(col) if col else 0
    max_prod = int(np.max(abs_w)) * xmax if abs_w.size else 0
    b_acc = requantize(np.asarray(b_int, dtype=object), b_t.frac, acc_t)
    b_abs = int(np.max(np.abs(b_acc))) if b_acc.size else 0
    per_product = shift < 0
    acc_lo, acc_hi = _sat_range(acc_t)
    if not per_product:
        prod_fits = max_prod * 2**shift <= acc_hi and -max_prod * 2**shift >= acc_lo
        total = sum_bound * 2**shift + b_abs
        sum_fits = total <= acc_hi and -total >= acc_lo
    else:
        prod_fits = True
        total = sum_bound + b_abs
        sum_fits = total <= acc_hi and -total >= acc_lo
    if acc_t.saturation != "WRAP" and not (prod_fits and sum_fits):
        raise UnsupportedLayerError(
            name, f"saturating accumulator {acc_t} may overflow (the result depends on the order of additions)")
    if per_product and acc_t.saturation != "WRAP" and not sum_fits:
        raise UnsupportedLayerError(name, f"accumulator {acc_t} rounds products and may overflow")
    mm_engine = _engine(sum_bound if not per_product else max_prod)
    post_bound = (sum_bound * 2 ** max(shift, 0) + b_abs + 1) if not per_product else (total + 1)
    needs_overflow = not (prod_fits and sum_fits)
    post_engine = _engine(post_bound + (2**acc_t.width if needs_overflow else 0))
    kind = geom["kind"]
    w_nd = {e: _to_engine(np.asarray(w2, dtype=object), e) for e in ("f32", "f64")} if mm_engine != "int" else {}
    b_post = _to_engine(b_acc, post_engine)

    def conv_patches(x: Any) -> Any:
        """numpy object im2col: (N, *out, K) with K ordered (kh, kw, cin) like the weights."""
        k, s, pad = geom["kernel"], geom["stride"], geom["pad"]
        if len(k) == 2:
            x = np.pad(x, ((0, 0), (pad[0], pad[1]), (pad[2], pad[3]), (0, 0)), constant_values=0)
            n, h, w, c = x.shape
            oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
            cols = [x[:, i:i + s[0] * (oh - 1) + 1:s[0], j:j + s[1] * (ow - 1) + 1:s[1], :]
                    for i in range(k[0]) for j in range(k[1])]
            return np.stack(cols, axis=3).reshape(n, oh, ow, k[0] * k[1] * c)
        x = np.pad(x, ((0, 0), (pad[0], pad[1]), (0, 0)), constant_values=0)
        n, w, c = x.shape
        ow = (w - k[0]) // s[0] + 1
        cols = [x[:, j:j + s[0] * (ow - 1) + 1:s[0], :] for j in range(k[0])]
        return np.stack(cols, axis=2).reshape(n, ow, k[0] * c)

    def conv_weight(w: torch.Tensor) -> torch.Tensor:
        """(K, cout) matrix -> torch conv weight (cout, cin, *kernel), channels_last for 2-D."""
        k = geom["kernel"]
        if len(k) == 2:
            wk = w.reshape(k[0], k[1], geom["n_chan"], geom["n_filt"]).permute(3, 2, 0, 1)
            return wk.contiguous(memory_format=torch.channels_last)
        return w.reshape(k[0], geom["n_chan"], geom["n_filt"]).permute(2, 1, 0).contiguous()

    def torch_conv(x: torch.Tensor, wk: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        k, s, pad = geom["kernel"], geom["stride"], geom["pad"]
        if len(k) == 2:
            # NHWC data viewed as NCHW in channels_last memory: oneDNN's fast path, no copies
            xc = x.permute(0, 3, 1, 2)
            if geom["n_chan"] > 1:
                xc = xc.contiguous(memory_format=torch.channels_last)
            if any(pad):
                xc = F.pad(xc, (pad[2], pad[3], pad[0], pad[1]))
            return F.conv2d(xc, wk, bias, stride=tuple(s)).permute(0, 2, 3, 1)
        xc = x.permute(0, 2, 1)
        if any(pad):
            xc = F.pad(xc, (pad[0], pad[1]))
        return F.conv1d(xc, wk, bias, stride=tuple(s)).permute(0, 2, 1)

    out_shape = tuple(int(d) for d in layer.get_output_variable().shape)
    w_obj = np.asarray(w2, dtype=object)
    if mm_engine != "int":
        w_nd = {e: conv_weight(w) for e, w in w_nd.items()} if kind == "conv" else w_nd
    # Fused path: products exact, accumulator cannot overflow, and every partial sum of
    # bias + sum(x * w * 2^shift), in any order, is an integer of magnitude < post_bound, exact in
    # fused_engine. So the bias and the 2^shift can go into one conv/matmul (oneDNN/MKL, any blocking).
    fused_engine = _engine(post_bound) if not (per_product or needs_overflow) else "int"
    if fused_engine != "int":
        w_fused = _to_engine(np.asarray(w2, dtype=object) * 2**max(shift, 0), fused_engine)
        w_fused = conv_weight(w_fused) if kind == "conv" else w_fused
        b_fused = _to_engine(b_acc, fused_engine)
    acc_range = (max(-post_bound, acc_t.lo), min(post_bound, acc_t.hi)) if not needs_overflow else (acc_t.lo, acc_t.hi)

    def fn(x: _Tensor) -> _Tensor:
        if x.frac != x_t.frac:
            raise UnsupportedLayerError(name, f"input grid 2^-{x.frac} differs from its type {x_t}")
        data = x.data
        if kind == "dense":
            data = data.reshape(data.shape[0], -1)
        if fused_engine != "int":
            xe = _to_engine(data, fused_engine)
            if kind == "dense":
                acc = torch.addmm(b_fused, xe, w_fused)
            else:
                acc = torch_conv(xe, w_fused, b_fused)
        elif not per_product:
            if mm_engine == "int":
                xo = _to_engine(data, "int")
                s = (xo @ w_obj) if kind == "dense" else conv_patches(xo) @ w_obj
            else:
                xe = _to_engine(data, mm_engine)
                s = xe @ w_nd[mm_engine] if kind == "dense" else torch_conv(xe, w_nd[mm_engine])
            s = _to_engine(s, post_engine)
            if shift > 0:
                s = s * (2**shift)
            acc = s + b_post
        else:
            xo = _to_engine(data, "int")
            patches = xo if kind == "dense" else conv_patches(xo)
            prods = patches[..., :, None] * w_obj  # (..., K, M)
            q = requantize(prods, p_frac, acc_t)
            acc = _to_engine(q.sum(axis=-2), post_engine) + b_post
        if needs_overflow:
            acc = _overflow(acc, acc_t)  # WRAP: modular, order-free
        res = _cast(_Tensor(acc, acc_t.frac, *acc_range), t)
        if tuple(res.data.shape[1:]) != out_shape:
            raise UnsupportedLayerError(name, f"output {tuple(res.data.shape[1:])} != {out_shape}")
        return res

    info = {
        **{k: v for k, v in geom.items() if k != "kind"},
        "accum": str(acc_t), "weight": str(w_t), "bias": str(b_t), "input": str(x_t),
        "product_frac": p_frac, "products_per_element": "rounded" if per_product else "exact",
        "sum_bound_bits": int(sum_bound).bit_length(), "matmul_engine": mm_engine,
        "post_engine": post_engine, "accum_may_overflow": needs_overflow, "fused_engine": fused_engine,
    }
    return _Step(name, layer.class_name, kind, t, info, fn, base["inputs"], base["outputs"])
