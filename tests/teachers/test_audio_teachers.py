"""Audio teachers: the built-in Wav2Vec2-style model, external ONNX / TorchScript waveform teachers, cache reuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.config import TeacherConfig
from edgekd.registry import TEACHERS
from edgekd.teachers.annotate import ANNOTATION_CHUNK, annotate_with_teacher, cache_path
from edgekd.teachers.audio_runner import (
    OnnxAudioTeacherRunner,
    TorchAudioTeacherRunner,
    TorchScriptAudioTeacherRunner,
    load_audio_teacher,
)
from edgekd.teachers.runner import TeacherLoadError
from edgekd.teachers.wav2vec import Wav2VecTeacher, train_audio_teacher
from float_tolerance import FLOAT32_EPS, assert_float32_close

WINDOW = 800
# TinyAudioTeacher's longest sum: the mean over a frame of WINDOW / 8 samples, then 8 inputs of the linear layer
TINY_REDUCTION = WINDOW // 8 + 8


class TinyAudioTeacher(nn.Module):
    """Frame energies -> linear -> 3 outputs: enough to check the runners' plumbing exactly."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(8, 3)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        frames = wave.reshape(wave.shape[0], 8, -1)
        return self.lin(frames.pow(2).mean(dim=2).sqrt())


def _waves(n: int = 10) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 0.1, (n, WINDOW)).astype(np.float32)


def test_default_teacher_has_over_a_million_params_and_shapes():
    model = TEACHERS.get("wav2vec2")(3, TeacherConfig())
    params = sum(p.numel() for p in model.parameters())
    assert params >= 1_000_000
    out = model.eval()(torch.zeros(2, 16000))
    assert out.shape == (2, 3)
    # 16,000 samples -> 49 frames of 20 ms after the 320x strided feature encoder
    assert model.feature_encoder(torch.zeros(1, 1, 16000)).shape[-1] == 49


def test_training_a_tiny_teacher_lowers_the_loss():
    rng = np.random.default_rng(1)
    gain = rng.uniform(0.05, 1.0, 64).astype(np.float32)
    x = (rng.normal(0, 1, (64, 1600)) * gain[:, None]).astype(np.float32)
    x[:, 800:] *= 3 * gain[:, None]  # a learnable cue: the loudness contrast of the two halves
    y = np.stack([gain, gain, 1 - gain], 1).astype(np.float32)
    model = Wav2VecTeacher(3, conv_channels=16, dim=32, layers=1, heads=2)
    cfg = TeacherConfig(epochs=4, batch_size=16, lr=3e-3)
    history = train_audio_teacher(model, x[:48], y[:48], x[48:], y[48:], cfg, seed=0)
    assert len(history) == 4
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["val_ccc_mean"] is not None


def test_unlabelled_training_is_refused():
    model = Wav2VecTeacher(3, conv_channels=16, dim=32, layers=1, heads=2)
    y = np.full((4, 3), np.nan, np.float32)
    with pytest.raises(ValueError, match="no corpus labels"):
        train_audio_teacher(model, _waves(4), y, _waves(0), y[:0], TeacherConfig(epochs=1), seed=0)


@pytest.mark.parametrize("fixed_batch", [None, 4])
def test_onnx_waveform_teacher_matches_torch(tmp_path, fixed_batch):
    model = TinyAudioTeacher().eval()
    path = tmp_path / "teacher.onnx"
    batch = fixed_batch or 2
    torch.onnx.export(model, (torch.zeros(batch, WINDOW),), str(path), input_names=["wave"], output_names=["adv"],
                      dynamic_axes=None if fixed_batch else {"wave": {0: "n"}, "adv": {0: "n"}}, dynamo=False)
    runner = load_audio_teacher(TeacherConfig(source="onnx", path=path), WINDOW)
    assert isinstance(runner, OnnxAudioTeacherRunner)
    x = _waves(10)
    got = runner.logits(x, batch_size=6)
    want = model(torch.as_tensor(x)).detach().numpy()
    assert got.shape == (10, 3)
    assert_float32_close(got, want, TINY_REDUCTION)  # batch 6 in ONNX Runtime vs 10 in torch


def test_onnx_teacher_with_the_wrong_signature_is_refused(tmp_path):
    path = tmp_path / "image.onnx"
    torch.onnx.export(nn.Flatten().eval(), (torch.zeros(1, 1, 4, 4),), str(path), dynamo=False)
    with pytest.raises(TeacherLoadError, match=r"image.onnx: input .* expected one float input \(N, 800\)"):
        OnnxAudioTeacherRunner(path, WINDOW)
    path2 = tmp_path / "two.onnx"
    torch.onnx.export(nn.Linear(WINDOW, 2).eval(), (torch.zeros(1, WINDOW),), str(path2), dynamo=False)
    with pytest.raises(TeacherLoadError, match=r"first output .* expected"):
        OnnxAudioTeacherRunner(path2, WINDOW)


def test_torchscript_waveform_teacher(tmp_path):
    model = TinyAudioTeacher().eval()
    path = tmp_path / "teacher.pt"
    torch.jit.script(model).save(str(path))
    runner = load_audio_teacher(TeacherConfig(source="torchscript", path=path), WINDOW)
    assert isinstance(runner, TorchScriptAudioTeacherRunner)
    x = _waves(7)
    assert_float32_close(runner.logits(x, batch_size=3), model(torch.as_tensor(x)).detach().numpy(), TINY_REDUCTION)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a module")
    with pytest.raises(TeacherLoadError, match="bad.pt: not a loadable TorchScript"):
        load_audio_teacher(TeacherConfig(source="torchscript", path=bad), WINDOW)


