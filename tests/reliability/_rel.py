"""Helpers of the reliability tests: the tiny build config, the CLI in a subprocess, and comparisons
of two build folders (sha256 of every recorded file, timing fields aside)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from edgekd.io import file_sha256, read_json

# The e2e tiny build, with a few more teacher/distill epochs so a kill can land inside those steps.
TINY = {
    "name": "tiny",
    "data": {"synthetic": {"n_train": 360, "n_test": 120, "seed": 1}, "val_fraction": 0.1},
    "teacher": {"width": 8, "epochs": 4, "input_size": 32, "batch_size": 64},
    "student": {"input_size": 16, "channels": [4, 4], "kernel_sizes": [3, 3]},
    "distill": {"epochs": 3, "qat_epochs": 1, "batch_size": 64},
    "hls": {"verify_samples": 24},
}
STEPS = ["data", "teacher", "distill", "export", "hls", "project", "report"]
# Fields that hold wall-clock measurements or cache status, not results: compared with these removed.
VOLATILE_KEYS = {"seconds", "generated_at", "timings_s", "reused"}


def write_config(folder: Path, overrides: dict | None = None, name: str = "tiny.yaml") -> Path:
    cfg = {**TINY, **(overrides or {})}
    path = folder / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def edgekd_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgekd", *args]


def cli_env() -> dict[str, str]:
    # wide console: rich must not wrap the messages the tests look for
    return {**os.environ, "COLUMNS": "250", "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "random")}


def run_cli(*args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(edgekd_cmd(*args), capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=cwd)


def one_line(text: str) -> str:
    return " ".join(text.split())


def strip_volatile(obj):  # type: ignore[no-untyped-def]
    if isinstance(obj, dict):
        return {k: strip_volatile(v) for k, v in obj.items() if k not in VOLATILE_KEYS and not k.endswith("_per_s")}
    if isinstance(obj, list):
        return [strip_volatile(v) for v in obj]
    return obj


def comparable(path: Path, build_dir: Path) -> object:
    """What must be equal between two builds: the sha256, or for JSON with timings the content without them.

    hls4ml_config.yml records hls4ml's OutputDir, an absolute path inside the build folder: compared with
    the build folder's path replaced by a placeholder.
    """
    if path.suffix == ".json":
        data = read_json(path)
        stripped = strip_volatile(data)
        return ("json", stripped) if stripped != data else ("sha256", file_sha256(path))
    if path.name == "hls4ml_config.yml":
        return ("text", path.read_text().replace(str(build_dir.resolve()), "<BUILD>"))
    return ("sha256", file_sha256(path))


def assert_same_build(a: Path, b: Path) -> int:
    """Every file recorded in a's manifest exists in b with the same content (timings aside); returns the count.

    report.md / report.html are renderings of report.json: each must equal the rendering of its own
    report.json, and the report.json files are compared (timings aside) like every other file.
    """
    from edgekd.report.render import render_html, render_markdown

    ma, mb = read_json(a / "manifest.json")["steps"], read_json(b / "manifest.json")["steps"]
    assert list(ma) == list(mb) == STEPS
    checked = 0
    for step in STEPS:
        files_a, files_b = ma[step]["outputs"], mb[step]["outputs"]
        assert sorted(files_a) == sorted(files_b), step
        for rel in files_a:
            if rel in ("report/report.md", "report/report.html"):
                render = render_markdown if rel.endswith(".md") else render_html
                for build in (a, b):
                    assert (build / rel).read_text() == render(read_json(build / "report" / "report.json")), rel
                continue
            left, right = comparable(a / rel, a), comparable(b / rel, b)
            assert left == right, f"{rel} differs between {a} and {b}"
            checked += 1
    return checked


def timing_free_report(build: Path) -> dict:
    return strip_volatile(read_json(build / "report" / "report.json"))


def manifest_steps(build: Path) -> list[str]:
    path = build / "manifest.json"
    return list(read_json(path)["steps"]) if path.exists() else []


def reported_steps(stderr: str, status: str) -> list[str]:
    """Steps the CLI's final line lists as `ran` or `skipped`."""
    m = re.search(r": ran (nothing|[a-z]+(?:, [a-z]+)*); skipped (nothing|[a-z]+(?:, [a-z]+)*)", one_line(stderr))
    assert m, f"no 'ran ...; skipped ...' line in: {stderr[-1000:]}"
    listed = m.group(1 if status == "ran" else 2)
    return [] if listed == "nothing" else listed.split(", ")


class FakeHlsModel:
    """Just enough of an hls4ml model for the compile cache: write() lays out firmware + build_lib.sh."""

    def __init__(self, project: Path, body: str = "return 7;", fail: bool = False) -> None:
        self.project, self.body, self.fail = project, body, fail
        self.config = type("Cfg", (), {"get_output_dir": lambda _self: str(project)})()

    def write(self) -> None:
        fw = self.project / "firmware"
        fw.mkdir(parents=True, exist_ok=True)
        (fw / "myproject.cpp").write_text(f'extern "C" int answer() {{ {self.body} }}\n')
        script = "exit 3\n" if self.fail else (
            "sleep 0.5\ng++ -shared -fPIC firmware/myproject.cpp -o firmware/myproject-${LIB_STAMP}.so\n")
        (self.project / "build_lib.sh").write_text(f"LIB_STAMP=abc12345\n{script}")
