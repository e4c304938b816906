"""Audio corpora for speech emotion regression (arousal, dominance, valence): clips, windows, splits.

Sources (`data.source`):
- `synthetic_speech`: edgekd.data.synthetic_speech; train and test clips come from disjoint speakers,
  and the validation clips from training speakers held out of training (all by seed).
- `audio_folder`: `data.path` holds WAV/FLAC files (any sample rate, any channels, any length) and a CSV
  (`data.csv`, default `PATH/labels.csv`) with a `file` column (path relative to the folder) and optional
  `arousal`, `dominance`, `valence` columns (all three or none; numbers in [0, 1]) and an optional
  `speaker` column. Without labels the teacher annotates (it must then be loaded, not trained). A row
  with all three label cells empty is a clip without labels: training material the teacher annotates
  (validation and test speakers come from labelled clips only). `data.labelled` hides the labels of all
  but a seeded share (or count) of the training clips. Every file
  is decoded with libsndfile, mixed to mono (mean of the channels) and resampled to 16 kHz (scipy's polyphase
  resampler, see `resample`); an unreadable, empty or non-finite file is refused with a DataFormatError naming
  it. Clips are split into test / validation / train by seed (by speaker when the CSV has `speaker`, else by file).

Windowing (training, teacher annotation and the hardware student all see fixed-length windows):
- window length W = `data.window_seconds` x 16,000 samples, hop H = `data.window_hop_seconds` (default W);
- a clip of L <= W samples gives one window, zero-padded at the end to W;
- a longer clip gives windows starting at 0, H, 2H, ... while they fit, plus one window ending exactly at
  the clip's end when the last one stops short of it (so the tail is never dropped);
- every window carries its clip's labels; a clip-level prediction is the mean of its windows' predictions
  (`aggregate_windows`), which is what clip-level metrics use.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgekd.config import DataConfig
from edgekd.data.labels import label_budget_mask
from edgekd.data.formats import DataFormatError
from edgekd.data.synthetic_speech import DIMENSIONS, SAMPLE_RATE, generate_speech, split_speakers
from edgekd.io import atomic_path

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".flac"}
SPLITS = ("train", "val", "test")


def window_starts(length: int, window: int, hop: int) -> list[int]:
    """Start sample of each window of a clip of `length` samples (see the module docstring)."""
    if window <= 0 or hop <= 0:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive")
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def make_windows(clips: list[np.ndarray], window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows (M, window) float32, clip index of each window (M,)) for a list of 1-D clips."""
    out, owner = [], []
    for i, clip in enumerate(clips):
        for s in window_starts(len(clip), window, hop):
            w = clip[s : s + window]
            if len(w) < window:
                w = np.pad(w, (0, window - len(w)))
            out.append(w)
            owner.append(i)
    if not out:
        return np.zeros((0, window), np.float32), np.zeros(0, np.int64)
    return np.stack(out).astype(np.float32), np.asarray(owner, np.int64)


def aggregate_windows(window_values: np.ndarray, clip_index: np.ndarray, n_clips: int | None = None) -> np.ndarray:
    """Clip-level values: the mean over each clip's windows. (M, D), (M,) -> (n_clips, D)."""
    window_values = np.asarray(window_values, dtype=np.float64)
    clip_index = np.asarray(clip_index, dtype=np.int64)
    n = int(clip_index.max()) + 1 if n_clips is None else n_clips
    sums = np.zeros((n, window_values.shape[1]))
    np.add.at(sums, clip_index, window_values)
    counts = np.bincount(clip_index, minlength=n)
    if (counts == 0).any():
        raise ValueError(f"clip {int(np.argmin(counts))} has no windows")
    return sums / counts[:, None]


# The anti-aliasing (downsampling) / anti-imaging (upsampling) filter of `resample`: a linear-phase
# Kaiser-window FIR (scipy.signal.kaiserord + firwin) at the upsampled rate, flat up to RESAMPLE_PASSBAND of the
# lower of the two Nyquist frequencies and at least RESAMPLE_STOPBAND_DB down from that Nyquist on (for 16 kHz
# output: flat to 7.2 kHz, -6 dB at 7.6 kHz, stopband from 8 kHz), so what would fold back lands below 16-bit
# quantisation. scipy's default filter (Kaiser beta 5, cut-off at the Nyquist itself) was not taken: measured
# 44.1 -> 16 kHz, it lets an 8.4 kHz tone alias to 7.6 kHz at -12 dB and a 9 kHz tone at -31 dB.
RESAMPLE_PASSBAND = 0.9
RESAMPLE_STOPBAND_DB = 100.0


