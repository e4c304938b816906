"""Fit a design to its board: per-layer reuse factors and strategies with the lowest estimated latency.

`choose_settings` searches, on the analytical estimator (edgekd.estimate), over the settings hls4ml
1.3.0 accepts for each Dense / Conv layer:

- Latency or Resource strategy at every reuse factor hls4ml's backend calls valid for the layer
  (`FPGABackend._validate_reuse_factor`, so hls4ml never silently rounds a choice to another value);
- distributed_arithmetic (da4ml shift-and-add networks, reuse factor 1) when its cost is known
  (`da_costs`, from da4ml's own cost model: edgekd.hls.da).

It starts from the fastest setting of every layer and, while the design exceeds `hls.max_utilization` of
a resource, takes the move with the smallest latency added per unit of that resource saved (moves that
add no latency first: an io_stream layer fed one item every few cycles can reuse its multipliers for free).
Once it fits it walks back any move that is no longer needed. Layers the user fixed (an integer reuse
factor, or a strategy other than 'auto') keep their setting. The result records the choice, the
alternatives it rejected and why, and, when nothing fits, the binding layer and resource.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from edgekd.estimate import LayerSpec, estimate, fits

__all__ = ["RESOURCES", "LayerSetting", "FitResult", "choose_settings", "valid_reuse_factors", "fixed_settings"]

RESOURCES = ("lut", "ff", "dsp", "bram_18k", "uram")
_MATH = frozenset({"Dense", "Conv1D", "Conv2D", "PointwiseConv1D", "PointwiseConv2D", "DepthwiseConv1D",
                   "DepthwiseConv2D"})
#: hls4ml strategy names as its config takes them
STRATEGY_NAMES = {"latency": "Latency", "resource": "Resource", "distributed_arithmetic": "distributed_arithmetic"}
_MAX_MOVES = 400
#: distributed arithmetic is taken only when it fits where Latency/Resource do not, or cuts the latency by this
DA_MIN_GAIN = 0.02


@dataclass(frozen=True)
class LayerSetting:
    reuse_factor: int
    strategy: str  # latency | resource | distributed_arithmetic

    def to_hls4ml(self) -> dict[str, Any]:
        return {"ReuseFactor": self.reuse_factor, "Strategy": STRATEGY_NAMES[self.strategy]}

    def to_json(self) -> dict[str, Any]:
        return {"reuse_factor": self.reuse_factor, "strategy": self.strategy}


@dataclass
class FitResult:
    settings: dict[str, LayerSetting]
    estimate: dict[str, Any]
    fit: dict[str, Any]
    limits: dict[str, float]
    fits: bool
    mode: str
    rejected: list[dict[str, Any]] = field(default_factory=list)
    evaluated: int = 0
    binding_layer: str | None = None
    advice: str | None = None
    #: cycles of the fastest setting of every layer (the latency the search gives up as little of as it can)
    fastest_cycles: int | None = None
    #: whether distributed arithmetic was priced (da4ml) or not needed
    da_note: str | None = None

    def hls4ml_settings(self) -> dict[str, dict[str, Any]]:
        """{layer: {"ReuseFactor", "Strategy"}} for edgekd.hls.convert's layer_settings."""
        return {name: s.to_hls4ml() for name, s in self.settings.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "fits": self.fits,
            "limits": self.limits,
            "settings": {k: v.to_json() for k, v in self.settings.items()},
            "binding": self.fit.get("binding"),
            "binding_layer": self.binding_layer,
            "cycles": self.estimate["cycles"],
            "us": self.estimate["us"],
            "resources": self.estimate["resources"],
            "rejected": self.rejected,
            "designs_evaluated": self.evaluated,
            "fastest_cycles": self.fastest_cycles,
            "distributed_arithmetic": self.da_note,
            "advice": self.advice,
        }


def math_layers(specs: Sequence[LayerSpec]) -> list[LayerSpec]:
    return [s for s in specs if s.type in _MATH]


def _mult_size(spec: LayerSpec) -> tuple[int, int]:
    """(n_in, n_out) of one kernel evaluation, as hls4ml's get_layer_mult_size takes them."""
    if spec.type == "Dense":
        return spec.in_shape[-1], spec.out_shape[-1]
    if spec.is_depthwise:
        return spec.kernel_inputs, 1
    return spec.kernel_inputs, spec.n_filt


