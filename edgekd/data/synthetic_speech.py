"""Synthetic speech-emotion corpus: 16 kHz speech-like clips whose sound depends on arousal, dominance, valence.

A source-filter model, vectorised with numpy over a chunk of clips (thousands of clips in seconds):

- source: a band-limited-enough sawtooth at the pitch contour f0(t) (voiced; jitter = per-sample
  smoothed noise on f0, shimmer = smoothed noise on the amplitude), plus white noise for unvoiced bursts
  at syllable onsets (consonants);
- rhythm: syllables at `rate` per second (raised cosine envelopes), each syllable a pause with a
  probability that falls with arousal;
- filter: per STFT frame (512-point Hann, hop 256, overlap-add), a spectral envelope of three formant
  resonances (a vowel drawn per syllable, scaled by the speaker's vocal-tract factor) and a spectral tilt;
- room: pink noise at a per-clip SNR around `snr_db`.

Latent labels in [0, 1] (dominance correlates with arousal as in real corpora) shape the cues:
  arousal   -> pitch level and range, energy (SNR), speaking rate, fewer pauses, flatter spectral tilt;
  dominance -> louder, lower formants and pitch (relative to arousal), less jitter, falling contours;
  valence   -> raised F2 (smile), higher pitch, less breathiness, jitter and shimmer, rising contours; cues that
               the speaker's own variation (formant factor, pitch, voice quality) confounds, so valence
               is the hardest dimension, as in real data.
The corpus labels are the latents plus Gaussian label noise (`label_noise`), clipped to [0, 1].
Speakers are shared between clips, so splits by speaker test generalisation to unseen voices.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
DIMENSIONS = ("arousal", "dominance", "valence")
_N_FFT, _HOP = 512, 256
# (F1, F2, F3) in Hz of a few vowels of an adult voice (vocal-tract factor 1.0)
_VOWELS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410], [660, 1720, 2410]],
    dtype=np.float64,
)


def speakers(n: int, seed: int) -> dict[str, np.ndarray]:
    """Per-speaker voice: base pitch (Hz), vocal-tract factor, loudness (dB), jitter, breathiness."""
    rng = np.random.default_rng([seed, 1])
    female = rng.random(n) < 0.5
    return {
        "f0": np.where(female, 200.0, 115.0) * np.exp(rng.normal(0, 0.12, n)),
        "tract": np.where(female, 1.15, 1.0) * np.exp(rng.normal(0, 0.05, n)),
        "loud_db": rng.normal(0, 3.0, n),
        "jitter": np.exp(rng.normal(0, 0.35, n)),
        "breath": rng.uniform(0.0, 0.25, n),
        "tilt": rng.normal(0, 0.15, n),
    }


def latent_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) arousal, dominance, valence in [0, 1]; dominance follows arousal (r about 0.6)."""
    a = rng.beta(2.0, 2.0, n)
    d = np.clip(0.6 * a + 0.4 * rng.beta(2.0, 2.0, n) + rng.normal(0, 0.05, n), 0, 1)
    v = rng.beta(2.0, 2.0, n)
    return np.stack([a, d, v], axis=1)


def _smooth_noise(rng: np.random.Generator, n: int, length: int, knots: int) -> np.ndarray:
    """Unit-sd noise, linearly interpolated between `knots` random points: slow random contours."""
    pts = rng.normal(0, 1, (n, knots + 1))
    pos = np.linspace(0, knots, length)
    i = np.minimum(pos.astype(np.int64), knots - 1)
    w = pos - i
    return pts[:, i] * (1 - w) + pts[:, i + 1] * w


def _envelope(freqs: np.ndarray, formants: np.ndarray, tilt: np.ndarray) -> np.ndarray:
    """|H(f)| per frame: three formant resonances (bandwidth 80-160 Hz) and a spectral tilt.

    freqs (B,), formants (N, T, 3), tilt (N, 1) -> (N, T, B)."""
    bw = np.array([80.0, 110.0, 160.0])
    f = freqs[None, None, :, None]
    fm = formants[:, :, None, :]
    res = 1.0 / np.sqrt(1.0 + ((f - fm) / (bw / 2)) ** 2)  # resonance magnitude near each formant
    env = res.sum(axis=-1) + 0.02
    slope = (np.maximum(freqs, 100.0) / 100.0)[None, None, :] ** (-tilt[:, :, None])
    return env * slope


