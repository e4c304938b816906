"""Model problems caught before they cost minutes or reach a report.

- `check_finite_weights`: a training run that diverged leaves NaN/inf weights; the distill step stops
  there (naming the tensor) instead of exporting garbage that every later check would trip over.
- `check_finite_logits`: teacher logits with NaN/inf are never cached or handed to distillation.
- `check_io_parallel_budget`: hls4ml's io_parallel unrolls every layer, and its generated C++ grows with
  the multiplications per image (REFERENCE.md section 4: the 5,682-parameter cell student, whose first
  conv has 304,704 products, took over 10 minutes to compile with io_parallel, against ~15 s with
  io_stream; the 16x16 test student, 7,056 products in its largest layer, about 25 s). A layer above
  `hls.max_parallel_products` is refused before conversion, with its name, its count and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgekd.errors import LayerTooLargeError, NonFiniteError

__all__ = [
    "LayerTooLargeError", "NonFiniteError", "check_finite_logits", "check_finite_weights",
    "check_io_parallel_budget", "layer_products",
]


def check_finite_weights(state_dict: Mapping[str, object], what: str) -> None:
    """Raise NonFiniteError naming the first tensor of `state_dict` that holds NaN or inf."""
    import torch

    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            n_bad = int((~torch.isfinite(value)).sum())
            raise NonFiniteError(
                f"{what}: weight tensor '{name}' has {n_bad} NaN/inf values of {value.numel()} after training "
                "(training diverged); lower the learning rate (distill.lr / distill.qat_lr) or check the "
                "teacher logits and data, then run the same command again"
            )


def check_finite_logits(logits: np.ndarray, what: str) -> None:
    """Raise NonFiniteError when teacher logits hold NaN or inf (they would poison the cache and the KD loss)."""
    finite = np.isfinite(logits)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise NonFiniteError(
            f"{what}: {int((~finite).sum())} NaN/inf logits (first at image {row}); nothing was cached. "
            "Check the teacher file (teacher.path) or retrain it with a lower teacher.lr"
        )


def layer_products(model) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    """(node name, op, multiplications per image) for every Conv and MatMul of a shape-inferred QONNX model."""
    out = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul") or len(node.input) < 2:
            continue
        w = model.get_tensor_shape(node.input[1])
        y = model.get_tensor_shape(node.output[0])
        if not w or not y:
            continue
        if node.op_type == "Conv":
            # out elements (per image) x (weights per output channel)
            per_image = math.prod(y[1:]) if len(y) > 1 else math.prod(y)
            products = per_image * (math.prod(w) // max(w[0], 1))
        else:
            products = math.prod(w[-2:])
        out.append((node.name, node.op_type, int(products)))
    return out


def check_io_parallel_budget(model, io_type: str, limit: int, source: Path | str = "QONNX model") -> None:  # type: ignore[no-untyped-def]
    """Refuse (LayerTooLargeError) an io_parallel conversion with a layer above `limit` products per image."""
    if io_type != "io_parallel" or limit <= 0:
        return
    too_big = [(n, op, p) for n, op, p in layer_products(model) if p > limit]
    if too_big:
        name, op, products = max(too_big, key=lambda t: t[2])
        raise LayerTooLargeError(
            f"{source}: layer {name} ({op}) needs {products:,} multiplications per image, above "
            f"hls.max_parallel_products = {limit:,} for hls.io_type io_parallel, which unrolls every layer "
            f"({len(too_big)} layer(s) over the limit): hls4ml's generated code and g++ compile grow with the unrolled "
            "size (minutes to hours) and the parallel design may not fit the part; use hls.io_type io_stream, a "
            "smaller student, or raise hls.max_parallel_products if you accept the cost"
        )
