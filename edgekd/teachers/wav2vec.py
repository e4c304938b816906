"""Built-in Wav2Vec2-style speech-emotion teacher and its training on corpus labels.

Architecture (after Baevski et al., wav2vec 2.0, 2020, scaled to train in minutes on a CPU):
  per-window normalisation (x - mean) / sqrt(var + 1e-7)
  -> convolutional feature encoder on the raw 16 kHz waveform: 7 Conv1d (kernels 10,3,3,3,3,2,2, strides
     5,2,2,2,2,2,2 = 320 samples per frame, 50 frames per second), GroupNorm after the first, GELU
  -> LayerNorm + linear projection to `dim`, a convolutional relative position embedding (kernel 15, groups 8)
  -> transformer encoder (`layers` pre-norm blocks, `heads` heads, feed-forward 4 x dim, GELU)
  -> mean pooling over time -> LayerNorm -> Linear(dim, dim) -> tanh -> Linear(dim, 3) = arousal, dominance, valence.
With the defaults (conv 128 channels, dim 128, 4 layers) it has about 1.2M parameters.

Trained with 1 - mean CCC + MSE (edgekd.distill.losses.concordance_cc) on the corpus labels, AdamW with a
one-cycle schedule; the state with the best validation mean CCC is kept.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.config import TeacherConfig
from edgekd.data.batches import batches_per_pass, shuffled_batches
from edgekd.distill.losses import concordance_cc
from edgekd.progress import progress_bar
from edgekd.registry import TEACHERS

log = logging.getLogger(__name__)

# (kernel, stride) of the feature encoder, as in wav2vec 2.0
_CONV_LAYERS = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))


class Wav2VecTeacher(nn.Module):
    """Waveform (N, L) float32 at 16 kHz -> (N, 3) arousal, dominance, valence."""

    def __init__(self, n_outputs: int = 3, conv_channels: int = 128, dim: int = 128, layers: int = 4, heads: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"teacher.wav2vec.dim ({dim}) must be a multiple of teacher.wav2vec.heads ({heads})")
        convs: list[nn.Module] = []
        c_in = 1
        # narrower early layers (they run at the highest rates): most of the cost on a CPU
        widths = [max(8, conv_channels * f // 4) for f in (1, 2, 3, 4, 4, 4, 4)]
        for i, ((k, s), c_out) in enumerate(zip(_CONV_LAYERS, widths)):
            convs.append(nn.Conv1d(c_in, c_out, k, s, bias=False))
            if i == 0:
                convs.append(nn.GroupNorm(c_out, c_out))
            convs.append(nn.GELU())
            c_in = c_out
        self.feature_encoder = nn.Sequential(*convs)
        self.feature_norm = nn.LayerNorm(conv_channels)
        self.projection = nn.Linear(conv_channels, dim)
        groups = 8 if dim % 8 == 0 else 1
        self.position = nn.Conv1d(dim, dim, 15, padding=7, groups=groups)
        block = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.1, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, n_outputs))
        self.n_outputs = n_outputs

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave - wave.mean(dim=1, keepdim=True)
        x = x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-7)
        feats = self.feature_encoder(x.unsqueeze(1)).transpose(1, 2)  # (N, T, C)
        h = self.projection(self.feature_norm(feats))
        h = h + F.gelu(self.position(h.transpose(1, 2))).transpose(1, 2)
        h = self.encoder(h)
        return self.head(h.mean(dim=1))


@TEACHERS.register("wav2vec2")
def build_wav2vec_teacher(n_outputs: int, cfg: TeacherConfig) -> Wav2VecTeacher:
    w = cfg.wav2vec
    return Wav2VecTeacher(n_outputs, w.conv_channels, w.dim, w.layers, w.heads)


@torch.no_grad()
def predict_waves(model: nn.Module, waves: np.ndarray | torch.Tensor, batch_size: int = 64) -> np.ndarray:
    model.eval()
    x = torch.as_tensor(np.asarray(waves, dtype=np.float32))
    if len(x) == 0:
        return np.zeros((0, getattr(model, "n_outputs", 3)), np.float32)
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).float().numpy()


def _random_gain_shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Label-preserving augmentation: circular time shift (up to 10%) per batch."""
    shift = int(torch.randint(0, max(1, x.shape[1] // 10), (1,), generator=gen))
    return torch.roll(x, shift, dims=1) if shift else x


def train_audio_teacher(
    model: nn.Module, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
    cfg: TeacherConfig, seed: int, steps_per_epoch: int | None = None,
) -> list[dict]:
    """Train in place on windows (N, L) with labels (N, 3); returns per-epoch history; keeps the best val CCC.
    `steps_per_epoch` (default one pass) fixes the steps per epoch, batches from successive shuffles."""
    if len(x_train) != len(y_train):
        raise ValueError(f"{len(x_train)} training windows but {len(y_train)} labels")
    if not np.isfinite(y_train).all():
        raise ValueError("the training split has no corpus labels; load an external teacher (teacher.source: onnx "
                         "or torchscript) to annotate an unlabelled corpus")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x_train), torch.as_tensor(y_train, dtype=torch.float32)
    steps = steps_per_epoch or batches_per_pass(len(xt), cfg.batch_size)
    batches = shuffled_batches(len(xt), cfg.batch_size, gen)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=0.15)
    history: list[dict] = []
    best, best_state = -np.inf, copy.deepcopy(model.state_dict())
    with progress_bar() as bar:
        task = bar.add_task("train teacher (wav2vec2)", total=cfg.epochs * steps)
        for epoch in range(cfg.epochs):
            t0 = time.perf_counter()
            model.train()
            total, seen = 0.0, 0
            for _ in range(steps):
                idx = next(batches)
                if len(idx) < 2:
                    continue
                out = model(_random_gain_shift(xt[idx], gen))
                loss = 1.0 - concordance_cc(out, yt[idx]).mean() + F.mse_loss(out, yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
                bar.advance(task)
            val = None
            if len(x_val):
                pv = torch.as_tensor(predict_waves(model, x_val))
                val = float(concordance_cc(pv, torch.as_tensor(y_val, dtype=torch.float32)).mean())
            history.append({"epoch": epoch + 1, "loss": total / max(seen, 1), "val_ccc_mean": val,
                            "seconds": round(time.perf_counter() - t0, 2)})
            log.info("teacher epoch %d/%d: loss %.4f, val mean CCC %s (%.1f s)", epoch + 1, cfg.epochs,
                     history[-1]["loss"], "n/a" if val is None else f"{val:.4f}", history[-1]["seconds"])
            if val is None or val > best:
                best, best_state = (val if val is not None else best), copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return history