def valid_reuse_factors(spec: LayerSpec, backend: str = "Vitis") -> list[int]:
    """Reuse factors hls4ml 1.3.0 keeps as given for this layer (its backend's own validity rule)."""
    import hls4ml

    n_in, n_out = _mult_size(spec)
    be = hls4ml.backends.get_backend(backend)
    return [rf for rf in range(1, n_in * n_out + 1) if (n_in * n_out) % rf == 0
            and be._validate_reuse_factor(n_in, n_out, rf)]


def fixed_settings(hls_cfg: Any, specs: Sequence[LayerSpec]) -> dict[str, LayerSetting | None]:
    """Per math layer: the setting the user fixed, or None where the search chooses."""
    rf_cfg = hls_cfg.reuse_factor
    strategy = None if hls_cfg.strategy == "auto" else hls_cfg.strategy.lower()
    names = {s.name for s in math_layers(specs)}
    if isinstance(rf_cfg, dict):
        unknown = sorted(set(rf_cfg) - names)
        if unknown:
            raise ValueError(f"hls.reuse_factor names layer(s) {unknown} that the design does not have; its "
                             f"Dense/Conv layers are {sorted(names)}")
    out: dict[str, LayerSetting | None] = {}
    for s in math_layers(specs):
        rf = rf_cfg.get(s.name, "auto") if isinstance(rf_cfg, dict) else rf_cfg
        if rf == "auto":
            out[s.name] = None if strategy is None else LayerSetting(-1, strategy)  # -1: search the reuse factor
        else:
            out[s.name] = LayerSetting(int(rf), strategy or "latency")
    return out


def _limits(hls_cfg: Any) -> dict[str, float]:
    return {r: hls_cfg.utilization_limit(r) for r in RESOURCES}


def _options(spec: LayerSpec, fixed: LayerSetting | None, da_cost: Mapping[str, Any] | None,
             backend: str) -> list[LayerSetting]:
    if fixed is not None and fixed.reuse_factor > 0:
        return [fixed]
    strategies = [fixed.strategy] if fixed is not None else ["latency", "resource", "distributed_arithmetic"]
    opts: list[LayerSetting] = []
    rfs = valid_reuse_factors(spec, backend)
    for st in strategies:
        if st == "distributed_arithmetic":
            if da_cost is not None:
                opts.append(LayerSetting(1, st))
            continue
        opts.extend(LayerSetting(rf, st) for rf in rfs)
    if not opts:
        raise ValueError(
            f"layer {spec.name} ({spec.kernel_inputs} x {spec.n_filt} kernel): no da4ml cost for strategy "
            f"{strategies[0]}: da4ml is missing, the layer's input is not fixed-point, or the kernel is larger than "
            "edgekd.hls.design.DA_MAX_KERNEL_INPUTS / DA_MAX_KERNEL_PRODUCTS allow (its solver would take "
            "minutes to hours); use hls.strategy auto, or give this layer another setting")
    return opts


def _apply(specs: Sequence[LayerSpec], settings: Mapping[str, LayerSetting],
           da_costs: Mapping[str, Mapping[str, Any]]) -> list[LayerSpec]:
    out = []
    for s in specs:
        st = settings.get(s.name)
        if st is not None:
            extra: dict[str, Any] = {}
            if st.strategy == "distributed_arithmetic":
                c = da_costs[s.name]
                extra = {"da_lut": int(c["lut"]), "da_ff": int(c["ff"]), "da_depth": int(c.get("latency_cycles", 1))}
            s = replace(s, reuse_factor=st.reuse_factor, strategy=st.strategy, **extra)
        out.append(s)
    return out


def _pressure(res: Mapping[str, float], avail: Mapping[str, float], limits: Mapping[str, float]) -> dict[str, float]:
    """Used / allowed per resource (> 1 = over the limit)."""
    out = {}
    for r in RESOURCES:
        a = avail.get(r) or 0
        used = res.get(r, 0) or 0
        out[r] = (used / (a * limits[r])) if a else (math.inf if used else 0.0)
    return out


