"""hls4ml `Strategy: distributed_arithmetic` (da4ml shift-and-add networks) for QONNX models.

Two things live here:

- `ensure_patched()`: hls4ml 1.3.0's DA code generator crashes on every model from the ONNX/QONNX frontend
  (``AssertionError: Layer Dense_MatMul_0 has input Quant_0_out0 which is not in the model``): its
  `get_input_layers` (hls4ml/model/optimizer/passes/bit_exact.py) looks layer *inputs* up as layer *names*.
  That holds for Keras models (tensor name == layer name), not for ONNX, whose tensors are named
  ``<node>_out0``. The patch resolves a tensor name to the layer that produces it and changes nothing else
  (a Keras model takes exactly the old code path). It is applied only to the hls4ml version it was written
  against and only if the original function's source is the one it was checked against; anything else raises
  `RuntimeError` so nobody runs a silently stale patch. Upstream write-up:
  docs/upstream/hls4ml-bit-exact-get-input-layers.md.
- `da_layer_costs(hls_model)`: LUT / FF / latency of each Dense / Conv layer under
  distributed_arithmetic, from da4ml's own CMVM solver and cost model, called exactly as hls4ml's
  `DistributedArithmeticCodegen` pass calls it (so the figure is that of the design hls4ml would generate).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["PATCHED_HLS4ML_VERSION", "ORIGINAL_SOURCE_SHA256", "ensure_patched", "is_patched",
           "original_get_input_layers", "da_layer_costs", "da_solution"]

#: the hls4ml release the patch was written and tested against
PATCHED_HLS4ML_VERSION = "1.3.0"
#: sha256 of `inspect.getsource(hls4ml.model.optimizer.passes.bit_exact.get_input_layers)` in that release
ORIGINAL_SOURCE_SHA256 = "c13a74f48abe7d0a5138c686a3f5de6d41e2bd6fcc252306a2bc9ddb085f952f"
#: modules that bind `get_input_layers` at import time (`from ...bit_exact import get_input_layers`)
_BINDERS = ("hls4ml.model.optimizer.passes.bit_exact", "hls4ml.backends.vivado.passes.distributed_arithmetic")
_MARK = "_edgekd_patch"

_original: Any = None


def _source_sha256(fn: Any) -> str:
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()


def _stale(reason: str) -> RuntimeError:
    return RuntimeError(
        f"hls4ml changed under edgekd's distributed_arithmetic patch ({reason}). The patch in edgekd/hls/da.py "
        f"was written for hls4ml {PATCHED_HLS4ML_VERSION} (get_input_layers source sha256 "
        f"{ORIGINAL_SOURCE_SHA256[:12]}...). Re-check whether the new hls4ml still takes ONNX tensor names for "
        "layer names (docs/upstream/hls4ml-bit-exact-get-input-layers.md has a reproducer); then drop the patch "
        "or update PATCHED_HLS4ML_VERSION / ORIGINAL_SOURCE_SHA256."
    )


def original_get_input_layers() -> Any:
    """hls4ml's own `get_input_layers` (the unpatched function, also after `ensure_patched()`)."""
    from hls4ml.model.optimizer.passes import bit_exact

    if _original is not None:
        return _original
    return getattr(bit_exact.get_input_layers, "__wrapped__", bit_exact.get_input_layers)


def check_patch_target() -> None:
    """Raise RuntimeError unless hls4ml is the version, and get_input_layers the source, the patch was made for."""
    import hls4ml

    if hls4ml.__version__ != PATCHED_HLS4ML_VERSION:
        raise _stale(f"hls4ml is {hls4ml.__version__}, not {PATCHED_HLS4ML_VERSION}")
    digest = _source_sha256(original_get_input_layers())
    if digest != ORIGINAL_SOURCE_SHA256:
        raise _stale(f"get_input_layers source sha256 is {digest[:12]}..., not {ORIGINAL_SOURCE_SHA256[:12]}...")


def is_patched() -> bool:
    from hls4ml.model.optimizer.passes import bit_exact

    return bool(getattr(bit_exact.get_input_layers, _MARK, False))