class _Counting(TorchAudioTeacherRunner):
    calls = 0

    def _run(self, x):
        type(self).calls += 1
        return super()._run(x)


def test_annotations_are_cached_by_teacher_and_data(tmp_path):
    x = _waves(2 * ANNOTATION_CHUNK + 12)
    _Counting.calls = 0
    runner = _Counting(TinyAudioTeacher(), WINDOW)
    first = annotate_with_teacher(runner, x, tmp_path, "data-a")
    assert _Counting.calls == 3  # fixed chunks of ANNOTATION_CHUNK windows: 64 + 64 + 12
    again = annotate_with_teacher(runner, x, tmp_path, "data-a")
    assert _Counting.calls == 3  # from the cache: the teacher did not run
    np.testing.assert_array_equal(first, again)
    assert cache_path(tmp_path, runner.sha256, "data-a").is_file()
    # other data, or another teacher: a new cache entry, computed
    annotate_with_teacher(runner, x[:4], tmp_path, "data-b")
    assert _Counting.calls == 4
    other = TinyAudioTeacher()
    with torch.no_grad():
        other.lin.bias += 1.0
    other_runner = _Counting(other, WINDOW)
    assert other_runner.sha256 != runner.sha256
    shifted = annotate_with_teacher(other_runner, x, tmp_path, "data-a")
    assert _Counting.calls == 7
    # the same sums, one float32 addition more (the bias): 1 ulp of |first| + 1 at most
    np.testing.assert_allclose(shifted, first + 1.0, rtol=0, atol=2 * FLOAT32_EPS * (np.abs(first).max() + 1))
    # a damaged cache file is recomputed, never trusted; the same chunks give the same bytes (bitwise: this is
    # the same operation on the same shapes, whatever batch size the caller would have used)
    cache_path(tmp_path, runner.sha256, "data-a").write_bytes(b"garbage")
    np.testing.assert_array_equal(annotate_with_teacher(runner, x, tmp_path, "data-a"), first)
    assert _Counting.calls == 10


def test_annotation_cache_key_holds_the_float_environment(tmp_path, monkeypatch):
    """Another thread count (or kernel ISA, torch version) may give other bytes: another cache entry."""
    import edgekd.teachers.annotate as annotate

    runner = TorchAudioTeacherRunner(TinyAudioTeacher(), WINDOW)
    here = cache_path(tmp_path, runner.sha256, "data-a")
    assert cache_path(tmp_path, runner.sha256, "data-a") == here  # a pure function of what decides the bytes
    with monkeypatch.context() as m:
        m.setattr(annotate, "ANNOTATION_CHUNK", 32)
        assert cache_path(tmp_path, runner.sha256, "data-a") != here
    env = annotate.float_environment()
    for key, other in (("threads", env["threads"] + 1), ("cpu_capability", "AMX"), ("torch", "0.0")):
        with monkeypatch.context() as m:
            m.setattr(annotate, "float_environment", lambda key=key, other=other: {**env, key: other})
            assert cache_path(tmp_path, runner.sha256, "data-a") != here, key


def test_unlabelled_folder_is_annotated_by_an_onnx_teacher(tmp_path):
    """data + teacher steps of an audio build: a corpus without labels, annotated by an external ONNX teacher."""
    import soundfile as sf

    from edgekd.config import parse_config
    from edgekd.io import load_npy, read_json
    from edgekd.pipeline import run_build

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(2)
    names = []
    for i in range(8):
        names.append(f"clip{i}.wav")
        sf.write(corpus / names[-1], rng.normal(0, 0.05 * (i + 1), 1200 + 300 * i).astype(np.float32), 16000)
    (corpus / "labels.csv").write_text("file\n" + "\n".join(names) + "\n")
    model = TinyAudioTeacher().eval()
    torch.onnx.export(model, (torch.zeros(1, WINDOW),), str(tmp_path / "t.onnx"), input_names=["wave"],
                      dynamic_axes={"wave": {0: "n"}}, dynamo=False)
    cfg = parse_config({
        "name": "unlabelled", "task": "regression",
        "data": {"source": "audio_folder", "path": str(corpus), "window_seconds": WINDOW / 16000, "test_fraction": 0.25},
        "teacher": {"source": "onnx", "path": str(tmp_path / "t.onnx")},
    })
    run_build(cfg, tmp_path / "build", to_step="teacher")
    data = read_json(tmp_path / "build" / "data" / "data.json")
    assert data["has_labels"] is False and data["clips"]["test"] == 2
    teacher = read_json(tmp_path / "build" / "teacher" / "teacher.json")
    assert teacher["metrics"] is None and teacher["source"] == "onnx"
    from edgekd.data.audio import AudioSplits

    splits = AudioSplits.load(tmp_path / "build" / "data" / "splits.npz")
    ann = load_npy(tmp_path / "build" / "teacher" / "annotations_train.npy")
    assert_float32_close(ann, model(torch.as_tensor(splits.x["train"])).detach().numpy(), TINY_REDUCTION)
    # training a teacher needs labels: refused with what to do instead
    from edgekd.pipeline import BuildError

    cfg_train = parse_config({**cfg.model_dump(mode="json"), "teacher": {"epochs": 1}})
    with pytest.raises(BuildError, match="no arousal/dominance/valence columns"):
        run_build(cfg_train, tmp_path / "build", to_step="teacher")
