"""One interface over every kind of teacher: `TeacherRunner.logits(uint8 images) -> float32 logits`.

Contract for external teachers (TorchScript and ONNX files): the model takes float32 images of
shape (N, C, S, S) (C = data.channels: 1 grey, 3 RGB), already normalised exactly as `edgekd.data.transforms.to_model_input` does
(grey levels / 255, then (x - 0.4819) / 0.1484, bilinear antialiased resize to S = teacher.input_size),
and returns raw logits of shape (N, num_classes) in the class order of the data (B, T4, T8 or B, T).
The runner does the preprocessing; the file must not repeat it.

A checkpoint (`teacher.source: checkpoint`) is a `state_dict` of the registered architecture
`teacher.arch`, saved with `torch.save(model.state_dict(), path)`; it is loaded with
`weights_only=True`, so it can hold tensors only, never code.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.config import TeacherConfig
from edgekd.data.transforms import to_model_input
from edgekd.hashing import file_sha256
from edgekd.registry import TEACHERS
from edgekd.safety import check_onnx_model

log = logging.getLogger(__name__)


class TeacherLoadError(ValueError):
    """A teacher file that cannot be used; the message names the file and what was expected."""


class TeacherRunner(ABC):
    """Runs a teacher on uint8 images (N, H, W) and returns float32 logits (N, num_classes)."""

    input_size: int
    num_classes: int | None = None

    @property
    @abstractmethod
    def sha256(self) -> str:
        """Hash of the weights (or file): the cache key for the teacher's annotations."""

    @property
    def num_params(self) -> int | None:
        return None

    @abstractmethod
    def _run(self, x: torch.Tensor) -> np.ndarray:
        """Logits of one preprocessed batch (B, 1, S, S)."""

    def logits(self, images_uint8: np.ndarray, batch_size: int = 256) -> np.ndarray:
        images_uint8 = np.asarray(images_uint8)
        out = []
        for i in range(0, len(images_uint8), batch_size):
            x = to_model_input(images_uint8[i : i + batch_size], self.input_size)
            out.append(np.asarray(self._run(x), dtype=np.float32))
        if not out:
            return np.zeros((0, self.num_classes or 0), np.float32)
        result = np.concatenate(out)
        if result.ndim != 2 or result.shape[0] != len(images_uint8):
            raise TeacherLoadError(f"{self.describe()['kind']} teacher returned shape {result.shape}; expected (N, classes)")
        if self.num_classes is not None and result.shape[1] != self.num_classes:
            raise TeacherLoadError(
                f"teacher returned {result.shape[1]} logits per image; the data has {self.num_classes} classes"
            )
        return result

    def describe(self) -> dict:
        return {
            "kind": type(self).__name__,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "num_params": self.num_params,
            "sha256": self.sha256,
        }


