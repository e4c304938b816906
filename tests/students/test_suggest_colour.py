"""suggest-student on a colour image folder: candidates and the probe teacher take 3 input channels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from edgekd.config import parse_config
from edgekd.students.suggest import suggest_students


def test_suggest_ranks_colour_students(tmp_path):
    rng = np.random.default_rng(0)
    for i, name in enumerate(("red", "green", "blue")):
        (tmp_path / name).mkdir()
        for j in range(8):
            img = rng.normal(60, 20, (20, 20, 3))
            img[:, :, i] += 120
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(tmp_path / name / f"{j}.png")
    cfg = parse_config({
        "name": "colour",
        "data": {"source": "folder", "path": str(tmp_path), "channels": 3, "test_fraction": 0.25},
        "teacher": {"width": 4, "input_size": 16},
        "student": {"input_size": 16, "channels": [4], "kernel_sizes": [3]},
        "hls": {"board": "pynq-z2"},
    })
    result = suggest_students(cfg, batch=12, inits=1, widths=(4, 8), depths=(1,), bits=(8,))
    params = {tuple(c["channels"]): c["params"] for c in result["candidates"]}
    # conv 3x3 over 3 input channels (+ bias), then the 7x7 pooled map to 3 classes (+ bias)
    assert params[(4,)] == (3 * 9 * 4 + 4) + (4 * 7 * 7 * 3 + 3)
    assert params[(8,)] == (3 * 9 * 8 + 8) + (8 * 7 * 7 * 3 + 3)
