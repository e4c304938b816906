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


# --------------------------------------------------------------------------------------------------
# the forms real exporters write (issue 13): legacy domains, no opset import, no value_info, Gemm,
# symbolic or fixed batch, input preambles, trailing host ops
# --------------------------------------------------------------------------------------------------


def rewrite(path: Path, domain: str | None = None, opset_import: bool = True, strip_value_info: bool = False,
            batch: str | int | None = None) -> Path:
    """Rewrite a QONNX file in place as older exporters write it: custom nodes in `domain`, with or without an
    opset import for it; intermediate shapes removed; the batch dimension symbolic ('N') or fixed (int)."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") and domain is not None:
            node.domain = domain
    custom = {n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")}
    ops = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if opset_import:
        ops += [helper.make_opsetid(d, 1) for d in sorted(custom)]
    del model.opset_import[:]
    model.opset_import.extend(ops)
    if strip_value_info:
        del model.graph.value_info[:]
    if batch is not None:
        inits = {i.name for i in model.graph.initializer}
        for vi in [v for v in [*model.graph.input, *model.graph.output, *model.graph.value_info] if v.name not in inits]:
            d = vi.type.tensor_type.shape.dim[0]
            if isinstance(batch, str):
                d.dim_param = batch
            else:
                d.dim_value = batch
        for node in model.graph.node:  # a Reshape with the batch in its constant shape
            if node.op_type == "Reshape" and isinstance(batch, int):
                for init in model.graph.initializer:
                    if init.name == node.input[1]:
                        shape = onnx.numpy_helper.to_array(init).copy()
                        shape[0] = batch
                        init.CopyFrom(onnx.numpy_helper.from_array(shape, init.name))
    onnx.save(model, str(path))
    return path


class EcoBuilder(GraphBuilder):
    """GraphBuilder with any input shape, Gemm layers and output ops (Softmax, ArgMax, TopK)."""

    def __init__(self, shape: list[int], seed: int = 0) -> None:
        super().__init__(int(np.prod(shape[1:])), seed)
        self.input = helper.make_tensor_value_info("global_in", TensorProto.FLOAT, shape)
        self.out_shape: list[int] | None = None

    def reshape(self, shape: list[int]) -> EcoBuilder:
        return self._reshape(shape)

    def _reshape(self, shape: list[int]) -> EcoBuilder:
        name = self._name("Reshape")
        const = f"{name}_shape"
        self.inits.append(onnx.numpy_helper.from_array(np.asarray(shape, dtype=np.int64), const))
        self.nodes.append(helper.make_node("Reshape", [self.tensor, const], [f"{name}_out"], name=name))
        self.tensor = f"{name}_out"
        return self

    def gemm(self, n_out: int, w_scale: float, w_bits: int, b_scale: float | None = 2.0 ** -6, b_bits: int = 12,
             bipolar_weights: bool = False) -> EcoBuilder:
        """Gemm(x, W^T, b) with transB=1 (torch.nn.Linear's layout); a float bias when b_scale is None."""
        w = self.rng.normal(0, 0.5, size=(n_out, self.n)).astype(np.float32)
        wt = self.bipolar(self.const(w)) if bipolar_weights else self.quant_tensor(self.const(w), w_scale, w_bits)
        b = self.rng.normal(0, 0.5, size=(n_out,)).astype(np.float32)
        bt = self.const(b) if b_scale is None else self.quant_tensor(self.const(b), b_scale, b_bits)
        name = self._name("Gemm")
        self.nodes.append(helper.make_node("Gemm", [self.tensor, wt, bt], [f"{name}_out"], name=name, transB=1))
        self.tensor = f"{name}_out"
        self.n = n_out
        return self

    def topk(self, k: int) -> EcoBuilder:
        name = self._name("TopK")
        kc = f"{name}_k"
        self.inits.append(onnx.numpy_helper.from_array(np.asarray([k], dtype=np.int64), kc))
        self.nodes.append(helper.make_node("TopK", [self.tensor, kc], [f"{name}_values", f"{name}_indices"],
                                           name=name, axis=-1))
        self.tensor = f"{name}_indices"
        self.out_shape = [1, k]
        self.out_type = TensorProto.INT64
        return self

    def argmax(self) -> EcoBuilder:
        self.op("ArgMax", axis=-1, keepdims=0)
        self.out_shape, self.out_type = [1], TensorProto.INT64
        return self

    def save(self, path: Path) -> Path:
        shape = self.out_shape or [1, self.n]
        out = helper.make_tensor_value_info(self.tensor, getattr(self, "out_type", TensorProto.FLOAT), shape)
        graph = helper.make_graph(self.nodes, "byo_eco", [self.input], [out], initializer=self.inits)
        model = helper.make_model(graph, producer_name="edgekd-tests",
                                  opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QDOMAIN, 1)])
        model.ir_version = 8
        model = onnx.shape_inference.infer_shapes(model)  # value_info, as exporters write it
        onnx.save(model, str(path))
        return path


