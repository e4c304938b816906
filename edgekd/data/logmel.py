"""Wav2Small's log-mel front-end: one reference in numpy (host) and one in torch (inside `wav2small`).

Pipeline (Wav2Small release, REFERENCE.md section 2), for 16 kHz mono waveforms (N, L):

1. prenorm per clip: ``x <- (x - mean) / sqrt(var + 1e-7)`` (var = mean of (x - mean)^2).
2. spectrogram: two frozen ``Conv1d(1 -> 33, kernel 64, stride 32)`` holding the periodic-Hann-windowed
   DFT, ``re[k, n] = hann[n] cos(2 pi k n / 64)``, ``im[k, n] = -hann[n] sin(2 pi k n / 64)``, k = 0..32;
   power ``re^2 + im^2``. No padding: ``F = (L - 64) // 32 + 1`` frames (499 for 1 s).
3. log-mel: power (F, 33) @ mel filterbank (33, 26), clamp at 1e-10, ``10 log10``. The filterbank is
   the algorithm of librosa's default (``librosa.filters.mel(sr=16000, n_fft=64, n_mels=26, fmax=8000)``,
   htk=False, norm='slaney'), written out here in numpy (librosa is not a dependency, and was not compared):
   Slaney mel scale (linear below 1 kHz, 200/3 Hz per mel; logarithmic above, ln(6.4)/27 per mel),
   26 triangles between 28 points equally spaced in mel from 0 to 8 kHz, each triangle scaled by
   2 / (its bandwidth in Hz) ("Slaney" area normalisation). With 250 Hz FFT bins the lowest triangle
   (0-223 Hz) catches no bin: mel channel 0 is always the 1e-10 floor (-100 dB), as in the release.

Hardware input grid (`features_on_grid`): the hardware student `wav2small_hw` takes these features,
not the waveform. The host maps every dB value with one fixed affine map whose scale is a power of two

    ``v = (dB - LOGMEL_OFFSET_DB) / LOGMEL_SCALE_DB``  with  LOGMEL_OFFSET_DB = -32, LOGMEL_SCALE_DB = 16,

and rounds to the input quantizer's fixed-point grid (round half to even, saturate), e.g. ``fixed<8,3>``
for the default 8 bits / input_max 4: steps of 0.5 dB over [-96 dB, +32 dB). Prenormed speech (synthetic
corpus, 1 s windows) lies in [-92, +22] dB with 99.8% of values in [-60, +13] dB; only the -100 dB floor
(mel channel 0, digital silence) saturates, to -96 dB.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = [
    "AMIN",
    "FMAX",
    "HOP",
    "LOGMEL_OFFSET_DB",
    "LOGMEL_SCALE_DB",
    "N_BINS",
    "N_FFT",
    "N_MELS",
    "PRENORM_EPS",
    "SAMPLE_RATE",
    "LogMel",
    "dft_kernels",
    "features_on_grid",
    "log_mel",
    "mel_filterbank",
    "n_frames",
    "normalise_db",
]

SAMPLE_RATE = 16000
N_FFT = 64
HOP = 32
N_BINS = N_FFT // 2 + 1  # 33
N_MELS = 26
FMAX = 8000.0
PRENORM_EPS = 1e-7
AMIN = 1e-10
LOGMEL_OFFSET_DB = -32.0
LOGMEL_SCALE_DB = 16.0  # a power of two: the map to the input grid is a shift


def n_frames(n_samples: int) -> int:
    """Frames of the stride-32 DFT conv over `n_samples` (no padding)."""
    if n_samples < N_FFT:
        raise ValueError(f"a window needs at least {N_FFT} samples, got {n_samples}")
    return (n_samples - N_FFT) // HOP + 1


def dft_kernels() -> tuple[np.ndarray, np.ndarray]:
    """(real, imag) DFT kernels, each (33, 64) float64, periodic Hann window folded in."""
    n = np.arange(N_FFT)
    k = np.arange(N_BINS)[:, None]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    phase = 2 * np.pi * k * n / N_FFT
    return hann * np.cos(phase), -hann * np.sin(phase)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS, fmin: float = 0.0,
                   fmax: float = FMAX) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) Slaney mel filterbank with Slaney area normalisation (librosa's default)."""
    fft_hz = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.T.copy()


