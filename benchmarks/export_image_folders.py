"""Export image data sets that Python packages ship inside their wheels to image folders (one subfolder of PNGs
per class), for `data: {source: folder, path: DIR}` and benchmarks/image_folders.py, offline:

- `digits`: scikit-learn's handwritten digits (`sklearn.datasets.load_digits`: 1,797 grey 8 x 8 images, 10 classes
  0/ ... 9/); pixel values 0..16 are scaled to 0..255 (round(v * 255 / 16)); file names are the row numbers.
- `textures`: scikit-image's three natural texture photographs (`skimage.data.brick`, `grass`, `gravel`: 512 x 512
  grey each; needs `pip install -c constraints.txt -e '.[bench]'`), cut into non-overlapping 32 x 32 patches:
  256 per class, 768 in all; file names are the patch's row and column.

    .venv/bin/python benchmarks/export_image_folders.py digits /tmp/digits
    .venv/bin/python benchmarks/export_image_folders.py textures /tmp/textures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

TEXTURES = ("brick", "grass", "gravel")
PATCH = 32


def _save(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # an existing export is kept
        Image.fromarray(img).save(path)


def export_digits(dest: Path) -> int:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for i, (img, label) in enumerate(zip(images, digits.target)):
        _save(dest / str(int(label)) / f"{i:04d}.png", img)
    return len(images)


def export_textures(dest: Path, patch: int = PATCH) -> int:
    from skimage import data

    n = 0
    for name in TEXTURES:
        img = np.asarray(getattr(data, name)())
        if img.ndim != 2 or img.dtype != np.uint8:
            raise ValueError(f"skimage.data.{name}: expected a grey uint8 image, got {img.dtype} {img.shape}")
        for r in range(0, img.shape[0] - patch + 1, patch):
            for c in range(0, img.shape[1] - patch + 1, patch):
                _save(dest / name / f"{r // patch:02d}_{c // patch:02d}.png", img[r : r + patch, c : c + patch])
                n += 1
    return n


EXPORTERS = {"digits": export_digits, "textures": export_textures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=sorted(EXPORTERS))
    parser.add_argument("dest", type=Path, help="folder to write (one subfolder per class)")
    args = parser.parse_args()
    n = EXPORTERS[args.dataset](args.dest)
    print(f"{args.dataset}: {n} images in {args.dest}")


if __name__ == "__main__":
    main()