def choose_settings(
    specs: Sequence[LayerSpec],
    hls_cfg: Any,
    board: Any,
    estimate_kw: Mapping[str, Any] | None = None,
    da_costs: Mapping[str, Mapping[str, Any]] | Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
) -> FitResult:
    """Per-layer settings that fit `board` within hls.max_utilization at the lowest estimated latency.

    `specs`: the design's layers (edgekd.estimate.layers_from_hls_model); `estimate_kw`: extra
    arguments of `estimate` (the input arrival); `da_costs`: {layer: da4ml cost} or a function returning
    it (called only when distributed arithmetic is a candidate).
    """
    if callable(da_costs):
        # da4ml's solver takes seconds to minutes per layer: ask for DA costs only when DA could help, i.e.
        # when the Latency / Resource search cannot keep the fastest design within the limits
        if hls_cfg.strategy == "distributed_arithmetic":
            return _search(specs, hls_cfg, board, estimate_kw, da_costs())
        without = _search(specs, hls_cfg, board, estimate_kw, {})
        auto = without.mode == "auto" and hls_cfg.strategy == "auto"
        if not auto or (without.fits and without.estimate["cycles"] <= without.fastest_cycles):
            without.da_note = "not needed: the fastest design fits" if auto else None
            return without
        with_da = _search(specs, hls_cfg, board, estimate_kw, da_costs())
        with_da.evaluated += without.evaluated
        # DA costs build time (hls4ml re-runs da4ml's solver when it writes the layer): take it when it fits
        # where the others do not, or saves at least DA_MIN_GAIN of the latency
        if with_da.fits != without.fits:
            return with_da if with_da.fits else without
        gain = 1 - with_da.estimate["cycles"] / max(1, without.estimate["cycles"])
        if gain >= DA_MIN_GAIN:
            return with_da
        without.da_note = (f"priced, not taken: {100 * gain:.1f}% lower latency, below the "
                           f"{100 * DA_MIN_GAIN:.0f}% that pays for da4ml's solve")
        without.evaluated += with_da.evaluated
        return without
    return _search(specs, hls_cfg, board, estimate_kw, dict(da_costs or {}))


