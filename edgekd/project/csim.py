"""Emulated C-simulation: the project's own testbenches compiled with g++ and the ap_types headers.

`run_project_csim(project_dir)` does what `csim_design` does in Vivado/Vitis HLS, without the vendor tool:
it compiles `hls/myproject_test.cpp` (the network's testbench) and `top/edgekd_top_test.cpp` (the interface
wrapper's testbench) against `hls/firmware/myproject.cpp`, runs both on `hls/tb_data/`, and compares what
they wrote with the expected outputs. Nothing is written into the project: each run happens in a temporary
folder holding links to the test vectors and weights. The network's code is the hls step's C-simulation library
when the build's cache holds one of the same firmware (sha256 of every file), else the network is compiled here
and cached by the hash of the firmware sources (the same network built for another board reuses it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.io import read_json
from edgekd.project.generate import HLS_PROJECT_NAME, TOP_NAME, decode_decision_words, parse_fixed, read_tb_data
from edgekd.project.trigger import sort_decisions

log = logging.getLogger(__name__)

__all__ = ["CsimError", "ProjectFolderError", "find_project_dir", "run_project_csim", "CXXFLAGS"]

CXXFLAGS = ("-std=c++14", "-O1", "-w")
_TIMEOUT_S = 1800


class ProjectFolderError(ValueError):
    """Not a build folder with a generated board project (or the project lacks a file)."""


class CsimError(RuntimeError):
    """A testbench failed to compile or crashed; the message holds the compiler's or program's output."""


def find_project_dir(path: Path | str) -> Path:
    """A build folder (`BUILD/project/`) or the project folder itself -> the project folder."""
    path = Path(path)
    for candidate in (path / "project", path):
        if (candidate / "project.json").is_file() and (candidate / "hls").is_dir():
            return candidate
    if not path.exists():
        raise ProjectFolderError(f"{path}: no such folder")
    raise ProjectFolderError(
        f"{path}: no board project here (expected project/project.json); run `edgekd build` through the project step")


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    log.debug("%s: %s (in %s)", what, " ".join(cmd), cwd)
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S)
    except FileNotFoundError as err:
        raise CsimError(f"{what}: {cmd[0]} not found ({err.strerror})") from None
    except subprocess.TimeoutExpired:
        raise CsimError(f"{what}: timed out after {_TIMEOUT_S} s") from None


def _compile(cmd: list[str], cwd: Path, what: str) -> None:
    proc = _run(cmd, cwd, what)
    if proc.returncode != 0:
        raise CsimError(f"{what} failed (g++ exit {proc.returncode}):\n{(proc.stderr or proc.stdout)[-4000:]}")


def _firmware_key(firmware: Path, cxx: str) -> str:
    h = hashlib.sha256()
    h.update(" ".join((cxx, *CXXFLAGS)).encode())
    for p in sorted(firmware.rglob("*")):
        if p.is_file() and p.suffix in (".h", ".cpp", ".txt", ".hpp"):
            h.update(str(p.relative_to(firmware)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:24]


def _network_object(project: Path, cxx: str, cache_dir: Path | None, workdir: Path) -> Path:
    """hls/firmware/myproject.cpp compiled once per firmware content."""
    firmware = project / "hls" / "firmware"
    key = _firmware_key(firmware, cxx)
    if cache_dir is not None:
        cached = cache_dir / "project_csim" / f"{HLS_PROJECT_NAME}-{key}.o"
        if cached.is_file():
            log.debug("reusing %s", cached)
            return cached
    obj = workdir / f"{HLS_PROJECT_NAME}.o"
    _compile([cxx, *CXXFLAGS, "-I", str(firmware), "-I", str(firmware / "ap_types"), "-c",
              str(firmware / f"{HLS_PROJECT_NAME}.cpp"), "-o", str(obj)], workdir, "compiling the network")
    if cache_dir is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(obj, tmp)
        os.replace(tmp, cached)
        return cached
    return obj


def _network_code(project: Path, cxx: str, cache_dir: Path | None, workdir: Path) -> tuple[list[str], str]:
    """What the testbenches link for the network: the hls step's C-simulation library when the build's cache holds
    one of this very firmware (edgekd.hls.csim_cache.library_for_firmware: no second compile of the network),
    else hls/firmware/myproject.cpp compiled here. Returns (g++ arguments, "hls C-sim library" | "compiled")."""
    if cache_dir is not None:
        from edgekd.hls.csim_cache import library_for_firmware

        lib = library_for_firmware(cache_dir / "csim", project / "hls" / "firmware")
        if lib is not None:
            log.debug("linking the network from %s", lib)
            return [str(lib), f"-Wl,-rpath,{lib.parent}"], "hls C-sim library"
    return [str(_network_object(project, cxx, cache_dir, workdir))], "compiled"


def _compile_wrapper(cxx: str, project: Path, includes: list[str], network: list[str], work: Path, exe: Path) -> None:
    """The wrapper and its testbench as one unit (their headers parsed once: about 2.5 s less per run); should the
    two sources ever clash as one unit, as two units, as a lab's csim_design compiles them."""
    top, test = project / "top" / f"{TOP_NAME}.cpp", project / "top" / f"{TOP_NAME}_test.cpp"
    unit = work / f"{TOP_NAME}_unit.cpp"
    unit.write_text(f'#include "{top}"\n#include "{test}"\n')
    common = [cxx, *CXXFLAGS, "-I", str(project / "top"), *includes]
    if _run([*common, str(unit), *network, "-o", str(exe)], work, "compiling the wrapper testbench").returncode == 0:
        return
    log.debug("the wrapper and its testbench do not compile as one unit; compiling them separately")
    _compile([*common, str(top), str(test), *network, "-o", str(exe)], work, "compiling the wrapper testbench")


