"""The cell sorter's trigger latency and region interval on the frame grabber, from the cost model alone.

    .venv/bin/python benchmarks/cell_trigger_model.py [--config examples/cells.yaml]

For the config's student and input blocks k in (1, 2, 4) (k = the config's own first) on its board: the layer
specs edgekd builds for the fit search (`cell_cnn_layer_specs`: every weight counted non-zero, so an upper bound
for a trained student whose zero weights shorten its adder trees), the settings the fit search picks
(`edgekd.hls.fit.choose_settings`, as the hls step does), the network's latency and interval with the input's
arrival at the board's pixels per clock (`edgekd.estimate`), the trigger latency with the wrapper's stages and
the region contract (`edgekd.project.trigger`), all source "estimate". Prints a table and saves
benchmarks/results/cell_trigger_model.json. No training, no hls4ml: seconds. Never part of the tests.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgekd.config import load_config
from edgekd.estimate import estimate
from edgekd.hls.fit import choose_settings
from edgekd.hw import load_board
from edgekd.io import write_json
from edgekd.project.interface import packing_stages
from edgekd.project.trigger import groups_fifo_in_bram, region_contract, trigger_latency
from edgekd.students.suggest_candidates import cell_cnn_layer_specs

ROOT = Path(__file__).resolve().parents[1]


def point(cfg, board, block: int) -> dict:
    student = cfg.student.model_copy(update={"input_block": block})
    n_classes = cfg.data.num_classes
    specs = cell_cnn_layer_specs(student, n_classes, cfg.hls)
    p = board.pixels_per_clock
    kw = {"pixels_per_clock": p, "input_block": block}
    fit = choose_settings(specs, cfg.hls, board, estimate_kw=kw)
    chosen = [s if s.name not in fit.settings else
              type(s).from_dict({**s.to_dict(), "reuse_factor": fit.settings[s.name].reuse_factor,
                                 "strategy": fit.settings[s.name].strategy}) for s in specs]
    est = estimate(chosen, cfg.hls.clock_mhz, "io_stream", **kw)
    arrival = est["input_arrival"]
    pack = packing_stages(p, block, 1)
    n_values = arrival["items"] * arrival["values_per_item"]
    bram = pack > 1 and groups_fifo_in_bram(p, block, 1, n_values, student.input_bits)
    trig = trigger_latency(est["cycles"], n_classes, cfg.hls.clock_mhz, pack_cycles=pack, groups_fifo_bram=bram,
                           beats=arrival["beats"])
    region = region_contract(est["ii_cycles"], arrival["beats"], cfg.hls.clock_mhz)
    convs = {r["name"]: r["cycles"] for r in est["per_layer"] if r["type"].startswith("Conv")}
    return {"input_block": block, "pixels_per_clock": p, "settings": {k: [v.reuse_factor, v.strategy]
                                                                       for k, v in fit.settings.items()},
            "fits": fit.fits, "binding": fit.fit["binding"],
            "binding_fraction": fit.fit["resources"][fit.fit["binding"]]["fraction"],
            "network_cycles": est["cycles"], "network_ii_cycles": est["ii_cycles"], "conv_process_cycles": convs,
            "trigger": trig, "region": region, "source": "estimate"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "cells.yaml")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "cell_trigger_model.json")
    args = ap.parse_args()
    cfg = load_config(args.config)
    board = load_board(cfg.hls.board)
    own = cfg.student.input_block
    rows = [point(cfg, board, k) for k in dict.fromkeys((own, 1, 2, 4))]
    print(f"{'k':>2} {'network':>8} {'trigger':>8} {'us':>7} {'region':>7} {'us':>7} {'fifo':>5}  settings")
    for r in rows:
        t, g = r["trigger"], r["region"]
        print(f"{r['input_block']:>2} {r['network_cycles']:>8} {t['latency_cycles']:>8} {t['latency_us']:>7} "
              f"{g['region_interval_cycles']:>7} {g['region_interval_us']:>7} {g['fifo_beats_back_to_back']:>5}  "
              f"{r['settings']} ({r['binding']} {r['binding_fraction']:.0%})")
    write_json(args.json, {"config": str(args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT)
                                         else args.config),
                           "board": board.name, "clock_mhz": cfg.hls.clock_mhz, "points": rows})
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()
