"""Cleaned QONNX -> hls4ml project (written and compiled with g++ for C-simulation).

Uses hls4ml's ONNX frontend with per-layer ('name') configuration. Precisions come from the Quant
nodes ('auto'); the one thing QONNX cannot tell hls4ml is the graph input's type, so it is set
explicitly to the grid of the first quantizer (e.g. 'fixed<8,3>'). With any other input type the
C-simulation is not bit-exact (truncation or wrap-around before the first Quant).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from qonnx.core.modelwrapper import ModelWrapper

from edgekd.config import HLSConfig
from edgekd.export.support import check_hardware_support
from edgekd.modelcheck import check_io_parallel_budget

log = logging.getLogger(__name__)

__all__ = ["PROJECT_NAME", "build_hls_config", "convert_to_hls", "quiet_hls4ml"]

PROJECT_NAME = "myproject"
_PRECISION = re.compile(r"^u?fixed<\d+,-?\d+(,[A-Z_]+)*>$|^u?int<\d+>$")


@contextlib.contextmanager
def quiet_hls4ml():
    """hls4ml prints progress to stdout; route it to the debug log instead."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        text = buf.getvalue().strip()
        if text:
            log.debug("hls4ml: %s", text)


#: prefixes hls4ml 1.3.0's ONNX passes give the layer they make from a node (conv_to_convxd,
#: conv_to_depthwiseconvxd, matmul_const_to_dense): `f'{newtype.__name__}_{node.name}'`
_PASS_PREFIXES = ("Conv1D_", "Conv2D_", "DepthwiseConv1D_", "DepthwiseConv2D_", "Dense_")


def source_node_name(layer_name: str) -> str:
    """The ONNX node a converted layer came from (Conv2D_Conv_0 -> Conv_0). The pass copies that node's
    config entry over the new layer's, so per-layer settings must sit on the node's name."""
    for prefix in _PASS_PREFIXES:
        if layer_name.startswith(prefix):
            return layer_name[len(prefix):]
    return layer_name


def model_defaults(hls_cfg: HLSConfig) -> tuple[int, str]:
    """(reuse factor, strategy) for hls4ml's Model section: the configured ones when they are one value for
    every layer; otherwise 1 / Latency, the fastest setting, with per-layer choices in `layer_settings`."""
    rf = hls_cfg.reuse_factor if isinstance(hls_cfg.reuse_factor, int) else 1
    strategy = "Latency" if hls_cfg.strategy == "auto" else hls_cfg.strategy
    return rf, strategy