def jet_tagger(path: Path) -> Path:
    """QKeras jet tagger via tf2onnx/QONNX: 16 -> 16 -> 8 -> 5, quantized_bits(8,0) weights, quantized_relu(6)
    activations, a final softmax (host stage), symbolic batch 'unk__0'. Power-of-two: exact."""
    g = EcoBuilder([1, 16], seed=11)
    g.quant(2.0 ** -5, 10)
    g.dense(16, 2.0 ** -7, 8).quant(2.0 ** -3, 6, signed=False)
    g.dense(8, 2.0 ** -7, 8).quant(2.0 ** -3, 6, signed=False)
    g.dense(5, 2.0 ** -7, 8).quant(2.0 ** -4, 12)
    g.op("Softmax", axis=-1)
    return rewrite(g.save(path), batch="unk__0")


def mnist_w1a1_finn(path: Path) -> Path:
    """FINN TFC-w1a1 style: (1, 1, 4, 4) image -> Reshape -> bipolar input, Gemm layers with 1-bit bipolar weights
    and activations, integer output; legacy domain finn.custom_op.general with no opset import for it, and a
    trailing ArgMax. Exact."""
    g = EcoBuilder([1, 1, 4, 4], seed=12)
    g._reshape([1, 16])
    g.quant(1.0, 2).bipolar()
    g.dense(12, 1.0, 1, bias=False, bipolar_weights=True).bipolar()
    g.dense(6, 1.0, 1, bias=False, bipolar_weights=True).quant(1.0, 8)
    g.argmax()
    return rewrite(g.save(path), domain="finn.custom_op.general", opset_import=False)


def mnist_w2a2_brevitas(path: Path) -> Path:
    """brevitas (older, 'onnx.brevitas' domain) MNIST-style MLP: Gemm with 2-bit float-scale weights, 2-bit
    float-scale activations, float biases, 8-bit input with a non-power-of-two scale; Transpose preamble.
    Approximate (needs allow_inexact)."""
    g = EcoBuilder([1, 4, 3], seed=13)
    g.op("Transpose", perm=[0, 2, 1])._reshape([1, 12])
    g.quant(0.7 / 127, 8)
    g.gemm(16, 0.61, 2, b_scale=None).op("Relu").quant(0.37, 2, signed=False)
    g.gemm(10, 0.53, 2, b_scale=None).quant(0.173, 8)
    return rewrite(g.save(path), domain="onnx.brevitas")


def kws_w3a8(path: Path) -> Path:
    """Keyword-spotting MLP: 8-bit input with a float scale (MFCC features), 3-bit power-of-two weights, 8-bit
    float-scale activations, no value_info (stripped), trailing TopK (k=2). Approximate."""
    g = EcoBuilder([1, 20], seed=14)
    g.quant(3.1 / 127, 8)
    g.dense(24, 2.0 ** -2, 3).quant(0.0517, 8, signed=False)
    g.dense(12, 2.0 ** -2, 3).quant(0.0711, 8, signed=False)
    g.dense(6, 2.0 ** -2, 3).quant(0.093, 8)
    g.topk(2)
    return rewrite(g.save(path), strip_value_info=True)


def nid_w2a2(path: Path) -> Path:
    """Network-intrusion MLP (UNSW-NB15 style): 24 features, 2-bit power-of-two weights and activations,
    Gemm layers, fixed batch 8, no value_info, custom domain without opset import. Exact."""
    g = EcoBuilder([1, 24], seed=15)
    g.quant(1.0, 2)
    g.gemm(16, 0.5, 2, b_scale=2.0 ** -2, b_bits=6).quant(0.5, 2, signed=False)
    g.gemm(8, 0.5, 2, b_scale=2.0 ** -2, b_bits=6).quant(0.5, 2, signed=False)
    g.gemm(2, 0.5, 2, b_scale=2.0 ** -2, b_bits=6).quant(2.0 ** -2, 8)
    return rewrite(g.save(path), opset_import=False, strip_value_info=True, batch=8)


