"""Vectorised fixed-point emulator of a converted hls4ml design, bit for bit equal to its C-simulation.

hls4ml's own emulation (`predict()` on the g++-compiled project) runs one image at a time through
`ap_fixed` arithmetic: ~26 images/s for the cell student. This module rebuilds the same computation
from the hls4ml model's layers and the exact types hls4ml chose for every result, accumulator, weight
and bias, and evaluates it on whole batches in integers (torch float32/float64 tensors holding exact
integers where every intermediate provably stays below 2^24 / 2^53, Python integers otherwise).

Speed (~40 images/s for hls4ml predict() on the cell student; this emulator is several hundred times
faster) comes from proofs made once, when the plan is built, and from cache-sized chunks of images:
every tensor carries a proven integer range, so a cast that provably changes nothing is skipped; a
conv/dense whose accumulator cannot overflow runs as one float conv/matmul with the bias and the
product -> accumulator shift folded in; round + saturate (+ ReLU) is three in-place passes; max pooling
is separable. Each shortcut states why it is exact where it is taken.

Semantics reproduced (the installed hls4ml templates under templates/vivado are the reference):

* A value of type ``ap_[u]fixed<W,I,Q,O,N>`` is an integer ``v`` times ``2^-(W-I)``.
* A cast from a finer grid rounds with Q: TRN (floor), TRN_ZERO, RND (ties up), RND_ZERO, RND_MIN_INF,
  RND_INF, RND_CONV (ties to even); then overflow with O: WRAP (N=0, modular), SAT, SAT_ZERO, SAT_SYM.
  (``ap_fixed_base::operator=`` / ``quantization_adjust`` / ``overflow_adjust``.)
* Weights and biases are what the C-simulation loads: the writer prints each value with
  ``precision_fmt`` ('{:.Ff}'), the bridge parses that decimal as a double and converts it to the
  weight type (``operator>>``).
* Dense and Conv1D/Conv2D (``dense_latency`` / ``conv_*_latency_cl`` / the io_stream line buffer):
  every product ``a*w`` is exact and cast to accum_t, the accumulator starts at the bias cast to
  accum_t, adds the products in accum_t, and the sum is cast to result_t. With a WRAP accumulator the
  order of additions does not matter (modular arithmetic); a saturating accumulator is emulated only when
  no partial sum can overflow (checked from the weights and the input type's range).
  Strategy distributed_arithmetic: the da4ml kernel hls4ml generated computes x @ W + b exactly and casts
  it to result_t; W and b are read from that kernel (edgekd.hls.emulate_da).
* Max pooling: maximum over the window, cast to result_t. ReLU: ``x > 0 ? x : 0`` cast to result_t;
  linear: the cast alone. Transpose and Reshape move values (with a cast to their result type);
  ZeroPadding (inserted by hls4ml before padded io_stream convs) adds zeros around the cast input.

Anything else (other activations, average pooling, padding in pooling, Resource strategy, binary or
exponent weights, merges...) is refused with `UnsupportedLayerError` naming
the layer: never approximated.

Layout, one layer family per module (this one builds the plan and runs it; the names below are
re-exported here, the public API):

* edgekd.hls.emulate_fixed: `FixedType`, `UnsupportedLayerError`, the types of an hls4ml layer;
* edgekd.hls.emulate_int: exact rounding / overflow on integer arrays (`requantize`, `quantize_float`);
* edgekd.hls.emulate_cast: tensors with a proven range, planned steps and the range-aware cast;
* edgekd.hls.emulate_shape: input, Transpose, Reshape, ZeroPadding;
* edgekd.hls.emulate_pool: ReLU / linear activations and max pooling;
* edgekd.hls.emulate_linear: Dense and Conv1D/Conv2D (edgekd.hls.emulate_da: distributed arithmetic);
* edgekd.hls.emulate_exec: exact float math and chunks on worker threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# _cast and _Tensor are also imported from here by tests/hls/test_emulate.py
from edgekd.hls.emulate_cast import _cast, _Step, _Tensor, _to_float  # noqa: F401
from edgekd.hls.emulate_exec import _map_chunks
from edgekd.hls.emulate_fixed import FixedType, UnsupportedLayerError, _result_type, _type_bound
from edgekd.hls.emulate_int import _engine, _to_engine, quantize_float, requantize
from edgekd.hls.emulate_linear import plan_linear
from edgekd.hls.emulate_pool import plan_activation, plan_pool
from edgekd.hls.emulate_shape import plan_input, plan_reshape, plan_transpose, plan_zeropad

__all__ = [
    "FixedType",
    "Emulator",
    "UnsupportedLayerError",
    "quantize_float",
    "requantize",
]

_CHUNK_VALUES = 2**20  # values of the largest intermediate per chunk: keeps a chunk in L2/L3 cache


class Emulator:
    """Bit-exact batched emulation of a converted (not necessarily compiled) hls4ml model.

    ``Emulator(hls_model)`` builds a plan from ``hls_model.get_layers()`` and raises
    `UnsupportedLayerError` for any layer it cannot reproduce exactly. ``predict(x)`` takes the same
    input as edgekd's C-simulation (NCHW, like torch, or the model's own input layout) and returns
    float64 outputs (N, outputs); ``trace(x)`` returns every layer's output like `trace_csim`.
    """

    def __init__(self, hls_model: Any) -> None:
        cfg = hls_model.config
        backend = str(cfg.get_config_value("Backend") or "")
        if backend.lower() not in ("vivado", "vitis"):
            raise UnsupportedLayerError("<model>", f"backend '{backend}' (only Vivado/Vitis ap_fixed types are emulated)")
        self.io_type = str(cfg.get_config_value("IOType"))
        self.input_shape = tuple(int(d) for d in hls_model.get_input_variables()[0].shape)
        self.output_names = list(hls_model.outputs)
        self.steps: list[_Step] = []
        if len(hls_model.get_input_variables()) != 1:
            raise UnsupportedLayerError("<inputs>", "more than one graph input")
        for layer in hls_model.get_layers():
            self.steps.append(self._plan(layer))
        # images per chunk: the largest intermediate (values per image) stays within ~4 MiB of float32
        largest = max([int(np.prod(l.get_output_variable().shape)) for l in hls_model.get_layers()] + [1])
        self.chunk_size = int(min(256, max(8, _CHUNK_VALUES // largest)))

    # -- planning -----------------------------------------------------------------------------------

    def _plan(self, layer: Any) -> _Step:
        cls = layer.class_name
        kind = type(layer).__name__
        name = layer.name
        strategy = str(layer.get_attr("strategy", "latency") or "latency").lower()
        inputs = list(getattr(layer, "inputs", []) or [])
        outputs = list(getattr(layer, "outputs", []) or [])
        base = {"name": name, "inputs": inputs, "outputs": outputs}

        if kind.endswith("Input") or cls in ("Input", "InputLayer"):
            return plan_input(layer, base)

        if len(inputs) != 1:
            raise UnsupportedLayerError(name, f"{cls} with {len(inputs)} inputs (merges are not emulated)")
        t = _result_type(layer)

        if cls == "Transpose" or kind.endswith("Transpose"):
            return plan_transpose(layer, t, base)

        if cls == "Reshape" or kind.endswith("Reshape"):
            return plan_reshape(layer, t, base)

        if cls in ("ZeroPadding1D", "ZeroPadding2D") or kind.endswith(("ZeroPadding1D", "ZeroPadding2D")):
            return plan_zeropad(layer, t, base)

        if cls == "Activation" or kind.endswith("Activation"):
            return plan_activation(layer, t, base)

        if cls in ("Pooling1D", "Pooling2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D",
                   "AveragePooling2D") or kind.endswith(("Pooling1D", "Pooling2D")):
            return plan_pool(layer, t, base)

        if cls in ("Dense", "Conv1D", "Conv2D") or kind.endswith(("Dense", "Conv1D", "Conv2D")):
            if strategy not in ("latency", "distributed_arithmetic"):
                raise UnsupportedLayerError(
                    name, f"{cls} with strategy '{strategy}' (only Latency and distributed_arithmetic are emulated)")
            return plan_linear(layer, t, base)

        raise UnsupportedLayerError(name, f"layer class {cls} ({kind})")


    def _input_layout(self, x: np.ndarray) -> np.ndarray:
        """NCHW (like torch) or the model's own layout -> (N, *input_shape), a view where possible."""
        want = self.input_shape
        if x.ndim == 4 and tuple(x.shape[1:]) != want and tuple(x.shape[2:]) + (x.shape[1],) == want:
            x = x.transpose(0, 2, 3, 1)
        if tuple(x.shape[1:]) != want:
            if int(np.prod(x.shape[1:])) != int(np.prod(want)):
                raise ValueError(f"emulator input has shape {x.shape}; the hls4ml model takes (N, {want}) "
                                 "(pass NCHW as for torch)")
            x = x.reshape((x.shape[0], *want))
        return x

    def _input_ints(self, x: np.ndarray) -> _Tensor:
        """double inputs -> integers of the input type (what the C-simulation's conversion gives)."""
        t = self.steps[0].result
        x = self._input_layout(np.asarray(x))
        bound = _type_bound(t)
        if x.dtype in (np.float32, np.float64) and t.frac >= 0 and x.size:
            # Fast exact path: x * 2^frac (frac >= 0: a power-of-two scale, exact unless it overflows to
            # inf, which the range test rejects) already integral and in range needs no rounding, and the
            # conversion of a float32 input to double is exact.
            xt = torch.from_numpy(x if x.flags.writeable and min(x.strides, default=0) >= 0 else np.array(x))
            y = xt * (2.0**t.frac)
            lo, hi = torch.aminmax(y)
            if bool(torch.equal(y, torch.round(y))) and float(lo) >= t.lo and float(hi) <= t.hi:
                return _Tensor(_to_engine(y, _engine(bound)), t.frac, t.lo, t.hi)
        q = quantize_float(np.asarray(x, dtype=np.float64), t)  # rounds, saturates or raises (NaN, inf)
        return _Tensor(_to_engine(q, _engine(bound)), t.frac, t.lo, t.hi)

    def _run(self, x: np.ndarray, keep: bool) -> tuple[dict[str, _Tensor], dict[str, np.ndarray]]:
        env: dict[str, _Tensor] = {}
        traces: dict[str, np.ndarray] = {}
        first = self.steps[0]
        env[first.outputs[0]] = self._input_ints(x)
        for step in self.steps[1:]:
            out = step.fn(env[step.inputs[0]])
            for o in step.outputs:
                env[o] = out
            if keep:
                traces[step.name] = _to_float(out)
        return env, traces

    def _chunks(self, n: int, batch_size: int) -> list[tuple[int, int]]:
        step = max(1, min(int(batch_size), self.chunk_size))
        return [(i, min(i + step, n)) for i in range(0, n, step)]

    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Outputs (N, outputs) as float64, exactly what the C-simulation returns.

        Runs at most `batch_size` images at a time, and fewer (`chunk_size`) when the largest
        intermediate of a bigger batch would not stay in cache: the result does not depend on either.
        """
        x = np.asarray(x)

        def one(span: tuple[int, int]) -> np.ndarray:
            env, _ = self._run(x[span[0]:span[1]], keep=False)
            return _to_float(env[self.output_names[0]])

        outs = _map_chunks(one, self._chunks(x.shape[0], batch_size))
        return np.concatenate(outs, axis=0) if outs else np.zeros((0, 0))

    def trace(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """{hls layer name: (N, -1) float64} for every layer after the input, channels-last like the C-sim."""
        x = np.asarray(x)
        parts = _map_chunks(lambda span: self._run(x[span[0]:span[1]], keep=True)[1],
                            self._chunks(x.shape[0], x.shape[0]))
        return {name: np.concatenate([p[name] for p in parts], axis=0) for name in (parts[0] if parts else {})}

    def plan(self) -> list[dict]:
        """JSON-ready description of every layer: op, result type and the types it computes with."""
        return [{"name": s.name, "class": s.cls, "op": s.op, "result": str(s.result), **s.info} for s in self.steps]

    def to_json(self) -> dict:
        return {"io_type": self.io_type, "input_shape": list(self.input_shape), "layers": self.plan()}

