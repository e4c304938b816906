"""Input sizes from the data: an image folder's images keep their own size when it is small.

The cell sources are 64 x 64 crops: the teacher reads them at 64 and the student at 48 (the paper's). An image
folder is stored at its images' own side (the median of the longer sides, at most 64: larger images are
reduced to 64, smaller ones are never upsampled on disk), and unless the config says otherwise the teacher reads
that side and the student too, or the smallest side its layers take when that is larger (an 8 x 8 image and the
default two 3 x 3 valid convolutions with 2 x 2 pools need 10 x 10). Upsampling an 8 x 8 digit to 48 x 48 adds
no information and costs the student 1.34M MACs per image instead of about 19K.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgekd.data.formats import IMAGE_SIZE, IMAGE_SUFFIXES, MIN_IMAGE_SIDE

log = logging.getLogger(__name__)

CELL_TEACHER_SIZE = 64
CELL_STUDENT_SIZE = 48


def _image_side(path: Path) -> int | None:
    """The longer side of one image file, from its header; None when it cannot be read (the data step says why)."""
    try:
        with Image.open(path) as im:
            return max(im.size)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        pass
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            shape = tif.pages[0].shape
            return max(shape[:2])
    except Exception:  # noqa: BLE001 - any unreadable file: the data step reports it by name
        return None


def folder_image_side(folder: Path | str) -> int | None:
    """The side an image folder is stored at: the median longer side of its images, at most 64 (and at least 8).
    None when the folder holds no readable image (the data step then names the problem)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    sides = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
                side = _image_side(f)
                if side is not None:
                    sides.append(side)
    if not sides:
        return None
    return int(min(IMAGE_SIZE, max(MIN_IMAGE_SIDE, int(np.median(sides)))))


def smallest_student_side(student, at_least: int) -> int:
    """The smallest input side from `at_least` up that the student's layers take (a multiple of its input block);
    `at_least` itself for a student that is not a cell_cnn."""
    block = student.input_block
    side = -(-at_least // block) * block
    if student.name != "cell_cnn" or student.qonnx is not None:
        return side
    from edgekd.students.cell_cnn import _feature_shapes

    for _ in range(256):
        try:
            _feature_shapes(student.model_copy(update={"input_size": side}))
            return side
        except ValueError:
            side += block
    return side  # no side fits: building the student names the layer that does not


def resolve_input_sizes(cfg) -> None:
    """Fill `teacher.input_size` and `student.input_size` when the config leaves them unset (BuildConfig)."""
    teacher, student = cfg.teacher, cfg.student
    if teacher.input_size is not None and student.input_size is not None:
        return
    if cfg.data.source == "folder":
        path = cfg.data.path
        side = folder_image_side(path) if path is not None and path.is_absolute() else None
        if side is None:
            return  # an unreadable folder: resolved again once the path is (parse_config), else the data step fails
        t_side, s_side = side, smallest_student_side(student, side)
        log.info("image folder %s: %d px images; teacher input %d, student input %d", path, side, t_side, s_side)
    else:
        t_side, s_side = CELL_TEACHER_SIZE, CELL_STUDENT_SIZE
    if teacher.input_size is None:
        teacher.__dict__["input_size"] = t_side
    if student.input_size is None:
        student.__dict__["input_size"] = s_side
