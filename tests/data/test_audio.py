"""Audio data: synthetic speech generator, windowing, resampling, the WAV/FLAC + CSV loader and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from edgekd.config import ConfigError, DataConfig, parse_config
from edgekd.data.audio import (
    AudioSplits,
    aggregate_windows,
    audio_folder_splits,
    load_audio_splits,
    make_windows,
    read_audio,
    read_label_csv,
    resample,
    window_starts,
)
from edgekd.data.formats import DataFormatError
from edgekd.data.synthetic_speech import generate_speech, split_speakers


def test_generator_is_deterministic_by_seed():
    a = generate_speech(6, seed=3, clip_seconds=0.3, n_speakers=8)
    b = generate_speech(6, seed=3, clip_seconds=0.3, n_speakers=8)
    c = generate_speech(6, seed=4, clip_seconds=0.3, n_speakers=8)
    for key in ("waves", "labels", "latent", "speaker"):
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["waves"], c["waves"])
    assert a["waves"].shape == (6, 4800) and a["waves"].dtype == np.float32
    assert np.isfinite(a["waves"]).all() and np.abs(a["waves"]).max() <= 1.0
    assert a["labels"].min() >= 0.0 and a["labels"].max() <= 1.0
    # label noise: corpus labels differ from the latents by a small amount
    assert 0.0 < np.abs(a["labels"] - a["latent"]).mean() < 0.15


def test_arousal_raises_loudness_over_noise_and_pitch():
    # the cue that carries arousal most strongly: high-arousal clips have more energy in speech bands
    d = generate_speech(64, seed=0, clip_seconds=0.5, n_speakers=8, label_noise=0.0)
    spec = np.abs(np.fft.rfft(d["waves"], axis=1)) ** 2
    freqs = np.fft.rfftfreq(d["waves"].shape[1], 1 / 16000)
    high_share = spec[:, freqs > 1000].sum(1) / spec.sum(1)  # flatter tilt at high arousal
    r = np.corrcoef(d["latent"][:, 0], high_share)[0, 1]
    assert r > 0.3


def test_speaker_split_is_disjoint_and_seeded():
    tr, te = split_speakers(20, seed=1)
    assert len(te) == 4 and not set(tr) & set(te) and set(tr) | set(te) == set(range(20))
    assert np.array_equal(split_speakers(20, seed=1)[1], te)
    cfg = DataConfig(source="synthetic_speech", window_seconds=0.25,
                     speech={"n_train": 40, "n_test": 12, "n_speakers": 10, "clip_seconds": 0.6})
    s = load_audio_splits(cfg)
    spk = s.meta["speakers"]
    assert not set(spk["test"]) & (set(spk["train"]) | set(spk["val"]))
    assert not set(spk["val"]) & set(spk["train"])
    # 0.6 s clips, 0.25 s windows, hop = window: starts 0, 4000, and the tail window 5600
    assert s.x["train"].shape[1] == 4000
    assert len(s.x["test"]) == 3 * 12 and np.array_equal(s.clip["test"][:3], [0, 0, 0])
    assert np.array_equal(s.y["test"][:3], np.repeat(s.clip_labels["test"][:1], 3, axis=0))
    again = load_audio_splits(cfg)
    assert np.array_equal(again.x["train"], s.x["train"])


def test_window_starts_and_padding():
    assert window_starts(100, 40, 40) == [0, 40, 60]  # the tail window ends at the clip's end
    assert window_starts(80, 40, 40) == [0, 40]
    assert window_starts(30, 40, 40) == [0]
    assert window_starts(100, 40, 20) == [0, 20, 40, 60]
    x, owner = make_windows([np.ones(30, np.float32), np.arange(100, dtype=np.float32)], 40, 40)
    assert x.shape == (4, 40) and owner.tolist() == [0, 1, 1, 1]
    assert x[0, :30].sum() == 30 and x[0, 30:].sum() == 0  # short clip zero-padded at the end
    assert x[3, -1] == 99.0
    agg = aggregate_windows(np.array([[1.0], [2.0], [4.0], [6.0]]), owner)
    assert agg[:, 0].tolist() == [1.0, 4.0]


def test_resample_keeps_a_tone_and_length():
    sr = 22050
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = resample(x, sr)
    assert len(y) == 16000 and y.dtype == np.float32
    ref = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    # polyphase (scipy): measured 9.5e-7 away from the 4 ms the filter reaches past each end (the FFT
    # resampler it replaced: < 0.02 here, 0.14 on a clip that is not a whole number of periods long)
    assert np.abs(y[200:-200] - ref[200:-200]).max() < 1e-5
    assert np.abs(y).max() < 1.0 + 1e-5 and abs(y[0]) < 0.1  # the clip starts from silence: a ramp, no overshoot
    assert resample(x, 16000) is not x and np.array_equal(resample(x, 16000), x)
    # lengths: round(n * 16000 / sr), as before (resample_poly alone gives the ceiling)
    assert [len(resample(np.zeros(n, np.float32), sr)) for n, sr in ((1001, 44100), (7, 8000), (1, 48000))] == [363, 14, 1]


def _sine_fit(y: np.ndarray, freq: float, sr: int = 16000, trim: int = 100) -> tuple[float, float]:
    """(amplitude, RMS residual) of the least-squares sinusoid at `freq` Hz, the ends (filter reach) left out."""
    n = np.arange(len(y))[trim:-trim]
    yy = y[trim:-trim].astype(np.float64)
    basis = np.stack([np.sin(2 * np.pi * freq * n / sr), np.cos(2 * np.pi * freq * n / sr)], 1)
    coef, *_ = np.linalg.lstsq(basis, yy, rcond=None)
    return float(np.hypot(*coef)), float(np.sqrt(np.mean((yy - basis @ coef) ** 2)))


def _level_db(y: np.ndarray, trim: int = 100) -> float:
    """RMS of y relative to a full-scale sine's, in dB."""
    return 20 * np.log10(np.sqrt(np.mean(y[trim:-trim].astype(np.float64) ** 2)) / np.sqrt(0.5))


