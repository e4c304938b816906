from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.config import StudentConfig
from edgekd.export.qonnx import export_student_qonnx
from edgekd.students.cell_cnn import build_cell_cnn, calibrate

TINY = StudentConfig(input_size=16, channels=[4, 4])


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
