"""edgekd.hls.csim_cache.library_for_firmware: the board project's testbenches link the hls step's C-simulation
library only when it was built from exactly the project's firmware files (sources, types and weights)."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgekd.hls.csim_cache import library_for_firmware


def _firmware(folder: Path, weight: str = "1 2 3") -> Path:
    (folder / "weights").mkdir(parents=True)
    (folder / "myproject.cpp").write_text("// network\n")
    (folder / "parameters.h").write_text("// types\n")
    (folder / "weights" / "w2.txt").write_text(weight)
    return folder


def _entry(cache: Path, key: str, weight: str = "1 2 3", done: bool = True) -> Path:
    fw = _firmware(cache / key / "firmware", weight)
    (fw / "myproject-1234abcd.so").write_bytes(b"\x7fELF")  # the compiled library sits in firmware/ (not compared)
    if done:
        (cache / key / "csim_lib.txt").write_text("firmware/myproject-1234abcd.so\n")
    return fw / "myproject-1234abcd.so"


def test_the_library_of_the_same_firmware_is_found(tmp_path):
    cache = tmp_path / "csim"
    _entry(cache, "a", weight="9 9 9")
    lib = _entry(cache, "b")
    project_fw = _firmware(tmp_path / "project" / "hls" / "firmware")
    assert library_for_firmware(cache, project_fw) == lib


def test_other_weights_an_extra_file_or_an_unfinished_entry_are_not_used(tmp_path):
    cache = tmp_path / "csim"
    _entry(cache, "a")
    project_fw = _firmware(tmp_path / "project" / "hls" / "firmware", weight="1 2 4")  # one weight differs
    assert library_for_firmware(cache, project_fw) is None
    (project_fw / "weights" / "w2.txt").write_text("1 2 3")
    (project_fw / "extra.h").write_text("// a file the library was not built from\n")
    assert library_for_firmware(cache, project_fw) is None
    (project_fw / "extra.h").unlink()
    assert library_for_firmware(cache, project_fw) is not None
    shutil.rmtree(cache)
    _entry(cache, "a", done=False)  # no marker: a build still compiling or one that failed
    assert library_for_firmware(cache, project_fw) is None
    assert library_for_firmware(tmp_path / "no-cache", project_fw) is None


def test_the_cache_compiles_hls4ml_s_script_as_one_unit(tmp_path):
    """The pinned hls4ml's build_lib.sh (network and bridge as two units) becomes one unit in the cache's copy; a
    script of another form is compiled as written."""
    from importlib.resources import files

    from edgekd.hls.csim_cache import _one_unit

    script = (files("hls4ml") / "templates" / "vivado" / "build_lib.sh").read_text()
    script = script.replace("PROJECT=myproject", "PROJECT=cells")  # hls4ml writes the project name here
    one = _one_unit(script, tmp_path)
    assert "-c ${PROJECT}_unit.cpp -o ${PROJECT}_unit.o" in one and "_bridge.o" not in one
    assert (tmp_path / "cells_unit.cpp").read_text() == '#include "firmware/cells.cpp"\n#include "cells_bridge.cpp"\n'
    other = script.replace("-c ${PROJECT}_bridge.cpp", "-c ${PROJECT}_bridge.cpp -DX")
    assert _one_unit(other, tmp_path / "o") == other
