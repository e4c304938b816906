"""Readers for real image data: IDX files (LymphoMNIST, MNIST format) and image folders (grey or colour).

IDX layout: 2 zero bytes, a dtype code byte, a byte with the number of dimensions, one big-endian
uint32 per dimension, then the data in C order (big-endian for multi-byte types). Files may be
gzip-compressed (detected by the gzip magic bytes, whatever the suffix).
"""

from __future__ import annotations

import gzip
import zlib
import logging
import struct
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgekd.config_data import IMAGE_SIZE, IMAGE_SUFFIXES, MIN_IMAGE_SIDE  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

CELL_CLASSES = ["B", "T4", "T8"]

# IDX dtype codes -> big-endian numpy dtypes
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class DataFormatError(ValueError):
    """A data file that cannot be read; the message names the file, where it broke and what to do."""


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataFormatError(f"{path}: cannot read file ({err.strerror})") from None
    if raw[:2] == _GZIP_MAGIC or path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:  # zlib.error: a damaged deflate stream
            raise DataFormatError(
                f"{path}: corrupt or truncated gzip data ({err}); re-download or re-extract the file"
            ) from None
    return raw


def read_idx(path: Path | str) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a native-endian numpy array of its declared shape."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataFormatError(f"{path}: truncated at byte {len(raw)}; an IDX header needs at least 4 bytes")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES or ndim == 0:
        magic = int.from_bytes(raw[:4], "big")
        raise DataFormatError(
            f"{path}: bad IDX magic 0x{magic:08x} at byte 0 (expected 0x000008NN such as 0x00000803 for "
            f"uint8 images or 0x00000801 for labels); is this an IDX file? check it was not renamed or mangled"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataFormatError(
            f"{path}: truncated at byte {len(raw)} inside the header; expected {header_len} header bytes "
            f"for {ndim} dimensions"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = IDX_DTYPES[code]
    record_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    expected = header_len + record_bytes * shape[0]
    if len(raw) < expected:
        complete = (len(raw) - header_len) // record_bytes if record_bytes else 0
        raise DataFormatError(
            f"{path}: truncated at byte {len(raw)} (record {complete} of {shape[0]}); expected {expected} bytes; "
            "re-download the file"
        )
    if len(raw) > expected:
        raise DataFormatError(
            f"{path}: {len(raw) - expected} unexpected bytes after byte {expected} (the header declares shape "
            f"{shape}); the file is corrupt or not IDX"
        )
    data = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)), offset=header_len)
    return data.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _find_idx(folder: Path, stem: str) -> Path:
    """Find `stem` with any common IDX suffix: train_images, train_images.gz, train-images-idx3-ubyte(.gz)."""
    candidates = []
    for base in (stem, stem.replace("_", "-")):
        for mid in ("", "-idx1-ubyte", "-idx3-ubyte", ".idx", ".idx1-ubyte", ".idx3-ubyte"):
            for gz in ("", ".gz"):
                candidates.append(folder / f"{base}{mid}{gz}")
    for c in candidates:
        if c.is_file():
            return c
    raise DataFormatError(
        f"{folder}: no '{stem}' IDX file found (looked for {stem}, {stem}.gz, "
        f"{stem.replace('_', '-')}-idx3-ubyte and similar); point data.path at the LymphoMNIST folder"
    )


def load_lymphomnist(folder: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) from a LymphoMNIST IDX folder; labels B=0, T4=1, T8=2."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: not a folder; data.path must be the LymphoMNIST IDX folder")
    out = []
    for split in ("train", "test"):
        img_path, lab_path = _find_idx(folder, f"{split}_images"), _find_idx(folder, f"{split}_labels")
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataFormatError(
                f"{img_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}"
            )
        if labels.ndim != 1:
            raise DataFormatError(f"{lab_path}: expected a 1-D label vector, got shape {labels.shape}")
        if len(images) != len(labels):
            raise DataFormatError(
                f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels; "
                "the pair must come from the same release"
            )
        bad = np.flatnonzero((labels < 0) | (labels > 2))
        if bad.size:
            raise DataFormatError(
                f"{lab_path}: label {int(labels[bad[0]])} at record {int(bad[0])} is outside {{0, 1, 2}} (B, T4, T8)"
            )
        out += [images, labels.astype(np.int64)]
    log.info("LymphoMNIST from %s: %d train, %d test images", folder, len(out[0]), len(out[2]))
    return out[0], out[1], out[2], out[3]


