"""Compile cache for the C-simulation library, keyed by the hash of the generated firmware sources.

hls4ml's `compile()` writes the project and runs `build_lib.sh` (g++, ~8-15 s per project on 2 cores,
minutes for large io_parallel designs) every time. Here the written sources (firmware/ without
compiled libraries, the bridge, build_lib.sh without its random LIB_STAMP) are hashed; the library is
built once in `<cache>/<hash>/` (a copy of those sources: the library reads its weights from the
absolute path of the folder it was built in, so that folder must live as long as the cache) and every
later design with the same sources just loads it.

The library is compiled at -O1 instead of build_lib.sh's -O3: the C-simulation is fixed-point integer arithmetic
(no -ffast-math at either level), so its outputs do not depend on the level, and -O1 compiles a tiny cell
student's distributed-arithmetic project in 24.6 s instead of 30.8 s (g++ 12, 2 cores); the network and the bridge are
compiled as one unit (their headers parsed once: -25%). Both are part of the cache key. The project handed to a lab
keeps hls4ml's build_lib.sh unchanged.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from edgekd.io import write_text

log = logging.getLogger(__name__)

__all__ = ["firmware_hash", "compile_cached", "library_for_firmware"]

_STAMP = re.compile(rb"^LIB_STAMP=.*$", re.MULTILINE)
_CFLAGS = re.compile(r'^CFLAGS="-O3 -fPIC"$', re.MULTILINE)
OPT_LEVEL = "-O1"
_DONE = "csim_lib.txt"


def _source_files(project_dir: Path) -> list[Path]:
    files = [p for p in sorted((project_dir / "firmware").rglob("*")) if p.is_file() and p.suffix != ".so"]
    for extra in ("build_lib.sh", *(p.name for p in sorted(project_dir.glob("*_bridge.cpp")))):
        if (project_dir / extra).is_file():
            files.append(project_dir / extra)
    return files


def firmware_hash(project_dir: Path | str) -> str:
    """sha256 over the relative path and contents of every source the C-simulation library is built from."""
    project_dir = Path(project_dir)
    files = _source_files(project_dir)
    if not files:
        raise FileNotFoundError(f"{project_dir} has no written hls4ml firmware")
    return _digest(project_dir, files)


def _digest(root: Path, files: list[Path]) -> str:
    """sha256 over each file's path relative to `root` and contents (build_lib.sh without its random LIB_STAMP)."""
    h = hashlib.sha256()
    for path in files:
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        if rel == "build_lib.sh":
            data = _STAMP.sub(b"LIB_STAMP=", data)
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _build(project_dir: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in _source_files(project_dir):
        dst = target / path.relative_to(project_dir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst)
    script = target / "build_lib.sh"
    text, n = _CFLAGS.subn(f'CFLAGS="{OPT_LEVEL} -fPIC"', script.read_text())
    if n != 1:  # another hls4ml's script: compile it as written rather than guess
        log.warning("build_lib.sh has no CFLAGS=\"-O3 -fPIC\" line; compiling with its own flags")
    script.write_text(_one_unit(text, target))
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", "build_lib.sh"], cwd=target, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    libs = sorted((target / "firmware").glob("*.so"))
    if proc.returncode != 0 or len(libs) != 1:
        shutil.rmtree(target, ignore_errors=True)  # nothing half-built stays in the cache
        if proc.returncode != 0:
            raise RuntimeError(f"C-simulation library failed to compile in {project_dir}:\n{proc.stdout[-4000:]}")
        raise RuntimeError(f"expected one compiled library from {project_dir}, found {len(libs)}")
    # the marker is written last and atomically: a library without it is rebuilt, never trusted
    write_text(target / _DONE, libs[0].relative_to(target).as_posix() + "\n")
    log.info("C-simulation library compiled in %.1f s (%s)", time.perf_counter() - t0, target.name[:12])
    return libs[0]


# hls4ml 1.3.0's build_lib.sh compiles the network and the bridge as two units and links them; both parse the same
# ap_types / nnet headers, so one unit that includes both sources compiles the same code in about 3/4 of the time
# (7.7 s instead of 7.3 + 3.1 s for a tiny cell student).
_TWO_UNITS = (
    '${CC} ${CFLAGS} ${INCFLAGS} -D WEIGHTS_DIR="${WEIGHTS_DIR}" -c firmware/${PROJECT}.cpp -o ${PROJECT}.o\n'
    '${CC} ${CFLAGS} ${INCFLAGS} -D WEIGHTS_DIR="${WEIGHTS_DIR}" -c ${PROJECT}_bridge.cpp -o ${PROJECT}_bridge.o\n'
    '${CC} ${CFLAGS} ${INCFLAGS} -shared ${PROJECT}.o ${PROJECT}_bridge.o -o firmware/${PROJECT}-${LIB_STAMP}.so\n')
_ONE_UNIT = (
    '${CC} ${CFLAGS} ${INCFLAGS} -D WEIGHTS_DIR="${WEIGHTS_DIR}" -c ${PROJECT}_unit.cpp -o ${PROJECT}_unit.o\n'
    '${CC} ${CFLAGS} ${INCFLAGS} -shared ${PROJECT}_unit.o -o firmware/${PROJECT}-${LIB_STAMP}.so\n')
UNITS = "one unit"  # part of the cache key, like OPT_LEVEL


def _one_unit(script: str, target: Path) -> str:
    """build_lib.sh compiling firmware/<project>.cpp and <project>_bridge.cpp as one unit (the cache's copy only)."""
    project = re.search(r"^PROJECT=(\w+)$", script, re.MULTILINE)
    if _TWO_UNITS not in script or project is None:
        log.warning("build_lib.sh is not hls4ml 1.3.0's two-unit script; compiling it as written")
        return script
    name = project.group(1)
    write_text(target / f"{name}_unit.cpp", f'#include "firmware/{name}.cpp"\n#include "{name}_bridge.cpp"\n')
    return script.replace(_TWO_UNITS, _ONE_UNIT)


def compile_cached(hls_model: Any, cache_dir: Path | str) -> dict:
    """Write `hls_model`, then load its C-simulation library from the cache (compiling it on a miss).

    Returns {"hash", "cached" (True when no compilation was needed), "library"}.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    hls_model.write()
    project_dir = Path(hls_model.config.get_output_dir())
    key = hashlib.sha256(f"{firmware_hash(project_dir)} {OPT_LEVEL} {UNITS}".encode()).hexdigest()
    target = cache_dir / key
    with open(cache_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            done = target / _DONE
            lib = target / done.read_text().strip() if done.is_file() else None
            cached = lib is not None and lib.is_file()
            if not cached:
                lib = _build(project_dir, target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    assert lib is not None
    hls_model._top_function_lib = ctypes.cdll.LoadLibrary(str(lib))
    log.info("C-simulation library %s (%s)", "reused from cache" if cached else "compiled", key[:12])
    return {"hash": key, "cached": cached, "library": str(lib)}


def _firmware_digest(firmware: Path) -> str:
    """sha256 over the relative path and contents of every file of a firmware/ folder but compiled libraries."""
    return _digest(firmware, sorted(p for p in firmware.rglob("*") if p.is_file() and p.suffix != ".so"))


def library_for_firmware(cache_dir: Path | str, firmware: Path | str) -> Path | None:
    """A compiled C-simulation library in `cache_dir` built from exactly the files of `firmware` (a board project's
    hls/firmware: the same sources, types and weights, compared by sha256), or None.

    The board project's testbenches link it instead of compiling the network again (edgekd.project.csim): the
    object code is what the hls step verified against QONNX. It reads its weights from the cache entry's copy,
    byte-identical to the project's."""
    cache_dir, firmware = Path(cache_dir), Path(firmware)
    if not cache_dir.is_dir() or not firmware.is_dir():
        return None
    want = None
    for done in sorted(cache_dir.glob(f"*/{_DONE}")):  # complete entries only (the marker is written last)
        entry = done.parent
        lib = entry / done.read_text().strip()
        if not lib.is_file():
            continue
        want = want or _firmware_digest(firmware)
        if _firmware_digest(entry / "firmware") == want:
            return lib
    return None
