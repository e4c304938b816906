"""What the config knows of images before any is read: the names of the label-preserving views, and input sizes
from the data (an image folder's images keep their own size when it is small).

Kept apart from edgekd.data and edgekd.students (which import the config) so the config can resolve its defaults
without an import circle; edgekd.data.views and edgekd.data.formats re-export the names.

Views (`data.augment`, edgekd.data.views): view v (0..7) rotates by 90 * (v // 2) degrees, then mirrors left-right if
v is odd; `dihedral` is all 8, `flips` the identity and the left-right mirror, `none` the identity.

Sizes: the cell sources are 64 x 64 crops: the teacher reads them at 64 and the student at 48 (the paper's). An image
folder is stored at its images' own side (the median of the longer sides, at most 64: larger images are reduced to
64, smaller ones are never upsampled on disk), and unless the config says otherwise the teacher reads that side and
the student too, or the smallest side its layers take when that is larger (an 8 x 8 image and the default two 3 x 3
valid convolutions with 2 x 2 pools need 10 x 10). Upsampling an 8 x 8 digit to 48 x 48 adds no information and
costs the student 1.34M MACs per image instead of about 19K.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SIZE = 64
MIN_IMAGE_SIDE = 8  # smaller crops hold no cell texture; resizing them up only invents pixels
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}

N_VIEWS = 8
VIEW_NAMES = ("identity", "flip_lr", "rot90", "antitranspose", "rot180", "flip_ud", "rot270", "transpose")
AUGMENT_SETS: dict[str, tuple[int, ...]] = {
    "dihedral": tuple(range(N_VIEWS)),
    "flips": (0, 1),
    "none": (0,),
}


def views_of(augment: str | Sequence[str]) -> tuple[int, ...]:
    """The view numbers of `data.augment`: a set's name (`dihedral`, `flips`, `none`) or a list of view names.
    The identity is always a view (the image as it is); the result is sorted, identity first."""
    if isinstance(augment, str):
        if augment not in AUGMENT_SETS:
            raise ValueError(f"unknown augmentation '{augment}'; use one of {', '.join(AUGMENT_SETS)} or a list of "
                             f"views from {', '.join(VIEW_NAMES)}")
        return AUGMENT_SETS[augment]
    unknown = [name for name in augment if name not in VIEW_NAMES]
    if unknown:
        raise ValueError(f"unknown view(s) {unknown}; the views are {', '.join(VIEW_NAMES)}")
    return tuple(sorted({0, *(VIEW_NAMES.index(name) for name in augment)}))


log = logging.getLogger(__name__)

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


def _cell_cnn_fits(student, side: int) -> bool:
    """Whether cell_cnn's valid convolutions and pools leave at least one pixel at input `side` (the arithmetic of
    edgekd.students.cell_cnn._feature_shapes, which names the failing layer when a configured size does not fit)."""
    h = side // student.input_block
    for k in student.kernel_sizes:
        h = h - k + 1
        if h < 1:
            return False
        h //= student.pool
        if h < 1:
            return False
    return True


def smallest_student_side(student, at_least: int) -> int:
    """The smallest input side from `at_least` up that the student's layers take (a multiple of its input block);
    `at_least` itself (rounded up to the block) for a student that is not a cell_cnn."""
    block = student.input_block
    side = -(-at_least // block) * block
    if student.name != "cell_cnn" or student.qonnx is not None:
        return side
    for _ in range(256):
        if _cell_cnn_fits(student, side):
            return side
        side += block
    return -(-at_least // block) * block  # no side fits: building the student names the layer that does not


def resolve_input_sizes(cfg) -> None:
    """An image folder's `teacher.input_size` and `student.input_size` from its images, when the config leaves them
    unset (BuildConfig; the cell sources keep the fields' defaults, 64 and 48)."""
    teacher, student = cfg.teacher, cfg.student
    unset_t, unset_s = "input_size" not in teacher.model_fields_set, "input_size" not in student.model_fields_set
    if cfg.data.source != "folder" or not (unset_t or unset_s):
        return
    path = cfg.data.path
    side = folder_image_side(path) if path is not None and path.is_absolute() else None
    if side is None:
        return  # a relative or unreadable folder: resolved again once the path is (parse_config), else the data step fails
    if unset_t:
        teacher.__dict__["input_size"] = side
    if unset_s:
        student.__dict__["input_size"] = smallest_student_side(student, side)
    log.info("image folder %s: %d px images; teacher input %d, student input %d", path, side,
             teacher.input_size, student.input_size)
