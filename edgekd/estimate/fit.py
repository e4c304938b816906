"""Does a design fit a board: used vs available per resource, and the binding (fullest) one.

It takes plain resource counts and knows nothing of how they were obtained, so it needs no other part of the
estimator; edgekd.hls.fit checks each estimate of its settings search with it.
"""

from __future__ import annotations

import math
from typing import Any, Mapping


def fits(resources: Mapping[str, float], board: Any) -> dict[str, Any]:
    """Used vs available per resource; `board` is an `edgekd.hw.Board` (or anything with .resources).

    Returns {"fits": bool, "binding": name of the fullest resource, "resources": {name: {used, available,
    fraction}}}. A resource the board lacks (available 0) but the design uses makes `fits` False.
    """
    avail_obj = getattr(board, "resources", board)
    out: dict[str, Any] = {}
    ok = True
    worst, worst_frac = None, -1.0
    for key in ("lut", "ff", "dsp", "bram_18k", "uram"):
        used = resources.get(key)
        if used is None:
            continue
        available = getattr(avail_obj, key, None) if not isinstance(avail_obj, Mapping) else avail_obj.get(key)
        if available is None:
            continue
        frac = (used / available) if available else (0.0 if used == 0 else math.inf)
        out[key] = {"used": used, "available": available, "fraction": round(frac, 6) if math.isfinite(frac) else None}
        if frac > 1.0:
            ok = False
        if frac > worst_frac:
            worst, worst_frac = key, frac
    return {"board": getattr(board, "name", None), "part": getattr(board, "part", None), "fits": ok,
            "binding": worst, "resources": out}
