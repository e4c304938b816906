"""Does a board's interface fit a model? Checked before a board project is generated, for every task.

AXI-stream (DMA) and XRT-kernel boards take any stream of fixed-point values. The frame grabber's pixel stream
(`interface: pixel_stream`) takes images and answers with a sort decision from class scores, so it needs:

- a classifier (two or more class scores: the decision word carries argmax, margin and trigger);
- an image input (N, C k^2, H/k, W/k) (NCHW, as the exported model states it; k = `student.input_block`,
  1 for a bring-your-own model) of C = 1 (grey: one value per pixel) or C = 3 channels (packed colour: one
  pixel slot of a beat carries its C values, channel c in value slot p C + c of the beat, see
  firmware_templates/top/edgekd_top.h.j2).

`pixel_channels` gives C from such a shape; `check_interface` refuses what does not fit, naming the board, the
model's input and what to choose instead. `frame_geometry` is the pixel stream's side of a generated top (lines,
pixels per line, beats), from the network's input as the test vectors hold it (channels-last for the students).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edgekd.errors import ProjectError
from edgekd.hw import Board

__all__ = ["PIXEL_STREAM_CHANNELS", "FrameGeometry", "check_interface", "frame_geometry", "packing_stages",
           "pixel_channels", "pixel_channels_of_input"]

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


def pixel_channels_of_input(shape: Sequence[int], layout: str, block: int, interface: str) -> int:
    """Channels C of the image behind a network input of `shape` (N, ...) in `layout`: a channels-last input
    (N, H/k, W/k, C k^2) of a pixel-stream top or of a blocked student holds C-channel pixels (packed colour on the
    pixel stream when C > 1); 1 for every other input. A pixel stream cannot feed a multi-channel NCHW input
    (pixels travel with their channels together): refused."""
    shape = tuple(int(d) for d in shape)
    if interface == "pixel_stream" and layout != "NHWC" and len(shape) == 4 and shape[1] > 1:
        raise ProjectError(
            f"a pixel stream sends pixels with their channels together, but this network reads its {shape[1]}-channel "
            f"input channel by channel ({layout}); convert it channels-last or choose an AXI-stream board")
    if layout != "NHWC" or len(shape) != 4 or shape[3] % (block * block):
        return 1
    if interface != "pixel_stream" and block == 1:
        return 1  # a stream of values: no pixels to pack
    return max(1, shape[3] // (block * block))


@dataclass(frozen=True)
class FrameGeometry:
    """A region of interest on the pixel stream: `rows` lines of `row_pixels` pixels of `channels` values, sent
    `pixels_per_clock` pixels per beat (`n_beats` beats); the top hands the network `n_groups` groups."""

    rows: int
    row_values: int
    row_pixels: int
    channels: int
    pixels_per_clock: int
    n_beats: int
    n_groups: int

    def frame(self) -> dict[str, int]:
        """The templates' `frame`: height, values and pixels per line, beats per line (TLAST on the last)."""
        return {"height": self.rows, "row_values": self.row_values, "row_pixels": self.row_pixels,
                "beats_per_line": self.row_pixels // self.pixels_per_clock}


def frame_geometry(board: Board, shape: Sequence[int], layout: str, block: int, in_word: int,
                   channels: int = 1) -> FrameGeometry:
    """Lines, pixels per line and beats of the image behind a network input of `shape` (N, ...) in `layout`, read
    `in_word` values per stream word, with `block` k x k pixel blocks per item and `channels` values per pixel
    (`pixel_channels_of_input`). Raises ProjectError when the input is not the blocked image the top packs or the
    board's pixels_per_clock does not split a line into whole beats (of whole blocks)."""
    shape = tuple(int(d) for d in shape)
    n_in = math.prod(shape[1:])
    if block > 1:
        # the student reads k x k pixel blocks (export.json input_block): the network's input is the blocked
        # image (N, H/k, W/k, C k^2); the grabber still sends the H x W image, which the top packs into blocks
        per = block * block * channels
        if layout != "NHWC" or len(shape) != 4 or shape[3] != per or in_word != per:
            raise ProjectError(
                f"export.json input_block {block}: expected a channels-last (N, H/{block}, W/{block}, {per}) "
                f"network input read one block per stream word, got {layout} {shape} ({in_word} per word)")
        rows, row_values = shape[1] * block, shape[2] * block * channels
    elif channels > 1:
        # packed colour, one pixel per stream item: the network's input is (N, H, W, C) read one pixel per word
        if in_word != channels:
            raise ProjectError(f"a {channels}-channel image on the pixel stream needs the network to read one pixel "
                               f"({channels} values) per stream word, got {in_word} per word")
        rows, row_values = shape[1], shape[2] * channels
    elif len(shape) == 4:
        rows, row_values = (shape[1], shape[2] * shape[3]) if layout == "NHWC" else (shape[2], shape[3])
        rows *= 1 if layout == "NHWC" else shape[1]
    else:
        rows, row_values = 1, n_in
    row_pixels = row_values // channels
    ppc = board.pixels_per_clock if board.interface == "pixel_stream" else 1
    if row_pixels % ppc or (block > 1 and ppc % block and block % ppc):
        raise ProjectError(
            f"board {board.name}: pixels_per_clock {ppc} does not split a line of {row_pixels} "
            f"{'values' if channels == 1 else 'pixels'} into whole beats"
            + (f" of whole {block}x{block} blocks" if block > 1 else "")
            + "; use a pixels_per_clock that divides the line (and is a multiple or divisor of student.input_block)")
    n_beats = rows * row_pixels // ppc
    group_items = max(ppc // block, 1) if block > 1 else 1
    n_groups = n_in // (group_items * block * block * channels) if block > 1 else n_beats
    return FrameGeometry(int(rows), int(row_values), int(row_pixels), int(channels), int(ppc), int(n_beats),
                         int(n_groups))


def packing_stages(pixels_per_clock: int, input_block: int = 1, channels: int = 1) -> int:
    """Pipeline stages of the pixel-stream top's packing: pack_pixels (1) at one grey pixel per clock without
    blocks, read_beats + write_items (2) otherwise (several pixels per beat, k x k blocks or packed colour)."""
    return 1 if int(pixels_per_clock) == 1 and int(input_block) == 1 and int(channels) == 1 else 2
