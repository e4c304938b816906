"""Image preprocessing shared by teachers and students: uint8 64x64 -> normalised float tensor.

LymphoMNIST normalisation (mean 0.4819, std 0.1484) as in the cell-sorting paper. Resizing uses
bilinear interpolation with antialiasing so a 64 -> 48 student input keeps the fine texture that
separates the classes instead of aliasing it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CELL_MEAN = 0.4819
CELL_STD = 0.1484


def to_model_input(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (N, H, W) -> float32 tensor (N, 1, size, size), normalised."""
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W), got {tuple(x.shape)}")
    x = x.to(torch.float32).div_(255.0).unsqueeze(1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x - CELL_MEAN) / CELL_STD
