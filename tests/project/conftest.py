"""One tiny cell build, rebuilt for every board into the same folder (data/teacher/distill are reused)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from edgekd.config import load_config, load_config_with_board
from edgekd.pipeline import run_build

from _boards import BOARDS, CUSTOM_BOARD, TINY  # noqa: E402



@pytest.fixture(scope="session")
def board_builds(tmp_path_factory) -> dict[str, Path]:
    """{board: a copy of the build folder right after building for that board}; also "custom" (--board-file)."""
    root = tmp_path_factory.mktemp("boards")
    cfg_dir = root / "configs"
    cfg_dir.mkdir()
    build = root / "build"
    out: dict[str, Path] = {}
    for board in BOARDS:
        path = cfg_dir / f"{board}.yaml"
        path.write_text(yaml.safe_dump({**TINY, "hls": {**TINY["hls"], "board": board}}))
        run_build(load_config(path), build)
        out[board] = root / board
        shutil.copytree(build, out[board], symlinks=True)
    board_file = cfg_dir / "my-zu3eg.yaml"
    board_file.write_text(yaml.safe_dump(CUSTOM_BOARD))
    cfg_path = cfg_dir / "custom.yaml"
    cfg_path.write_text(yaml.safe_dump(TINY))
    run_build(load_config_with_board(cfg_path, board_file), build)
    out["custom"] = root / "custom"
    shutil.copytree(build, out["custom"], symlinks=True)
    return out