def _run_dir(project: Path, parent: Path) -> Path:
    """A folder laid out like csim_design's: tb_data/ (vector links; logs land here) and weights/."""
    run = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    (run / "tb_data").mkdir()
    for name in ("tb_input_features.dat", "tb_output_predictions.dat"):
        (run / "tb_data" / name).symlink_to((project / "hls" / "tb_data" / name).resolve())
    (run / "weights").symlink_to((project / "hls" / "firmware" / "weights").resolve())
    return run


def _execute(exe: Path, run: Path, what: str) -> subprocess.CompletedProcess:
    proc = _run([str(exe)], run, what)
    if proc.returncode not in (0, 1):
        raise CsimError(f"{what} exited with status {proc.returncode}:\n{(proc.stderr or proc.stdout)[-4000:]}")
    return proc


def run_project_csim(project_dir: Path | str, cache_dir: Path | None = None, cxx: str = "g++") -> dict[str, Any]:
    """Compile and run both testbenches of a board project; compare with the expected outputs.

    Returns {n, outputs, exact, max_abs_diff, mismatched_samples, passed, wrapper: {...}, seconds, source}.
    `passed` is False on any mismatch (in either testbench); compile errors raise CsimError.
    """
    # Absolute: the compilers run in a temporary folder, where a relative project path means nothing.
    project = find_project_dir(project_dir).resolve()
    cache_dir = Path(cache_dir).resolve() if cache_dir is not None else None
    meta = read_json(project / "project.json") if (project / "project.json").is_file() else {}
    for rel in (f"hls/{HLS_PROJECT_NAME}_test.cpp", f"hls/firmware/{HLS_PROJECT_NAME}.cpp",
                f"top/{TOP_NAME}.cpp", f"top/{TOP_NAME}_test.cpp", "hls/tb_data/tb_input_features.dat",
                "hls/tb_data/tb_output_predictions.dat"):
        if not (project / rel).is_file():
            raise ProjectFolderError(f"{project}: {rel} is missing")
    if shutil.which(cxx) is None:
        raise CsimError(f"{cxx} not found on PATH; the emulated C-simulation needs a C++ compiler")
    expected = read_tb_data(project / "hls" / "tb_data" / "tb_output_predictions.dat")
    firmware = project / "hls" / "firmware"
    includes = ["-I", str(firmware), "-I", str(firmware / "ap_types")]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgekd-csim-") as tmp:
        work = Path(tmp)
        network, network_source = _network_code(project, cxx, cache_dir, work)

        tb = work / "tb_network"
        _compile([cxx, *CXXFLAGS, "-I", str(project / "hls"), *includes, str(project / "hls" / f"{HLS_PROJECT_NAME}_test.cpp"),
                  *network, "-o", str(tb)], work, "compiling the network testbench")
        run = _run_dir(project, work)
        proc = _execute(tb, run, "network testbench")
        log_path = run / "tb_data" / "csim_results.log"
        got = read_tb_data(log_path) if log_path.is_file() else np.zeros((0, expected.shape[1]))
        if got.shape != expected.shape:
            raise CsimError(f"network testbench wrote {got.shape} outputs, expected {expected.shape}:\n{proc.stderr[-2000:]}")
        equal = got == expected
        result: dict[str, Any] = {
            "n": int(len(expected)),
            "outputs": int(equal.size),
            "exact": float(equal.mean()),
            "max_abs_diff": float(np.abs(got - expected).max()) if equal.size else 0.0,
            "mismatched_samples": [int(i) for i in np.flatnonzero(~equal.all(axis=1))[:10]],
            "testbench_status": proc.returncode,
            "network_code": network_source,
        }

        wtb = work / "tb_wrapper"
        _compile_wrapper(cxx, project, includes, network, work, wtb)
        run = _run_dir(project, work)
        wproc = _execute(wtb, run, "wrapper testbench")
        wlog = run / "tb_data" / f"{TOP_NAME}_csim.log"
        wrapper: dict[str, Any] = {"interface": meta.get("interface"), "testbench_status": wproc.returncode,
                                   "summary": wproc.stdout.strip().splitlines()[-1] if wproc.stdout.strip() else ""}
        wgot = read_tb_data(wlog) if wlog.is_file() else np.zeros((0, 0))
        if meta.get("interface") == "pixel_stream":
            trig = meta.get("trigger") or {}
            cls, score, fire = sort_decisions(expected, trig.get("threshold_on_grid", 0.0), trig.get("trigger_class"))
            want = np.stack([cls, score, fire.astype(float)], axis=1)
            wrapper["decisions_equal"] = bool(wgot.shape == (len(want), 4) and np.array_equal(wgot[:, :3], want))
            # the raw decision words, decoded by the bit positions project.json and the README document
            layout = trig.get("decision_word")
            if layout is not None and wgot.shape == (len(want), 4):
                fields = decode_decision_words(wgot[:, 3].astype(np.uint64), layout,
                                               parse_fixed(meta["output_type"]).frac)
                got = np.stack([fields["cls"], fields["score"], fields["trigger"]], axis=1)
                wrapper["decision_word_layout_ok"] = bool(np.array_equal(got, want) and np.all(fields["valid"] == 1))
            else:
                wrapper["decision_word_layout_ok"] = False
            wrapper["framing_checks"] = "passed" if "framing checks: passed" in wproc.stdout else "FAILED"
            wrapper["passed"] = (wproc.returncode == 0 and wrapper["decisions_equal"]
                                 and wrapper["decision_word_layout_ok"] and wrapper["framing_checks"] == "passed")
            wrapper["triggers"] = int(fire.sum())
        else:
            wrapper["outputs_equal"] = bool(wgot.shape == expected.shape and np.array_equal(wgot, expected))
            wrapper["passed"] = wproc.returncode == 0 and wrapper["outputs_equal"]
        if not wrapper["passed"]:
            wrapper["stderr"] = wproc.stderr[-2000:]
    result["wrapper"] = wrapper
    result["passed"] = bool(result["exact"] == 1.0 and proc.returncode == 0 and wrapper["passed"])
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["source"] = "csim"
    return result
