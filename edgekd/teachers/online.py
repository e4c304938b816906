"""The teacher evaluated online, on exactly the input the student trains on (function matching).

Cached annotations (edgekd.teachers.annotate) cover the 8 symmetric views of every image; a mixed-up
image exists only for one batch, so function matching (edgekd.distill.methods.FunctionMatchingKD) runs the
teacher during training instead. `inputs(idx)` gives the teacher's preprocessed inputs (its own resolution)
of training images `idx`; the trainer applies the student's view and mixing to them, then calls the
teacher. Normalisation and bilinear resizing are affine and linear, so mixing at the teacher's resolution
gives the teacher the same image the student sees at its own.
"""

from __future__ import annotations

import numpy as np
import torch

from edgekd.data.transforms import to_model_input
from edgekd.teachers.runner import TeacherRunner


class OnlineTeacher:
    """A teacher runner over the uint8 training images (N, H, W); logits as a float32 tensor, no gradient."""

    def __init__(self, runner: TeacherRunner, images_uint8: np.ndarray) -> None:
        self.runner = runner
        self.images = np.asarray(images_uint8)
        self.calls = 0

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """The teacher's preprocessed inputs (B, 1, S, S) of training images `idx`."""
        return to_model_input(self.images[np.asarray(idx)], self.runner.input_size)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.as_tensor(np.asarray(self.runner._run(x), dtype=np.float32))
