"""torch (brevitas fake-quant) == QONNX execution, bit for bit; on a mismatch, name the first layer.

Both sides get the same input already on the input quantizer's grid, so any difference is the
export's fault, not rounding of the raw input.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper

from edgekd.export.qonnx import load_qonnx, run_qonnx

log = logging.getLogger(__name__)

__all__ = ["FidelityError", "verify_torch_against_qonnx", "qonnx_activations", "locate_divergence"]

# Accumulators (conv/dense outputs before their quantizer) are float32 sums whose rounding depends on
# the summation order; a real divergence is at least one quantum of a later quantizer, far above this.
_REL_TOL = 2e-6


from edgekd.errors import FidelityError  # noqa: E402 - defined under everything, raised here


def qonnx_activations(model: ModelWrapper, context: dict[str, np.ndarray], n: int) -> list[tuple[str, str, np.ndarray]]:
    """(node name, tensor name, (n, -1) array) for every node output that depends on the graph input,
    in graph order; weight/bias Quant nodes are left out."""
    dynamic = {inp.name for inp in model.graph.input}
    out: list[tuple[str, str, np.ndarray]] = [
        (inp.name, inp.name, np.asarray(context[inp.name]).reshape(n, -1)) for inp in model.graph.input
    ]
    for node in model.graph.node:
        if not any(i in dynamic for i in node.input):
            continue
        for t in node.output:
            dynamic.add(t)
            out.append((node.name, t, np.asarray(context[t]).reshape(n, -1)))
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    return bool(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0) <= _REL_TOL * scale)


def locate_divergence(
    layers: Sequence[tuple[str, np.ndarray]],
    reference: Sequence[tuple[str, np.ndarray]],
    hint: Callable[[str], list[str]] | None = None,
) -> tuple[str | None, str | None]:
    """First entry of `layers` (in order) whose values match no `reference` tensor.

    Each layer is matched against the reference tensors named by `hint(layer)` first, then against
    every later reference tensor of the same size (order of layers with matching shapes). Returns
    (layer name, closest reference name) or (None, None) when every layer matches.
    """
    ref_index = {name: i for i, (name, _) in enumerate(reference)}
    pos = 0
    for name, arr in layers:
        hinted = [ref_index[h] for h in (hint(name) if hint else []) if h in ref_index]
        ordered = hinted + [i for i in range(pos, len(reference)) if i not in hinted]
        match = next((i for i in ordered if _same(arr, reference[i][1])), None)
        if match is None:
            same_size = [i for i in ordered if reference[i][1].shape == arr.shape]
            closest = reference[same_size[0]][0] if same_size else None
            return name, closest
        pos = max(pos, match + 1)
    return None, None


def _torch_layers(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """Layer-level modules in call order: brevitas layers whole, plus torch leaves (pool, flatten)."""
    picked: list[tuple[str, torch.nn.Module]] = []
    for name, m in model.named_modules():
        if not name or any(name.startswith(p + ".") for p, _ in picked):
            continue
        if type(m).__module__.startswith("brevitas.nn") or not any(True for _ in m.children()):
            picked.append((name, m))
    return picked


def _torch_trace(model: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    acts: list[tuple[str, np.ndarray]] = []

    def hook(name: str):
        def fn(_m, _inp, out):
            t = out.value if hasattr(out, "value") else out
            a = t.detach().cpu().numpy()
            if a.ndim == 4:  # QONNX tensors after the input Transpose are channels-last
                a = a.transpose(0, 2, 3, 1)
            acts.append((name, a.reshape(a.shape[0], -1)))
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in _torch_layers(model)]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    y = y.value if hasattr(y, "value") else y
    return y.detach().cpu().numpy(), acts


def verify_torch_against_qonnx(
    model: torch.nn.Module,
    qonnx_path: Path | str | ModelWrapper,
    x: np.ndarray | torch.Tensor,
    raise_on_mismatch: bool = True,
    return_outputs: bool = False,
) -> dict:
    """Compare the brevitas model (eval mode) with the QONNX execution on the same pre-quantized input.

    `x` is NCHW; it is put on the student's input grid first (edgekd.students.cell_cnn.quantize_input).
    Returns {n, exact (fraction of output values bit-equal), samples_exact, max_abs_diff,
    first_diverging_layer (torch module name, None when exact), qonnx_node}; raises `FidelityError`
    naming the first diverging layer when not exact (with `raise_on_mismatch`).
    """
    from edgekd.students.cell_cnn import quantize_input

    qmodel = load_qonnx(qonnx_path)
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    was_training = model.training
    model.eval()
    try:
        xq = quantize_input(model, xt)
        y_torch, torch_acts = _torch_trace(model, xq)
    finally:
        model.train(was_training)
    y_qonnx = run_qonnx(qmodel, xq.numpy())
    result = _compare(
        "torch", "QONNX", y_torch, y_qonnx, raise_on_mismatch,
        localise=lambda bad: _localise_torch(qmodel, xq.numpy()[bad], [(n, a[bad]) for n, a in torch_acts]),
        where=str(qonnx_path) if not isinstance(qonnx_path, ModelWrapper) else "<model>",
    )
    if return_outputs:  # the caller saves them; kept out of the JSON-ready figures otherwise
        result["qonnx_outputs"] = y_qonnx
    return result


def _localise_torch(qmodel: ModelWrapper, xq: np.ndarray, torch_acts: list[tuple[str, np.ndarray]]):
    ctx = run_qonnx(qmodel, xq, return_all=True)
    ref = [(node, arr) for node, _t, arr in qonnx_activations(qmodel, ctx, xq.shape[0])]
    return locate_divergence(torch_acts, ref)


def _compare(
    name_a: str,
    name_b: str,
    y_a: np.ndarray,
    y_b: np.ndarray,
    raise_on_mismatch: bool,
    localise: Callable[[np.ndarray], tuple[str | None, str | None]],
    where: str,
    max_localise: int = 4,
) -> dict:
    y_a = np.asarray(y_a, dtype=np.float64).reshape(y_b.shape[0], -1)
    y_b = np.asarray(y_b, dtype=np.float64).reshape(y_b.shape[0], -1)
    equal = y_a == y_b
    result = {
        "n": int(y_b.shape[0]),
        "exact": float(equal.mean()),
        "samples_exact": float(equal.all(axis=1).mean()),
        "max_abs_diff": float(np.max(np.abs(y_a - y_b))),
        "first_diverging_layer": None,
        "reference_layer": None,
    }
    if result["exact"] == 1.0:
        log.info("%s == %s bit-exact on %d samples (%s)", name_a, name_b, result["n"], where)
        return result
    bad = np.flatnonzero(~equal.all(axis=1))[:max_localise]
    layer, ref_layer = localise(bad)
    # A mismatch must name a layer; when every traced layer matches, the last step is to blame.
    result["first_diverging_layer"] = layer or "<output>"
    result["reference_layer"] = ref_layer
    msg = (
        f"{where}: {name_a} and {name_b} differ on {int((~equal.all(axis=1)).sum())}/{result['n']} samples "
        f"(max |diff| {result['max_abs_diff']:.3g}); first diverging layer: '{result['first_diverging_layer']}'"
        f" ({name_b} counterpart: {ref_layer!r}). Check that layer's quantizers (power-of-two scales) and, "
        "for the first layer, the input precision."
    )
    if raise_on_mismatch:
        raise FidelityError(msg, result)
    log.error(msg)
    return result
