"""The one contract between the two halves of a build: what the model half hands the hardware half.

Every task's `export` step (edgekd.tasks) writes it into its folder; the hardware steps (hls, project,
report's hardware sections) read only this, never the task's own files, and never ask which task it is.

    contract.json             the fields of `HardwareContract` below
    verify_inputs.npy         a sample on the input grid (N, ...), float32: C-simulated bit for bit
    qonnx_outputs.npy         the cleaned QONNX model's outputs on it: the reference
    verify_labels.npy         (classification) the sample's labels, for the board project's test vectors
    <split>_inputs.npy        (optional) the whole split on the input grid: the emulator runs all of it
    <split>_targets.npz       its targets, one array per name (labels, teacher annotations, clip ids, ...)

`scoring` says how outputs are scored (edgekd.scoring): classification metrics, regression (CCC) metrics,
or none for a model that came without data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.io import load_npy, read_json, save_npy, write_json

CONTRACT = "contract.json"


@dataclass
class HardwareContract:
    qonnx: str                      # the cleaned QONNX file, in the export folder
    input_precision: str            # the input grid as an hls4ml type, e.g. fixed<8,3>
    input_shape: list[int]          # the model's input, batch of 1 (NCHW as exported)
    output_names: list[str]         # one name per output value (class names, A/D/V, output0...)
    classifier: bool                # outputs are class scores (a sort trigger can fire on them)
    scoring: dict[str, Any]         # {"kind": "classification" | "regression" | "none", ...}
    exact: bool = True              # every layer is expected bit-exact in hls4ml (else: measured, not required)
    allow_inexact: bool = False     # a mismatch of an `exact` model is reported instead of stopping the build
    check_support: bool = True      # hls4ml conversion checks edgekd's supported-op list (own students)
    input_block: int = 1            # k x k pixel blocks per stream item (edgekd.data.transforms.space_to_depth)
    image_shape: list[int] | None = None  # (C, H, W) of the camera image behind a blocked input
    splits: list[str] = field(default_factory=list)  # splits whose inputs and targets are handed over
    host_postprocessing: list[dict] = field(default_factory=list)  # ops the host runs after the FPGA
    approximate_layers: list[str] = field(default_factory=list)  # layers known not to be exact (for errors)
    folder: Path = Path(".")

    @property
    def qonnx_path(self) -> Path:
        return self.folder / self.qonnx

    def verify_inputs(self) -> np.ndarray:
        return load_npy(self.folder / "verify_inputs.npy")

    def reference_outputs(self) -> np.ndarray:
        return load_npy(self.folder / "qonnx_outputs.npy")

    def split_inputs(self, split: str) -> np.ndarray:
        return load_npy(self.folder / f"{split}_inputs.npy")

    def split_targets(self, split: str) -> dict[str, np.ndarray]:
        with np.load(self.folder / f"{split}_targets.npz", allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def save(self, folder: Path, verify_inputs: np.ndarray, reference_outputs: np.ndarray,
             verify_labels: np.ndarray | None = None,
             splits: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] | None = None) -> None:
        """Write the contract and its arrays into `folder` (the export step's staging folder)."""
        folder = Path(folder)
        save_npy(folder / "verify_inputs.npy", np.asarray(verify_inputs, dtype=np.float32))
        save_npy(folder / "qonnx_outputs.npy", np.asarray(reference_outputs))
        if verify_labels is not None:
            save_npy(folder / "verify_labels.npy", np.asarray(verify_labels))
        self.splits = []
        for name, (inputs, targets) in (splits or {}).items():
            save_npy(folder / f"{name}_inputs.npy", np.asarray(inputs, dtype=np.float32))
            np.savez(folder / f"{name}_targets.npz", **{k: np.asarray(v) for k, v in targets.items()})
            self.splits.append(name)
        body = {k: v for k, v in asdict(self).items() if k != "folder"}
        write_json(folder / CONTRACT, body)

    @classmethod
    def load(cls, folder: Path) -> "HardwareContract":
        path = Path(folder) / CONTRACT
        if not path.exists():
            from edgekd.errors import BuildError

            raise BuildError(f"{path}: no hardware contract; re-run the export step (edgekd build --from export)")
        return cls(**read_json(path), folder=Path(folder))
