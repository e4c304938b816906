"""The wheel must carry every subpackage, the templates and the board files."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "edgekd").rglob("__init__.py")
    }
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages"


def test_board_files_are_package_data():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert cfg["package-dir"]["edgekd.resources.hw"] == "hw"
    assert list((ROOT / "hw" / "boards").glob("*.yaml"))


def test_firmware_templates_are_package_data():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert cfg["package-dir"]["edgekd.resources.firmware_templates"] == "firmware_templates"
    globs = cfg["package-data"]["edgekd.resources.firmware_templates"]
    templates = [p.relative_to(ROOT / "firmware_templates") for p in (ROOT / "firmware_templates").rglob("*.j2")]
    assert templates
    assert all(any(p.match(g) for g in globs) for p in templates), "a template is not matched by package-data"
