import gzip
import struct

import numpy as np
import pytest
import tifffile
from PIL import Image

from edgekd.data.formats import DataFormatError, load_image_folder, load_lymphomnist, read_idx


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    be = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(be).tobytes()


def test_read_idx_raw_and_gzip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 64, 64), dtype=np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], np.uint8)
    (tmp_path / "imgs").write_bytes(idx_bytes(images))
    (tmp_path / "labs.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    (tmp_path / "labs_gz_no_suffix").write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(tmp_path / "imgs"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "labs.gz"), labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "labs_gz_no_suffix"), labels)
    assert read_idx(tmp_path / "imgs").dtype == np.uint8


@pytest.mark.parametrize("code,dtype", [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_other_dtypes(tmp_path, code, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    (tmp_path / "a").write_bytes(idx_bytes(arr, code))
    out = read_idx(tmp_path / "a")
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_truncated_names_file_byte_and_record(tmp_path):
    images = np.zeros((10, 64, 64), np.uint8)
    raw = idx_bytes(images)
    assert len(raw) == 16 + 40960
    path = tmp_path / "train_images"
    path.write_bytes(raw[: 16 + 4 * 4096 + 100])  # 4 whole records and a bit
    with pytest.raises(DataFormatError) as err:
        read_idx(path)
    msg = str(err.value)
    assert "train_images" in msg
    assert "truncated at byte 16500" in msg
    assert "record 4 of 10" in msg
    assert "expected 40976 bytes" in msg


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((10, 8, 8), np.uint8)))[:30])
    with pytest.raises(DataFormatError, match=r"x\.gz.*gzip"):
        read_idx(path)


def test_bad_magic(tmp_path):
    path = tmp_path / "not_idx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DataFormatError, match=r"not_idx: bad IDX magic 0x89504e47 at byte 0"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros((2, 4, 4), np.uint8)) + b"xx")
    with pytest.raises(DataFormatError, match=r"long: 2 unexpected bytes after byte 48"):
        read_idx(path)


def write_lymphomnist(folder, n_train=12, n_test=6, gz=False, labels_train=None):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    parts = {
        "train_images": rng.integers(0, 256, (n_train, 64, 64), dtype=np.uint8),
        "train_labels": labels_train if labels_train is not None else (np.arange(n_train) % 3).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 64, 64), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 3).astype(np.uint8),
    }
    for name, arr in parts.items():
        data = idx_bytes(arr)
        if gz:
            (folder / f"{name.replace('_', '-')}-idx{arr.ndim if arr.ndim == 3 else 1}-ubyte.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return parts


@pytest.mark.parametrize("gz", [False, True])
def test_load_lymphomnist(tmp_path, gz):
    parts = write_lymphomnist(tmp_path / "lm", gz=gz)
    x_tr, y_tr, x_te, y_te = load_lymphomnist(tmp_path / "lm")
    np.testing.assert_array_equal(x_tr, parts["train_images"])
    np.testing.assert_array_equal(y_te, parts["test_labels"])
    assert y_tr.dtype == np.int64 and x_tr.shape == (12, 64, 64) and x_te.shape == (6, 64, 64)


def test_lymphomnist_count_mismatch_and_bad_label(tmp_path):
    write_lymphomnist(tmp_path / "a", labels_train=np.zeros(11, np.uint8))
    with pytest.raises(DataFormatError, match="12 images but .*train_labels has 11 labels"):
        load_lymphomnist(tmp_path / "a")
    bad = (np.arange(12) % 3).astype(np.uint8)
    bad[7] = 5
    write_lymphomnist(tmp_path / "b", labels_train=bad)
    with pytest.raises(DataFormatError, match=r"label 5 at record 7"):
        load_lymphomnist(tmp_path / "b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no 'train_images' IDX file"):
        load_lymphomnist(tmp_path / "empty")


def test_image_folder_png_and_tiff(tmp_path):
    root = tmp_path / "cells"
    for name in ("T8", "B", "T4"):
        (root / name).mkdir(parents=True)
    Image.fromarray(np.full((64, 64), 10, np.uint8)).save(root / "B" / "a.png")
    Image.fromarray(np.full((32, 32, 3), (200, 0, 0), np.uint8)).save(root / "B" / "b.png")  # RGB, resized
    tifffile.imwrite(root / "T4" / "c.tif", np.full((64, 64), 1000, np.uint16) * np.arange(64, dtype=np.uint16)[None] // 63)
    tifffile.imwrite(root / "T8" / "d.tiff", np.full((80, 80), 77, np.uint8))
    (root / "T8" / "notes.txt").write_text("ignored")
    images, labels, names = load_image_folder(root)
    assert names == ["B", "T4", "T8"]  # the cell order, not alphabetical by accident only
    assert images.shape == (4, 64, 64) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 1, 2]
    assert images[0].max() == 10 and images[0].min() == 10
    assert abs(int(images[1].mean()) - round(0.299 * 200)) <= 1  # luminance of pure red
    assert images[2, 0, 0] == 0 and images[2, 0, -1] == 255  # 16-bit rescaled to 0..255
    assert images[3].min() == 77 and images[3].max() == 77


def test_image_folder_other_class_names(tmp_path):
    for name in ("healthy", "diseased"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / name / "x.png")
    _, labels, names = load_image_folder(tmp_path)
    assert names == ["diseased", "healthy"] and labels.tolist() == [0, 1]


def test_image_folder_corrupt_png(tmp_path):
    for name in ("B", "T4", "T8"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / name / "ok.png")
    bad = tmp_path / "T4" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataFormatError, match=r"broken\.png: unreadable image"):
        load_image_folder(tmp_path)
