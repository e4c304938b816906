"""The wheel's package list; everything else about the build is in pyproject.toml.

pyproject.toml's `packages` is either a fixed list (a new subpackage must be added by hand, else it is left out
of the wheel) or one `find` over a folder, which cannot reach hw/ and firmware_templates/: they live at the
repository root and pyproject's [tool.setuptools.package-dir] maps them into the wheel as edgekd.resources.*.
So the list is found here: every folder under edgekd/ and under each mapped folder, data-only folders (report
templates, board files, firmware templates) included, as setuptools expects of every folder it ships files from.
"""

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).resolve().parent


def packages() -> list[str]:
    found = find_namespace_packages(where=str(ROOT), include=["edgekd", "edgekd.*"])
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for name, folder in package_dir.items():
        found += [name] + [f"{name}.{sub}" for sub in find_namespace_packages(where=str(ROOT / folder))]
    return sorted(found)


setup(packages=packages())
