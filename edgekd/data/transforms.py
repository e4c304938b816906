"""Image preprocessing shared by teachers and students: uint8 64x64 -> normalised float tensor.

LymphoMNIST normalisation (mean 0.4819, std 0.1484) as in the cell-sorting paper. Resizing uses
bilinear interpolation with antialiasing so a 64 -> 48 student input keeps the fine texture that
separates the classes instead of aliasing it.

Pixel blocks (`student.input_block` k, space-to-depth): a student that reads k x k pixel blocks per stream
item takes the image as (k^2, H/k, W/k), built by `space_to_depth` (torch's pixel_unshuffle). The ONE channel
convention, shared by the student, the exported model's input, the test vectors and the pixel-stream top:

    blocked[dy * k + dx, by, bx] = image[by * k + dy, bx * k + dx]    (grey image, 0 <= dx, dy < k)

so in the channels-last stream item of block (by, bx), value dy * k + dx is the pixel dy rows down and dx
columns right of the block's top-left pixel: the block's pixels in raster order.

Colour (`data.channels` C = 3; images (N, H, W, C) channels-last, as stored): channel c of the model's input is
the image's channel c (R, G, B), every channel normalised with the same mean and std. With k x k blocks the
channels are channel-major (torch's pixel_unshuffle order):

    blocked[c * k^2 + dy * k + dx, by, bx] = image[by * k + dy, bx * k + dx, c]

so a stream item holds the block's R pixels in raster order, then its G pixels, then its B pixels; without
blocks (k = 1) an item is one pixel's C values. C = 1 is the grey convention above.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CELL_MEAN = 0.4819
CELL_STD = 0.1484


def space_to_depth(x: torch.Tensor, block: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C k^2, H/k, W/k): channel c k^2 + dy k + dx holds pixel (by k + dy, bx k + dx) of
    channel c (the module docstring's convention; `torch.nn.functional.pixel_unshuffle`). k = 1: `x` itself."""
    if block == 1:
        return x
    if x.ndim != 4 or x.shape[-1] % block or x.shape[-2] % block:
        raise ValueError(f"space_to_depth: a {tuple(x.shape)} batch does not split into {block}x{block} blocks")
    return F.pixel_unshuffle(x, block)


def depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
    """The inverse of `space_to_depth` (`torch.nn.functional.pixel_shuffle`)."""
    return x if block == 1 else F.pixel_shuffle(x, block)


def to_model_input(images: np.ndarray | torch.Tensor, size: int, block: int = 1) -> torch.Tensor:
    """uint8 images (N, H, W) -> float32 tensor (N, 1, size, size), normalised; colour images (N, H, W, C) ->
    (N, C, size, size). With `block` k > 1 the student's blocked input (N, C k^2, size/k, size/k)
    (`space_to_depth`; the module docstring gives the channel order)."""
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")
    if x.ndim == 4:  # colour, channels-last (N, H, W, C)
        x = x.to(torch.float32).div_(255.0).permute(0, 3, 1, 2).contiguous()
    elif x.ndim == 3:
        x = x.to(torch.float32).div_(255.0).unsqueeze(1)
    else:
        raise ValueError(f"expected images of shape (N, H, W) or (N, H, W, C), got {tuple(x.shape)}")
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return space_to_depth((x - CELL_MEAN) / CELL_STD, block)