def _search(specs: Sequence[LayerSpec], hls_cfg: Any, board: Any, estimate_kw: Mapping[str, Any] | None,
            da_costs: dict[str, Mapping[str, Any]]) -> FitResult:
    estimate_kw = dict(estimate_kw or {})
    backend = getattr(hls_cfg, "backend", "Vitis")
    clock, io = hls_cfg.clock_mhz, hls_cfg.io_type
    limits = _limits(hls_cfg)
    avail = board.resources.model_dump() if hasattr(board.resources, "model_dump") else dict(board.resources)
    fixed = fixed_settings(hls_cfg, specs)
    auto = any(v is None or v.reuse_factor < 0 for v in fixed.values())
    by_name = {s.name: s for s in specs}
    options = {n: _options(by_name[n], f, da_costs.get(n), backend) for n, f in fixed.items()}
    evaluated = 0
    cache: dict[tuple, dict[str, Any]] = {}

    def run(settings: Mapping[str, LayerSetting]) -> dict[str, Any]:
        nonlocal evaluated
        key = tuple(sorted((k, v.reuse_factor, v.strategy) for k, v in settings.items()))
        if key not in cache:
            evaluated += 1
            cache[key] = estimate(_apply(specs, settings, da_costs), clock, io, **estimate_kw)
        return cache[key]

    def worst(est: Mapping[str, Any]) -> tuple[str, float]:
        p = _pressure(est["resources"], avail, limits)
        r = max(p, key=lambda k: p[k])
        return r, p[r]

    def excess(est: Mapping[str, Any]) -> float:
        """How far over the limits, summed over resources (0 = fits): a move that trades LUTs for BRAM
        beyond its own limit does not count as progress."""
        return sum(max(0.0, v - 1.0) for v in _pressure(est["resources"], avail, limits).values())

    def summary(settings: Mapping[str, LayerSetting], est: Mapping[str, Any], reason: str) -> dict[str, Any]:
        r, p = worst(est)
        return {"settings": {k: v.to_json() for k, v in settings.items()}, "cycles": est["cycles"],
                "us": est["us"], "binding": r, "of_limit": round(p, 4), "reason": reason}

    # fastest setting per layer; among equally fast ones the cheapest in the resources under most pressure
    def fastest(name: str, current: dict[str, LayerSetting]) -> LayerSetting:
        best = None
        for o in options[name]:
            est = run({**current, name: o})
            key = (est["cycles"], worst(est)[1])
            if best is None or key < best[0]:
                best = (key, o)
        return best[1]

    settings: dict[str, LayerSetting] = {n: opts[0] for n, opts in options.items()}
    for n in settings:
        settings[n] = fastest(n, settings)
    est = run(settings)
    fastest_cycles = est["cycles"]
    rejected: list[dict[str, Any]] = []
    moves = 0
    while True:
        r, p = worst(est)
        if p <= 1.0:
            break
        rejected.append(summary(settings, est, f"{r} at {p * limits[r]:.0%} of the part, above the "
                                               f"{limits[r]:.0%} limit"))
        best = None
        over = excess(est)
        for n, opts in options.items():
            for o in opts:
                if o == settings[n]:
                    continue
                cand = run({**settings, n: o})
                saved = over - excess(cand)
                if saved <= 1e-12:
                    continue
                added = cand["cycles"] - est["cycles"]
                score = (max(added, 0) + 1e-3) / saved
                if best is None or score < best[0]:
                    best = (score, n, o, cand)
        moves += 1
        if best is None or moves > _MAX_MOVES:
            break
        _, n, o, est = best
        settings = {**settings, n: o}
    fit_ok = worst(est)[1] <= 1.0
    if fit_ok:
        # walk back: any layer whose faster setting still fits; then, at the same latency, the setting that
        # leaves the most headroom in the fullest resource (room for the rest of the lab's design)
        for better in (lambda c: c["cycles"] < est["cycles"] and worst(c)[1] <= 1.0,
                       lambda c: c["cycles"] <= est["cycles"] and worst(c)[1] < worst(est)[1] - 1e-9):
            improved = True
            while improved:
                improved = False
                for n, opts in options.items():
                    for o in opts:
                        cand = run({**settings, n: o})
                        if better(cand):
                            settings, est, improved = {**settings, n: o}, cand, True
    fit = fits(est["resources"], board)
    fit["limits"] = limits
    fit["fits_limits"] = fit_ok
    res = FitResult(settings=settings, estimate=est, fit=fit, limits=limits, fits=fit_ok,
                    mode="auto" if auto else "fixed", rejected=_keep_distinct(rejected, 8), evaluated=evaluated,
                    fastest_cycles=fastest_cycles,
                    da_note=f"da4ml cost of {len(da_costs)} layer(s) considered" if da_costs else None)
    if not fit_ok:
        r, p = worst(est)
        rows = [row for row in est["per_layer"] if row.get(r if r != "bram_18k" else "bram_18k")]
        res.binding_layer = max(rows, key=lambda row: row.get(r, 0))["name"] if rows else None
        res.advice = _advice(r, res.binding_layer, p * limits[r], limits[r], auto)
        fit["binding"] = r
    return res


def _keep_distinct(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The first and the last n-1 rejected designs (the start and the search's last steps)."""
    return rows if len(rows) <= n else [rows[0], *rows[-(n - 1):]]


def _advice(resource: str, layer: str | None, used: float, limit: float, auto: bool) -> str:
    where = f" (largest user: layer {layer})" if layer else ""
    tried = "at every legal reuse factor and strategy" if auto else "at the configured hls.reuse_factor / strategy"
    fixes = ["hls.reuse_factor: auto" if not auto else None, "fewer channels (student.channels)",
             "fewer bits (student.weight_bits / act_bits)", "multi-pixel input (student.input_block)",
             "a larger part (hls.board)", f"a higher hls.max_utilization.{resource} if you accept the risk"]
    return (f"needs {used:.0%} of the part's {resource}{where} {tried}, above the {limit:.0%} limit; to fit: "
            + ", ".join(f for f in fixes if f))
