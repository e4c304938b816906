"""Bad data: truncated or corrupt IDX/PNG/TIFF/WAV files, images of the wrong size or depth, empty classes,
labels out of range, NaN audio. Each build stops at the data step (exit 1) with a message naming the file,
and leaves no data/ folder, no staging folder and no manifest entry; nothing is cached from a failed read
(teacher logits, compiled C-simulation)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from _rel import TINY, manifest_steps, one_line
from PIL import Image
from typer.testing import CliRunner

from edgekd.cli import app


def _build_data(tmp_path: Path, data: dict, **top) -> tuple[int, str, Path]:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, **top, "data": data}))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", str(cfg), "--out", str(out), "--to", "data"], env={"COLUMNS": "300"})
    return result.exit_code, one_line(result.output), out


def _assert_failed_data_step(code: int, text: str, out: Path, names: Path | str) -> None:
    assert code == 1, text
    assert "build failed at step data" in text and "DataFormatError" in text
    assert str(names) in text
    assert "Traceback" not in text
    assert not (out / "data").exists() and not list(out.glob(".*.staging"))
    assert manifest_steps(out) == []  # nothing recorded, so nothing a re-run would trust
    assert not (out / "cache").exists()


def _png(path: Path, size=(64, 64), mode="L", seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], len(mode))
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode).save(path)
    return path


def _image_folder(root: Path, n: int = 6) -> Path:
    for cls in ("B", "T"):
        for i in range(n):
            _png(root / cls / f"{i}.png", seed=i + (100 if cls == "T" else 0))
    return root


def _folder_data(root: Path) -> dict:
    return {"source": "folder", "path": str(root), "test_fraction": 0.25, "val_fraction": 0.1}


def test_good_image_folder_builds(tmp_path):
    """The control case: the same layout without the fault passes the data step."""
    code, text, out = _build_data(tmp_path, _folder_data(_image_folder(tmp_path / "img")))
    assert code == 0, text
    assert manifest_steps(out) == ["data"]


def test_truncated_png(tmp_path):
    root = _image_folder(tmp_path / "img")
    bad = root / "T" / "3.png"
    bad.write_bytes(bad.read_bytes()[:60])
    code, text, out = _build_data(tmp_path, _folder_data(root))
    _assert_failed_data_step(code, text, out, bad)
    assert "unreadable image" in text


def test_corrupt_tiff(tmp_path):
    root = _image_folder(tmp_path / "img")
    bad = root / "B" / "scan.tif"
    bad.write_bytes(b"II*\x00" + bytes(range(256)) * 3)
    code, text, out = _build_data(tmp_path, _folder_data(root))
    _assert_failed_data_step(code, text, out, bad)


def test_image_of_the_wrong_depth(tmp_path):
    """A 5-plane TIFF stack is not a grayscale or RGB image."""
    import tifffile

    root = _image_folder(tmp_path / "img")
    bad = root / "B" / "stack.tif"
    tifffile.imwrite(bad, np.zeros((32, 32, 5), dtype=np.uint8), photometric="minisblack", planarconfig="contig")
    code, text, out = _build_data(tmp_path, _folder_data(root))
    _assert_failed_data_step(code, text, out, bad)
    assert "expected grayscale or RGB" in text


def test_image_of_the_wrong_size(tmp_path):
    root = _image_folder(tmp_path / "img")
    bad = _png(root / "T" / "tiny.png", size=(4, 4))
    code, text, out = _build_data(tmp_path, _folder_data(root))
    _assert_failed_data_step(code, text, out, bad)
    assert "too small" in text


def test_image_with_non_finite_pixels(tmp_path):
    import tifffile

    root = _image_folder(tmp_path / "img")
    bad = root / "B" / "float.tif"
    arr = np.full((64, 64), 0.5, dtype=np.float32)
    arr[10, 20] = np.nan
    tifffile.imwrite(bad, arr)
    code, text, out = _build_data(tmp_path, _folder_data(root))
    _assert_failed_data_step(code, text, out, bad)
    assert "NaN or inf" in text


def test_empty_class_folder(tmp_path):
    root = _image_folder(tmp_path / "img")
    (root / "T8").mkdir()
    code, text, out = _build_data(tmp_path, _folder_data(root))
    _assert_failed_data_step(code, text, out, root / "T8")
    assert "no PNG or TIFF images in this class folder" in text


def _idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    code = {np.dtype(np.uint8): 0x08}[arr.dtype]
    raw = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def _idx_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 16)):
        _idx(root / f"{split}_images", rng.integers(0, 255, (n, 64, 64), dtype=np.uint8))
        _idx(root / f"{split}_labels", (np.arange(n) % 3).astype(np.uint8))
    return root


def _idx_data(root: Path) -> dict:
    return {"source": "lymphomnist", "path": str(root), "num_classes": 3}


def test_truncated_idx(tmp_path):
    root = _idx_folder(tmp_path / "idx")
    bad = root / "train_images"
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) - 1000])
    code, text, out = _build_data(tmp_path, _idx_data(root))
    _assert_failed_data_step(code, text, out, bad)
    assert f"truncated at byte {len(raw) - 1000}" in text


def test_corrupt_gzipped_idx(tmp_path):
    root = _idx_folder(tmp_path / "idx")
    (root / "test_images").unlink()
    bad = root / "test_images.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    code, text, out = _build_data(tmp_path, _idx_data(root))
    _assert_failed_data_step(code, text, out, bad)


def test_labels_out_of_range(tmp_path):
    root = _idx_folder(tmp_path / "idx")
    labels = (np.arange(16) % 3).astype(np.uint8)
    labels[5] = 7
    bad = _idx(root / "test_labels", labels)
    code, text, out = _build_data(tmp_path, _idx_data(root))
    _assert_failed_data_step(code, text, out, bad)
    assert "label 7 at record 5 is outside {0, 1, 2}" in text


def test_label_count_mismatch(tmp_path):
    root = _idx_folder(tmp_path / "idx")
    bad = _idx(root / "train_labels", (np.arange(39) % 3).astype(np.uint8))
    code, text, out = _build_data(tmp_path, _idx_data(root))
    _assert_failed_data_step(code, text, out, bad)
    assert "has 40 images but" in text


# --- audio (edgekd.data.audio, task regression) ---------------------------------------------------------------

def _wav_folder(root: Path, n: int = 12) -> Path:
    import soundfile as sf

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["file,arousal,dominance,valence"]
    for i in range(n):
        sf.write(root / f"clip{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000, subtype="FLOAT")
        rows.append(f"clip{i}.wav,0.5,0.5,0.5")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def _audio_data(root: Path) -> dict:
    return {"source": "audio_folder", "path": str(root), "test_fraction": 0.25, "val_fraction": 0.1}


def test_truncated_wav(tmp_path):
    root = _wav_folder(tmp_path / "wav")
    bad = root / "clip4.wav"
    bad.write_bytes(bad.read_bytes()[:30])
    code, text, out = _build_data(tmp_path, _audio_data(root), task="regression", student={}, teacher={})
    _assert_failed_data_step(code, text, out, bad)
    assert "cannot decode audio" in text


def test_wav_with_nan_samples(tmp_path):
    import soundfile as sf

    root = _wav_folder(tmp_path / "wav")
    bad = root / "clip7.wav"
    x = np.zeros(16000, dtype=np.float32)
    x[123] = np.nan
    sf.write(bad, x, 16000, subtype="FLOAT")
    code, text, out = _build_data(tmp_path, _audio_data(root), task="regression", student={}, teacher={})
    _assert_failed_data_step(code, text, out, bad)
    assert "non-finite sample (NaN or inf) at frame 123" in text


# --- caches: nothing is kept from a failed computation -----------------------------------------------------------

def test_teacher_logits_are_not_cached_when_non_finite(tmp_path):
    from edgekd.modelcheck import NonFiniteError
    from edgekd.teachers.annotate import annotate_with_teacher

    class DivergedTeacher:
        sha256, num_classes = "e" * 64, 2

        def logits(self, images, batch_size=256):
            out = np.zeros((len(images), 2), dtype=np.float32)
            out[3, 1] = np.nan
            return out

    cache = tmp_path / "teacher_logits"
    with pytest.raises(NonFiniteError, match="NaN/inf logits \\(first at image 3\\); nothing was cached"):
        annotate_with_teacher(DivergedTeacher(), np.zeros((8, 4, 4), np.uint8), cache, "a" * 64)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_teacher_that_fails_mid_read_caches_nothing(tmp_path):
    from edgekd.teachers.annotate import annotate_with_teacher

    class BrokenTeacher:
        sha256, num_classes = "b" * 64, 2

        def logits(self, images, batch_size=256):
            raise OSError("teacher.onnx: read error")

    with pytest.raises(OSError):
        annotate_with_teacher(BrokenTeacher(), np.zeros((8, 4, 4), np.uint8), tmp_path / "c", "a" * 64)
    assert not (tmp_path / "c").exists() or list((tmp_path / "c").iterdir()) == []


def test_failed_csim_compile_leaves_no_cache_entry(tmp_path):
    from _rel import FakeHlsModel

    from edgekd.hls.csim_cache import compile_cached

    cache = tmp_path / "csim"
    with pytest.raises(RuntimeError, match="failed to compile"):
        compile_cached(FakeHlsModel(tmp_path / "p", fail=True), cache)
    assert [p.suffix for p in cache.iterdir()] == [".lock"]  # only the lock file: no half-built library folder
    result = compile_cached(FakeHlsModel(tmp_path / "p"), cache)  # the fixed design compiles from scratch
    assert result["cached"] is False
