"""Export scikit-learn's handwritten digits (load_digits: 1,797 grey 8 x 8 images, 10 classes, shipped inside the
scikit-learn wheel) to an image folder: one subfolder per class (0/ ... 9/) of PNG files, for
`data: {source: folder, path: DIR}` and benchmarks/image_folders.py, offline.

Pixel values 0..16 are scaled to 0..255 (round(v * 255 / 16)); file names are the data set's row numbers.

    .venv/bin/python benchmarks/export_digits.py /tmp/digits
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def export_digits(dest: Path) -> int:
    """Write the PNGs under `dest`; returns the number of images. An existing complete export is kept."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for i, (img, label) in enumerate(zip(images, digits.target)):
        folder = dest / str(int(label))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:04d}.png"
        if not path.exists():
            Image.fromarray(img).save(path)
    return len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="folder to write (class subfolders 0..9)")
    args = parser.parse_args()
    n = export_digits(args.dest)
    print(f"{n} images in {args.dest} (10 class subfolders of 8x8 PNGs)")


if __name__ == "__main__":
    main()