_GREY_MODES = ("L", "I;16", "I", "F")


def read_image(path: Path, size: int = IMAGE_SIZE, channels: int = 1) -> np.ndarray:
    """One PNG/TIFF/JPEG/BMP -> uint8 (size, size) grey (`channels` 1) or (size, size, 3) RGB (`channels` 3).

    Grey: colour files are converted to luminance (0.299 R + 0.587 G + 0.114 B). Colour: RGB as stored (an alpha
    plane is dropped; palette and CMYK files are converted to RGB by Pillow) and grey files replicated into
    R = G = B, so a colour data set with a few grey scans still loads. Other bit depths are rescaled to 0..255;
    any size from 8 pixels up to a 2:1 aspect ratio is resized (bilinear) to size x size.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    try:
        if path.suffix.lower() in {".tif", ".tiff"}:
            import tifffile

            arr = np.asarray(tifffile.imread(path))
        else:
            with Image.open(path) as im:
                im.load()
                if channels == 1:
                    arr = np.asarray(im.convert("L") if im.mode not in _GREY_MODES else im)
                else:
                    arr = np.asarray(im.convert("RGB") if im.mode not in (*_GREY_MODES, "RGB") else im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise DataFormatError(f"{path}: unreadable image ({err}); remove or replace the file") from None
    if arr.ndim == 3:  # colour (H, W, C): luminance, or its RGB planes
        if arr.shape[-1] in (3, 4):
            if channels == 1:
                arr = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
            else:
                arr = arr[..., :3]
        else:
            raise DataFormatError(f"{path}: unexpected image shape {arr.shape}; expected grayscale or RGB")
    if arr.ndim != 2 and not (channels == 3 and arr.ndim == 3):
        raise DataFormatError(f"{path}: unexpected image shape {arr.shape}; expected a 2-D image")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE or max(h, w) > 2 * min(h, w):
        raise DataFormatError(
            f"{path}: image of {w}x{h} pixels is too small or too elongated to resize to {size}x{size} (need sides "
            f">= {MIN_IMAGE_SIDE} px and at most 2:1); crop the cells to square images or remove the file"
        )
    if arr.dtype.kind not in "uib" and not np.isfinite(arr).all():
        raise DataFormatError(f"{path}: NaN or inf pixel values ({arr.dtype}); re-export the image")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if np.issubdtype(np.asarray(arr).dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        elif arr.max(initial=0) > 255:
            arr = arr * (255.0 / arr.max())
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.shape[:2] != (size, size):
        arr = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((size, size), Image.BILINEAR))
    if channels == 3 and arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return arr


def load_image_folder(
    folder: Path | str, size: int = IMAGE_SIZE, channels: int = 1
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images from one subfolder per class -> (uint8 images, int64 labels, class names).

    Images: (N, size, size) grey, or (N, size, size, 3) RGB with `channels` 3 (`read_image`). Classes are the
    sorted subfolder names (any number from 2); if they are exactly B, T4 and T8 they map to 0, 1, 2 (the
    LymphoMNIST order). Files are read in sorted order so the result is deterministic.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: not a folder; data.path must hold one subfolder per class")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if set(classes) == set(CELL_CLASSES):
        classes = list(CELL_CLASSES)
    if len(classes) < 2:
        raise DataFormatError(
            f"{folder}: found {len(classes)} class subfolders; need at least 2 (one subfolder of images per class, "
            "named after the class, e.g. B/, T4/, T8/ or 0/ ... 9/)")
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise DataFormatError(
                f"{folder / name}: no PNG or TIFF images in this class folder (read: "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}); add images or remove the folder")
        for f in files:
            images.append(read_image(f, size, channels))
            labels.append(label)
    log.info("image folder %s: %d images in %d classes %s", folder, len(images), len(classes), classes)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes
