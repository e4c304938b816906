"""Small QONNX models of the patterns seen in the wild, made by the tests (brevitas exports and hand-built
graphs with qonnx Quant / BipolarQuant nodes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

QDOMAIN = "qonnx.custom_op.general"


# --------------------------------------------------------------------------------------------------
# brevitas
# --------------------------------------------------------------------------------------------------


def _brevitas_quants(pow2: bool):
    from brevitas.core.scaling import ScalingImplType
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8ActPerTensorFloat,
        Int8BiasPerTensorFixedPointInternalScaling,
        Int8WeightPerTensorFixedPoint,
        Int8WeightPerTensorFloat,
        Uint8ActPerTensorFixedPoint,
        Uint8ActPerTensorFloat,
    )

    if pow2:
        inp = type("In", (Int8ActPerTensorFixedPoint,), {"scaling_impl_type": ScalingImplType.CONST, "scaling_init": 2.0})
        relu = type("Relu", (Uint8ActPerTensorFixedPoint,), {"scaling_impl_type": ScalingImplType.CONST, "scaling_init": 4.0})
        out = type("Out", (Int8ActPerTensorFixedPoint,), {"bit_width": 12, "scaling_impl_type": ScalingImplType.CONST,
                                                          "scaling_init": 8.0})
        return inp, Int8WeightPerTensorFixedPoint, Int8BiasPerTensorFixedPointInternalScaling, relu, out
    inp = type("InF", (Int8ActPerTensorFloat,), {"scaling_impl_type": ScalingImplType.CONST, "scaling_init": 1.7})
    relu = type("ReluF", (Uint8ActPerTensorFloat,), {"scaling_impl_type": ScalingImplType.CONST, "scaling_init": 3.3})
    out = type("OutF", (Int8ActPerTensorFloat,), {"scaling_impl_type": ScalingImplType.CONST, "scaling_init": 5.1})
    return inp, Int8WeightPerTensorFloat, None, relu, out  # brevitas default: float bias


def brevitas_mlp(path: Path, pow2: bool = True, softmax: bool = False, n_in: int = 12, hidden: int = 10,
                 n_out: int = 4, seed: int = 0) -> Path:
    import torch
    from brevitas.export import export_qonnx
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    inp, wq, bq, relu, out = _brevitas_quants(pow2)
    layers = [
        QuantIdentity(act_quant=inp, return_quant_tensor=True),
        QuantLinear(n_in, hidden, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        QuantReLU(act_quant=relu, return_quant_tensor=True),
        QuantLinear(hidden, n_out, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        QuantIdentity(act_quant=out, return_quant_tensor=False),
    ]
    if softmax:
        layers.append(torch.nn.Softmax(dim=-1))
    model = torch.nn.Sequential(*layers).eval()
    export_qonnx(model, input_t=torch.zeros(1, n_in), export_path=str(path), dynamo=False)
    return path


def brevitas_cnn(path: Path, pow2: bool = True, seed: int = 0) -> Path:
    import torch
    from brevitas.export import export_qonnx
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    inp, wq, bq, relu, out = _brevitas_quants(pow2)
    model = torch.nn.Sequential(
        QuantIdentity(act_quant=inp, return_quant_tensor=True),
        QuantConv2d(1, 3, 3, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        QuantReLU(act_quant=relu, return_quant_tensor=False),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        QuantIdentity(act_quant=relu, return_quant_tensor=True),
        QuantLinear(3 * 3 * 3, 3, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        QuantIdentity(act_quant=out, return_quant_tensor=False),
    ).eval()
    export_qonnx(model, input_t=torch.zeros(1, 1, 8, 8), export_path=str(path), dynamo=False)
    return path


# --------------------------------------------------------------------------------------------------
# hand-built graphs (QKeras-style Quant nodes, BatchNorm, normalisation, bipolar)
# --------------------------------------------------------------------------------------------------


class GraphBuilder:
    """Tiny onnx.helper wrapper: a chain of nodes from one float input."""

    def __init__(self, n_in: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.i = 0
        self.n = n_in
        self.tensor = "global_in"
        self.input = helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, n_in])

    def _name(self, kind: str) -> str:
        self.i += 1
        return f"{kind}_{self.i}"

    def const(self, value, name: str | None = None) -> str:
        name = name or self._name("c")
        self.inits.append(helper.make_tensor(name, TensorProto.FLOAT, list(np.shape(value)),
                                             np.asarray(value, dtype=np.float32).ravel().tolist()))
        return name

    def quant_tensor(self, src: str, scale, bits: int, signed: bool = True, narrow: bool = False,
                     zero_point: float = 0.0) -> str:
        name = self._name("Quant")
        out = f"{name}_out"
        self.nodes.append(helper.make_node(
            "Quant", [src, self.const(np.float32(scale) if np.ndim(scale) == 0 else scale), self.const(np.float32(zero_point)),
                      self.const(np.float32(bits))], [out], name=name, domain=QDOMAIN,
            signed=int(signed), narrow=int(narrow), rounding_mode="ROUND"))
        return out

    def quant(self, scale, bits: int, signed: bool = True, narrow: bool = False) -> GraphBuilder:
        self.tensor = self.quant_tensor(self.tensor, scale, bits, signed, narrow)
        return self

    def bipolar(self, src: str | None = None) -> str:
        name = self._name("BipolarQuant")
        out = f"{name}_out"
        self.nodes.append(helper.make_node("BipolarQuant", [src or self.tensor, self.const(np.float32(1.0))], [out],
                                           name=name, domain=QDOMAIN))
        if src is None:
            self.tensor = out
        return out

    def op(self, op_type: str, const=None, **attrs) -> GraphBuilder:
        name = self._name(op_type)
        inputs = [self.tensor] + ([self.const(const)] if const is not None else [])
        self.nodes.append(helper.make_node(op_type, inputs, [f"{name}_out"], name=name, **attrs))
        self.tensor = f"{name}_out"
        return self

    def dense(self, n_out: int, w_scale: float, w_bits: int, narrow: bool = False, bias: bool = True,
              b_scale: float = 2.0 ** -6, b_bits: int = 12, bipolar_weights: bool = False) -> GraphBuilder:
        w = self.rng.normal(0, 0.5, size=(self.n, n_out)).astype(np.float32)
        wt = self.bipolar(self.const(w)) if bipolar_weights else self.quant_tensor(self.const(w), w_scale, w_bits, True, narrow)
        name = self._name("MatMul")
        self.nodes.append(helper.make_node("MatMul", [self.tensor, wt], [f"{name}_out"], name=name))
        self.tensor = f"{name}_out"
        if bias:
            b = self.rng.normal(0, 0.5, size=(n_out,)).astype(np.float32)
            bt = self.quant_tensor(self.const(b), b_scale, b_bits)
            name = self._name("Add")
            self.nodes.append(helper.make_node("Add", [self.tensor, bt], [f"{name}_out"], name=name))
            self.tensor = f"{name}_out"
        self.n = n_out
        return self

    def batchnorm(self, gamma, beta, mean, var, eps: float = 0.0) -> GraphBuilder:
        name = self._name("BatchNormalization")
        ins = [self.tensor] + [self.const(np.asarray(v, dtype=np.float32)) for v in (gamma, beta, mean, var)]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [f"{name}_out"], name=name, epsilon=eps))
        self.tensor = f"{name}_out"
        return self

    def save(self, path: Path) -> Path:
        out = helper.make_tensor_value_info(self.tensor, TensorProto.FLOAT, [1, self.n])
        graph = helper.make_graph(self.nodes, "byo_test", [self.input], [out], initializer=self.inits)
        model = helper.make_model(graph, producer_name="edgekd-tests", opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QDOMAIN, 1)])
        model.ir_version = 8
        onnx.save(model, str(path))
        return path


def qkeras_narrow_mlp(path: Path) -> Path:
    """QKeras-style: quantized_bits(4, 0, alpha=1) weights (narrow), quantized_relu(3, 1) activations."""
    g = GraphBuilder(10, seed=1)
    g.quant(2.0 ** -3, 6)  # input fixed<6,3>
    g.dense(8, 2.0 ** -3, 4, narrow=True).quant(2.0 ** -2, 3, signed=False)
    g.dense(3, 2.0 ** -2, 3, narrow=True).quant(2.0 ** -4, 10)
    return g.save(path)


def batchnorm_mlp(path: Path, pow2: bool = True) -> Path:
    """MatMul -> BatchNormalization -> Quant, per-channel factors powers of two (or not)."""
    g = GraphBuilder(8, seed=2)
    g.quant(2.0 ** -4, 8)
    g.dense(6, 2.0 ** -5, 8, bias=False)
    gamma = np.array([0.5, 1.0, 2.0, 0.25, 1.0, 0.5]) if pow2 else np.array([0.7, 1.3, 0.9, 1.1, 0.8, 1.2])
    g.batchnorm(gamma, beta=np.array([0.25, -0.5, 0.125, 0.0, 1.0, -0.75]),
                mean=np.array([0.5, -0.25, 0.0, 0.75, 0.125, 0.0]), var=np.ones(6))
    g.quant(2.0 ** -3, 8, signed=False)
    g.dense(3, 2.0 ** -5, 8).quant(2.0 ** -4, 12)
    return g.save(path)


def normalised_mlp(path: Path) -> Path:
    """uint8 pixels -> Sub(128) -> Mul(1/128) -> Quant(fixed<8,1>) -> dense layers."""
    g = GraphBuilder(9, seed=3)
    g.op("Sub", np.float32(128.0)).op("Mul", np.float32(1 / 128)).quant(2.0 ** -7, 8)
    g.dense(6, 2.0 ** -5, 8).quant(2.0 ** -3, 8, signed=False)
    g.dense(2, 2.0 ** -5, 8).quant(2.0 ** -4, 12)
    return g.save(path)


def bipolar_mlp(path: Path) -> Path:
    """Binary network: bipolar weights and activations, final integer output quantizer."""
    g = GraphBuilder(16, seed=4)
    g.quant(1.0, 2)  # inputs -2..1
    g.bipolar()
    g.dense(8, 1.0, 1, bias=False, bipolar_weights=True).bipolar()
    g.dense(4, 1.0, 1, bias=False, bipolar_weights=True).quant(1.0, 8)
    return g.save(path)


def brevitas_cnn_batchnorm(path: Path, seed: int = 0) -> Path:
    """QuantConv2d -> BatchNorm2d (eval; per-channel factors 0.5, 1, 2) -> QuantReLU -> dense."""
    import torch
    from brevitas.export import export_qonnx
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    inp, wq, bq, relu, out = _brevitas_quants(True)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight[:] = torch.tensor([0.5, 1.0, 2.0])
        bn.bias[:] = torch.tensor([0.25, -0.5, 0.125])
        bn.running_mean[:] = torch.tensor([0.5, 0.0, -0.25])
        bn.running_var[:] = 1.0 - bn.eps  # var + eps == 1 exactly
    model = torch.nn.Sequential(
        QuantIdentity(act_quant=inp, return_quant_tensor=True),
        QuantConv2d(1, 3, 3, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        bn,
        QuantReLU(act_quant=relu, return_quant_tensor=False),
        torch.nn.Flatten(),
        QuantIdentity(act_quant=relu, return_quant_tensor=True),
        QuantLinear(3 * 6 * 6, 3, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        QuantIdentity(act_quant=out, return_quant_tensor=False),
    ).eval()
    export_qonnx(model, input_t=torch.zeros(1, 1, 8, 8), export_path=str(path), dynamo=False)
    return path