def state_dict_sha256(model: nn.Module) -> str:
    """Hash of every parameter and buffer (names, dtypes, shapes, values) in a fixed order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class TorchTeacherRunner(TeacherRunner):
    """An nn.Module teacher (trained here or loaded from a state_dict checkpoint)."""

    def __init__(self, model: nn.Module, input_size: int, num_classes: int | None = None) -> None:
        self.model = model.eval()
        self.input_size = input_size
        self.num_classes = num_classes if num_classes is not None else getattr(model, "num_classes", None)
        self._sha: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha is None:  # weights do not change once handed to a runner
            self._sha = state_dict_sha256(self.model)
        return self._sha

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> np.ndarray:
        self.model.eval()
        return self.model(x).float().numpy()

    @classmethod
    def from_checkpoint(cls, path: Path | str, arch: str, num_classes: int, cfg: TeacherConfig,
                        in_channels: int = 1) -> "TorchTeacherRunner":
        path = Path(path)
        model = TEACHERS.get(arch)(num_classes, cfg, **({"in_channels": in_channels} if in_channels != 1 else {}))
        if not path.is_file():
            raise TeacherLoadError(f"{path}: checkpoint not found; set teacher.path to a saved state_dict (.pt)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for corrupt or unsafe files
            raise TeacherLoadError(
                f"{path}: cannot load checkpoint ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                "expected a state_dict saved with torch.save(model.state_dict(), path)"
            ) from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise TeacherLoadError(f"{path}: expected a state_dict (name -> tensor), got {type(state).__name__}")
        expected = model.state_dict()
        for key, ref in expected.items():
            if key not in state:
                raise TeacherLoadError(
                    f"{path}: missing key '{key}' for teacher arch '{arch}' (width {cfg.width}, {num_classes} classes); "
                    "check teacher.arch, teacher.width and data.num_classes match the checkpoint"
                )
            if tuple(state[key].shape) != tuple(ref.shape):
                raise TeacherLoadError(
                    f"{path}: key '{key}' has shape {tuple(state[key].shape)} but arch '{arch}' (width {cfg.width}, "
                    f"{num_classes} classes, {in_channels} input channel(s)) expects {tuple(ref.shape)}; check "
                    "teacher.width, data.num_classes and data.channels"
                )
        extra = sorted(set(state) - set(expected))
        if extra:
            raise TeacherLoadError(f"{path}: unexpected key '{extra[0]}' for teacher arch '{arch}'; is this the right checkpoint?")
        model.load_state_dict(state)
        runner = cls(model, cfg.input_size, num_classes)
        runner._sha = file_sha256(path)
        return runner


class TorchScriptTeacherRunner(TorchTeacherRunner):
    def __init__(self, path: Path | str, input_size: int, num_classes: int | None = None) -> None:
        self.path = Path(path)
        self.input_size = input_size
        self.num_classes = num_classes
        if not self.path.is_file():
            raise TeacherLoadError(f"{self.path}: TorchScript file not found; set teacher.path")
        try:
            self.model = torch.jit.load(str(self.path), map_location="cpu").eval()
        except Exception as err:
            raise TeacherLoadError(
                f"{self.path}: not a loadable TorchScript module ({type(err).__name__}); "
                "export one with torch.jit.script(model).save(path) or torch.jit.trace"
            ) from None
        self._sha = file_sha256(self.path)  # the file is the identity (TorchTeacherRunner.sha256 reads it)

    @torch.no_grad()
    def _run(self, x: torch.Tensor) -> np.ndarray:
        out = self.model(x)
        if not isinstance(out, torch.Tensor):
            raise TeacherLoadError(f"{self.path}: the module returned {type(out).__name__}; expected a logits tensor")
        return out.float().numpy()

    def describe(self) -> dict:
        return {**super().describe(), "path": str(self.path)}


class OnnxTeacherRunner(TeacherRunner):
    def __init__(self, path: Path | str, input_size: int, num_classes: int | None = None, in_channels: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.input_size = input_size
        self.num_classes = num_classes
        self.in_channels = in_channels
        if not self.path.is_file():
            raise TeacherLoadError(f"{self.path}: ONNX file not found; set teacher.path")
        check_onnx_model(self.path, TeacherLoadError, "ONNX teacher")  # untrusted file: checker first
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            # the build's thread count (edgekd.determinism), not the machine's core count: same config and
            # threads, same logits
            opts.intra_op_num_threads = torch.get_num_threads()
            opts.inter_op_num_threads = 1
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise TeacherLoadError(f"{self.path}: not a valid ONNX model ({str(err).splitlines()[0][:200]})") from None
        self._check_signature()
        self._sha = file_sha256(self.path)

    def _check_signature(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        want = (f"one float input of shape (N, {self.in_channels}, {self.input_size}, {self.input_size}) and logits "
                f"(N, {self.num_classes or 'classes'})")
        if len(inputs) != 1:
            raise TeacherLoadError(f"{self.path}: model has {len(inputs)} inputs; expected {want}")
        shape = inputs[0].shape
        fixed = [self.in_channels, self.input_size, self.input_size]
        ok = len(shape) == 4 and all(not isinstance(d, int) or d == f for d, f in zip(shape[1:], fixed))
        if not ok or inputs[0].type != "tensor(float)":
            raise TeacherLoadError(f"{self.path}: input '{inputs[0].name}' is {inputs[0].type} {shape}; expected {want}")
        out_shape = outputs[0].shape
        if len(out_shape) != 2 or (
            self.num_classes is not None and isinstance(out_shape[1], int) and out_shape[1] != self.num_classes
        ):
            raise TeacherLoadError(f"{self.path}: first output '{outputs[0].name}' has shape {out_shape}; expected {want}")
        self._input_name = inputs[0].name
        # a model exported without a dynamic batch axis accepts exactly that many images per call
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None

    @property
    def sha256(self) -> str:
        return self._sha

    def _run(self, x: torch.Tensor) -> np.ndarray:
        xs = x.numpy()
        if self._fixed_batch is None:
            return self.session.run(None, {self._input_name: xs})[0]
        b, out = self._fixed_batch, []
        for i in range(0, len(xs), b):
            chunk = xs[i : i + b]
            n = len(chunk)
            if n < b:  # pad the last chunk to the fixed batch, then drop the padding's logits
                chunk = np.concatenate([chunk, np.zeros((b - n, *chunk.shape[1:]), chunk.dtype)])
            out.append(self.session.run(None, {self._input_name: chunk})[0][:n])
        return np.concatenate(out)

    def describe(self) -> dict:
        return {**super().describe(), "path": str(self.path)}


def load_teacher(cfg: TeacherConfig, num_classes: int, in_channels: int = 1) -> TeacherRunner:
    """Runner for a teacher loaded from teacher.path (sources checkpoint, torchscript, onnx), taking images of
    `in_channels` channels (`data.channels`)."""
    if cfg.path is None:
        raise TeacherLoadError(f"teacher.path is required when teacher.source is '{cfg.source}'")
    if cfg.source == "checkpoint":
        runner: TeacherRunner = TorchTeacherRunner.from_checkpoint(cfg.path, cfg.arch, num_classes, cfg, in_channels)
    elif cfg.source == "torchscript":
        runner = TorchScriptTeacherRunner(cfg.path, cfg.input_size, num_classes)
    elif cfg.source == "onnx":
        runner = OnnxTeacherRunner(cfg.path, cfg.input_size, num_classes, in_channels)
    else:
        raise ValueError(f"teacher.source '{cfg.source}' is trained, not loaded; use train_teacher")
    log.info("teacher loaded: %s", runner.describe())
    return runner


class MergedClassesRunner(TeacherRunner):
    """A teacher over finer classes, answering for merged ones: logit of a group = logsumexp of its members.

    softmax of the merged logits equals the summed class probabilities exactly, so a B/T4/T8 teacher
    becomes a B-vs-T teacher without retraining (log p(T) = log(p(T4) + p(T8)) up to the shared constant).
    """

    def __init__(self, inner: TeacherRunner, groups: list[list[int]]) -> None:
        self.inner = inner
        self.groups = groups
        self.input_size = inner.input_size
        self.num_classes = len(groups)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.inner.sha256}:{self.groups}".encode()).hexdigest()

    @property
    def num_params(self) -> int | None:
        return self.inner.num_params

    def _run(self, x: torch.Tensor) -> np.ndarray:
        fine = torch.as_tensor(np.asarray(self.inner._run(x), dtype=np.float32))
        return torch.stack([torch.logsumexp(fine[:, g], dim=1) for g in self.groups], dim=1).numpy()
