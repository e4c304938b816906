"""Audio teachers behind one interface: `runner.logits(waves (N, L) float32) -> (N, 3)` arousal, dominance, valence.

Contract for external audio teachers (how a lab plugs in its own Wav2Vec2/WavLM export):
- input: one float32 tensor (N, L), the raw mono waveform at 16 kHz in [-1, 1], L = data.window_seconds x 16,000
  (a fixed batch axis is accepted: the runner pads the last batch); the model does its own normalisation;
- output: the first output is (N, 3) = arousal, dominance, valence (on the scale of the corpus labels, [0, 1]).
ONNX files run with onnxruntime (CPU), TorchScript files with torch.jit.load. The file's sha256 keys the
annotation cache (edgekd.teachers.annotate), so a changed teacher file is never answered from the cache.

The runners reuse the image runners of edgekd.teachers.runner (loading, errors, fixed-batch padding) and
replace only the input contract: no image preprocessing, a waveform signature check.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.config import TeacherConfig
from edgekd.teachers.runner import (
    OnnxTeacherRunner,
    TeacherLoadError,
    TorchScriptTeacherRunner,
    TorchTeacherRunner,
)

log = logging.getLogger(__name__)

N_OUTPUTS = 3


class _WaveformMixin:
    """`logits` over raw waveforms: batches of (B, L) float32, no preprocessing; checks (N, 3) out."""

    num_classes: int | None
    input_size: int

    def logits(self, waves: np.ndarray, batch_size: int = 64) -> np.ndarray:
        waves = np.asarray(waves, dtype=np.float32)
        if waves.ndim != 2:
            raise ValueError(f"audio teacher takes waveforms (N, samples), got shape {waves.shape}")
        out = [np.asarray(self._run(torch.from_numpy(np.ascontiguousarray(waves[i : i + batch_size]))), np.float32)
               for i in range(0, len(waves), batch_size)]
        if not out:
            return np.zeros((0, N_OUTPUTS), np.float32)
        result = np.concatenate(out)
        if result.ndim != 2 or result.shape != (len(waves), N_OUTPUTS):
            raise TeacherLoadError(
                f"{self.describe()['kind']} audio teacher returned shape {result.shape}; expected ({len(waves)}, 3) "
                "= arousal, dominance, valence"
            )
        if not np.isfinite(result).all():
            raise TeacherLoadError(f"{self.describe()['kind']} audio teacher returned NaN or inf")
        return result


class TorchAudioTeacherRunner(_WaveformMixin, TorchTeacherRunner):
    """A waveform nn.Module (the built-in wav2vec2 teacher, trained here or from a checkpoint)."""

    def __init__(self, model: nn.Module, window: int) -> None:
        super().__init__(model, window, N_OUTPUTS)


class TorchScriptAudioTeacherRunner(_WaveformMixin, TorchScriptTeacherRunner):
    def __init__(self, path: Path | str, window: int) -> None:
        super().__init__(path, window, N_OUTPUTS)


class OnnxAudioTeacherRunner(_WaveformMixin, OnnxTeacherRunner):
    def __init__(self, path: Path | str, window: int) -> None:
        super().__init__(path, window, N_OUTPUTS)

    def _check_signature(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        want = f"one float input (N, {self.input_size}) (16 kHz waveform) and a first output (N, 3) (A, D, V)"
        if len(inputs) != 1:
            raise TeacherLoadError(f"{self.path}: model has {len(inputs)} inputs; expected {want}")
        shape = inputs[0].shape
        ok = len(shape) == 2 and (not isinstance(shape[1], int) or shape[1] == self.input_size)
        if not ok or inputs[0].type != "tensor(float)":
            raise TeacherLoadError(f"{self.path}: input '{inputs[0].name}' is {inputs[0].type} {shape}; expected {want}")
        out_shape = outputs[0].shape
        if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != N_OUTPUTS):
            raise TeacherLoadError(f"{self.path}: first output '{outputs[0].name}' has shape {out_shape}; expected {want}")
        self._input_name = inputs[0].name
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None


def load_audio_teacher(cfg: TeacherConfig, window: int) -> TorchTeacherRunner | OnnxTeacherRunner:
    """Runner for an audio teacher loaded from teacher.path (sources checkpoint, torchscript, onnx)."""
    if cfg.path is None:
        raise TeacherLoadError(f"teacher.path is required when teacher.source is '{cfg.source}'")
    if cfg.source == "onnx":
        runner: TorchTeacherRunner | OnnxTeacherRunner = OnnxAudioTeacherRunner(cfg.path, window)
    elif cfg.source == "torchscript":
        runner = TorchScriptAudioTeacherRunner(cfg.path, window)
    elif cfg.source == "checkpoint":
        base = TorchTeacherRunner.from_checkpoint(cfg.path, cfg.arch, N_OUTPUTS, cfg)
        runner = TorchAudioTeacherRunner(base.model, window)
        runner._sha = base._sha
    else:
        raise ValueError(f"teacher.source '{cfg.source}' is trained, not loaded")
    log.info("audio teacher loaded: %s", runner.describe())
    return runner
