"""A whole tiny audio build (task: regression) through C-simulation and the board project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekd.config import parse_config
from edgekd.export.int8_onnx import DEFAULT_FORMAT
from edgekd.io import load_npy, read_json
from edgekd.pipeline import run_build

pytestmark = pytest.mark.slow

TINY_AUDIO = {
    "name": "tiny_audio",
    "task": "regression",
    "data": {"source": "synthetic_speech", "window_seconds": 0.25,
             "speech": {"n_train": 40, "n_test": 12, "n_speakers": 10, "clip_seconds": 0.5, "seed": 1}},
    "teacher": {"epochs": 1, "batch_size": 16, "wav2vec": {"conv_channels": 16, "dim": 32, "layers": 1, "heads": 2}},
    "student": {"width": 4},
    "distill": {"epochs": 1, "qat_epochs": 1, "batch_size": 16},
    "hls": {"board": "pynq-z2", "verify_samples": 8},
}


@pytest.fixture(scope="module")
def audio_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_audio") / "build"
    run_build(parse_config(TINY_AUDIO), out)
    return out


def test_audio_label_budget(tmp_path):
    """data.labelled on audio: a quarter of the training clips keep their labels; the teacher trains on their
    windows, the distilled student on the annotations of every window, the baseline on the labelled ones."""
    cfg = parse_config({**TINY_AUDIO, "data": {**TINY_AUDIO["data"], "labelled": 0.25}})
    run_build(cfg, tmp_path / "b", to_step="distill")
    data = read_json(tmp_path / "b" / "data" / "data.json")
    distill = read_json(tmp_path / "b" / "distill" / "distill.json")
    n_train = data["clips"]["train"]
    assert data["labelled_clips"]["train"] == round(0.25 * n_train)
    assert data["labelled_clips"]["val"] == data["clips"]["val"] and data["labelled_clips"]["test"] == 12
    assert distill["labelled"] == 2 * data["labelled_clips"]["train"]  # two windows per clip
    assert distill["labelled"] + distill["unlabelled"] == data["windows"]["train"]
    assert {"quant", "baseline_no_kd"} <= set(distill["metrics"])


def test_audio_report_structure_and_exactness(audio_build):
    r = read_json(audio_build / "report" / "report.json")
    assert r["task"] == "regression" and r["outputs"] == ["arousal", "dominance", "valence"]
    assert r["config_sha256"] == parse_config(TINY_AUDIO).sha256()
    assert r["data"]["windows"]["test"] == 24  # 12 clips of 0.5 s, two 0.25 s windows each
    assert set(r["teacher"]["ccc_vs_labels"]) == {"arousal", "dominance", "valence", "mean"}
    assert set(r["student"]["students"]) == {"wav2small", "quant", "float", "baseline_no_kd"}
    for s in r["student"]["students"].values():
        assert -1.0 <= s["ccc_vs_teacher"]["mean"] <= 1.0
        assert set(s["ccc_vs_labels"]) == {"arousal", "dominance", "valence", "mean"}
    w2s = r["student"]["wav2small"]
    # width 4: trainable 59 w^2 + 64 w + 3, plus the frozen DFT kernels 2 x 33 x 64
    assert w2s["params"]["trainable"] == 59 * 16 + 64 * 4 + 3 and w2s["params"]["frozen"] == 4224
    assert 0 < w2s["int8_onnx_bytes"] and 0 < w2s["onnx_bytes"]
    assert w2s["int8_format"] == DEFAULT_FORMAT and -1.0 <= w2s["int8_corr_vs_float"] <= 1.0  # 1-epoch model
    fid = r["fidelity"]
    assert fid["n"] == 8 and fid["torch_vs_qonnx_exact"] == 1.0 and fid["qonnx_vs_csim_exact"] == 1.0
    assert fid["max_abs_diff"] == 0.0
    assert r["target"]["met"] in (True, False) and "90%" in r["target"]["rule"]
    assert "attention pooling" in r["student"]["hw_replacements"]
    assert r["latency"]["estimate"]["cycles"] > 0 and r["latency"]["estimate"]["source"] == "estimate"
    assert r["project"]["csim"]["passed"] and r["project"]["interface"] == "axi_stream_dma"
    md = (audio_build / "report" / "report.md").read_text()
    assert "QONNX == C-simulation (n=8) | 100.00%" in md and "CCC vs teacher" in md
    assert "<h1>edgekd build report: tiny_audio</h1>" in (audio_build / "report" / "report.html").read_text()


def test_audio_csim_outputs_equal_qonnx_and_metrics_recompute(audio_build):
    from edgekd.distill.metrics import regression_metrics

    csim = load_npy(audio_build / "hls" / "csim_outputs.npy")
    qonnx = load_npy(audio_build / "export" / "qonnx_outputs.npy")
    assert csim.shape == (8, 3) and np.array_equal(csim, qonnx.astype(np.float64))
    ann = load_npy(audio_build / "teacher" / "annotations_test.npy")
    hls = read_json(audio_build / "hls" / "hls.json")
    want = regression_metrics(ann[:8], csim, ["arousal", "dominance", "valence"])["ccc_mean"]
    assert hls["csim_metrics"]["vs_teacher"]["ccc_mean"] == pytest.approx(want)
    # the inputs are the host log-mel on the student's input grid: fixed<8,3> steps of 2^-5
    x = load_npy(audio_build / "export" / "verify_inputs.npy")
    assert x.shape[1:2] == (1,) and x.shape[3] == 26
    assert np.array_equal(np.round(x * 32), x * 32)



def test_audio_teacher_trained_elsewhere(tmp_path):
    """teacher.data on audio: the teacher learns from its own labelled corpus (other seed, other voices), cut into
    the build's windows, and annotates every window of the build; a corpus holding the clips whose labels
    data.labelled hides, or an image source, is refused before anything is written."""
    from edgekd.pipeline import BuildError

    budget = {**TINY_AUDIO["data"], "labelled": 0.25}
    other = {"source": "synthetic_speech", "window_seconds": 1.0,  # the build's 0.25 s windows win
             "speech": {**TINY_AUDIO["data"]["speech"], "n_train": 30, "seed": 5}}
    cfg = parse_config({**TINY_AUDIO, "data": budget, "teacher": {**TINY_AUDIO["teacher"], "data": other}})
    run_build(cfg, tmp_path / "a", to_step="teacher")
    teacher = read_json(tmp_path / "a" / "teacher" / "teacher.json")
    data = read_json(tmp_path / "a" / "data" / "data.json")
    assert teacher["trained_on"]["from"] == "teacher.data (synthetic_speech)"
    assert teacher["trained_on"]["windows"] == 2 * teacher["trained_on"]["clips"] > 2 * data["labelled_clips"]["train"]
    assert teacher["annotated_windows"] == data["windows"]["train"]
    assert load_npy(tmp_path / "a" / "teacher" / "annotations_train.npy").shape == (data["windows"]["train"], 3)
    hidden = parse_config({**TINY_AUDIO, "data": budget, "teacher": {**TINY_AUDIO["teacher"], "data": TINY_AUDIO["data"]}})
    with pytest.raises(BuildError, match="teacher.data holds .* of the build's training clips whose labels"):
        run_build(hidden, tmp_path / "b", to_step="teacher")
    assert not (tmp_path / "b" / "teacher").exists()
    images = parse_config({**TINY_AUDIO, "teacher": {**TINY_AUDIO["teacher"], "data": {"source": "synthetic"}}})
    with pytest.raises(BuildError, match="image source"):
        run_build(images, tmp_path / "c", to_step="teacher")