def brevitas_float_softmax(path: Path) -> Path:
    """brevitas export_qonnx with brevitas' default float-scale quantizers and a final softmax, dynamic batch.
    Approximate."""
    brevitas_mlp(path, pow2=False, softmax=True, n_in=12, hidden=16, n_out=5, seed=16)
    return rewrite(path, batch="batch")


# name -> (builder, expected static verdict, host ops)
ECOSYSTEM = {
    "jet-tagger-qkeras-softmax": (jet_tagger, "exact", ["Softmax"]),
    "mnist-w1a1-finn-legacy-domain": (mnist_w1a1_finn, "exact", ["ArgMax"]),
    "nid-w2a2-gemm-no-shapes-batch8": (nid_w2a2, "exact", []),
    "mnist-w2a2-onnx-brevitas-float": (mnist_w2a2_brevitas, "approximate", []),
    "kws-w3a8-float-input-topk": (kws_w3a8, "approximate", ["TopK"]),
    "brevitas-float-softmax": (brevitas_float_softmax, "approximate", ["Softmax"]),
    # beyond MLPs: conv 3x3 -> max-pool -> flatten -> dense with brevitas' default float quantizers
    "brevitas-cnn-float": (lambda p: brevitas_cnn(p, pow2=False), "approximate", []),
}


def trunc_mlp(path: Path) -> Path:
    """A QuantAvgPool-style Trunc after the first layer, in FINN's legacy domain without opset import: hls4ml
    1.3.0 has no Trunc, so the model is refused naming the node, op and domain."""
    g = EcoBuilder([1, 8], seed=17)
    g.quant(2.0 ** -4, 8).dense(4, 2.0 ** -5, 8)
    name = g._name("Trunc")
    ins = [g.tensor, g.const(np.float32(2.0 ** -6)), g.const(np.float32(0.0)), g.const(np.float32(12.0)),
           g.const(np.float32(8.0))]
    g.nodes.append(helper.make_node("Trunc", ins, [f"{name}_out"], name=name, domain=QDOMAIN, rounding_mode="FLOOR"))
    g.tensor = f"{name}_out"
    g.dense(2, 2.0 ** -5, 8).quant(2.0 ** -4, 12)
    return rewrite(g.save(path), domain="finn.custom_op.general", opset_import=False)


# --------------------------------------------------------------------------------------------------
# issue 29: the node sequences of the public qonnx model zoo's files (github fastmachinelearning/
# qonnx_model_zoo), small: tests/byo/test_zoo.py checks each against the real file's structure
# --------------------------------------------------------------------------------------------------


