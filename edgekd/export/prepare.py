"""Graph preparation of a bring-your-own QONNX model: rewrites that keep the hardware bit-exact.

Each rewrite is a qonnx `Transformation` with one job. Contract shared by all of them:

* input: a QONNX model after `cleanup_model` and `GemmToMatMul`, still channels-first (run them before
  `ConvertToChannelsLastAndClean`);
* a rewrite changes the graph only where its exactness condition holds (stated in its docstring); elsewhere
  it leaves the nodes alone and records why in `skipped`, so the verdicts can call them approximate;
* every rewrite it makes is recorded in `folds` ({kind, nodes, into, detail}) for the report;
* the conditions are necessary, not a proof: `edgekd.export.byo.prepare_model` runs the original and the
  prepared model on the same inputs and accepts the preparation only when every output is bit-equal.

Transformations:
    SplitHostPostprocessing   trailing Softmax / LogSoftmax / ArgMax / TopK -> host post-processing stage
    FoldInputNormalisation    scalar Mul/Div/Add/Sub before the input quantizer -> first layer's weights/bias
    FoldBatchNorm             BatchNormalization after MatMul/Conv -> that layer's weights and bias

Layout (the names below are re-exported here, the public API):

* edgekd.export.prepare_graph: exact grids, constant Quant parameters and values, graph navigation;
* edgekd.export.prepare_host: `SplitHostPostprocessing`, `apply_host_postprocessing`;
* edgekd.export.prepare_normalise: `FoldInputNormalisation`;
* edgekd.export.prepare_batchnorm: `FoldBatchNorm`.
"""

from __future__ import annotations

from edgekd.export.prepare_batchnorm import FoldBatchNorm
from edgekd.export.prepare_graph import (  # noqa: F401 - _quant_params is also imported by edgekd.export.byo*
    _quant_params,
    exact_grid,
    is_power_of_two,
    quant_values,
    remove_dead_nodes,
)
from edgekd.export.prepare_host import HOST_OPS, SplitHostPostprocessing, apply_host_postprocessing
from edgekd.export.prepare_normalise import FoldInputNormalisation

__all__ = [
    "HOST_OPS",
    "FoldBatchNorm",
    "FoldInputNormalisation",
    "SplitHostPostprocessing",
    "apply_host_postprocessing",
    "exact_grid",
    "is_power_of_two",
    "quant_values",
]