@lru_cache(maxsize=16)
def _resample_filter(up: int, down: int) -> np.ndarray:
    """The FIR taps for resample_poly(x, up, down), unit gain at DC (see RESAMPLE_PASSBAND)."""
    from scipy.signal import firwin, kaiserord

    nyquist = 1.0 / max(up, down)  # the lower Nyquist, as a fraction of the upsampled rate's Nyquist
    numtaps, beta = kaiserord(RESAMPLE_STOPBAND_DB, (1.0 - RESAMPLE_PASSBAND) * nyquist)
    numtaps |= 1  # odd length: a whole-sample group delay, which resample_poly removes
    taps = firwin(numtaps, (1.0 + RESAMPLE_PASSBAND) / 2 * nyquist, window=("kaiser", beta))
    taps.setflags(write=False)
    return taps


def resample(x: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D signal from `sr` to `target` Hz with scipy's polyphase resampler (scipy.signal.resample_poly,
    up/down = target/sr in lowest terms), float32 out, round(len(x) * target / sr) samples (at least 1).

    The signal is taken as silent outside the clip (zero padding), so the first and last few milliseconds (the
    filter's reach: 4 ms from 22.05/44.1/48 kHz, 8 ms from 8 kHz) ramp in and out. The filter: see
    RESAMPLE_PASSBAND."""
    if sr == target:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(int(sr), int(target))
    up, down = int(target) // g, int(sr) // g
    n_out = max(1, int(round(len(x) * target / sr)))
    y = resample_poly(np.asarray(x, np.float64), up, down, window=_resample_filter(up, down))
    return y[:n_out].astype(np.float32)  # resample_poly gives ceil(len * up / down) >= n_out samples


def read_audio(path: Path | str) -> np.ndarray:
    """Decode one WAV/FLAC file to mono float32 at 16 kHz; DataFormatError names the file on any problem."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: audio file not found; check the `file` column of the CSV")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises LibsndfileError/RuntimeError/TypeError for bad files
        raise DataFormatError(
            f"{path}: cannot decode audio ({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}); "
            "expected a WAV or FLAC file: re-export or remove it from the CSV"
        ) from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise DataFormatError(f"{path}: empty audio (0 samples); remove it from the CSV")
    if not np.isfinite(data).all():
        bad = int(np.argwhere(~np.isfinite(data))[0][0])
        raise DataFormatError(f"{path}: non-finite sample (NaN or inf) at frame {bad}; the file is corrupt")
    mono = data.mean(axis=1)
    return resample(mono, int(sr))


def read_label_csv(path: Path) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """(files, labels (N, 3) or None, speakers or None) from the corpus CSV; DataFormatError names row and column."""
    if not path.is_file():
        raise DataFormatError(f"{path}: label CSV not found; set data.csv or put labels.csv in data.path")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
            header = list(rows[0].keys()) if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataFormatError(f"{path}: cannot read the CSV ({err})") from None
    if not rows:
        raise DataFormatError(f"{path}: no rows; expected a header with `file` and one row per clip")
    if "file" not in header:
        raise DataFormatError(f"{path}: missing column `file` (columns: {', '.join(header)})")
    present = [d for d in DIMENSIONS if d in header]
    if present and len(present) != len(DIMENSIONS):
        missing = [d for d in DIMENSIONS if d not in header]
        raise DataFormatError(f"{path}: missing column `{missing[0]}`; give all of {', '.join(DIMENSIONS)} or none")
    files = []
    labels = np.zeros((len(rows), 3), np.float32) if present else None
    for r, row in enumerate(rows, start=2):  # line 1 is the header
        name = (row.get("file") or "").strip()
        if not name:
            raise DataFormatError(f"{path}: line {r}: empty `file`")
        files.append(name)
        if labels is not None:
            if not any((row.get(dim) or "").strip() for dim in DIMENSIONS):
                labels[r - 2] = np.nan  # a clip without labels: the teacher annotates it (edgekd.data.labels)
                continue
            for j, dim in enumerate(DIMENSIONS):
                text = (row.get(dim) or "").strip()
                try:
                    value = float(text)
                except ValueError:
                    raise DataFormatError(f"{path}: line {r}, column `{dim}`: '{text}' is not a number") from None
                if not np.isfinite(value) or not 0.0 <= value <= 1.0:
                    raise DataFormatError(f"{path}: line {r}, column `{dim}`: {value} is outside [0, 1]")
                labels[r - 2, j] = value
    speakers = [(row.get("speaker") or "").strip() for row in rows] if "speaker" in header else None
    return files, labels, speakers


