"""Image folders of any number of classes, grey or colour (data.num_classes, data.channels), and what reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgekd.config import ConfigError, DataConfig, StudentConfig, TeacherConfig, parse_config
from edgekd.data.cells import CellSplits, load_cell_splits
from edgekd.data.formats import DataFormatError, load_image_folder, read_image
from edgekd.data.transforms import CELL_MEAN, CELL_STD, space_to_depth, to_model_input
from edgekd.data.views import view_images
from edgekd.students.cell_cnn import build_cell_cnn, count_macs, model_input_shape
from edgekd.teachers.resnet import resnet_teacher


def _folder(root: Path, names: list[str], n: int = 5, size=(28, 28), mode: str = "L", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(root / name / f"{i}.png")
    return root


def test_ten_class_folder_takes_its_classes_from_the_subfolders(tmp_path):
    names = [str(d) for d in range(10)]
    root = _folder(tmp_path / "digits", names)
    cfg = DataConfig(source="folder", path=root, test_fraction=0.2, val_fraction=0.1)
    assert cfg.num_classes is None and cfg.channels == 1
    s = load_cell_splits(cfg)
    assert s.class_names == names and s.num_classes == 10 and s.channels == 1
    assert s.x_train.shape[1:] == (28, 28) and s.x_train.dtype == np.uint8  # 28 x 28 images keep their size
    assert np.bincount(s.y_test, minlength=10).tolist() == [1] * 10
    assert s.fine_class_names is None
    same = load_cell_splits(cfg.model_copy(update={"num_classes": 10}))  # stating the count changes nothing
    assert np.array_equal(same.x_train, s.x_train) and np.array_equal(same.y_test, s.y_test)


def test_class_names_are_the_sorted_folder_names(tmp_path):
    root = _folder(tmp_path / "f", ["zebra", "apple", "mango"], n=3)
    (root / ".hidden").mkdir()
    _, labels, names = load_image_folder(root)
    assert names == ["apple", "mango", "zebra"] and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3


def test_cell_folders_keep_the_b_vs_t_merge(tmp_path):
    root = _folder(tmp_path / "cells", ["B", "T4", "T8"], n=10, size=(64, 64))
    default = load_cell_splits(DataConfig(source="folder", path=root))  # as before: B vs T
    assert default.class_names == ["B", "T"] and default.fine_class_names == ["B", "T4", "T8"]
    three = load_cell_splits(DataConfig(source="folder", path=root, num_classes=3))
    assert three.class_names == ["B", "T4", "T8"] and three.fine_class_names is None


def test_colour_folder(tmp_path):
    root = _folder(tmp_path / "rgb", ["a", "b", "c"], n=4, size=(40, 32), mode="RGB")
    Image.fromarray(np.full((32, 32), 90, np.uint8)).save(root / "b" / "grey.png")  # a grey scan among colour
    s = load_cell_splits(DataConfig(source="folder", path=root, channels=3, test_fraction=0.25))
    # stored at the median longer side (40: the 40 x 32 images; the 32 x 32 grey scan is resized to it)
    assert s.channels == 3 and s.x_train.shape[1:] == (40, 40, 3) and s.x_test.shape[1:] == (40, 40, 3)
    grey = read_image(root / "b" / "grey.png", 64, channels=3)
    assert grey.shape == (64, 64, 3) and (grey == 90).all()  # replicated into R = G = B
    red = tmp_path / "red.png"
    Image.fromarray(np.full((16, 16, 3), (200, 10, 0), np.uint8)).save(red)
    assert read_image(red, 16, channels=3)[0, 0].tolist() == [200, 10, 0]  # channel order R, G, B
    assert read_image(red, 16).shape == (16, 16)  # a grey build reads the luminance, as before
    s.save(tmp_path / "s.npz")
    back = CellSplits.load(tmp_path / "s.npz")
    assert back.channels == 3 and np.array_equal(back.x_test, s.x_test)


def test_colour_views_and_model_input(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    for view in range(8):  # rotations and flips act on H and W, never on the channels
        for c in range(3):
            assert np.array_equal(view_images(images, view)[..., c], view_images(images[..., c], view))
    x = to_model_input(images, 8)
    assert x.shape == (2, 3, 8, 8)
    assert torch.allclose(x[:, 1], (torch.as_tensor(images[..., 1]).float() / 255 - CELL_MEAN) / CELL_STD)
    assert torch.equal(to_model_input(images[..., 0], 8), x[:, :1])  # channel 0 alone = the grey path
    b = to_model_input(images, 8, block=2)
    assert b.shape == (2, 12, 4, 4)
    for c in range(3):  # channel-major blocks: value c k^2 + dy k + dx of block (by, bx) is pixel (by k+dy, bx k+dx, c)
        for dy in range(2):
            for dx in range(2):
                assert b[1, c * 4 + dy * 2 + dx, 3, 1] == x[1, c, 6 + dy, 2 + dx]
    assert torch.equal(space_to_depth(x, 2), b)


def test_students_and_teacher_take_colour():
    cfg = StudentConfig(input_size=16, channels=[4], kernel_sizes=[3], input_block=2)
    assert model_input_shape(cfg) == (4, 8, 8) and model_input_shape(cfg, 3) == (12, 8, 8)
    torch.manual_seed(0)
    grey = build_cell_cnn(cfg, 10, quantized=False)
    torch.manual_seed(0)
    same = build_cell_cnn(cfg, 10, quantized=False, in_channels=1)
    assert all(torch.equal(a, b) for a, b in zip(grey.state_dict().values(), same.state_dict().values()))
    rgb = build_cell_cnn(cfg, 10, quantized=True, in_channels=3)
    assert rgb.blocks[0].conv0.in_channels == 12
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(rgb.eval()(x), rgb(space_to_depth(x, 2)))  # the image or its blocks
    with pytest.raises(ValueError, match=r"takes \(N, 3, H, W\) images or \(N, 12, H/2, W/2\) blocks"):
        rgb(torch.randn(2, 1, 16, 16))
    assert count_macs(cfg, 10, 3) - count_macs(cfg, 10) == 6 * 6 * 4 * 8 * 9  # first conv: 8 more input channels
    teacher = resnet_teacher(10, TeacherConfig(width=4), in_channels=3)
    assert teacher(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"num_classes": 10}, "data", "data.source 'synthetic' has the cell classes B/T4/T8: use 3, or 2"),
    ({"source": "lymphomnist", "path": "x", "num_classes": 4}, "data", "use 3, or 2"),
    ({"channels": 3}, "data", "colour images need data.source folder"),
    ({"source": "folder", "path": "x", "channels": 2}, "data.channels", "Input should be 1 or 3"),
    ({"source": "folder", "path": "x", "num_classes": 1}, "data.num_classes", "greater than or equal to 2"),
])
def test_refused_configs_name_the_field(data, field, message):
    with pytest.raises(ConfigError) as err:
        parse_config({"name": "x", "data": data})
    assert field in str(err.value) and message in str(err.value)


def test_refused_folders_say_what_to_do(tmp_path):
    root = _folder(tmp_path / "three", ["x", "y", "z"], n=3)
    with pytest.raises(DataFormatError, match=r"3 class subfolders \['x', 'y', 'z'\] but data.num_classes is 2; "
                                              r"remove data.num_classes .* or set it to 3 \(2 merges T4 and T8"):
        load_cell_splits(DataConfig(source="folder", path=root, num_classes=2))
    one = _folder(tmp_path / "one", ["only"], n=3)
    with pytest.raises(DataFormatError, match="found 1 class subfolders; need at least 2"):
        load_cell_splits(DataConfig(source="folder", path=one))
    (root / "w").mkdir()
    (root / "w" / "notes.txt").write_text("no images")
    with pytest.raises(DataFormatError, match=r"w: no PNG or TIFF images in this class folder \(read: .bmp, .jpeg"):
        load_cell_splits(DataConfig(source="folder", path=root))


def test_jpeg_and_unlabelled_colour(tmp_path):
    root = _folder(tmp_path / "rgb", ["a", "b"], n=4, size=(32, 32), mode="RGB")
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(root / "a" / "photo.jpg")
    extra = _folder(tmp_path / "pool", ["any"], n=3, size=(32, 32), mode="RGB")
    s = load_cell_splits(DataConfig(source="folder", path=root, channels=3, unlabelled=extra, val_fraction=0.0))
    assert np.bincount(s.y_test).sum() + len(s.y_train) == 9 + 3  # the JPEG is read; 3 unlabelled images join
    assert s.x_train.shape[1:] == (32, 32, 3) and (s.y_train < 0).sum() == 3  # the folder's own size
