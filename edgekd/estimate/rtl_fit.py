"""The fit search for open boards (toolchain: open): the RTL backend's design priced by its own cost model.

An open board's bitstream is built from the RTL backend's Verilog (alkaid kernels, edgekd.rtl), not from hls4ml,
so the hls4ml estimator says little about it (on the zoo's jet tagger it said 41% of the 85F's LUTs; Yosys
counted 54% of its logic slots). `fit_open_board` prices the RTL design instead:

- resources per layer from edgekd.estimate.rtl (ECP5: LUT4, CCU2C carry cells and FFs linear in the kernel's
  alkaid cost and the layer's stream bits, calibrated on Yosys synth_ecp5), plus the self-test top that the
  open flow wraps around the network; the figure compared with the cap is the one the flow compares: logic
  slots = LUT4 + 2 x CCU2C, as a fraction of the part's LUT4s;
- the cap is bitstream.max_utilisation (above about half of an 85F nextpnr does not finish on 2 cores); FF,
  DSP and block RAM keep hls.max_utilization;
- candidates per layer: the fully unrolled kernel, and for a dense layer time-multiplexed (reuse) kernels at
  every reuse factor R the RTL backend's kernel (edgekd.rtl.reuse) takes without idle multipliers (n_in * n_out / R
  multiply-accumulates per cycle on MULT18X18D, weights from a ROM: edgekd.estimate.rtl.estimate_reuse_dense).
  A candidate the RTL backend cannot generate is listed as unavailable with the reason and never chosen;
- the choice: the lowest latency in cycles that fits (ties: the least full resource), exhaustively over the
  layers' candidates when there are at most EXHAUSTIVE_MAX combinations, else greedily (the move that adds the
  least latency per unit of excess removed);
- the clock: the achieved Fmax of the nearest measured design (edgekd.estimate.rtl_clock), named.

Pure: no files, no tools. The layers come from a planned or generated design's manifest (edgekd.rtl.plan).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from edgekd.estimate.rtl import (
    SELFTEST_OVERHEAD,
    SLOTS_PER_CCU2C,
    _last_needed_pixel,
    ecp5_counts,
    layer_terms,
    estimate_reuse_dense,
    reuse_candidates,
)
from edgekd.estimate.rtl_clock import predict_fmax

__all__ = ["Candidate", "OpenFitResult", "fit_open_board", "layer_candidates", "CALIBRATION_ERROR_PCT"]

EXHAUSTIVE_MAX = 50_000
#: where a reuse candidate's cost comes from
REUSE_SOURCE = "estimate (edgekd.estimate.rtl.estimate_reuse_dense: structural counts x REUSE_CALIBRATION)"
#: the calibrated model's largest error on logic slots over every measured top (8 network tops: 8.8%, the CNN
#: 9x7x3 under-estimated; 5 self-test tops: 4.4%), rounded up (benchmarks/results/rtl_ecp5_calibration.json,
#: max_abs_error_pct)
CALIBRATION_ERROR_PCT = 9.0
RESOURCES = ("logic_slots", "ff", "dsp", "bram_18k")
#: board resource each figure is a fraction of (logic slots: of the part's LUT4s)
_AVAILABLE = {"logic_slots": "lut", "ff": "ff", "dsp": "dsp", "bram_18k": "bram_18k"}


@dataclass(frozen=True)
class Candidate:
    layer: str
    impl: str                  # unrolled | reuse
    reuse_factor: int
    lut4: int
    ccu2c: int
    ff: int
    dsp: int
    bram_18k: int
    cycles: int                # the layer's pipeline cycles (window, kernel, pool, flatten)
    ii_cycles: int             # cycles between the layer's input vectors (unrolled: 1)
    available: bool = True
    why_unavailable: str | None = None
    source: str = "estimate"

    @property
    def logic_slots(self) -> int:
        return self.lut4 + SLOTS_PER_CCU2C * self.ccu2c

    def to_json(self) -> dict[str, Any]:
        return {"impl": self.impl, "reuse_factor": self.reuse_factor, "lut4": self.lut4, "ccu2c": self.ccu2c,
                "logic_slots": self.logic_slots, "ff": self.ff, "dsp": self.dsp, "bram_18k": self.bram_18k,
                "cycles": self.cycles, "ii_cycles": self.ii_cycles, "available": self.available,
                "why_unavailable": self.why_unavailable, "source": self.source}


@dataclass
class OpenFitResult:
    settings: dict[str, Candidate]
    fits: bool
    limits: dict[str, float]
    resources: dict[str, int]
    fractions: dict[str, float]
    binding: str
    cycles: int
    interval_cycles: float
    clock: dict[str, Any]
    board_clock_mhz: float
    candidates: dict[str, list[Candidate]]
    evaluated: int
    method: str
    with_unavailable: dict[str, Any] | None = None
    advice: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def us(self) -> float:
        return self.cycles / self.clock["mhz"]

    def reuse_factors(self) -> dict[str, int]:
        """{layer: R} of the layers the search time-multiplexed (what the RTL backend's config takes)."""
        return {n: c.reuse_factor for n, c in self.settings.items() if c.impl == "reuse"}

    def board_fit(self, board: Any) -> dict[str, Any]:
        """estimate.json's `fit` in the shape of edgekd.estimate.fit.fits (lut = logic slots)."""
        rows = {}
        for r in RESOURCES:
            key = _AVAILABLE[r]
            avail = int(getattr(board.resources, key))
            rows[key] = {"used": self.resources[r], "available": avail,
                         "fraction": round(self.resources[r] / avail, 6) if avail else None}
        return {"board": board.name, "part": board.part, "fits": self.fits, "fits_limits": self.fits,
                "binding": _AVAILABLE[self.binding], "resources": rows,
                "limits": {_AVAILABLE[r]: v for r, v in self.limits.items()},
                "note": "lut = logic slots (Yosys LUT4 + 2 per CCU2C carry cell, as nextpnr-ecp5 places them)"}

    def to_json(self) -> dict[str, Any]:
        return {
            "model": "rtl", "family": "ecp5", "fits": self.fits, "limits": self.limits,
            "settings": {n: {"impl": c.impl, "reuse_factor": c.reuse_factor} for n, c in self.settings.items()},
            "reuse_factors": self.reuse_factors(), "resources": self.resources, "fractions": self.fractions,
            "binding": self.binding, "cycles": self.cycles, "interval_cycles": self.interval_cycles,
            "us": round(self.us, 4), "clock": self.clock, "board_clock_mhz": self.board_clock_mhz,
            "us_at_board_clock": round(self.cycles / self.board_clock_mhz, 4),
            "selftest_overhead": SELFTEST_OVERHEAD, "calibration_error_pct": CALIBRATION_ERROR_PCT,
            "candidates": {n: [c.to_json() for c in cs] for n, cs in self.candidates.items()},
            "designs_evaluated": self.evaluated, "method": self.method, "with_unavailable": self.with_unavailable,
            "advice": self.advice, "notes": self.notes,
            "source": "estimate (edgekd.estimate.rtl ECP5 calibration on Yosys synth_ecp5; "
                      "benchmarks/rtl_ecp5_calibration.py)",
        }


def layer_candidates(term: Mapping[str, Any], weight_bits: int | None, reuse: Mapping[str, Any],
                     extra: tuple[int, ...] = ()) -> list[Candidate]:
    """The unrolled kernel of a layer and, for a dense layer, its reuse variants (edgekd.estimate.rtl.reuse_candidates)."""
    e = ecp5_counts(term["cost"], term["bits"])
    out = [Candidate(term["name"], "unrolled", 1, e["lut4"], e["ccu2c"], e["ff"], 0, 0, term["cycles"], 1)]
    if term["kind"] != "dense" or weight_bits is None or not term.get("in_kif"):
        return out
    n_in, n_out = int(math.prod(term["in_shape"])), int(term["out_shape"][-1])
    in_bits, out_bits = int(sum(term["in_kif"])), int(sum(term["out_kif"]))
    flat = ecp5_counts(0, term["bits"])  # the flatten register before the kernel stays
    from edgekd.rtl.reuse import valid_reuse

    valid = set(valid_reuse(n_in, n_out))
    for r in sorted(set(reuse_candidates(n_in, n_out)) | {x for x in extra if x > 1 and x in valid}):
        c = estimate_reuse_dense(n_in, n_out, in_bits, int(weight_bits), r, in_signed=bool(term["in_kif"][0]),
                                 out_bits=out_bits, family="ecp5")
        out.append(Candidate(term["name"], "reuse", r, c["lut"] + flat["lut4"], c["carry"] + flat["ccu2c"],
                             c["ff"] + flat["ff"], c["dsp"], c["bram_18k"],
                             term["cycles"] - term["kernel_cycles"] + c["latency_cycles"], r,
                             available=bool(reuse.get("available")), why_unavailable=reuse.get("why"),
                             source=REUSE_SOURCE))
    return out


def _total(choice: tuple[Candidate, ...], selftest: bool) -> dict[str, int]:
    tot = {"lut4": 0, "ccu2c": 0, "ff": 0, "dsp": 0, "bram_18k": 0}
    for c in choice:
        for k in tot:
            tot[k] += getattr(c, k)
    if selftest:
        for k in ("lut4", "ccu2c", "ff"):
            tot[k] += SELFTEST_OVERHEAD[k]
    tot["logic_slots"] = tot["lut4"] + SLOTS_PER_CCU2C * tot["ccu2c"]
    return tot


def fit_open_board(plan: Mapping[str, Any], board: Any, limits: Mapping[str, float], *,
                   weight_bits: Mapping[str, int] | None = None, reuse: Mapping[str, Any] | None = None,
                   fixed: Mapping[str, int] | None = None, selftest: bool = True,
                   margin_pct: float = CALIBRATION_ERROR_PCT) -> OpenFitResult:
    """Per-layer implementations of the planned design (`plan`: an RTL manifest, edgekd.rtl.plan) that fit
    `board` within `limits` ({logic_slots, ff, dsp, bram_18k}: fractions) at the lowest latency in cycles.

    `weight_bits`: {dense layer: bits of its integer weights} (reuse candidates need it); `reuse`:
    {"available": bool, "why": reason when not}; `fixed`: {layer: reuse factor} the config fixed (1 = unrolled);
    `selftest`: count the open flow's self-test top around the network; `margin_pct`: the logic slots are
    compared with the cap after adding this much (the model's measured error), so that a design the model puts
    just under the cap is not one Yosys puts over it."""
    reuse = dict(reuse or {"available": False, "why": "no reuse kernel in the RTL backend"})
    terms = layer_terms(plan)
    names = {t["name"] for t in terms}
    unknown = sorted(set(fixed or {}) - names)
    if unknown:
        raise ValueError(f"rtl reuse factors name layer(s) {unknown} that the design does not have; its layers are "
                         f"{sorted(names)}")
    cands: dict[str, list[Candidate]] = {}
    for t in terms:
        want_r = (int(fixed[t["name"]]),) if fixed and t["name"] in fixed else ()
        cs = layer_candidates(t, (weight_bits or {}).get(t["name"]), reuse, extra=want_r)
        if fixed and t["name"] in fixed:
            want = int(fixed[t["name"]])
            keep = [c for c in cs if c.reuse_factor == want]
            if not keep:
                raise ValueError(f"layer {t['name']}: reuse factor {want} is not one of its candidates "
                                 f"{[c.reuse_factor for c in cs]} (1 = unrolled; R = r_in x r_out with r_in dividing "
                                 "the inputs and r_out at most the outputs)")
            cs = keep
        cands[t["name"]] = cs
    avail = {r: float(getattr(board.resources, _AVAILABLE[r])) for r in RESOURCES}
    layers = plan["layers"]
    h0, w0 = layers[0]["in_shape"][0], layers[0]["in_shape"][1]
    lanes = int(plan.get("lanes", 1))
    r_, c_, flush = _last_needed_pixel(layers)
    arrival = (r_ * w0 + c_) // lanes + flush
    beats = h0 * w0 / lanes + int(plan.get("frame_gap_cycles", 0))
    other = sum(int(s["latency"]) for s in plan["stages"] if s.get("layer") not in names)

    def evaluate(choice: tuple[Candidate, ...]) -> dict[str, Any]:
        tot = _total(choice, selftest)
        frac = {r: (tot[r] / avail[r]) if avail[r] else (math.inf if tot[r] else 0.0) for r in RESOURCES}
        press = {r: frac[r] / limits[r] for r in RESOURCES}
        press["logic_slots"] *= 1.0 + margin_pct / 100.0
        cycles = arrival + other + sum(c.cycles for c in choice) + 1  # + the output register
        return {"tot": tot, "frac": frac, "press": press, "cycles": cycles,
                "interval": max([beats] + [c.ii_cycles for c in choice]),
                "worst": max(press.values()), "excess": sum(max(0.0, v - 1) for v in press.values())}

    def search(usable: dict[str, list[Candidate]]) -> tuple[tuple[Candidate, ...], dict[str, Any], int, str]:
        order = [t["name"] for t in terms]
        lists = [usable[n] for n in order]
        n_comb = math.prod(len(x) for x in lists)
        if n_comb <= EXHAUSTIVE_MAX:
            best = None
            for choice in itertools.product(*lists):
                ev = evaluate(choice)
                key = (ev["worst"] > 1.0, ev["excess"] if ev["worst"] > 1.0 else 0.0, ev["cycles"], ev["worst"])
                if best is None or key < best[0]:
                    best = (key, choice, ev)
            return best[1], best[2], n_comb, f"exhaustive over {n_comb} combinations"
        choice = tuple(x[0] for x in lists)
        ev, n = evaluate(choice), 1
        while ev["worst"] > 1.0:
            move = None
            for i, opts in enumerate(lists):
                for o in opts:
                    if o == choice[i]:
                        continue
                    cand = choice[:i] + (o,) + choice[i + 1:]
                    cev = evaluate(cand)
                    n += 1
                    saved = ev["excess"] - cev["excess"]
                    if saved <= 1e-12:
                        continue
                    score = (max(cev["cycles"] - ev["cycles"], 0) + 1e-3) / saved
                    if move is None or score < move[0]:
                        move = (score, cand, cev)
            if move is None:
                break
            _, choice, ev = move
        return choice, ev, n, f"greedy ({n} designs evaluated; {n_comb} combinations)"

    usable = {n: [c for c in cs if c.available] for n, cs in cands.items()}
    for n, cs in usable.items():
        if not cs:  # only when the config fixed an unavailable reuse factor
            raise ValueError(f"layer {n}: reuse factor {fixed[n]} asked, but {cands[n][0].why_unavailable}")
    choice, ev, n_eval, method = search(usable)
    fits = ev["worst"] <= 1.0
    binding = max(ev["press"], key=lambda r: ev["press"][r])
    slots = ev["tot"]["logic_slots"]
    clock = predict_fmax(slots, plan.get("latency_cutoff"))
    res = OpenFitResult(
        settings={c.layer: c for c in choice}, fits=fits, limits=dict(limits), resources=ev["tot"],
        fractions={r: round(v, 6) for r, v in ev["frac"].items()}, binding=binding, cycles=int(ev["cycles"]),
        interval_cycles=float(ev["interval"]), clock=clock, board_clock_mhz=float(board.default_clock_mhz),
        candidates=cands, evaluated=n_eval, method=method,
        notes=[f"logic slots compared with the cap after adding {margin_pct:g}% (the model's largest error on the "
               "measured designs)"] if margin_pct else [])
    if any(not c.available for cs in cands.values() for c in cs):
        alt, aev, n2, _ = search(cands)
        res.evaluated += n2
        alt_r = {c.layer: c.reuse_factor for c in alt if c.impl == "reuse"}
        res.with_unavailable = {
            "fits": aev["worst"] <= 1.0, "reuse_factors": alt_r, "cycles": int(aev["cycles"]),
            "interval_cycles": float(aev["interval"]), "resources": aev["tot"],
            "fractions": {r: round(v, 6) for r, v in aev["frac"].items()},
            "why_not_chosen": reuse.get("why"),
        } if alt_r else None
    if not fits:
        res.advice = _advice(res, board, ev)
    return res


def _advice(res: OpenFitResult, board: Any, ev: dict[str, Any]) -> str:
    r = res.binding
    used = ev["frac"][r]
    margin_pct = CALIBRATION_ERROR_PCT if r == "logic_slots" and res.notes else 0.0
    biggest = max(res.settings.values(), key=lambda c: c.logic_slots if r == "logic_slots" else getattr(c, r))
    what = ("logic slots (LUT4 + 2 x CCU2C carry, the self-test top included)" if r == "logic_slots" else r)
    with_margin = (f", {used * (1 + margin_pct / 100):.0%} with the model's {margin_pct:g}% error margin"
                   if margin_pct else "")
    msg = (f"the RTL design needs about {used:.0%} of the {board.part}'s {what} (RTL cost model{with_margin}; "
           f"largest layer {biggest.layer}), above the "
           f"{res.limits[r]:.0%} limit"
           + (" that open place and route finishes on 2 cores (bitstream.max_utilisation)" if r == "logic_slots" else ""))
    alt = res.with_unavailable
    if alt and alt["fits"]:
        rf = ", ".join(f"{k} R={v}" for k, v in alt["reuse_factors"].items())
        msg += (f"; time-multiplexed dense kernels ({rf}) would bring it to {alt['fractions'][r]:.0%} at "
                f"{alt['cycles']} cycles, but they are not available: {alt['why_not_chosen']}")
    elif not any(c.impl == "reuse" for cs in res.candidates.values() for c in cs):
        msg += "; the design has no dense layer a reuse kernel could time-multiplex"
    return msg + ("; to fit: fewer or narrower layers, fewer bits, a larger part, or a higher "
                  "bitstream.max_utilisation if you accept that place and route may not finish")
