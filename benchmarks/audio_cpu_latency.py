"""onnxruntime CPU time per 10 s clip: the Wav2Vec2-style teacher, the float and int8 wav2small and wav2small_hw.

Each model is exported to plain ONNX for one 10 s clip at 16 kHz (160,000 samples) and run with
onnxruntime on the CPU (1 intra-op thread, so the figure does not depend on the machine's core count):
median of `--runs` timed runs after 3 warm-up runs. wav2small_hw is the hardware student's float twin
(same layers, BatchNorm folded at export by onnxruntime's optimizer) on host log-mel features; its host
front-end (edgekd.data.logmel.log_mel + features_on_grid in numpy) is timed separately and added.
Latency does not depend on the weights, so the models are freshly initialised (default configs), unless
`--build DIR` names an audio build whose teacher.pt / wav2small.pt / float.pt are then loaded.

Paper anchors (arXiv 2408.13920): 670 ms for Wav2Vec2, 7 ms for a distilled MobileNetV4 per 10 s clip.
Prints and saves JSON (benchmarks/results/audio_cpu_latency.json); never part of the tests. Run it as
`OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/audio_cpu_latency.py --build DIR` so that
the numpy front-end is single-threaded too (multi-threaded BLAS on a loaded machine varied 4-78 ms).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgekd.config import parse_config
from edgekd.determinism import cpu_features
from edgekd.registry import STUDENTS, TEACHERS

SECONDS = 10.0
N_SAMPLES = int(SECONDS * 16000)


def _session(path: Path):
    from edgekd.export.int8_onnx import onnx_session

    return onnx_session(path, threads=1)


def _time(fn, runs: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def _export(model: torch.nn.Module, x: torch.Tensor, path: Path) -> Path:
    model.eval()
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
    return path


def main(runs: int = 20, build: Path | None = None) -> dict:
    from edgekd.data.logmel import features_on_grid, log_mel
    from edgekd.students.wav2small import count_wav2small_params, export_int8_onnx

    torch.manual_seed(0)
    cfg = parse_config({"name": "bench", "task": "regression", "data": {"source": "synthetic_speech"}})
    teacher = TEACHERS.get("wav2vec2")(3, cfg.teacher)
    w2s = STUDENTS.get("wav2small")(cfg.student, 3, False, n_samples=N_SAMPLES)
    hw = STUDENTS.get("wav2small_hw")(cfg.student, 3, False, n_samples=N_SAMPLES)
    if build is not None:
        teacher.load_state_dict(torch.load(build / "teacher" / "teacher.pt", weights_only=True))
        w2s.load_state_dict(torch.load(build / "distill" / "wav2small.pt", weights_only=True))
    wave = np.random.default_rng(0).normal(0, 0.1, (1, N_SAMPLES)).astype(np.float32)
    feats = features_on_grid(log_mel(wave), cfg.student)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, x in (
            ("teacher_wav2vec2", teacher, torch.as_tensor(wave)),
            ("wav2small", w2s, torch.as_tensor(wave)),
            ("wav2small_hw", hw, torch.as_tensor(feats)),
        ):
            path = _export(model, x, Path(tmp) / f"{name}.onnx")
            sess = _session(path)
            feed = {sess.get_inputs()[0].name: x.numpy()}
            ms = _time(lambda s=sess, f=feed: s.run(None, f), runs)
            results[name] = {
                "ms_per_10s_clip": round(ms, 3),
                "params": count_wav2small_params(model) if name != "teacher_wav2vec2"
                else sum(p.numel() for p in model.parameters()),
                "onnx_bytes": path.stat().st_size,
                "input_shape": list(x.shape),
            }
        # the int8 wav2small as builds hand it out (edgekd.export.int8_onnx.DEFAULT_FORMAT)
        int8 = export_int8_onnx(Path(tmp) / "wav2small.onnx", Path(tmp) / "wav2small.int8.onnx")
        sess = _session(Path(tmp) / "wav2small.int8.onnx")
        feed = {sess.get_inputs()[0].name: wave}
        results["wav2small_int8"] = {"ms_per_10s_clip": round(_time(lambda: sess.run(None, feed), runs), 3),
                                     "onnx_bytes": int8["bytes"], "int8_format": int8["format"]}
    host_ms = _time(lambda: features_on_grid(log_mel(wave), cfg.student), runs)
    results["wav2small_hw"]["host_logmel_ms"] = round(host_ms, 3)
    results["wav2small_hw"]["ms_per_10s_clip_with_host_logmel"] = round(results["wav2small_hw"]["ms_per_10s_clip"] + host_ms, 3)
    out = {
        "what": "onnxruntime CPU, 1 thread, median ms per 10 s clip at 16 kHz (batch 1)",
        "runs": runs,
        "weights": str(build) if build else "fresh init (latency does not depend on weights)",
        # onnxruntime picks its kernels by these (int8: VNNI or not); figures from CPUs that differ here differ
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "features": cpu_features()},
        "models": results,
        "paper_anchor_ms": {"wav2vec2": 670.0, "mobilenetv4_distilled": 7.0, "source": "arXiv 2408.13920"},
    }
    print(json.dumps(out, indent=2))
    dest = Path(__file__).parent / "results" / "audio_cpu_latency.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--build", type=Path, default=None, help="an audio build folder whose trained weights to load")
    args = ap.parse_args()
    main(args.runs, args.build)
