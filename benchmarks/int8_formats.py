"""Which int8 ONNX format keeps wav2small closest to float, on CPUs with and without VNNI.

For each format of edgekd.export.int8_onnx.FORMATS: size in bytes and, on the test windows of an audio
build, the correlation of the int8 outputs with the float ONNX outputs (all outputs pooled, as the test
does), per-dimension CCC against float, and the max abs error. The same saved models and windows are then
evaluated under `qemu-x86_64 -cpu EPYC-Rome` (Debian package qemu-user): an AMD EPYC with AVX2 and
neither AVX-512 nor VNNI, the kind of CPU on which onnxruntime's U8S8 kernels saturate. qemu emulates the
CPUID that onnxruntime's MLAS dispatches on, so the AVX2 (non-VNNI) kernels really run. The CPU features
each run saw are recorded beside its figures.

Run: `.venv/bin/python benchmarks/int8_formats.py --build BUILD` where BUILD is an audio build that has
run at least to `distill` (e.g. `.venv/bin/edgekd build examples/wav2small.yaml --to distill`).
Prints and saves JSON (benchmarks/results/int8_formats.json); never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EMULATED_CPU = "EPYC-Rome"  # AVX2, no AVX-512, no VNNI
QEMU_WINDOWS = 300


def _ccc(a: np.ndarray, b: np.ndarray) -> float:
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    return float(2 * cov / (a.var() + b.var() + (a.mean() - b.mean()) ** 2))


def evaluate(folder: Path, limit: int | None = None) -> dict:
    """Run every saved model in `folder` on its saved windows (the first `limit`); figures against float."""
    from edgekd.export.int8_onnx import FORMATS, run_onnx_batches
    from edgekd.determinism import cpu_features

    x = np.load(folder / "windows.npy")[:limit]
    ref = run_onnx_batches(folder / "float.onnx", x)
    out = {"cpu": cpu_features(), "windows": int(len(x)), "formats": {}}
    for fmt in FORMATS:
        q = run_onnx_batches(folder / f"{fmt}.onnx", x)
        out["formats"][fmt] = {
            "corr_vs_float": round(float(np.corrcoef(q.ravel(), ref.ravel())[0, 1]), 5),
            "ccc_vs_float_per_dim": [round(_ccc(q[:, d], ref[:, d]), 4) for d in range(q.shape[1])],
            "max_abs_error": round(float(np.max(np.abs(q - ref))), 5),
        }
    return out


def _trained_model(build: Path):
    import torch

    from edgekd.config import parse_config
    from edgekd.data.audio import AudioSplits
    from edgekd.registry import STUDENTS

    cfg = parse_config({"name": "bench", "task": "regression", "data": {"source": "synthetic_speech"}})
    splits = AudioSplits.load(build / "data" / "splits.npz")
    model = STUDENTS.get("wav2small")(cfg.student, 3, False, n_samples=splits.window)
    model.load_state_dict(torch.load(build / "distill" / "wav2small.pt", weights_only=True))
    return model, splits.x["train"], splits.x["test"], splits.window


def main(build: Path | None, emulate: bool = True, keep: Path | None = None) -> dict:
    from edgekd.export.int8_onnx import FORMATS, quantize_onnx_int8
    from edgekd.students.wav2small import export_float_onnx, frontend_nodes

    if build is None:
        raise SystemExit("pass --build BUILD: an audio build that has run to distill (see the docstring)")
    model, train, test, window = _trained_model(build)
    folder = Path(keep or tempfile.mkdtemp(prefix="int8_formats_"))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "windows.npy", test.astype(np.float32))
    float_onnx = export_float_onnx(model, folder / "float.onnx", window)
    calib = train[np.random.default_rng(0).choice(len(train), size=min(256, len(train)), replace=False)]
    sizes = {}
    for fmt in FORMATS:
        info = quantize_onnx_int8(float_onnx, folder / f"{fmt}.onnx", fmt, exclude_nodes=frontend_nodes(float_onnx),
                                  calibration=calib)
        sizes[fmt] = info["bytes"]
    runs = {"native": evaluate(folder)}
    if emulate:
        qemu = shutil.which("qemu-x86_64")
        if qemu is None:
            runs[f"qemu_{EMULATED_CPU}"] = {"skipped": "qemu-x86_64 not found (apt-get install qemu-user)"}
        else:
            # qemu's AVX2 emulation is ~100x slower: a 300-window sample of the same windows
            proc = subprocess.run([qemu, "-cpu", EMULATED_CPU, sys.executable, __file__, "--evaluate", str(folder),
                                   "--limit", str(QEMU_WINDOWS)], capture_output=True, text=True, check=True)
            runs[f"qemu_{EMULATED_CPU}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    out = {
        "what": "int8 wav2small vs its float ONNX on the audio test windows (onnxruntime 1 thread)",
        "build": str(build),
        "float_onnx_bytes": float_onnx.stat().st_size,
        "int8_bytes": sizes,
        "runs": runs,
        "worst_corr_over_cpus": {f: min(r["formats"][f]["corr_vs_float"] for r in runs.values() if "formats" in r)
                                 for f in FORMATS},
    }
    print(json.dumps(out, indent=2))
    dest = HERE / "results" / "int8_formats.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    if keep is None:
        shutil.rmtree(folder, ignore_errors=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=None, help="an audio build folder (run at least to distill)")
    ap.add_argument("--no-emulate", action="store_true", help="skip the qemu AVX2-only run")
    ap.add_argument("--keep", type=Path, default=None, help="keep the models and windows in this folder")
    ap.add_argument("--evaluate", type=Path, default=None, help=argparse.SUPPRESS)  # the qemu child
    ap.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.evaluate is not None:
        print(json.dumps(evaluate(args.evaluate, args.limit)))
    else:
        main(args.build, not args.no_emulate, args.keep)
