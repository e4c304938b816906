"""The frame grabber's sort decision, as the pixel-stream wrapper computes it in hardware.

class   = argmax of the logits (the first index on a tie, like the C++ loop)
score   = logit[class] - the largest other logit (the decision margin, >= 0; exact on the result grid)
trigger = score >= threshold (threshold rounded UP onto the score grid, so the comparison is exact),
          and class == trigger_class when one is configured

Default trigger (no `hls.trigger_threshold` / `hls.trigger_class` configured): chosen on the VALIDATION
split from the bit-exact hardware model's logits (the emulator, == C-simulation == QONNX), never on test:

    for every class c and every threshold t among the validation scores of samples decided as c,
        precision(c, t) = sorted samples of class c / sorted samples, recall(c, t) = sorted c / all c;
    keep (c, t) with precision >= hls.trigger_target_precision (default 0.95) and at least one sorted
    sample; take the one with the highest recall (then higher precision, then lower class index, then
    the lower threshold). When no (c, t) reaches the target: the highest precision (then recall).

Its precision, recall and sort rate on the TEST split (again from the hardware model's logits) go into
project.json and report.json (`project.trigger.test`), next to the same figures on validation.

Trigger latency (source: estimate), from the first beat of a region to its decision word = the network's
estimated latency (hls/estimate.json, first input element to logits; with a board's pixels_per_clock it counts
the input's arrival at that rate, see edgekd.estimate.input_arrival_times) + the wrapper's own stages
(`wrapper_stages`: the AXI4-Stream register slices Vitis HLS puts on the `pixels` and `decision` ports, the
packing loop(s) read_beats / write_items (or pack_pixels), the groups FIFO between them (read latency 2 when it
is a BRAM FIFO), the dataflow start of the network and its input and output FIFOs, and `decide`: the read of the
logits, ceil(log2(classes)) compare levels for the argmax and as many for the runner-up, the subtraction and
threshold compare, its output register). The decision also waits for `region_ok`, written after the region's
last beat: latency >= beats + 2 + decide.

Region contract (`region_contract`): the core accepts a new region every `ii_cycles` (the estimate's interval:
its busiest process, at least the region's beats); regions offered back to back (one beat per clock) need a FIFO
in the shell of the beats that arrive while the core still works on the previous region.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sort_decisions", "threshold_on_grid", "wrapper_stages", "wrapper_cycles", "groups_fifo_in_bram",
           "trigger_latency",
           "region_contract", "trigger_metrics",
           "choose_trigger", "DEFAULT_TARGET_PRECISION"]

DEFAULT_TARGET_PRECISION = 0.95


def threshold_on_grid(threshold: float, frac_bits: int) -> float:
    """The smallest score-grid value >= threshold: `score >= t` and `score >= t_grid` agree for every score."""
    step = 2.0 ** -frac_bits
    return math.ceil(threshold / step) * step


def sort_decisions(
    logits: np.ndarray, threshold: float, trigger_class: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class, score, trigger) per row of `logits` (N, classes); threshold already on the score grid."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must be (N, classes >= 2), got shape {z.shape}")
    cls = np.argmax(z, axis=1)
    top = z[np.arange(len(z)), cls]
    others = z.copy()
    others[np.arange(len(z)), cls] = -np.inf
    score = top - others.max(axis=1)
    fire = score >= threshold
    if trigger_class is not None:
        fire &= cls == trigger_class
    return cls, score, fire


def wrapper_stages(n_classes: int, pack_cycles: int = 1, groups_fifo_bram: bool = False) -> dict[str, int]:
    """Cycles of each stage the pixel-stream wrapper adds around the network (see the module docstring)."""
    levels = max(1, math.ceil(math.log2(max(2, n_classes))))
    stages = {"pixels register slice": 1, "packing": int(pack_cycles)}
    if pack_cycles > 1:
        stages["groups FIFO"] = 2 if groups_fifo_bram else 1
    stages.update({"network start + input FIFO": 2, "output FIFO": 1, "read logits": 1, "argmax": levels,
                   "runner-up": levels, "score and threshold": 1, "decision register": 1,
                   "decision register slice": 1})
    return stages


def groups_fifo_in_bram(pixels_per_clock: int, input_block: int, channels: int, n_values: int,
                        value_bits: int) -> bool:
    """True when the pixel-stream top's `groups` FIFO (one region of groups: max(P / k, 1) k x k blocks, or one
    beat, of `channels`-value pixels per group) holds more than edgekd.estimate's LUTRAM limit, so Vitis HLS builds
    it in BRAM and its reads take 2 cycles."""
    from edgekd.estimate.resources import LUTRAM_MAX_BITS

    p, k, c = int(pixels_per_clock), int(input_block), int(channels)
    per_group = max(p // k, 1) * k * k * c if k > 1 else p * c
    n_groups = int(n_values) // per_group
    return n_groups > 2 and n_groups * per_group * int(value_bits) > LUTRAM_MAX_BITS


def wrapper_cycles(n_classes: int, pack_cycles: int = 1, groups_fifo_bram: bool = False) -> int:
    """Cycles the pixel-stream wrapper adds around the network (`wrapper_stages`, summed)."""
    return sum(wrapper_stages(n_classes, pack_cycles, groups_fifo_bram).values())


def trigger_latency(network_cycles: int, n_classes: int, clock_mhz: float, pack_cycles: int = 1,
                    groups_fifo_bram: bool = False, beats: int | None = None) -> dict:
    """First beat of a region to its decision word (cycles and us, source: estimate); `beats`: the region's
    beats, after which `region_ok` reaches `decide` (the decision cannot leave before it)."""
    stages = wrapper_stages(n_classes, pack_cycles, groups_fifo_bram)
    wrapper = sum(stages.values())
    cycles = int(network_cycles) + wrapper
    if beats is not None:
        decide = sum(v for k, v in stages.items() if k in ("argmax", "runner-up", "score and threshold",
                                                            "decision register", "decision register slice"))
        cycles = max(cycles, int(beats) + 2 + decide)
    return {
        "network_cycles": int(network_cycles),
        "wrapper_cycles": wrapper,
        "wrapper_stages": stages,
        "latency_cycles": cycles,
        "latency_us": round(cycles / clock_mhz, 4),
        "source": "estimate",
    }


def region_contract(ii_cycles: int, n_beats: int, clock_mhz: float) -> dict:
    """What the grabber's shell must keep (source: estimate): the region interval (the core accepts a new region
    every `ii_cycles`), and the FIFO a pair of regions offered back to back needs: while the second region's
    `n_beats` beats arrive (one per clock), the core frees its buffer at the rate it works off the first,
    n_beats / ii_cycles of a region per beat, so ceil(n_beats (1 - n_beats / ii_cycles)) beats must wait.
    m regions back to back need (m - 1) times that."""
    ii, beats = int(ii_cycles), int(n_beats)
    backlog = math.ceil(beats * (1 - beats / ii)) if ii > beats else 0
    return {"region_interval_cycles": ii, "region_interval_us": round(ii / clock_mhz, 4),
            "regions_per_s": round(clock_mhz * 1e6 / ii, 1), "beats_per_region": beats,
            "fifo_beats_back_to_back": backlog, "source": "estimate"}


def trigger_metrics(logits: np.ndarray, labels: np.ndarray, threshold: float, trigger_class: int | None) -> dict:
    """{n, fired, sort_rate, precision, recall, tp} of the sort decision against `labels`.

    With a trigger class, a fired sample is right when its label is that class; without one (sort any
    confident decision), when its label is the decided class. Recall: of the samples of the trigger class
    (or of all samples), the fraction fired and right. precision is None when nothing fires.
    """
    labels = np.asarray(labels).reshape(-1)
    cls, _, fire = sort_decisions(logits, threshold, trigger_class)
    right = (labels == trigger_class) if trigger_class is not None else (labels == cls)
    tp = int((fire & right).sum())
    fired = int(fire.sum())
    positives = int((labels == trigger_class).sum()) if trigger_class is not None else len(labels)
    return {"n": int(len(labels)), "fired": fired, "tp": tp, "sort_rate": round(fired / max(1, len(labels)), 6),
            "precision": round(tp / fired, 6) if fired else None,
            "recall": round(tp / positives, 6) if positives else None}


def choose_trigger(logits: np.ndarray, labels: np.ndarray, target_precision: float = DEFAULT_TARGET_PRECISION,
                   trigger_class: int | None = None) -> dict:
    """The class and threshold of the default sort trigger, from validation logits (module docstring).

    `trigger_class` given: only the threshold is chosen. Returns {trigger_class, threshold, target_precision,
    target_met, validation: trigger_metrics(...)}; the threshold is a score value, so it is on the score grid.
    """
    z = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if len(z) == 0 or len(z) != len(labels):
        raise ValueError(f"choose_trigger: {len(z)} logits rows for {len(labels)} labels")
    cls, score, _ = sort_decisions(z, -np.inf)
    best_key, best = None, None
    classes = [trigger_class] if trigger_class is not None else range(z.shape[1])
    for c in classes:
        positives = int((labels == c).sum())
        mine = cls == c
        if not mine.any() or positives == 0:
            continue
        s, ok = score[mine], labels[mine] == c
        order = np.argsort(-s, kind="stable")
        s, ok = s[order], ok[order]
        tp, fired = np.cumsum(ok), np.arange(1, len(s) + 1)
        # a threshold t fires every sample with score >= t: evaluate at the last index of each distinct score
        last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
        for i in last:
            prec, rec = tp[i] / fired[i], tp[i] / positives
            met = prec >= target_precision
            # met first; then recall (met) or precision (not met); then the other; lower class; lower threshold
            key = (met, rec if met else prec, prec if met else rec, -c, -s[i])
            if best_key is None or key > best_key:
                best_key, best = key, (c, float(s[i]))
    if best is None:
        raise ValueError("choose_trigger: no class is both decided and present in the validation labels")
    c, t = best
    return {"trigger_class": int(c), "threshold": t, "target_precision": float(target_precision),
            "target_met": bool(best_key[0]), "validation": trigger_metrics(z, labels, t, int(c))}
