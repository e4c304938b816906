import numpy as np
import pytest
import torch

from edgekd.config import TeacherConfig
from edgekd.registry import TEACHERS
from edgekd.teachers.annotate import annotate_with_teacher, annotation_recipe, cache_path
from edgekd.teachers.resnet import ResNetTeacher
from edgekd.teachers.runner import (
    OnnxTeacherRunner,
    TeacherLoadError,
    TorchScriptTeacherRunner,
    TorchTeacherRunner,
    load_teacher,
)
from edgekd.teachers.train import train_teacher
from float_tolerance import assert_float32_close


def _path_reduction(model: torch.nn.Module, size: int) -> int:
    """Terms summed on the way to one logit, layer by layer: conv fan-ins, pooled positions, the head's fan-in."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    fan_in = sum(m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1] for m in convs)
    return fan_in + size * size + model.head.in_features  # size^2 bounds the positions the average pool sums


def make_model(num_classes=3, width=8, seed=0) -> ResNetTeacher:
    torch.manual_seed(seed)
    m = ResNetTeacher(num_classes, width=width)
    # non-trivial BN statistics and affine weights so eval-mode paths are really exercised
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
    return m.eval()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (10, 64, 64), dtype=np.uint8)


def test_resnet_size_and_output():
    m = ResNetTeacher(3)  # default width 32
    n = sum(p.numel() for p in m.parameters())
    assert n >= 500_000, n
    out = m.eval()(torch.zeros(2, 1, 64, 64))
    assert out.shape == (2, 3)
    factory = TEACHERS.get("resnet")
    assert isinstance(factory(2, TeacherConfig(width=8)), ResNetTeacher)


def test_train_teacher_learns_and_is_deterministic():
    rng = np.random.default_rng(0)
    y = np.arange(128) % 2
    x = np.where(y[:, None, None] == 1, 170, 80).astype(np.uint8) + rng.integers(0, 20, (128, 32, 32), dtype=np.uint8)
    cfg = TeacherConfig(width=4, input_size=32, epochs=4, batch_size=16, lr=5e-3)
    runs = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: extra threads only spin, and crawl on a busy machine
    try:
        for _ in range(2):
            torch.manual_seed(0)  # the initial weights; train_teacher seeds shuffling and augmentation
            runs.append(train_teacher(ResNetTeacher(2, width=4), x, y, x[:32], y[:32], cfg, seed=1, show_progress=False))
    finally:
        torch.set_num_threads(threads)
    h1, h2 = runs
    assert h1["train_loss"] == h2["train_loss"]
    assert len(h1["val_accuracy"]) == 4 and h1["val_accuracy"][-1] == 1.0
    assert h1["train_loss"][-1] < 0.5 * h1["train_loss"][0]


def test_checkpoint_roundtrip(tmp_path, images):
    model = make_model()
    path = tmp_path / "teacher.pt"
    torch.save(model.state_dict(), path)
    cfg = TeacherConfig(source="checkpoint", path=path, width=8)
    loaded = load_teacher(cfg, num_classes=3)
    direct = TorchTeacherRunner(model, 64)
    np.testing.assert_array_equal(loaded.logits(images), direct.logits(images))
    assert loaded.num_params == direct.num_params
    assert len(loaded.sha256) == 64 and loaded.describe()["num_classes"] == 3


def test_checkpoint_mismatch_names_file_and_key(tmp_path):
    path = tmp_path / "wide.pt"
    torch.save(make_model(width=16).state_dict(), path)
    with pytest.raises(TeacherLoadError, match=r"wide\.pt: key 'stem\.0\.weight' has shape \(8, 1, 3, 3\)"):
        load_teacher(TeacherConfig(source="checkpoint", path=path, width=8), num_classes=3)
    state = make_model().state_dict()
    del state["head.bias"]
    torch.save(state, path)
    with pytest.raises(TeacherLoadError, match=r"wide\.pt: missing key 'head\.bias'"):
        load_teacher(TeacherConfig(source="checkpoint", path=path, width=8), num_classes=3)


def test_corrupt_files_named(tmp_path):
    bad = tmp_path / "junk.bin"
    bad.write_bytes(b"\x00garbage" * 20)
    for source in ("checkpoint", "torchscript", "onnx"):
        with pytest.raises(TeacherLoadError, match=r"junk\.bin"):
            load_teacher(TeacherConfig(source=source, path=bad, width=8), num_classes=3)


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
def test_torchscript_and_onnx_match_torch(tmp_path, images):
    model = make_model()
    ref = TorchTeacherRunner(model, 64).logits(images)
    ts_path = tmp_path / "t.ts"
    torch.jit.trace(model, torch.zeros(1, 1, 64, 64)).save(str(ts_path))
    onnx_path = tmp_path / "t.onnx"
    torch.onnx.export(
        model, (torch.zeros(1, 1, 64, 64),), str(onnx_path), dynamo=False,
        input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
    )
    ts = load_teacher(TeacherConfig(source="torchscript", path=ts_path), num_classes=3)
    ox = load_teacher(TeacherConfig(source="onnx", path=onnx_path), num_classes=3)
    assert isinstance(ts, TorchScriptTeacherRunner) and isinstance(ox, OnnxTeacherRunner)
    assert np.abs(ref).max() > 0.1  # logits are not trivially zero
    # other runtimes and batch sizes sum in another order: bounded by every sum on the path to a logit
    # (the convolutions' and the head's fan-in, the pooled positions); 1.5e-7 measured on an AVX2 EPYC
    reduction = _path_reduction(model, 64)
    assert_float32_close(ts.logits(images, batch_size=4), ref, reduction)
    assert_float32_close(ox.logits(images, batch_size=3), ref, reduction)
    assert ox.logits(images).dtype == np.float32
    fixed_path = tmp_path / "fixed_batch.onnx"  # no dynamic axes: batch is exactly 1
    torch.onnx.export(model, (torch.zeros(1, 1, 64, 64),), str(fixed_path), dynamo=False)
    assert_float32_close(OnnxTeacherRunner(fixed_path, 64, 3).logits(images), ref, reduction)


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
def test_onnx_wrong_signature(tmp_path):
    model = make_model()
    path = tmp_path / "small_in.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 32, 32),), str(path), dynamo=False)
    with pytest.raises(TeacherLoadError, match=r"small_in\.onnx: input .*expected one float input of shape \(N, 1, 64, 64\)"):
        OnnxTeacherRunner(path, 64, 3)
    path2 = tmp_path / "two_cls.onnx"
    torch.onnx.export(make_model(num_classes=2), (torch.zeros(1, 1, 64, 64),), str(path2), dynamo=False)
    with pytest.raises(TeacherLoadError, match=r"two_cls\.onnx: first output .*\[1, 2\]"):
        OnnxTeacherRunner(path2, 64, 3)


class CountingRunner(TorchTeacherRunner):
    calls = 0

    def logits(self, images_uint8, batch_size=256):
        CountingRunner.calls += 1
        return super().logits(images_uint8, batch_size)


def test_annotation_cache(tmp_path, images):
    runner = CountingRunner(make_model(), 64)
    CountingRunner.calls = 0
    first = annotate_with_teacher(runner, images, tmp_path, "d" * 64)
    assert CountingRunner.calls == 1 and first.shape == (10, 3) and first.dtype == np.float32
    path = cache_path(tmp_path, runner.sha256, "d" * 64)
    assert path.name == f"{runner.sha256[:16]}-{'d' * 16}-{annotation_recipe()[:8]}.npy" and path.exists()
    again = annotate_with_teacher(runner, images, tmp_path, "d" * 64)
    assert CountingRunner.calls == 1  # served from the cache
    np.testing.assert_array_equal(again, first)
    annotate_with_teacher(runner, images, tmp_path, "e" * 64)  # other data, other file
    assert CountingRunner.calls == 2

    path.write_bytes(b"corrupt")
    fixed = annotate_with_teacher(runner, images, tmp_path, "d" * 64)
    assert CountingRunner.calls == 3
    np.testing.assert_array_equal(fixed, first)
    np.save(path, np.zeros((9, 3), np.float32))  # wrong shape is not trusted either
    annotate_with_teacher(runner, images, tmp_path, "d" * 64)
    assert CountingRunner.calls == 4
    np.testing.assert_array_equal(np.load(path), first)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_merged_classes_runner_sums_probabilities_exactly():
    from edgekd.teachers.runner import MergedClassesRunner, TorchTeacherRunner

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16, 3))
    inner = TorchTeacherRunner(model, 16, 3)
    merged = MergedClassesRunner(inner, [[0], [1, 2]])
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16), dtype=np.uint8)
    p_fine = torch.softmax(torch.as_tensor(inner.logits(images)), 1)
    p_merged = torch.softmax(torch.as_tensor(merged.logits(images)), 1)
    assert merged.logits(images).shape == (5, 2)
    assert torch.allclose(p_merged[:, 0], p_fine[:, 0], atol=1e-6)
    assert torch.allclose(p_merged[:, 1], p_fine[:, 1] + p_fine[:, 2], atol=1e-6)
    assert merged.sha256 != inner.sha256  # a different annotation cache entry
