"""The hardware design of a build: settings that fit the board, then the hls4ml project with them.

Every task's hls step calls `design_for_contract`: it converts the cleaned QONNX once without writing (to read
the layers), chooses per-layer reuse factors and strategies (edgekd.hls.fit), refuses a design that cannot
fit (`hls.on_overflow: fail`, the default) before anything is written, then writes and compiles the
project with the chosen settings and checks that hls4ml kept every one of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from edgekd.hls.convert import convert_to_hls
from edgekd.hls.fit import FitResult, choose_settings, math_layers
from edgekd.io import read_json, write_json
from edgekd.errors import BuildError, DesignDoesNotFitError, EstimateError
from edgekd.estimate import layers_from_hls_model

log = logging.getLogger(__name__)

__all__ = ["DesignDoesNotFitError", "FittedDesign", "check_kept", "design_for_contract", "fit_to_board",
           "probe_layers"]


@dataclass
class FittedDesign:
    hls_model: Any
    hls_config: dict[str, Any]
    fit: FitResult

    @property
    def latency(self) -> dict[str, Any]:
        """estimate.json's body: the estimate of the chosen design, with its fit on the board."""
        return {**self.fit.estimate, "fit": {**self.fit.fit, "search": self.fit.to_json()}}


def probe_layers(qonnx_path: Path, hls_cfg: Any, input_precision: str,
                 check_support: bool = True) -> tuple[Any, list]:
    """Convert without writing a project: the hls4ml layers as the search prices them."""
    with tempfile.TemporaryDirectory(prefix="edgekd-probe-") as tmp:
        model, _ = convert_to_hls(qonnx_path, hls_cfg, Path(tmp) / "probe", input_precision,
                                  compile_model=False, write=False, check_support=check_support)
    return model, layers_from_hls_model(model)


def _da_cache_key(qonnx_path: Path, hls_cfg: Any, input_precision: str, layers: list[str]) -> str:
    """Same model, input type, target and solver -> same da4ml costs (the solve takes minutes on big layers)."""
    import importlib.metadata
    import os

    h = hashlib.sha256(Path(qonnx_path).read_bytes())
    da_src = Path(__file__).with_name("da.py")
    h.update(da_src.read_bytes() if da_src.exists() else b"")
    h.update(json.dumps([sorted(layers), input_precision, hls_cfg.backend, hls_cfg.io_type, os.environ.get("DA_HARD_DC", "2"),
                         importlib.metadata.version("da4ml"), importlib.metadata.version("hls4ml")]).encode())
    return h.hexdigest()[:24]


#: distributed arithmetic is offered only for kernels this small: da4ml's solver (the one hls4ml's DA pass
#: runs again when it writes the layer) grows fast with the kernel's inputs. Measured on 8-bit random weights
#: (2 busy cores): 9 x 16 in 2.3 s, 144 x 16 in 70 s, 1600 x 2 unfinished after 25 min.
DA_MAX_KERNEL_INPUTS = 160
DA_MAX_KERNEL_PRODUCTS = 4096


def da_candidates(specs: list) -> list[str]:
    """Names of the Dense / Conv layers small enough for da4ml (see DA_MAX_KERNEL_INPUTS)."""
    return [s.name for s in math_layers(specs) if not s.is_depthwise and s.kernel_inputs <= DA_MAX_KERNEL_INPUTS
            and s.kernel_inputs * s.n_filt <= DA_MAX_KERNEL_PRODUCTS]


def _da_costs(probe: Any, qonnx_path: Path, hls_cfg: Any, input_precision: str,
              cache_dir: Path | None, layers: list[str]):  # type: ignore[no-untyped-def]
    def costs() -> Mapping[str, Mapping[str, Any]]:
        try:
            from edgekd.hls.da import da_layer_costs
        except ImportError as err:  # da4ml missing: distributed arithmetic is not a candidate
            log.warning("distributed arithmetic not considered: %s", err)
            return {}
        if not layers:
            return {}
        path = None
        if cache_dir is not None:
            key = _da_cache_key(qonnx_path, hls_cfg, input_precision, layers)
            path = Path(cache_dir) / f"{key}.json"
            if path.exists():
                return read_json(path)
        t0 = time.perf_counter()
        try:
            result = da_layer_costs(probe, layers=layers)
        except Exception as err:  # noqa: BLE001 - e.g. a non-fixed-point input: DA is not a candidate
            log.info("distributed arithmetic not considered for this model: %s", err)
            return {}
        log.info("da4ml priced %d layer(s) for distributed arithmetic in %.1f s", len(result),
                 time.perf_counter() - t0)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, result)  # atomic: a killed build leaves no half-written cache entry
        return result
    return costs


def fit_to_board(qonnx_path: Path | str, hls_cfg: Any, board: Any, input_precision: str, *,
                 estimate_kw: Mapping[str, Any] | None = None, check_support: bool = True,
                 cache_dir: Path | None = None) -> FitResult:
    """Choose the settings; refuse (hls.on_overflow: fail) or warn about a design that cannot fit.
    `cache_dir`: where da4ml's costs are kept between builds (the build cache's da_costs/)."""
    qonnx_path = Path(qonnx_path)
    probe, specs = probe_layers(qonnx_path, hls_cfg, input_precision, check_support)
    da = _da_costs(probe, qonnx_path, hls_cfg, input_precision, cache_dir, da_candidates(specs))
    try:
        result = choose_settings(specs, hls_cfg, board, estimate_kw, da_costs=da)
    except EstimateError:
        raise
    except ValueError as err:
        raise BuildError(str(err)) from None
    if not result.fits:
        msg = (f"the design does not fit {board.name} ({board.part}): {result.advice}. Estimated: "
               f"{_usage(result)}")
        if hls_cfg.on_overflow == "fail":
            raise DesignDoesNotFitError(msg + "; set hls.on_overflow: warn to write the project anyway")
        log.warning("%s (hls.on_overflow: warn: writing the project anyway)", msg)
    return result


