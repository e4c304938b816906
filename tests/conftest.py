import os
import random
from pathlib import Path

# da4ml's solver (hls4ml's distributed arithmetic, the fit search's DA prices) runs as plain Python in the suite,
# here and in the builds the tests start: numba compiles it on first use, 161 s in a fresh venv (per process that
# gets there first), while the suite's small kernels solve in seconds uncompiled. Same functions, so the same
# solutions: the DA test's student, 3 seeds, gave identical da4ml costs and generated kernels both ways. Set
# before anything imports numba (it reads the variable once); builds outside the suite keep the compiled solver.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

import numpy as np
import pytest
import torch

from edgekd.config import StudentConfig
from edgekd.export.qonnx import export_student_qonnx
from edgekd.students.cell_cnn import build_cell_cnn, calibrate

TINY = StudentConfig(input_size=16, channels=[4, 4])
# Every test starts from the same process state, whatever ran before it: a build sets torch's thread count
# and deterministic mode for the process (edgekd.determinism), other tests draw from the global random
# streams, and float results (BatchNorm statistics, conv sums) change with the thread count. Two threads
# is what the suite was measured with on 2-core machines; a 1-core machine gets 1.
TEST_THREADS = min(2, torch.get_num_threads())


# The heaviest modules first (CPU seconds per module, measured 2026-12-07 with a getrusage plugin over the whole
# suite: 255, 215, 149, 146, 123, 110, 78, 69, 66 and 57 s; the other ~90 modules take about 600 s together).
# `make test` runs pytest-xdist with --dist loadfile --no-loadscope-reorder, which hands whole files to the two
# workers in this order: long modules start early and short ones fill the end of both workers. xdist's default
# (most tests first) let a long module with few tests start last and run alone.
HEAVY_FIRST = ("tests/reliability/test_reliability_builds.py", "tests/byo/test_ecosystem.py", "tests/hls/test_emulate.py",
               "tests/project/test_boards.py", "tests/sweep/test_sweep_run.py", "tests/project/test_pixel_blocks.py",
               "tests/byo/test_byo.py", "tests/e2e/test_image_folder_builds.py", "tests/openfpga/test_bitstream_step.py",
               "tests/hls/test_hls.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def same_start_state():
    """Fixed torch threads, deterministic-algorithm mode off, seeded global streams; restored after."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(TEST_THREADS)
    torch.use_deterministic_algorithms(False)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory) -> tuple[torch.nn.Module, Path, np.ndarray]:
    """A 16x16, 4-channel cell student with random weights and calibrated activation scales."""
    torch.manual_seed(0)
    model = build_cell_cnn(TINY, num_classes=2)
    x = torch.randn(64, 1, 16, 16) * 1.3
    calibrate(model, x)
    model.eval()
    path = export_student_qonnx(model, (1, 16, 16), tmp_path_factory.mktemp("qonnx"))
    return model, path, x.numpy()