@dataclass
class AudioSplits:
    """Windows of each split with their clip's labels; clip-level labels for aggregation.

    For split s: `x[s]` (M, W) float32 windows, `clip[s]` (M,) clip index, `y[s]` (M, 3) window labels
    (the clip's; NaN without corpus labels), `clip_labels[s]` (C, 3).
    """

    x: dict[str, np.ndarray]
    clip: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    clip_labels: dict[str, np.ndarray]
    has_labels: bool
    window: int
    hop: int
    meta: dict = field(default_factory=dict)

    names = DIMENSIONS  # output order: arousal, dominance, valence

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {"has_labels": np.asarray(self.has_labels), "window": np.asarray(self.window),
                                         "hop": np.asarray(self.hop)}
        for s in SPLITS:
            arrays.update({f"x_{s}": self.x[s], f"clip_{s}": self.clip[s], f"y_{s}": self.y[s],
                           f"clip_labels_{s}": self.clip_labels[s]})
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)

    @classmethod
    def load(cls, path: Path) -> "AudioSplits":
        with np.load(path, allow_pickle=False) as z:
            return cls(
                x={s: z[f"x_{s}"] for s in SPLITS}, clip={s: z[f"clip_{s}"] for s in SPLITS},
                y={s: z[f"y_{s}"] for s in SPLITS}, clip_labels={s: z[f"clip_labels_{s}"] for s in SPLITS},
                has_labels=bool(z["has_labels"]), window=int(z["window"]), hop=int(z["hop"]),
            )

    def summary(self) -> dict:
        return {
            "task": "regression",
            "outputs": list(DIMENSIONS),
            "sample_rate": SAMPLE_RATE,
            "window_samples": self.window,
            "hop_samples": self.hop,
            "has_labels": self.has_labels,
            "clips": {s: int(len(self.clip_labels[s])) for s in SPLITS},
            "windows": {s: int(len(self.x[s])) for s in SPLITS},
            **self.meta,
        }


def _build_splits(clips: dict[str, list[np.ndarray]], labels: dict[str, np.ndarray | None], cfg: DataConfig,
                  meta: dict) -> AudioSplits:
    window = int(round(cfg.window_seconds * SAMPLE_RATE))
    hop = int(round((cfg.window_hop_seconds or cfg.window_seconds) * SAMPLE_RATE))
    has = all(labels[s] is not None for s in SPLITS)
    x, owner, y, cl = {}, {}, {}, {}
    for s in SPLITS:
        x[s], owner[s] = make_windows(clips[s], window, hop)
        lab = labels[s] if labels[s] is not None else np.full((len(clips[s]), 3), np.nan, np.float32)
        cl[s] = np.asarray(lab, np.float32).reshape(-1, 3).copy()
        if s == "train" and has and cfg.labelled is not None:
            # the label budget, counted in clips (a count "per class" is a count of clips here): hidden -> NaN
            labelled = np.isfinite(cl[s]).all(1)
            keep = np.zeros(len(cl[s]), bool)
            keep[labelled] = label_budget_mask(np.zeros(int(labelled.sum())), cfg.labelled,
                                               np.random.default_rng([cfg.split_seed, 7]))
            cl[s][~keep] = np.nan
        y[s] = cl[s][owner[s]] if len(owner[s]) else np.zeros((0, 3), np.float32)
    if has:
        meta = {**meta, "labelled_clips": {s: int(np.isfinite(cl[s]).all(1).sum()) for s in SPLITS}}
    return AudioSplits(x, owner, y, cl, has, window, hop, meta)


def _limit(n: int | None, items: int) -> int:
    return items if n is None else min(n, items)