def log_mel(waveforms: np.ndarray) -> np.ndarray:
    """Host reference: (N, L) float waveforms at 16 kHz -> (N, F, 26) float32 log-mel dB."""
    x = np.asarray(waveforms, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"log_mel takes (N, L) waveforms, got shape {x.shape}")
    f = n_frames(x.shape[1])
    x = x - x.mean(axis=1, keepdims=True)
    x = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + PRENORM_EPS)
    idx = np.arange(f)[:, None] * HOP + np.arange(N_FFT)[None, :]
    frames = x[:, idx]  # (N, F, 64)
    re_k, im_k = dft_kernels()
    power = (frames @ re_k.T) ** 2 + (frames @ im_k.T) ** 2  # (N, F, 33)
    mel = power @ mel_filterbank()
    return (10.0 * np.log10(np.maximum(mel, AMIN))).astype(np.float32)


class LogMel(nn.Module):
    """Torch twin of `log_mel`: (N, L) -> (N, 1, F, 26), time on axis 2.

    The DFT kernels are frozen `Conv1d` parameters (requires_grad False), as in the release, so they
    show up in `parameters()`; the mel filterbank is a buffer.
    """

    def __init__(self) -> None:
        super().__init__()
        re_k, im_k = dft_kernels()
        self.conv_real = nn.Conv1d(1, N_BINS, N_FFT, stride=HOP, bias=False)
        self.conv_imag = nn.Conv1d(1, N_BINS, N_FFT, stride=HOP, bias=False)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.as_tensor(re_k, dtype=torch.float32)[:, None, :])
            self.conv_imag.weight.copy_(torch.as_tensor(im_k, dtype=torch.float32)[:, None, :])
        self.conv_real.weight.requires_grad_(False)
        self.conv_imag.weight.requires_grad_(False)
        self.register_buffer("mel_w", torch.as_tensor(mel_filterbank(), dtype=torch.float32))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav - wav.mean(dim=1, keepdim=True)
        x = x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + PRENORM_EPS)
        x = x[:, None, :]
        power = self.conv_real(x) ** 2 + self.conv_imag(x) ** 2  # (N, 33, F)
        mel = torch.matmul(power.transpose(1, 2), self.mel_w)  # (N, F, 26)
        return (10.0 * torch.log10(torch.clamp(mel, min=AMIN)))[:, None]


def normalise_db(db: np.ndarray) -> np.ndarray:
    """The fixed affine map of the module docstring: (dB - LOGMEL_OFFSET_DB) / LOGMEL_SCALE_DB."""
    return (np.asarray(db, dtype=np.float32) - np.float32(LOGMEL_OFFSET_DB)) / np.float32(LOGMEL_SCALE_DB)


def _input_format(fmt_or_cfg):
    from edgekd.fixedpoint import FixedPointFormat, fixed_input_scale

    if isinstance(fmt_or_cfg, FixedPointFormat):
        return fmt_or_cfg
    bits, max_abs = int(fmt_or_cfg.input_bits), float(fmt_or_cfg.input_max)
    frac = -round(math.log2(fixed_input_scale(bits, max_abs)))
    return FixedPointFormat(total_bits=bits, int_bits=bits - frac, signed=True)


def features_on_grid(feats: np.ndarray, fmt_or_cfg) -> np.ndarray:
    """Host log-mel (N, F, 26) dB -> the hardware student's input (N, 1, F, 26) float32 on its grid.

    `fmt_or_cfg` is the student's `FixedPointFormat` (edgekd.students.cell_cnn.input_quant_format) or a
    StudentConfig (its input_bits / input_max give the same grid). Applies `normalise_db`, then rounds
    half to even and saturates onto the grid (the hardware input port's ap_fixed type).
    """
    x = np.asarray(feats, dtype=np.float32)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[2] != N_MELS:
        raise ValueError(f"features_on_grid takes (N, F, {N_MELS}) log-mel dB, got shape {x.shape}")
    fmt = _input_format(fmt_or_cfg)
    v = torch.as_tensor(normalise_db(x)[:, None])
    return fmt.quantize(v).numpy().astype(np.float32)
