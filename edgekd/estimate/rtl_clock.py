"""The clock an open-board design can be expected to run at: the achieved Fmax of the nearest measured design.

Honest about what the data supports: five designs went through nextpnr-ecp5 on the ULX3S 85F (LFE5U-85F,
speed 6, seed 1), all with alkaid kernels split at latency_cutoff 3 (or no kernels), and their post-route Fmax
falls with size (65-88 MHz from 4.8k to 17.3k logic slots; 101 MHz for a design without adders). That is too
little for a fitted curve, so the model is a table lookup: the measured design with the same latency_cutoff
(adder delays per pipeline stage, which sets the logic depth per stage) nearest in log(logic slots). Outside the
measured sizes the nearest one's Fmax is used and the result says `extrapolated`; a cutoff no measured design
has is stated the same way (one unit of the cutoff is about 5-7 ns on ECP5 speed 6, so a larger cutoff is
slower: the prediction is then an upper bound). Every prediction names the design it comes from.

Source of MEASURED: benchmarks/results/open_bitstream.json (`benchmarks/open_bitstream.py`; tests check the two
agree). Logic slots = Yosys synth_ecp5 LUT4 + 2 x CCU2C of the self-test top.
"""

from __future__ import annotations

import math
from typing import Any

#: (design, self-test top logic slots, alkaid latency_cutoff or None without alkaid kernels, post-route Fmax MHz)
MEASURED: tuple[tuple[str, int, float | None, float], ...] = (
    ("standin-1x2", 1397, None, 101.041),
    ("cnn-9x7x3", 4838, 3.0, 88.402),
    ("mlp-16-8-5", 5791, 3.0, 80.283),
    ("build:cells_ecp5", 6144, 3.0, 67.981),
    ("mlp-16-32-5", 17279, 3.0, 64.838),
)
SOURCE = "benchmarks/results/open_bitstream.json (nextpnr-ecp5 0.11, LFE5U-85F speed 6, seed 1)"
#: the device family the table was measured on
FAMILY = "ecp5"


def predict_fmax(logic_slots: float, latency_cutoff: float | None, family: str = FAMILY) -> dict[str, Any]:
    """{mhz, from: the measured design, its slots / cutoff / Fmax, extrapolated, note, source}."""
    if family != FAMILY:
        raise ValueError(f"no measured post-route Fmax for family {family!r} (measured: {FAMILY})")
    same = [m for m in MEASURED if m[2] == latency_cutoff]
    pool = same or [m for m in MEASURED if m[2] is not None]
    name, slots, cutoff, mhz = min(pool, key=lambda m: abs(math.log(max(1.0, logic_slots)) - math.log(m[1])))
    sizes = [m[1] for m in pool]
    notes = []
    extrapolated = not (min(sizes) <= logic_slots <= max(sizes))
    if extrapolated:
        notes.append(f"{logic_slots:.0f} logic slots is outside the measured {min(sizes)}-{max(sizes)}: the nearest "
                     "measured design's Fmax (larger designs route slower: an upper bound)"
                     if logic_slots > max(sizes) else
                     f"{logic_slots:.0f} logic slots is below the measured {min(sizes)}-{max(sizes)}")
    if not same:
        extrapolated = True
        notes.append(f"no design measured at latency_cutoff {latency_cutoff}; from one at {cutoff} (about 5-7 ns "
                     "per unit of the cutoff on ECP5 speed 6)")
    return {"mhz": mhz, "from": name, "from_logic_slots": slots, "from_latency_cutoff": cutoff,
            "extrapolated": extrapolated, "note": "; ".join(notes) or None, "source": SOURCE,
            "method": "nearest measured design (same latency_cutoff, nearest log logic slots)"}