def ensure_patched() -> None:
    """Make hls4ml's distributed_arithmetic strategy work on ONNX/QONNX models (idempotent).

    Replaces `get_input_layers` in hls4ml's bit_exact pass and in the Vivado/Vitis DA pass (which imported it
    by name). Raises RuntimeError when hls4ml is not the version / source the patch was checked against.
    """
    global _original
    import importlib

    from hls4ml.model.optimizer.passes import bit_exact

    check_patch_target()  # every call: an hls4ml upgraded under a running process fails loudly too
    if is_patched():
        return
    original = bit_exact.get_input_layers
    rm_cpy = bit_exact.rm_cpy

    def get_input_layers(layer: Any) -> list[Any]:
        # Same as hls4ml 1.3.0, except that an input name that is no layer name (ONNX: '<node>_out0') is
        # resolved to the layer whose outputs contain it, instead of failing the assertion.
        model = layer.model
        ret = []
        for name in layer.inputs:
            if name not in model.graph:  # io_stream clones: <name>_cpy<n> stands for <name>
                matched = rm_cpy.match(name)
                if matched:
                    name = matched.group("name")
            if name not in model.graph:
                producer = next((l for l in model.graph.values() if name in l.outputs), None)
                assert producer is not None, (
                    f"Layer {layer.name} has input {name} which no layer in the model produces "
                    f"(keys: {model.graph.keys()})")
                ret.append(producer)
                continue
            ret.append(model.graph[name])
        return ret

    get_input_layers.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(get_input_layers, _MARK, True)
    for mod_name in _BINDERS:
        mod = importlib.import_module(mod_name)
        if getattr(mod, "get_input_layers", None) is not original:
            raise _stale(f"{mod_name}.get_input_layers is not bit_exact.get_input_layers")
    for mod_name in _BINDERS:
        importlib.import_module(mod_name).get_input_layers = get_input_layers
    _original = original
    log.debug("patched hls4ml %s get_input_layers for ONNX tensor names", PATCHED_HLS4ML_VERSION)


# --------------------------------------------------------------------------------------------------
# da4ml cost of a layer
# --------------------------------------------------------------------------------------------------

_DA_TYPES = ("Dense", "Conv1D", "Conv2D", "PointwiseConv1D", "PointwiseConv2D")


def _solver_options() -> dict[str, Any]:
    """The options hls4ml 1.3.0's DistributedArithmeticCodegen passes to da4ml (DA_HARD_DC env, default 2)."""
    return {"hard_dc": int(os.environ.get("DA_HARD_DC", 2)), "search_all_decompose_dc": True}


def da_solution(layer: Any) -> Any:
    """da4ml's `CombLogic` for one Dense/Conv layer: what hls4ml's DA pass would generate for it.

    Same calls as `hls4ml.backends.vivado.passes.distributed_arithmetic.DistributedArithmeticCodegen`:
    the kernel reshaped to (k*k*c_in, c_out), the per-input (k, i, f) of the layer's input type from
    `get_kernel_inp_kif`, `HWConfig(1, -1, -1)` (cost = adder bits, latency = adder levels), the bias added in
    the network, `comb_trace`.
    """
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace
    from hls4ml.backends.vivado.passes.distributed_arithmetic import get_kernel_inp_kif

    ensure_patched()  # get_kernel_inp_kif -> get_input_layers
    kernel, bias = _kernel_and_bias(layer)
    k, i, f = get_kernel_inp_kif(layer)
    inp = FixedVariableArray.from_kif(k, i, f, HWConfig(1, -1, -1), solver_options=_solver_options())
    out = inp @ kernel
    if bias is not None:
        out += bias
    return comb_trace(inp, out)