def test_polyphase_resampler_keeps_a_tone_and_suppresses_what_would_alias():
    sr = 44100
    t = np.arange(sr) / sr
    y = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), sr)  # 1 kHz at 44.1 kHz -> 16 kHz
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert np.argmax(spec) * 16000 / len(y) == 1000.0  # the peak stays at 1 kHz (1 Hz bins)
    amp, residual = _sine_fit(y, 1000)
    assert abs(amp - 1.0) < 1e-5 and residual < 1e-5  # measured: |amp - 1| 3e-9, residual 5.8e-8 (float32 out)
    amp, _ = _sine_fit(resample(np.sin(2 * np.pi * 7000 * t).astype(np.float32), sr), 7000)
    assert abs(amp - 1.0) < 1e-4  # 7 kHz is in the flat passband (to 7.2 kHz): measured 1 - 2.2e-6
    # above the new Nyquist (8 kHz) a tone would fold back to 16 kHz - f; the filter removes it first.
    # Measured: 8.4 kHz -126.8 dB, 9 kHz -114.7 dB, 12 kHz -123.2 dB (scipy's default filter: -12, -31, -70 dB)
    for f in (8400, 9000, 12000):
        z = resample(np.sin(2 * np.pi * f * t).astype(np.float32), sr)
        assert _level_db(z) < -100.0, f
        assert _sine_fit(z, 16000 - f)[0] < 1e-5, f  # no alias at 16 kHz - f


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_real_audio_files_at_common_rates_load(tmp_path, sr, fmt):
    n = sr // 2
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, 0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / sr), sr, format=fmt, subtype="PCM_16")
    y = read_audio(path)
    assert y.dtype == np.float32 and len(y) == 8000
    amp, residual = _sine_fit(y, 1000)
    # measured: amplitude within 6e-6 of 0.5, residual <= 1.7e-5: the 16-bit quantisation (step 2^-15 = 3.1e-5)
    assert abs(amp - 0.5) < 1e-4 and residual < 1e-4