def synthesize(
    labels: np.ndarray, speaker_ids: np.ndarray, voices: dict[str, np.ndarray], n_samples: int,
    rng: np.random.Generator, snr_db: float = 20.0,
) -> np.ndarray:
    """float32 waveforms (N, n_samples) in [-1, 1] for latent labels (N, 3) spoken by speakers `speaker_ids`."""
    n = len(labels)
    a, d, v = labels[:, 0:1], labels[:, 1:2], labels[:, 2:3]
    sp = {k: val[speaker_ids][:, None] for k, val in voices.items()}

    # rhythm: syllable phase, envelope, pauses
    rate = 2.5 + 3.5 * a + 0.4 * rng.normal(0, 1, (n, 1))
    rate = np.clip(rate, 1.5, 8.0) * (1 + 0.08 * _smooth_noise(rng, n, n_samples, 4))
    phase_syl = np.cumsum(rate, axis=1) / SAMPLE_RATE + rng.random((n, 1))
    syl = phase_syl.astype(np.int64)
    frac = phase_syl - syl
    n_syl = int(syl.max()) + 2
    pause_p = 0.35 - 0.25 * a
    pauses = rng.random((n, n_syl)) < pause_p
    vowel = rng.integers(0, len(_VOWELS), (n, n_syl))
    rows = np.arange(n)[:, None]
    voiced = ~pauses[rows, syl]
    env = np.sin(np.pi * np.clip((frac - 0.1) / 0.8, 0, 1)) ** 1.5 * voiced
    burst = ((frac < 0.1) & voiced) * (rng.random((n, n_syl)) < 0.6)[rows, syl]

    # pitch: level, range, contour direction (valence rising, dominance falling), jitter
    level = 2.0 ** ((7.0 * a - 2.0 * d + 3.0 * v - 3.0 + rng.normal(0, 0.6, (n, 1))) / 12.0)
    semitone_range = 1.0 + 6.0 * a
    contour = semitone_range * _smooth_noise(rng, n, n_samples, 6) * 0.5
    direction = (3.0 * (v - 0.5) - 1.5 * (d - 0.5)) * (frac - 0.5) * 2.0  # per-syllable glide
    jitter_sd = 0.008 * sp["jitter"] * (1.6 - 0.6 * v - 0.4 * d)
    jitter = jitter_sd * _smooth_noise(rng, n, n_samples, n_samples // 80)
    f0 = sp["f0"] * level * 2.0 ** ((contour + direction) / 12.0) * (1 + jitter)
    cycles = np.cumsum(f0, axis=1) / SAMPLE_RATE
    saw = 2.0 * (cycles - np.floor(cycles)) - 1.0
    shimmer = 1.0 + 0.1 * (1.4 - v) * _smooth_noise(rng, n, n_samples, n_samples // 120)
    breath = (sp["breath"] + 0.25 * (1 - v)) * rng.normal(0, 1, (n, n_samples))
    source = (saw * shimmer + breath) * env + 1.5 * burst * rng.normal(0, 1, (n, n_samples))

    # filter per STFT frame: formants of the current syllable's vowel, tilt
    frames = 1 + (n_samples - _N_FFT) // _HOP if n_samples >= _N_FFT else 1
    pad = max(0, (frames - 1) * _HOP + _N_FFT - n_samples)
    x = np.pad(source, ((0, 0), (0, pad + _N_FFT)))
    window = np.hanning(_N_FFT + 1)[:-1]
    idx = np.arange(_N_FFT)[None, :] + _HOP * np.arange(frames + 2)[:, None]
    spec = np.fft.rfft(x[:, idx] * window, axis=-1)  # (N, T, B)
    centres = np.minimum(idx[:, _N_FFT // 2], n_samples - 1)
    vow = _VOWELS[vowel[rows, syl[:, centres]]]  # (N, T, 3)
    shift = (1.0 - 0.06 * (d - 0.5))[:, :, None]  # dominance: a longer vocal tract, lower formants
    f2_smile = 1.0 + np.array([0.03, 0.14, 0.05])[None, None, :] * (v[:, :, None] - 0.5) * 2
    formants = vow * sp["tract"][:, :, None] * shift * f2_smile
    tilt = 0.8 - 0.8 * a + 0.2 * (1 - v) + sp["tilt"]  # extra to the sawtooth's own 1/k (-6 dB/octave)
    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / SAMPLE_RATE)
    spec *= _envelope(freqs, formants, tilt)
    frames_t = np.fft.irfft(spec, n=_N_FFT, axis=-1) * window
    out = np.zeros((n, x.shape[1]))
    for k in range(frames + 2):  # overlap-add (Hann^2 at 50% overlap sums to 1.5)
        out[:, k * _HOP : k * _HOP + _N_FFT] += frames_t[:, k]
    speech = out[:, :n_samples] / 1.5

    # loudness (arousal, dominance, speaker) against pink room noise
    speech /= np.sqrt((speech**2).mean(axis=1, keepdims=True)) + 1e-9
    gain_db = 10.0 * (a - 0.5) + 4.0 * (d - 0.5) + sp["loud_db"]
    snr = snr_db + gain_db + rng.normal(0, 3.0, (n, 1))
    white = np.fft.rfft(rng.normal(0, 1, (n, n_samples)), axis=1)
    white /= np.sqrt(np.maximum(np.fft.rfftfreq(n_samples, 1.0 / SAMPLE_RATE), 50.0))[None, :]
    noise = np.fft.irfft(white, n=n_samples, axis=1)
    noise /= np.sqrt((noise**2).mean(axis=1, keepdims=True)) + 1e-9
    wave = speech * 10.0 ** (snr / 20.0) + noise
    wave *= 0.3 / (np.abs(wave).max(axis=1, keepdims=True) + 1e-9) * 10.0 ** (rng.normal(0, 0.1, (n, 1)))
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def generate_speech(
    n: int, seed: int, *, n_speakers: int = 60, clip_seconds: float = 2.0, label_noise: float = 0.05,
    snr_db: float = 20.0, speaker_pool: np.ndarray | None = None, stream: int = 0, chunk: int = 128,
) -> dict[str, np.ndarray]:
    """n clips: {"waves" (n, L) float32, "labels" (n, 3) noisy corpus labels, "latent" (n, 3), "speaker" (n,)}.

    Same (seed, stream, arguments), same clips. `speaker_pool` restricts the speakers drawn (for
    splits by speaker); `stream` separates the random streams of the splits.
    """
    rng = np.random.default_rng([seed, 2, stream])
    voices = speakers(n_speakers, seed)
    pool = np.arange(n_speakers) if speaker_pool is None else np.asarray(speaker_pool)
    speaker_ids = rng.choice(pool, n)
    latent = latent_labels(n, rng)
    labels = np.clip(latent + rng.normal(0, label_noise, latent.shape), 0.0, 1.0)
    n_samples = int(round(clip_seconds * SAMPLE_RATE))
    waves = np.empty((n, n_samples), np.float32)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        chunk_rng = np.random.default_rng([seed, 3, stream, start])
        waves[sl] = synthesize(latent[sl], speaker_ids[sl], voices, n_samples, chunk_rng, snr_db)
    return {
        "waves": waves,
        "labels": labels.astype(np.float32),
        "latent": latent.astype(np.float32),
        "speaker": speaker_ids.astype(np.int64),
    }


def split_speakers(n_speakers: int, seed: int, test_share: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(train speakers, test speakers): a seeded partition, so test speakers are never heard in training."""
    order = np.random.default_rng([seed, 4]).permutation(n_speakers)
    n_test = max(1, int(round(test_share * n_speakers)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])
