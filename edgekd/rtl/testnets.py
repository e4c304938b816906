"""Tiny QONNX networks with random quantised weights, and their hardware contracts (tests and benchmarks).

`conv_net` is a channels-last Quant -> Conv -> MaxPool -> Relu -> Quant -> ... -> Flatten -> MatMul -> Add ->
Quant chain like edgekd's own CNN students; `mlp` a Quant -> (MatMul -> Add -> Relu -> Quant)* chain like the
zoo's jet tagger. `make_contract` runs QONNX (qonnx's executor) on inputs on the grid and writes the contract.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _quant_node(onnx_helper, name: str, src: str, scale: float, bits: int, signed: int, narrow: int = 0):
    from onnx import TensorProto

    h = onnx_helper
    inits = [h.make_tensor(f"{name}_s", TensorProto.FLOAT, [], [scale]),
             h.make_tensor(f"{name}_z", TensorProto.FLOAT, [], [0.0]),
             h.make_tensor(f"{name}_b", TensorProto.FLOAT, [], [float(bits)])]
    node = h.make_node("Quant", [src, f"{name}_s", f"{name}_z", f"{name}_b"], [name], name=name,
                       domain="qonnx.custom_op.general", signed=signed, narrow=narrow, rounding_mode="ROUND")
    return node, inits


def build_qonnx(path: Path, in_shape: tuple[int, ...], layers: list[dict], seed: int = 0,
                in_frac: int = 5, in_bits: int = 8) -> Path:
    """layers: {"conv": (k, cout, stride[, (pad top, left, bottom, right)])} | {"pool": (k, stride)} | {"dense": m}
    | {"relu_q": (bits, frac)}
    | {"q": (bits, frac)} (signed output quant) | {"flatten": True}."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "global_in"
    q, i = _quant_node(helper, "qin", x, 2.0**-in_frac, in_bits, 1)
    nodes.append(q)
    inits += i
    cur, shape = "qin", tuple(in_shape)
    for n, spec in enumerate(layers):
        (kind, arg), = spec.items()
        if kind == "conv":
            k, cout, s, *rest = arg
            pads = list(rest[0]) if rest else [0, 0, 0, 0]  # top, left, bottom, right
            kh, kw = (k, k) if isinstance(k, int) else k
            cin = shape[2]
            w = rng.integers(-100, 101, (cout, kh, kw, cin)).astype(np.float32) * 2.0**-8
            b = rng.integers(-3000, 3001, (cout,)).astype(np.float32) * 2.0**-14
            inits += [helper.make_tensor(f"w{n}", TensorProto.FLOAT, w.shape, w.ravel()),
                      helper.make_tensor(f"b{n}", TensorProto.FLOAT, b.shape, b.ravel())]
            nodes.append(helper.make_node("Conv", [cur, f"w{n}", f"b{n}"], [f"conv{n}"], name=f"Conv_{n}",
                                          domain="qonnx.custom_op.channels_last", kernel_shape=[kh, kw],
                                          strides=[s, s], pads=[pads[0], pads[1], pads[2], pads[3]],
                                          dilations=[1, 1], group=1))
            cur = f"conv{n}"
            shape = ((shape[0] + pads[0] + pads[2] - kh) // s + 1, (shape[1] + pads[1] + pads[3] - kw) // s + 1, cout)
        elif kind == "pool":
            k, s = arg
            nodes.append(helper.make_node("MaxPool", [cur], [f"pool{n}"], name=f"MaxPool_{n}",
                                          domain="qonnx.custom_op.channels_last", kernel_shape=[k, k],
                                          strides=[s, s], pads=[0, 0, 0, 0]))
            cur = f"pool{n}"
            shape = ((shape[0] - k) // s + 1, (shape[1] - k) // s + 1, shape[2])
        elif kind == "relu_q":
            bits, frac = arg
            nodes.append(helper.make_node("Relu", [cur], [f"relu{n}"], name=f"Relu_{n}"))
            q, i = _quant_node(helper, f"q{n}", f"relu{n}", 2.0**-frac, bits, 0)
            nodes.append(q)
            inits += i
            cur = f"q{n}"
        elif kind == "q":
            bits, frac = arg
            q, i = _quant_node(helper, f"q{n}", cur, 2.0**-frac, bits, 1)
            nodes.append(q)
            inits += i
            cur = f"q{n}"
        elif kind == "flatten":
            nodes.append(helper.make_node("Flatten", [cur], [f"flat{n}"], name=f"Flatten_{n}", axis=1))
            cur = f"flat{n}"
            shape = (int(np.prod(shape)),)
        elif kind == "dense":
            m = arg
            nin = int(np.prod(shape))
            w = rng.integers(-100, 101, (nin, m)).astype(np.float32) * 2.0**-8
            b = rng.integers(-3000, 3001, (m,)).astype(np.float32) * 2.0**-14
            inits += [helper.make_tensor(f"w{n}", TensorProto.FLOAT, w.shape, w.ravel()),
                      helper.make_tensor(f"b{n}", TensorProto.FLOAT, b.shape, b.ravel())]
            nodes.append(helper.make_node("MatMul", [cur, f"w{n}"], [f"mm{n}"], name=f"MatMul_{n}"))
            nodes.append(helper.make_node("Add", [f"mm{n}", f"b{n}"], [f"add{n}"], name=f"Add_{n}"))
            cur, shape = f"add{n}", (m,)
    nodes[-1].output[0] = "global_out"
    # every tensor's shape (qonnx's InferShapes hides all custom ops at once, so give them here)
    shapes, sh = {}, tuple(in_shape)
    for nd in nodes:
        if nd.op_type == "Conv":
            w = next(t for t in inits if t.name == nd.input[1])
            kh, kw = list(next(a.ints for a in nd.attribute if a.name == "kernel_shape"))
            st = list(next(a.ints for a in nd.attribute if a.name == "strides"))
            pt, pl, pb, pr = list(next(a.ints for a in nd.attribute if a.name == "pads"))
            sh = ((sh[0] + pt + pb - kh) // st[0] + 1, (sh[1] + pl + pr - kw) // st[1] + 1, w.dims[0])
        elif nd.op_type == "MaxPool":
            kh, kw = list(next(a.ints for a in nd.attribute if a.name == "kernel_shape"))
            st = list(next(a.ints for a in nd.attribute if a.name == "strides"))
            sh = ((sh[0] - kh) // st[0] + 1, (sh[1] - kw) // st[1] + 1, sh[2])
        elif nd.op_type == "Flatten":
            sh = (int(np.prod(sh)),)
        elif nd.op_type == "MatMul":
            w = next(t for t in inits if t.name == nd.input[1])
            sh = (w.dims[1],)
        if nd.output[0] != "global_out":
            shapes[nd.output[0]] = [1, *sh]
    out_shape = [1, *shape]
    graph = helper.make_graph(nodes, "rtl_testnet",
                              [helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, *in_shape])],
                              [helper.make_tensor_value_info("global_out", TensorProto.FLOAT, out_shape)], inits,
                              value_info=[helper.make_tensor_value_info(k, TensorProto.FLOAT, v)
                                          for k, v in shapes.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("qonnx.custom_op.general", 1),
                                                    helper.make_opsetid("qonnx.custom_op.channels_last", 1)])
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    ModelWrapper(model).transform(InferShapes()).save(str(path))
    return path


def make_contract(folder: Path, in_shape: tuple[int, ...], layers: list[dict], n: int = 16, seed: int = 0,
                  in_frac: int = 5, in_bits: int = 8):
    """A contract folder for a tiny net: QONNX file, `n` random inputs on the grid and QONNX's outputs."""
    from edgekd.contract import HardwareContract

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = build_qonnx(folder / "net.onnx", in_shape, layers, seed, in_frac, in_bits)
    rng = np.random.default_rng(seed + 1)
    raw = rng.integers(-(2 ** (in_bits - 1)), 2 ** (in_bits - 1), (n, *in_shape))
    x = (raw * 2.0**-in_frac).astype(np.float32)
    from qonnx.core.onnx_exec import execute_onnx

    from edgekd.export.qonnx import _quiet_onnxruntime, load_qonnx

    _quiet_onnxruntime()
    model = load_qonnx(path)
    y = np.concatenate([execute_onnx(model, {"global_in": x[j:j + 1]})["global_out"] for j in range(n)])
    if len(in_shape) == 3:  # the contract hands inputs NCHW, like torch
        contract_x, shape = x.transpose(0, 3, 1, 2), [1, in_shape[2], in_shape[0], in_shape[1]]
    else:
        contract_x, shape = x, [1, *in_shape]
    c = HardwareContract(qonnx="net.onnx", input_precision=f"fixed<{in_bits},{in_bits - in_frac}>",
                         input_shape=shape, output_names=[f"out{j}" for j in range(y.shape[-1])],
                         classifier=False, scoring={"kind": "none"}, folder=folder)
    c.save(folder, contract_x, y.reshape(n, -1))
    return HardwareContract.load(folder)