def build_hls_config(model: ModelWrapper, hls_cfg: HLSConfig, input_precision: str,
                     layer_settings: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """hls4ml per-layer config: 'auto' precisions from Quant nodes, the input set to `input_precision`,
    tracing enabled on every layer (free until `trace` recompiles with it).

    `layer_settings`: {hls4ml layer name (e.g. Conv2D_Conv_0): {"ReuseFactor": int, "Strategy": str}} as
    edgekd.hls.fit chooses them; hls4ml reads a layer's entry by the name of the layer its passes create.
    """
    import hls4ml

    if not _PRECISION.match(input_precision.replace(" ", "")):
        raise ValueError(f"input_precision '{input_precision}' is not an hls4ml type such as 'fixed<8,3>'")
    rf, strategy = model_defaults(hls_cfg)
    with quiet_hls4ml():
        config = hls4ml.utils.config_from_onnx_model(
            model, granularity="name", backend=hls_cfg.backend, default_reuse_factor=rf
        )
    config["Model"]["Strategy"] = strategy
    config["Model"]["ReuseFactor"] = rf
    for name, setting in (layer_settings or {}).items():
        for key in {name, source_node_name(name)}:
            config["LayerName"].setdefault(key, {}).update(setting)
    in_name = model.graph.input[0].name
    layers = config["LayerName"]
    if in_name not in layers:
        raise KeyError(f"hls4ml config has no entry for the graph input '{in_name}'; layers: {sorted(layers)[:8]}")
    layers[in_name].setdefault("Precision", {})["result"] = input_precision
    for entry in layers.values():
        entry["Trace"] = True
    return config


def _install_model_stamp() -> None:
    """Make hls4ml's library stamp a function of the model instead of `uuid4()` (bit-reproducible projects).

    hls4ml's `make_stamp` writer pass runs on every `write()`/`compile()`/`trace()` and puts a random
    8-character stamp into build_lib.sh and hls4ml_config.yml. A model converted here carries
    `_edgekd_stamp` (from its QONNX bytes and hls4ml config) and the pass uses it; other models keep uuid4.
    """
    from hls4ml.model.optimizer.passes.stamp import MakeStamp

    if getattr(MakeStamp.transform, "_edgekd", False):
        return
    original = MakeStamp.transform

    def transform(self, model):  # type: ignore[no-untyped-def]
        stamp = getattr(model, "_edgekd_stamp", None)
        if stamp is None:
            return original(self, model)
        if getattr(model.config, "trace_output", False):  # trace() builds another library: another file name
            stamp = hashlib.sha256(f"{stamp}:trace".encode()).hexdigest()[:8]
        model.config.config["Stamp"] = stamp
        return False

    transform._edgekd = True  # type: ignore[attr-defined]
    MakeStamp.transform = transform


def model_stamp(qonnx_path: Path, config: dict[str, Any], hls_cfg: HLSConfig) -> str:
    """8 hex digits that identify (QONNX file, hls4ml config, target): same model, same stamp."""
    h = hashlib.sha256(Path(qonnx_path).read_bytes())
    h.update(json.dumps([config, hls_cfg.model_dump(mode="json")], sort_keys=True, default=str).encode())
    return h.hexdigest()[:8]


def convert_to_hls(
    qonnx_path: Path | str,
    hls_cfg: HLSConfig,
    project_dir: Path | str,
    input_precision: str,
    compile_model: bool = True,
    csim_cache: Path | str | None = None,
    check_support: bool = True,
    layer_settings: dict[str, dict[str, Any]] | None = None,
    write: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Check op support, convert, write and (by default) compile an hls4ml project.

    Returns (hls_model, hls_config). `hls_config` is JSON-serialisable (save it next to the project).
    The compiled C-simulation library takes the same layout as the QONNX graph input (NCHW for
    edgekd students; hls4ml keeps the leading Transpose as a layer).

    With `csim_cache` (a folder), the library is looked up by the hash of the written firmware
    sources and compiled only on a miss (edgekd.hls.csim_cache); `hls_model.csim_cache_info` then
    says {hash, cached, library}. `layer_settings`: per-layer reuse factor / strategy (edgekd.hls.fit);
    `write=False` with `compile_model=False` only converts (nothing is written to `project_dir`).
    """
    import hls4ml

    qonnx_path = Path(qonnx_path)
    project_dir = Path(project_dir)
    model = ModelWrapper(str(qonnx_path))
    if check_support:  # off only for a bring-your-own model converted with allow_inexact (edgekd.export.byo)
        check_hardware_support(model)
    # io_parallel unrolls every layer: refuse one too large before hls4ml spends minutes on it
    check_io_parallel_budget(model, hls_cfg.io_type, getattr(hls_cfg, "max_parallel_products", 0), qonnx_path)
    config = build_hls_config(model, hls_cfg, input_precision, layer_settings)
    if any(str(v.get("Strategy", "")).lower() == "distributed_arithmetic" for v in (layer_settings or {}).values()) \
            or hls_cfg.strategy == "distributed_arithmetic":
        from edgekd.hls.da import ensure_patched  # hls4ml 1.3.0's bit_exact pass needs a fix for QONNX graphs

        ensure_patched()
    from edgekd.hls.bn_fuse_fix import bn_fuse_fixed  # per-position scales of one value

    t0 = time.perf_counter()
    with quiet_hls4ml(), bn_fuse_fixed():
        hls_model = hls4ml.converters.convert_from_onnx_model(
            model,
            output_dir=str(project_dir),
            project_name=PROJECT_NAME,
            backend=hls_cfg.backend,
            io_type=hls_cfg.io_type,
            part=hls_cfg.part,
            clock_period=hls_cfg.clock_period_ns,
            hls_config=copy.deepcopy(config),
        )
        _install_model_stamp()
        hls_model._edgekd_stamp = model_stamp(qonnx_path, config, hls_cfg)
        if csim_cache is not None:
            hls_model.edgekd_csim_cache = Path(csim_cache)  # traces (edgekd.hls.csim.trace_csim) compile through it
        if compile_model and csim_cache is not None:
            from edgekd.hls.csim_cache import compile_cached

            hls_model.csim_cache_info = compile_cached(hls_model, csim_cache)
        elif compile_model:
            hls_model.compile()
        elif write:
            hls_model.write()
    log.info(
        "hls4ml %s %s project in %s %s in %.1f s", hls_cfg.backend, hls_cfg.io_type, project_dir,
        "written and compiled" if compile_model else "written" if write else "converted (not written)",
        time.perf_counter() - t0,
    )
    return hls_model, config