def _const(inits: list, name: str, value, dtype=np.float32) -> str:
    inits.append(onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
    return name


def tfc_finn(path: Path, w_bits: int = 1, a_bits: int = 1, side: int = 4, hidden: int = 12, n_out: int = 5,
             seed: int = 21) -> Path:
    """FINN's TFC (MNIST/Brevitas_FINN_TFC/TFC/TFC_{w}W{a}A.onnx), small: (1, 1, side, side) input ->
    Shape/Gather/Unsqueeze/Concat -> Reshape(N, -1) -> Mul(2) -> Sub([1]) -> bipolar (a_bits 1) or 2-bit narrow
    Quant input; per layer Quant/BipolarQuant(W (out, in)) -> Transpose -> MatMul -> BatchNormalization (float
    factors, some negative) -> activation quantizer; last MatMul -> Sub -> Div(Pow(c, 0.5)) -> Mul -> Add
    (the output normalisation). onnx.brevitas domain, no opset import for it, opset 9, IR 6."""
    rng = np.random.default_rng(seed)
    nodes, inits, i = [], [], [0]

    def nm(kind):
        i[0] += 1
        return f"{kind}_{i[0]}"

    def quant(src, bits, const_in=None):
        name = nm("BipolarQuant" if bits == 1 else "Quant")
        if bits == 1:
            nodes.append(helper.make_node("BipolarQuant", [src, _const(inits, name + "_s", 1.0)], [name + "_o"],
                                          name=name, domain="onnx.brevitas"))
        else:
            nodes.append(helper.make_node(
                "Quant", [src, _const(inits, name + "_s", 1.0), _const(inits, name + "_z", 0.0),
                          _const(inits, name + "_b", float(bits))], [name + "_o"], name=name, domain="onnx.brevitas",
                narrow=1, rounding_mode="ROUND", signed=1))
        return name + "_o"

    def op(kind, ins, **attrs):
        name = nm(kind)
        nodes.append(helper.make_node(kind, ins, [name + "_o"], name=name, **attrs))
        return name + "_o"

    n_in = side * side
    shp = op("Shape", ["0"])
    g = op("Gather", [shp, _const(inits, "g_idx", 0, np.int64)], axis=0)
    u = op("Unsqueeze", [g], axes=[0])
    c = op("Concat", [u, _const(inits, "minus1", [-1], np.int64)], axis=0)
    t = op("Reshape", ["0", c])
    t = op("Mul", [t, _const(inits, "two", 2.0)])
    t = op("Sub", [t, _const(inits, "one", [1.0])])
    t = quant(t, a_bits)
    dims = [n_in, hidden, hidden, n_out]
    for li in range(3):
        w = rng.normal(0, 1, size=(dims[li + 1], dims[li]))
        wt = op("Transpose", [quant(_const(inits, f"w{li}", w), w_bits)], perm=[1, 0])
        t = op("MatMul", [t, wt])
        if li < 2:
            ch = dims[li + 1]
            gamma = rng.uniform(0.02, 0.2, ch) * rng.choice([-1.0, 1.0], ch, p=[0.2, 0.8])
            ins = [t] + [_const(inits, f"bn{li}_{k}", v) for k, v in
                         (("g", gamma), ("b", rng.normal(0, 0.5, ch)), ("m", rng.normal(0, 2, ch)),
                          ("v", rng.uniform(20, 300, ch)))]
            t = op("BatchNormalization", ins, epsilon=1e-5, momentum=0.9)
            t = quant(t, a_bits)
    t = op("Sub", [t, _const(inits, "out_mean", [0.4488643])])
    p = op("Pow", [_const(inits, "out_var", [318.19666]), _const(inits, "half", 0.5)])
    t = op("Div", [t, p])
    t = op("Mul", [t, _const(inits, "out_gamma", [0.7341181])])
    t = op("Add", [t, _const(inits, "out_beta", [-1.1436615])])
    graph = helper.make_graph(nodes, "torch-jit-export",
                              [helper.make_tensor_value_info("0", TensorProto.FLOAT, [1, 1, side, side])],
                              [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, n_out])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 6
    onnx.save(model, str(path))
    return path


def unsw_brevitas(path: Path, n_in: int = 20, hidden: int = 8, seed: int = 22) -> Path:
    """brevitas' UNSW-NB15 MLP (UNSW_NB15/unsw_nb15_mlp_w2a2/unsw_nb15-mlp-w2a2.onnx), small: input annotated
    BIPOLAR -> Add(1) -> Div(2) -> per layer Quant(W, float scale, 2-bit narrow) -> Gemm(transB, float bias) ->
    BatchNormalization -> Relu -> Quant (float scale; 8-bit after the first layer, 2-bit after the others);
    last Gemm -> BipolarQuant; symbolic output dims; onnx.brevitas domain with its opset import, opset 14."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "onnx::Add_0"

    def c(name, v):
        return _const(inits, name, v)

    nodes.append(helper.make_node("Add", [x, c("add_c", [1.0])], ["/Add_output_0"], name="/Add"))
    nodes.append(helper.make_node("Div", ["/Add_output_0", c("div_c", 2.0)], ["/Div_output_0"], name="/Div"))
    t, dims = "/Div_output_0", [n_in, hidden, hidden, hidden, 1]
    for li in range(4):
        p = f"/pretrained/pretrained.{4 * li}"
        w = rng.normal(0, 1, size=(dims[li + 1], dims[li]))
        nodes.append(helper.make_node(
            "Quant", [c(f"{p}.w", w), c(f"{p}.ws", float(rng.uniform(0.5, 30))), c(f"{p}.wz", 0.0),
                      c(f"{p}.wb", 2.0)], [f"{p}/wq"], name=f"{p}/weight_quant/export_handler/Quant",
            domain="onnx.brevitas", narrow=1, rounding_mode="ROUND", signed=1))
        nodes.append(helper.make_node("Gemm", [t, f"{p}/wq", c(f"{p}.bias", rng.normal(0, 5, dims[li + 1]))],
                                      [f"{p}/Gemm_output_0"], name=f"{p}/Gemm", alpha=1.0, beta=1.0, transB=1))
        t = f"{p}/Gemm_output_0"
        if li == 3:
            break
        ch, q = dims[li + 1], f"/pretrained/pretrained.{4 * li + 3}"
        bn = [c(f"{p}.bn{k}", v) for k, v in (("g", rng.uniform(0.5, 2, ch) * rng.choice([-1, 1], ch)),
                                              ("b", rng.normal(0, 1, ch)), ("m", rng.normal(0, 20, ch)),
                                              ("v", rng.uniform(10, 400, ch)))]
        nodes.append(helper.make_node("BatchNormalization", [t] + bn, [f"{p}/bn_out"],
                                      name=f"/pretrained/pretrained.{4 * li + 1}/BatchNormalization", epsilon=1e-5,
                                      momentum=0.9, training_mode=0))
        nodes.append(helper.make_node("Relu", [f"{p}/bn_out"], [f"{q}/relu_out"], name=f"{q}/act_quant/Relu"))
        nodes.append(helper.make_node(
            "Quant", [f"{q}/relu_out", c(f"{q}.s", float(rng.uniform(0.05, 2))), c(f"{q}.z", 0.0),
                      c(f"{q}.b", 8.0 if li == 0 else 2.0)], [f"{q}/aq"], name=f"{q}/act_quant/export_handler/Quant",
            domain="onnx.brevitas", narrow=0, rounding_mode="ROUND", signed=0))
        t = f"{q}/aq"
    nodes.append(helper.make_node("BipolarQuant", [t, c("out_s", 1.0)], ["63"],
                                  name="/qnt_output/act_quant/export_handler/BipolarQuant", domain="onnx.brevitas"))
    out = helper.make_tensor_value_info("63", TensorProto.FLOAT, ["BipolarQuant63_dim_0", "BipolarQuant63_dim_1"])
    graph = helper.make_graph(nodes, "main_graph", [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, n_in])],
                              [out], initializer=inits)
    ann = onnx.TensorAnnotation(tensor_name=x)
    ann.quant_parameter_tensor_names.append(onnx.StringStringEntryProto(key="finn_datatype", value="BIPOLAR"))
    graph.quantization_annotation.append(ann)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14), helper.make_opsetid("onnx.brevitas", 1)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


# name -> (builder, zoo file it imitates, expected static verdict, host post-processing ops)
ZOO_IMITATIONS = {
    "tfc-w1a1-finn": (lambda p: tfc_finn(p, 1, 1), "TFC_1W1A.onnx", "exact", ["Sub", "Div", "Mul", "Add"]),
    "tfc-w1a2-finn": (lambda p: tfc_finn(p, 1, 2), "TFC_1W2A.onnx", "exact", ["Sub", "Div", "Mul", "Add"]),
    "tfc-w2a2-finn": (lambda p: tfc_finn(p, 2, 2), "TFC_2W2A.onnx", "exact", ["Sub", "Div", "Mul", "Add"]),
    "unsw-w2a2-brevitas-bipolar": (unsw_brevitas, "unsw_nb15-mlp-w2a2.onnx", "approximate", ["Add", "BipolarQuant"]),
}


# --------------------------------------------------------------------------------------------------
# issue 29: convolutional QONNX as real exporters write it (omitted default attributes, channels-last
# inputs wrapped in Transposes, per-channel preambles, Flatten between conv and dense, AveragePool)
# --------------------------------------------------------------------------------------------------

# ONNX defaults of Conv / MaxPool / AveragePool attributes (operators.md): what exporters leave out
_POOL_CONV_DEFAULTS = {"dilations": 1, "strides": 1, "group": 1, "ceil_mode": 0, "count_include_pad": 0,
                       "storage_order": 0, "pads": 0, "auto_pad": b"NOTSET"}


def strip_default_attributes(path: Path, conv_kernel_shape: bool = True) -> Path:
    """Remove every Conv / MaxPool / AveragePool attribute equal to its ONNX default, and Conv's kernel_shape
    (the weight's shape), as tf2onnx, FINN and ONNX optimizers write them. In place."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MaxPool", "AveragePool"):
            continue
        for a in list(node.attribute):
            value = helper.get_attribute_value(a)
            if a.name == "kernel_shape" and node.op_type == "Conv" and conv_kernel_shape:
                node.attribute.remove(a)
            elif a.name in _POOL_CONV_DEFAULTS and (
                    value == _POOL_CONV_DEFAULTS[a.name] or isinstance(value, list)
                    and all(v == _POOL_CONV_DEFAULTS[a.name] for v in value)):
                node.attribute.remove(a)
    onnx.save(model, str(path))
    return path


def qkeras_cnn(path: Path, side: int = 8, c_in: int = 1, filt: int = 3, n_out: int = 3, seed: int = 31,
               input_quant: bool = True, optimised: bool = False) -> Path:
    """QKeras via qonnx's converter (tf2onnx + Quant handlers), as the zoo's QKeras jet tagger is written: NHWC
    input with a symbolic batch 'unk__0' -> [Quant (QActivation)] -> Transpose(0,3,1,2) -> Conv(Quant W, Quant b;
    tf2onnx's attributes dilations, kernel_shape, strides: no pads (VALID), no group) -> Relu -> Quant -> MaxPool
    (kernel_shape, strides; no pads) -> Transpose(0,2,3,1) -> Reshape(-1, n) (Keras' channels-last Flatten) ->
    MatMul -> Add -> Softmax; Quant nodes in finn.custom_op.general without an opset import, weight quantizers
    first, opset 9, IR 4. Unless `optimised`, also the NCHW <-> NHWC Transpose pairs tf2onnx's optimiser cannot
    cancel through the Quant custom op (Conv -> Transpose -> Relu -> Quant -> Transpose -> MaxPool)."""
    rng = np.random.default_rng(seed)
    nodes, inits, count = [], [], [0]

    def const(name, value, dtype=np.float32):
        inits.append(onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def quant(src, scale, bits, signed=1):
        name = f"Quant_{count[0]}"
        count[0] += 1
        params = [const(f"{name}_param{j}", v) for j, v in ((1, scale), (2, 0.0), (3, float(bits)))]
        nodes.append(helper.make_node("Quant", [src, *params], [f"{name}_out0"], name=name,
                                      domain="finn.custom_op.general", narrow=0, rounding_mode="ROUND", signed=signed))
        return f"{name}_out0"

    def op(kind, ins, name, **attrs):
        nodes.append(helper.make_node(kind, ins, [f"{name}_out0"], name=name, **attrs))
        return f"{name}_out0"

    t = quant("global_in", 2.0 ** -5, 8) if input_quant else "global_in"
    t = op("Transpose", [t], "Transpose_0", perm=[0, 3, 1, 2])
    w = quant(const("conv_w", rng.normal(0, 0.5, (filt, c_in, 3, 3))), 2.0 ** -6, 8)
    b = quant(const("conv_b", rng.normal(0, 0.5, (filt,))), 2.0 ** -6, 10)
    t = op("Conv", [t, w, b], "Conv_0", dilations=[1, 1], kernel_shape=[3, 3], strides=[1, 1])
    if not optimised:
        t = op("Transpose", [t], "Transpose_1", perm=[0, 2, 3, 1])
    t = quant(op("Relu", [t], "Relu_0"), 2.0 ** -3, 6, signed=0)
    if not optimised:
        t = op("Transpose", [t], "Transpose_2", perm=[0, 3, 1, 2])
    t = op("MaxPool", [t], "MaxPool_0", kernel_shape=[2, 2], strides=[2, 2])
    t = op("Transpose", [t], "Transpose_3", perm=[0, 2, 3, 1])
    n = ((side - 2) // 2) ** 2 * filt
    t = op("Reshape", [t, const("flatten_shape", [-1, n], np.int64)], "Reshape_0")
    t = op("MatMul", [t, quant(const("dense_w", rng.normal(0, 0.5, (n, n_out))), 2.0 ** -6, 8)], "MatMul_0")
    t = op("Add", [t, quant(const("dense_b", rng.normal(0, 0.5, (n_out,))), 2.0 ** -6, 10)], "Add_0")
    t = op("Softmax", [t], "Softmax_0", axis=1)
    weights = {i.name for i in inits}
    order = [nd for nd in nodes if nd.op_type == "Quant" and nd.input[0] in weights]
    nodes = order + [nd for nd in nodes if nd not in order]
    # the converter ends with qonnx's cleanup: Quant_<i> numbered in graph order, tensors Quant_<i>_param<j> / _out0
    rename = {}
    for i, nd in enumerate(nd for nd in nodes if nd.op_type == "Quant"):
        rename.update({nd.output[0]: f"Quant_{i}_out0", **{t: f"Quant_{i}_param{j}" for j, t in
                                                           enumerate(nd.input[1:], start=1)}})
        nd.name = f"Quant_{i}"
    for nd in nodes:
        nd.input[:] = [rename.get(t, t) for t in nd.input]
        nd.output[:] = [rename.get(t, t) for t in nd.output]
    for init in inits:
        init.name = rename.get(init.name, init.name)
    t = rename.get(t, t)
    graph = helper.make_graph(nodes, "qkeras_cnn",
                              [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, ["unk__0", side, side, c_in])],
                              [helper.make_tensor_value_info(t, TensorProto.FLOAT, ["unk__0", n_out])], initializer=inits)
    for nd in order:  # the converter's annotations: the weight quantizers' parameters are FLOAT32
        for name in nd.input[1:]:
            ann = onnx.TensorAnnotation(tensor_name=name)
            ann.quant_parameter_tensor_names.append(onnx.StringStringEntryProto(key="finn_datatype", value="FLOAT32"))
            graph.quantization_annotation.append(ann)
    model = helper.make_model(graph, producer_name="tf2onnx", opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 4
    onnx.save(model, str(path))
    return path


class _ViewFlatten:  # x.view(x.size(0), -1): TorchScript exports Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    @staticmethod
    def make():
        import torch

        class ViewFlatten(torch.nn.Module):
            def forward(self, x):
                return x.view(x.size(0), -1)

        return ViewFlatten()


def brevitas_conv_net(path: Path, side: int = 14, avg: int = 2, pow2: bool = True, strip: bool = True,
                      seed: int = 32, view: bool = False) -> Path:
    """brevitas export_qonnx of an NCHW CNN with a per-channel normalisation preamble ((x - mean) / std, constants
    (1, 3, 1, 1)) -> QuantIdentity -> QuantConv2d(3->4, 3x3, padding 1) -> QuantReLU -> MaxPool2d(2) ->
    QuantConv2d(4->4, 3x3) -> QuantReLU -> AvgPool2d(avg) -> QuantIdentity -> Flatten (with `view`: x.view(N, -1),
    exported as Shape/Gather/Unsqueeze/Concat/Reshape) -> QuantLinear; with
    `strip`, every Conv / pool attribute at its ONNX default removed afterwards (FINN / optimiser form)."""
    import torch
    from brevitas.export import export_qonnx
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU

    torch.manual_seed(seed)
    inp, wq, bq, relu, out = _brevitas_quants(pow2)

    class Normalise(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.5, 0.25, -0.125]).reshape(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.5, 0.25, 0.5]).reshape(1, 3, 1, 1))

        def forward(self, x):
            return (x - self.mean) / self.std

    spatial = (side // 2 - 2) // avg
    model = torch.nn.Sequential(
        Normalise(),
        QuantIdentity(act_quant=inp, return_quant_tensor=True),
        QuantConv2d(3, 4, 3, padding=1, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        QuantReLU(act_quant=relu, return_quant_tensor=False),
        torch.nn.MaxPool2d(2),
        QuantConv2d(4, 4, 3, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        QuantReLU(act_quant=relu, return_quant_tensor=False),
        torch.nn.AvgPool2d(avg),
        QuantIdentity(act_quant=relu, return_quant_tensor=False),
        _ViewFlatten.make() if view else torch.nn.Flatten(),
        QuantIdentity(act_quant=relu, return_quant_tensor=True),
        QuantLinear(4 * spatial * spatial, 3, bias=True, weight_quant=wq, bias_quant=bq, return_quant_tensor=False),
        QuantIdentity(act_quant=out, return_quant_tensor=False),
    ).eval()
    export_qonnx(model, input_t=torch.zeros(1, 3, side, side), export_path=str(path), dynamo=False)
    return strip_default_attributes(path) if strip else path


def conv_node_model(path: Path, op: str = "Conv", side: int = 6, channels: int = 2, **attrs) -> Path:
    """One Conv / MaxPool / AveragePool between power-of-two quantizers, with exactly the attributes given (the
    refusal and auto_pad tests), then Flatten -> MatMul."""
    g = EcoBuilder([1, channels, side, side], seed=33)
    g.quant(2.0 ** -4, 8)
    if op == "Conv":
        filters = attrs.pop("filters", channels)
        group = attrs.get("group", 1)
        k = attrs.get("kernel_shape", [3, 3])
        w = g.quant_tensor(g.const(g.rng.normal(0, 0.5, (filters, channels // group, *k))), 2.0 ** -5, 8)
        name = g._name("Conv")
        g.nodes.append(helper.make_node("Conv", [g.tensor, w], [f"{name}_out"], name=name, **attrs))
        g.tensor = f"{name}_out"
    else:
        g.op(op, **attrs)
    g.quant(2.0 ** -4, 10)
    g.op("Flatten", axis=1)
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    partial = ModelWrapper(helper.make_model(  # onnxruntime's shape inference (qonnx's) gives the flattened size
        helper.make_graph(g.nodes, "n", [g.input], [helper.make_tensor_value_info(g.tensor, TensorProto.FLOAT, None)],
                          initializer=g.inits), opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QDOMAIN, 1)]))
    g.n = int(partial.transform(InferShapes()).get_tensor_shape(g.tensor)[1])
    g.dense(3, 2.0 ** -5, 8).quant(2.0 ** -4, 12)
    return g.save(path)


# name -> (builder, expected static verdict, host ops): convolutional exporters' forms (issue 29)
CONV_MODELS = {
    "qkeras-cnn-nhwc-transposes": (qkeras_cnn, "exact", ["Softmax"]),
    "brevitas-cnn-defaults-omitted": (brevitas_conv_net, "exact", []),
    "brevitas-cnn-view-reshape": (lambda p: brevitas_conv_net(p, view=True, strip=False), "exact", []),
    # open: hls4ml 1.3.0 fails to move the float scale through the average (ValueError: operands could not be
    # broadcast together with shapes (2,2,4) (3,3,4,4)); kept so the benchmark shows it
    "brevitas-cnn-avgpool3-float": (lambda p: brevitas_conv_net(p, side=18, avg=3, pow2=False), "approximate", []),
}


def kwsmlp_brevitas(path: Path, shape: tuple[int, int] = (4, 5), hidden: int = 16, n_out: int = 12,
                    seed: int = 23) -> Path:
    """brevitas' keyword-spotting MLP (GSCV2/kwsmlp_w3a3/kwsmlp_w3a3.onnx, pytorch 1.7 TorchScript export), small:
    (1, 1, H, W) MFCC input -> Quant (8-bit narrow, float scale) -> Flatten(axis 1) -> 3 x [Quant(W (out, in),
    per-channel float scales (out, 1), 3-bit narrow) -> Transpose(1, 0) -> MatMul -> BatchNormalization (epsilon,
    momentum) -> Relu -> Quant (3-bit unsigned, scale 1/7)] -> Quant(W, per-tensor scale) -> Transpose -> MatMul;
    onnx.brevitas domain without its opset import, opset 11, IR 6, no value_info, numeric node names."""
    rng = np.random.default_rng(seed)
    nodes, inits, num = [], [], [2]

    def c(value) -> str:
        num[0] += 1
        return _const(inits, str(num[0]), value)

    def node(kind, ins, **attrs) -> str:
        num[0] += 1
        out = str(num[0])
        domain = {"domain": "onnx.brevitas"} if kind == "Quant" else {}
        nodes.append(helper.make_node(kind, ins, [out], name=f"{kind}_{num[0]}", **domain, **attrs))
        return out

    def quant(src, scale, bits, signed=1, narrow=1):
        return node("Quant", [src, c(scale), c(0.0), c(float(bits))], narrow=narrow, rounding_mode="ROUND",
                    signed=signed)

    t = quant("inp.1", 0.8298504, 8)
    t = node("Flatten", [t], axis=1)
    dims = [shape[0] * shape[1], hidden, hidden, hidden, n_out]
    for li in range(4):
        w = rng.normal(0, 0.15, size=(dims[li + 1], dims[li]))
        scale = rng.uniform(0.04, 0.07, size=(dims[li + 1], 1)) if li < 3 else 0.08102711
        t = node("MatMul", [t, node("Transpose", [quant(c(w), scale, 3)], perm=[1, 0])])
        if li == 3:
            break
        ch = dims[li + 1]
        bn = [_const(inits, f"features.{4 * li + 4}.{k}", v) for k, v in
              (("weight", rng.uniform(0.55, 1.1, ch)), ("bias", rng.normal(-0.3, 0.2, ch)),
               ("running_mean", rng.normal(0, 2 if li == 0 else 0.5, ch)),
               ("running_var", rng.uniform(200, 600, ch) if li == 0 else rng.uniform(0.3, 0.5, ch)))]
        t = node("BatchNormalization", [t, *bn], epsilon=9.999999747378752e-06, momentum=0.8999999761581421)
        t = quant(node("Relu", [t]), 1 / 7, 3, signed=0, narrow=0)
    graph = helper.make_graph(nodes, "torch-jit-export",
                              [helper.make_tensor_value_info("inp.1", TensorProto.FLOAT, [1, 1, *shape])],
                              [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, n_out])], initializer=inits)
    model = helper.make_model(graph, producer_name="pytorch", producer_version="1.7",
                              opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    onnx.save(model, str(path))
    return path


ZOO_IMITATIONS["kwsmlp-w3a3-brevitas"] = (kwsmlp_brevitas, "kwsmlp_w3a3.onnx", "approximate", [])