def synthetic_speech_splits(cfg: DataConfig) -> AudioSplits:
    sc = cfg.speech
    train_spk, test_spk = split_speakers(sc.n_speakers, sc.seed)
    kw = {"n_speakers": sc.n_speakers, "clip_seconds": sc.clip_seconds, "label_noise": sc.label_noise, "snr_db": sc.snr_db}
    train = generate_speech(sc.n_train, sc.seed, speaker_pool=train_spk, stream=0, **kw)
    test = generate_speech(sc.n_test, sc.seed, speaker_pool=test_spk, stream=1, **kw)
    # validation: the clips of a seeded share of the training speakers
    rng = np.random.default_rng([cfg.split_seed, 5])
    n_val_spk = max(1, int(round(cfg.val_fraction * len(train_spk)))) if cfg.val_fraction > 0 else 0
    val_spk = rng.choice(train_spk, n_val_spk, replace=False) if n_val_spk else np.zeros(0, np.int64)
    is_val = np.isin(train["speaker"], val_spk)
    tr = np.flatnonzero(~is_val)[: _limit(cfg.max_train, int((~is_val).sum()))]
    va = np.flatnonzero(is_val)
    te = np.arange(_limit(cfg.max_test, sc.n_test))
    clips = {"train": list(train["waves"][tr]), "val": list(train["waves"][va]), "test": list(test["waves"][te])}
    labels = {"train": train["labels"][tr], "val": train["labels"][va], "test": test["labels"][te]}
    meta = {
        "source": "synthetic_speech",
        "speakers": {"train": sorted(set(train["speaker"][tr].tolist())), "val": sorted(val_spk.tolist()),
                     "test": sorted(set(test["speaker"][te].tolist()))},
        "latent_test": test["latent"][te].tolist(),
    }
    splits = _build_splits(clips, labels, cfg, meta)
    return splits


def audio_folder_splits(cfg: DataConfig) -> AudioSplits:
    folder = Path(cfg.path)  # type: ignore[arg-type]
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: data.path is not a folder of audio files")
    csv_path = cfg.csv or folder / "labels.csv"
    files, labels, speakers = read_label_csv(csv_path)
    for name in files:
        if Path(name).suffix.lower() not in AUDIO_SUFFIXES:
            raise DataFormatError(f"{csv_path}: '{name}' is not a .wav or .flac file")
    clips = [read_audio(folder / name) for name in files]  # any failure stops here: nothing is written
    groups = np.asarray(speakers if speakers is not None else files)
    # clips without labels are training material only: val and test speakers come from labelled clips,
    # and an unlabelled clip of a val or test speaker is left out (it would put that voice in training)
    unlabelled = ~np.isfinite(labels).all(1) if labels is not None else np.zeros(len(files), bool)
    uniq = np.unique(groups[~unlabelled]) if unlabelled.any() else np.unique(groups)
    rng = np.random.default_rng([cfg.split_seed, 6])
    order = rng.permutation(len(uniq))
    n_test = max(1, int(round(cfg.test_fraction * len(uniq))))
    n_val = int(round(cfg.val_fraction * len(uniq)))
    if len(uniq) < n_test + n_val + 1:
        raise DataFormatError(f"{csv_path}: {len(uniq)} {'speakers' if speakers else 'clips'} are too few to split "
                              f"into train, validation and test; add clips or lower data.test_fraction")
    test_g, val_g = set(uniq[order[:n_test]]), set(uniq[order[n_test : n_test + n_val]])
    idx = {"test": [i for i, g in enumerate(groups) if g in test_g and not unlabelled[i]],
           "val": [i for i, g in enumerate(groups) if g in val_g and not unlabelled[i]]}
    idx["train"] = [i for i, g in enumerate(groups) if g not in test_g and g not in val_g]
    dropped = int(sum(unlabelled[i] for i, g in enumerate(groups) if g in test_g or g in val_g))
    if dropped:
        log.warning("%s: %d unlabelled clips of validation or test speakers left out", csv_path, dropped)
    idx["train"] = idx["train"][: _limit(cfg.max_train, len(idx["train"]))]
    idx["test"] = idx["test"][: _limit(cfg.max_test, len(idx["test"]))]
    split_clips = {s: [clips[i] for i in idx[s]] for s in SPLITS}
    split_labels = {s: (labels[idx[s]] if labels is not None else None) for s in SPLITS}
    meta = {"source": "audio_folder", "files": {s: [files[i] for i in idx[s]] for s in SPLITS},
            "seconds": round(float(sum(len(c) for c in clips)) / SAMPLE_RATE, 2)}
    return _build_splits(split_clips, split_labels, cfg, meta)


def load_audio_splits(cfg: DataConfig) -> AudioSplits:
    if cfg.source == "synthetic_speech":
        return synthetic_speech_splits(cfg)
    if cfg.source == "audio_folder":
        return audio_folder_splits(cfg)
    raise ValueError(f"data.source '{cfg.source}' is not an audio source")