def _usage(result: FitResult) -> str:
    rows = result.fit["resources"]
    return ", ".join(f"{k} {v['used']:,} of {v['available']:,} ({v['fraction']:.0%})" for k, v in rows.items()
                     if v.get("fraction") is not None and v["available"])


def check_kept(hls_model: Any, result: FitResult) -> None:
    """hls4ml silently rounds an invalid reuse factor; the search only offers valid ones, so any change
    here means hls4ml's rules moved under us: fail rather than report figures of another design."""
    got = {s.name: (s.reuse_factor, s.strategy) for s in math_layers(layers_from_hls_model(hls_model))}
    for name, want in result.settings.items():
        have = got.get(name)
        if have is None or have[0] != want.reuse_factor or have[1] != want.strategy:
            raise BuildError(f"hls4ml did not keep the chosen setting of layer {name}: asked reuse factor "
                             f"{want.reuse_factor} / {want.strategy}, the project has {have}")


def _tolerant_fit(qonnx_path: Path, hls_cfg: Any, board: Any, precision: str, cache_dir: Path,
                  estimate_kw: Mapping[str, Any] | None, check_support: bool) -> FitResult | None:
    """The fit search, or None (with a warning) when the estimator cannot price one of the model's layers or
    hls4ml cannot convert it (the conversion then says why); a design that cannot fit is refused as always."""
    try:
        return fit_to_board(qonnx_path, hls_cfg, board, precision, estimate_kw=estimate_kw,
                            check_support=check_support, cache_dir=cache_dir)
    except BuildError:
        raise
    except Exception as err:  # noqa: BLE001 - unpriced layer types, or a graph hls4ml refuses
        if check_support:
            raise  # edgekd's own students are always priced: a failure here is a bug to see, not to skip
        log.warning("no fit search for this model (%s: %s); hls.reuse_factor / strategy apply as given",
                    type(err).__name__, err)
        return None


def design_for_contract(contract: Any, hls_cfg: Any, board: Any, project_dir: Path, cache_dir: Path, *,
                        estimate_kw: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any], FitResult | None,
                                                                              dict[str, Any], list[dict]]:
    """The hls step's design for any model the export step handed over (edgekd.contract.HardwareContract):
    fit search, hls4ml project, range-chosen types for a model that is not exact by construction, compiled
    C-simulation (cached). Returns (hls_model, hls_config, fit or None, estimate.json body, precisions)."""
    qonnx_path = contract.qonnx_path
    precision = contract.input_precision
    fit = _tolerant_fit(qonnx_path, hls_cfg, board, precision, cache_dir / "da_costs", estimate_kw,
                        contract.check_support)
    settings = fit.hls4ml_settings() if fit is not None else None
    precisions: list[dict] = []
    try:
        if contract.exact:
            hls_model, hls_config = convert_to_hls(qonnx_path, hls_cfg, project_dir, precision,
                                                   csim_cache=cache_dir / "csim", check_support=contract.check_support,
                                                   layer_settings=settings)
        else:
            from edgekd.hls.convert import quiet_hls4ml
            from edgekd.hls.csim_cache import compile_cached
            from edgekd.hls.precision import assign_range_precisions

            # not compiled yet (types first), but the cache is given: the ranging trace compiles through it
            hls_model, hls_config = convert_to_hls(qonnx_path, hls_cfg, project_dir, precision, compile_model=False,
                                                   csim_cache=cache_dir / "csim", check_support=contract.check_support,
                                                   layer_settings=settings)
            # float scales: hls4ml's default types are what makes it inexact; choose them from the value ranges
            precisions = assign_range_precisions(hls_model, contract.verify_inputs())
            # compiled with tracing on: the fidelity step traces this design per layer next, from the same
            # library (the ranging trace already left the written project traced; synthesis ignores the trace code)
            hls_model.config.trace_output = True
            with quiet_hls4ml():
                hls_model.csim_cache_info = compile_cached(hls_model, cache_dir / "csim")
    except BuildError:
        raise
    except Exception as err:  # noqa: BLE001 - hls4ml raises bare IndexError/KeyError on graphs it cannot take
        if contract.check_support:
            raise
        suspects = contract.approximate_layers
        raise BuildError(
            f"hls4ml 1.3.0 failed to convert {qonnx_path.name} ({type(err).__name__}: {err})"
            + (f"; its approximate layers ({', '.join(suspects)}) are the likely cause" if suspects else "")
            + ". Power-of-two quantizers on every layer avoid hls4ml's float rescaling paths") from err
    if fit is None:
        latency = {"cycles": None, "us": None, "ii_cycles": None, "throughput_per_s": None, "per_layer": [],
                   "resources": {}, "fit": None, "clock_mhz": hls_cfg.clock_mhz, "source": "estimate",
                   "error": "the estimator cannot price this model (see the build log)"}
    else:
        check_kept(hls_model, fit)
        latency = FittedDesign(hls_model, hls_config, fit).latency
    return hls_model, hls_config, fit, latency, precisions
