"""Does a board's interface fit a model? Checked before a board project is generated, for every task.

AXI-stream (DMA) and XRT-kernel boards take any stream of fixed-point values. The frame grabber's pixel stream
(`interface: pixel_stream`) takes images and answers with a sort decision from class scores, so it needs:

- a classifier (two or more class scores: the decision word carries argmax, margin and trigger);
- an image input (N, C k^2, H/k, W/k) (NCHW, as the exported model states it; k = `student.input_block`,
  1 for a bring-your-own model) of C = 1 (grey: one value per pixel) or C = 3 channels (packed colour: one
  pixel slot of a beat carries its C values, channel c in value slot p C + c of the beat, see
  firmware_templates/top/edgekd_top.h.j2).

`pixel_channels` gives C from such a shape; `check_interface` refuses what does not fit, naming the board, the
model's input and what to choose instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgekd.hw import Board
from edgekd.project.generate import ProjectError

__all__ = ["PIXEL_STREAM_CHANNELS", "check_interface", "pixel_channels"]

PIXEL_STREAM_CHANNELS = (1, 3)  # grey, packed colour


def pixel_channels(input_shape: Sequence[int], input_block: int = 1) -> int | None:
    """Image channels C of an NCHW model input (N, C k^2, H/k, W/k), or None when it is not such an image."""
    shape = [int(d) for d in input_shape]
    k2 = int(input_block) ** 2
    if len(shape) != 4 or shape[1] < 1 or shape[1] % k2:
        return None
    return shape[1] // k2


def check_interface(board: Board, input_shape: Sequence[int], classifier: bool, *, input_block: int = 1) -> None:
    """Raise ProjectError when `board`'s interface cannot carry a model of this input (NCHW `input_shape`, the
    exported model's, batch first) and kind (`classifier`: two or more class scores out).

    `input_block` k: the student reads k x k pixel blocks (export.json `input_block`), so its input has C k^2
    channels for a C-channel image."""
    if board.interface != "pixel_stream":
        return
    shape = [int(d) for d in input_shape]
    channels = pixel_channels(shape, input_block)
    if classifier and channels in PIXEL_STREAM_CHANNELS:
        return
    if not classifier:
        why = "it is not a classifier (the grabber's sort decision needs two or more class scores)"
    elif channels is None:
        why = (f"its input {shape} is not an image (N, C, H, W)" if input_block == 1 else
               f"its input {shape} is not a {input_block}x{input_block}-blocked image (N, C*{input_block * input_block}, "
               f"H/{input_block}, W/{input_block})")
    else:
        why = (f"its input {shape} has {channels} image channels; the pixel stream carries 1 (grey) or 3 "
               "(packed colour)")
    raise ProjectError(
        f"board {board.name} has a pixel_stream interface (frame grabber: grey or packed-colour images in, a sort "
        f"trigger out), which does not fit this model: {why}; choose an AXI-stream board "
        "(hls.board: pynq-z2, zcu104, zcu102) or alveo-u250 (XRT kernel)")