def _corpus(tmp_path, n=6, labels=True, speakers=False):
    rng = np.random.default_rng(0)
    rows = ["file,arousal,dominance,valence" + (",speaker" if speakers else "") if labels else "file"]
    for i in range(n):
        name = f"c{i}.wav" if i % 2 else f"c{i}.flac"
        sf.write(tmp_path / name, rng.normal(0, 0.1, 8000 + 1000 * i).astype(np.float32), 16000)
        row = f"{name},0.{i},0.5,0.25" if labels else name
        rows.append(row + (f",s{i % 3}" if speakers else ""))
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_stereo_44k_file_is_mixed_and_resampled(tmp_path):
    left = np.full(44100, 0.5, np.float32)
    right = np.full(44100, -0.1, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 44100, subtype="FLOAT")
    y = read_audio(tmp_path / "s.wav")
    assert len(y) == 16000 and y.dtype == np.float32
    assert np.allclose(y[100:-100], 0.2, atol=1e-3)


def test_folder_loader_splits_and_windows(tmp_path):
    _corpus(tmp_path, n=10, speakers=True)
    cfg = DataConfig(source="audio_folder", path=tmp_path, window_seconds=0.5, test_fraction=0.34, val_fraction=0.0)
    s = audio_folder_splits(cfg)
    files = s.meta["files"]
    assert sorted(files["train"] + files["val"] + files["test"]) == sorted(f"c{i}.{'wav' if i % 2 else 'flac'}" for i in range(10))
    # by speaker: the test clips' speakers never occur in training
    spk = {f"c{i}.{'wav' if i % 2 else 'flac'}": i % 3 for i in range(10)}
    assert not {spk[f] for f in files["test"]} & {spk[f] for f in files["train"]}
    assert s.has_labels and s.x["train"].shape[1] == 8000
    s.save(tmp_path / "splits.npz")
    back = AudioSplits.load(tmp_path / "splits.npz")
    assert np.array_equal(back.x["test"], s.x["test"]) and back.window == 8000


def test_unlabelled_corpus_has_nan_labels(tmp_path):
    _corpus(tmp_path, n=6, labels=False)
    s = audio_folder_splits(DataConfig(source="audio_folder", path=tmp_path, window_seconds=0.5))
    assert not s.has_labels and np.isnan(s.y["train"]).all()


def test_csv_rows_without_labels_are_training_clips(tmp_path):
    _corpus(tmp_path, n=12, speakers=True)
    lines = (tmp_path / "labels.csv").read_text().splitlines()
    for i in (1, 2, 4, 7):  # clips c1, c2, c4, c7 lose all three labels
        name, *_, spk = lines[i + 1].split(",")
        lines[i + 1] = f"{name},,,,{spk}"
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    files, labels, _ = read_label_csv(tmp_path / "labels.csv")
    assert np.isnan(labels[[1, 2, 4, 7]]).all() and np.isfinite(np.delete(labels, [1, 2, 4, 7], 0)).all()
    s = audio_folder_splits(DataConfig(source="audio_folder", path=tmp_path, window_seconds=0.5, test_fraction=0.34,
                                       val_fraction=0.0))
    unlabelled = {"c1.wav", "c2.flac", "c4.flac", "c7.wav"}
    assert not unlabelled & set(s.meta["files"]["test"])  # test clips are scored: labelled only
    train = s.meta["files"]["train"]
    for name, row in zip(train, s.clip_labels["train"]):
        assert np.isnan(row).all() == (name in unlabelled)
    assert s.meta["labelled_clips"]["train"] == len(train) - len(unlabelled & set(train))
    with pytest.raises(DataFormatError, match="line 3, column `dominance`: '' is not a number"):
        (tmp_path / "labels.csv").write_text("file,arousal,dominance,valence\nc0.flac,0.1,0.2,0.3\nc1.wav,0.5,,\n")
        read_label_csv(tmp_path / "labels.csv")  # partly labelled rows are mistakes, not unlabelled clips