def _kernel_and_bias(layer: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The (k*k*c_in, c_out) kernel and the bias hls4ml's DA pass uses. A layer hls4ml already generated as
    distributed_arithmetic may have lost its weights (Dense); they are then read back, exactly, from the
    generated kernel (edgekd.hls.emulate_da), so the solver sees the same matrix again."""
    weight = layer.attributes.get("weight")
    if weight is not None:
        kernel = np.asarray(weight.data, dtype=np.float64)
        bias = layer.attributes.get("bias")
        return kernel.reshape(-1, kernel.shape[-1]), (None if bias is None else
                                                      np.asarray(bias.data, dtype=np.float64).ravel())
    code = getattr(layer.attributes.get("da_codegen"), "code", None)
    if not code:
        raise ValueError(f"layer {layer.name!r}: neither weights nor a generated DA kernel")
    from edgekd.hls.emulate_da import da_kernel_affine

    p = layer.get_input_variable().type.precision
    width, integer, signed = int(p.width), int(p.integer), bool(p.signed)
    lo, hi = (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (0, 2**width - 1)
    x_frac = width - integer
    w, b, frac = da_kernel_affine(code, x_frac, lo, hi)  # out * 2^frac == X @ w + b, x = X * 2^-x_frac
    kernel = np.array([[math.ldexp(int(v), x_frac - frac) for v in row] for row in w], dtype=np.float64)
    bias_f = np.array([math.ldexp(int(v), -frac) for v in b], dtype=np.float64)
    return kernel, (bias_f if np.any(bias_f) else None)


def _instances(layer: Any, io_type: str) -> int:
    """CMVM kernels hls4ml instantiates for the layer.

    io_stream (nnet_conv{1,2}d_stream.h `compute_output_buffer_*`, `#pragma HLS INLINE OFF`): ONE kernel,
    evaluated once per input pixel in the II=1 pixel loop; Dense (nnet_da_wrappers.h): one.
    io_parallel conv (`conv{1,2}d_cl` DA: PixelLoop unrolled over `n_pixels` per partition): n_pixels.
    """
    if io_type == "io_parallel" and layer.class_name != "Dense":
        n_out_px = int(np.prod(layer.get_output_variable().shape[:-1]))
        return max(1, n_out_px // int(layer.get_attr("n_partitions", 1) or 1))
    return 1


def da_layer_costs(hls_model: Any, adder_levels_per_cycle: int | None = None,
                   layers: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """da4ml's cost of every Dense / Conv layer of a converted hls4ml ModelGraph under distributed_arithmetic.

    Contract:
      - input: a converted (compiling not needed) Vivado/Vitis ModelGraph. Every Dense/Conv layer is priced,
        whatever strategy it was converted with, at reuse factor 1 (DA's only one). A layer already generated
        as DA (hls4ml then drops a Dense's weights) is priced from its generated kernel, read back exactly.
        A layer DA cannot take (input not fixed-point, ...) raises (ValueError / hls4ml's exception).
      - the solution is exactly the one hls4ml's DA pass generates: same kernel, same per-input (k, i, f)
        (from the layer's input type), same bias, same solver options (`hard_dc` = $DA_HARD_DC or 2,
        `search_all_decompose_dc`), so the figures belong to the design hls4ml writes.
      - output: {hls4ml layer name: {
          "lut": LUTs of all kernel instances = ceil(da4ml cost) x instances (da4ml's cost is the adder bits,
                 one LUT6 per bit with the carry chain; ReLU / negation are charged by da4ml as well),
          "ff": registers if the network is pipelined every `adder_levels_per_cycle` adder levels: da4ml's
                `to_pipeline(...).reg_bits` (stage-boundary registers incl. the input and output registers)
                x instances. HLS schedules the inlined network itself; this is the estimate, not a count,
          "dsp": 0,
          "latency_cycles": cycles of one kernel evaluation = max(1, ceil(adder depth / adder_levels_per_cycle))
                (the same convention as edgekd.estimate._kernel_depth for the Latency strategy),
          "adder_depth": adder levels on the longest path (da4ml latency with HWConfig(1, -1, -1)),
          "adders": add/sub operations per instance,
          "instances": CMVM kernels instantiated (io_stream: 1 per layer, evaluated once per pixel per cycle),
          "n_in", "n_out": kernel matrix shape (k*k*c_in, c_out),
          "solve_seconds": wall time da4ml took (trace + solve) for this layer,
          "source": "da4ml cost model"}}
      - `adder_levels_per_cycle`: default edgekd.estimate.ADDER_LEVELS_PER_CYCLE.
      - `layers`: price only these layer names (default: every Dense / Conv layer).
      - cost of the call: da4ml's solver is what hls4ml runs when it generates the layer, and it grows fast
        with the kernel's size (`solve_seconds`); call it once per model and cache the result.
    """
    from da4ml.trace import to_pipeline

    from edgekd.estimate import ADDER_LEVELS_PER_CYCLE

    levels = int(adder_levels_per_cycle or ADDER_LEVELS_PER_CYCLE)
    io_type = str(hls_model.config.get_config_value("IOType"))
    wanted = None if layers is None else set(layers)
    costs: dict[str, dict[str, Any]] = {}
    for layer in hls_model.get_layers():
        if layer.class_name not in _DA_TYPES or (wanted is not None and layer.name not in wanted):
            continue
        t0 = time.perf_counter()
        sol = da_solution(layer)
        seconds = time.perf_counter() - t0
        depth = int(math.ceil(sol.latency[1])) if sol.out_idxs else 0
        adders = sum(1 for op in sol.ops if op.opcode in (0, 1))
        try:
            reg_bits = int(to_pipeline(sol, levels, retiming=False, verbose=False).reg_bits)
        except AssertionError:  # no operations at all (e.g. an all-zero kernel)
            reg_bits = 0
        n = _instances(layer, io_type)
        costs[layer.name] = {
            "lut": int(math.ceil(sol.cost)) * n,
            "ff": reg_bits * n,
            "dsp": 0,
            "latency_cycles": max(1, math.ceil(depth / levels)),
            "adder_depth": depth,
            "adders": adders,
            "instances": n,
            "n_in": int(sol.shape[0]),
            "n_out": int(sol.shape[1]),
            "solve_seconds": round(seconds, 4),
            "source": "da4ml cost model",
        }
        log.debug("da4ml %s: %s", layer.name, costs[layer.name])
    return costs
