"""The wheel must carry every subpackage, the templates and the board files, and build without setuptools warnings.

One real build (`pip wheel`, build isolation as a user's `pip install` has it) of a copy of the working tree:
about 3 s.
"""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "edgekd", "hw", "firmware_templates"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[set[str], str]:
    """(the built wheel's file names, pip's output)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(tmp / "out"),
         str(src)],
        capture_output=True, text=True, timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    (whl,) = (tmp / "out").glob("edgekd-*.whl")
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist()), output


def test_wheel_builds_without_setuptools_warnings(wheel):
    _, output = wheel
    warnings = [line.strip() for line in output.splitlines() if re.search(r"warn", line, re.IGNORECASE)]
    assert not warnings, "building the wheel warns:\n" + "\n".join(warnings[:20])


def test_wheel_carries_every_module_without_a_package_list(wheel):
    # setup.py finds the packages: a new subpackage (edgekd.tasks, edgekd.sweep, ...) needs no edit to ship
    names, _ = wheel
    on_disk = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "edgekd").rglob("*.py") if "__pycache__" not in p.parts
    }
    assert {"edgekd/__init__.py", "edgekd/cli.py", "edgekd/sweep/__init__.py", "edgekd/tasks/__init__.py"} <= on_disk
    assert not on_disk - names, f"missing from the wheel: {sorted(on_disk - names)[:10]}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_carries_the_board_files(wheel):
    names, _ = wheel
    boards = {f"edgekd/resources/hw/boards/{p.name}" for p in (ROOT / "hw" / "boards").glob("*.yaml")}
    assert "edgekd/resources/hw/boards/frame-grabber-ku035.yaml" in boards
    assert not boards - names, f"missing from the wheel: {sorted(boards - names)}"


def test_wheel_carries_the_firmware_and_report_templates(wheel):
    names, _ = wheel
    firmware = {
        "edgekd/resources/firmware_templates/" + p.relative_to(ROOT / "firmware_templates").as_posix()
        for p in (ROOT / "firmware_templates").rglob("*.j2")
    }
    in_package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "edgekd").rglob("*.j2")}
    assert "edgekd/resources/firmware_templates/top/edgekd_top_pixel_stream.cpp.j2" in firmware
    assert "edgekd/report/templates/report.html.j2" in in_package
    missing = (firmware | in_package) - names
    assert not missing, f"missing from the wheel: {sorted(missing)}"