@pytest.mark.parametrize(
    "kind, message",
    [
        ("corrupt", "cannot decode audio"),
        ("empty", "empty audio"),
        ("nan", "non-finite sample"),
        ("missing_file", "audio file not found"),
    ],
)
def test_bad_audio_files_are_refused_by_name(tmp_path, kind, message):
    _corpus(tmp_path, n=6)
    bad = tmp_path / "c3.wav"
    if kind == "corrupt":
        bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage that is not a wave file")
    elif kind == "empty":
        sf.write(bad, np.zeros(0, np.float32), 16000)
    elif kind == "nan":
        x = np.zeros(1000, np.float32)
        x[17] = np.nan
        sf.write(bad, x, 16000, subtype="FLOAT")
    else:
        bad.unlink()
    with pytest.raises(DataFormatError, match=message) as err:
        audio_folder_splits(DataConfig(source="audio_folder", path=tmp_path))
    assert "c3.wav" in str(err.value)


@pytest.mark.parametrize(
    "csv_text, message",
    [
        ("name,arousal\nc0.flac,0.1\n", "missing column `file`"),
        ("file,arousal,valence\nc0.flac,0.1,0.2\n", "missing column `dominance`"),
        ("file,arousal,dominance,valence\nc0.flac,0.1,high,0.2\n", "line 2, column `dominance`: 'high' is not a number"),
        ("file,arousal,dominance,valence\nc0.flac,0.1,0.2,1.5\n", "line 2, column `valence`: 1.5 is outside"),
        ("file,arousal,dominance,valence\nc0.flac,nan,0.2,0.5\n", "column `arousal`: nan"),
        ("file\n", "no rows"),
    ],
)
def test_bad_label_csv_is_refused(tmp_path, csv_text, message):
    (tmp_path / "labels.csv").write_text(csv_text)
    with pytest.raises(DataFormatError, match=message) as err:
        read_label_csv(tmp_path / "labels.csv")
    assert "labels.csv" in str(err.value)


def test_regression_config_defaults_and_mismatch():
    cfg = parse_config({"name": "a", "task": "regression", "data": {"source": "synthetic_speech"}})
    assert (cfg.distill.loss, cfg.teacher.arch, cfg.student.name, cfg.distill.augment) == (
        "ccc", "wav2vec2", "wav2small_hw", False)
    cfg = parse_config({"name": "a", "task": "regression", "data": {"source": "synthetic_speech"},
                        "distill": {"loss": "ccc_mse"}})
    assert cfg.distill.loss == "ccc_mse"
    with pytest.raises(ConfigError, match="does not fit task 'regression'"):
        parse_config({"name": "a", "task": "regression"})
    with pytest.raises(ConfigError, match="distill.loss 'kd' is not a regression loss"):
        parse_config({"name": "a", "task": "regression", "data": {"source": "synthetic_speech"}, "distill": {"loss": "kd"}})
    with pytest.raises(ConfigError, match="data.speech.n_speakers"):
        parse_config({"name": "a", "task": "regression", "data": {"source": "synthetic_speech", "speech": {"n_speakers": 1}}})
    with pytest.raises(ConfigError, match="data.path is required"):
        parse_config({"name": "a", "task": "regression", "data": {"source": "audio_folder"}})
    # the cell defaults are untouched
    cell = parse_config({"name": "c"})
    assert (cell.task, cell.distill.loss, cell.teacher.arch, cell.student.name) == ("classification", "kd", "resnet", "cell_cnn")


def test_audio_example_config_loads():
    from pathlib import Path

    from edgekd.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "wav2small.yaml")
    assert cfg.task == "regression" and cfg.data.source == "synthetic_speech"
    assert cfg.student.name == "wav2small_hw" and cfg.distill.loss == "ccc" and cfg.hls.verify_samples >= 256
    assert cfg.hls.board == "zcu104"
