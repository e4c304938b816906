"""Bring your own QONNX (issue 13): the corpus of files in the forms real exporters write, each converted with
`edgekd convert` end to end (export -> hls C-simulation -> board project with its own C-simulation -> report),
against plain hls4ml 1.3.0 on the same file.

Corpus: tests/byo/byo_models.py `ECOSYSTEM` (QKeras jet tagger with softmax and a symbolic batch, FINN-style
1-bit TFC with a legacy domain and no opset import, network-intrusion MLP with 2-bit weights, Gemm, no shapes,
batch 8, onnx.brevitas MNIST MLP with 2-bit float-scale weights and a Transpose preamble, keyword-spotting MLP
with 3-bit weights and an 8-bit float-scale input plus TopK, a brevitas float-scale export with softmax).

Per model: `edgekd convert` without `--allow-inexact` (exit 0 for exact models, 1 naming the layers for
float-scale ones), then with it where needed; the fraction of C-sim outputs bit-equal to QONNX execution,
max abs error, predicted-class agreement (after the host stage), per-layer max abs errors, the project's
C-simulation; and plain hls4ml: qonnx cleanup -> channels-last -> GemmToMatMul -> hls4ml's own config (its
default input type) -> C-simulation on the same inputs.

    .venv/bin/python benchmarks/byo_ecosystem.py [n_inputs]     # default 1000 random inputs on the input grid
    .venv/bin/python benchmarks/byo_ecosystem.py 1000 --zoo DIR  # the real files of the qonnx model zoo (issue 29)
    .venv/bin/python benchmarks/byo_ecosystem.py 1000 --conv     # convolutional exporters' forms (issue 29)

With --zoo, the models are the .onnx files in DIR (github fastmachinelearning/qonnx_model_zoo: TFC_1W1A/1W2A/2W2A,
kwsmlp_w3a3, qkeras_jettagging, unsw_nb15-mlp-w2a2; not committed here, their licences are per folder), the inputs
are drawn from each file's input datatype (its annotation, else the preimage of its first quantizer's grid) and
the results go to benchmarks/results/byo_zoo.json.

With --conv, the models are tests/byo/byo_models.py `CONV_MODELS` (QKeras via qonnx: NHWC input wrapped in
Transposes, Conv without pads/group; brevitas: per-channel Sub/Div preamble, Conv/pool attributes at their ONNX
defaults removed, padded Conv, AveragePool, Flatten; a float-scale variant with a 3x3 average) and the results go
to benchmarks/results/byo_conv.json.

Prints and saves JSON (benchmarks/results/byo_ecosystem.json); never part of the tests.
"""

from __future__ import annotations

import copy
import json
import logging
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "byo"))
import byo_models as models  # noqa: E402

from edgekd.config import parse_config  # noqa: E402
from edgekd.pipeline import run_build  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "byo_ecosystem.json"


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a).reshape(len(a), -1)
    b = np.asarray(b).reshape(len(b), -1)
    if a.shape[1] == 1:  # one output (UNSW-NB15's bipolar decision): agreement of its sign
        return float(np.mean((a[:, 0] >= 0) == (b[:, 0] >= 0)))
    return float(np.mean(a.argmax(1) == b.argmax(1)))


def plain_hls4ml(model_path: Path, x: np.ndarray, work: Path) -> dict:
    """hls4ml 1.3.0 as its documentation takes a QONNX file, on inputs x (the user's input layout)."""
    import hls4ml
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    from edgekd.export.prepare import SplitHostPostprocessing
    from edgekd.export.qonnx import run_qonnx
    from edgekd.hls.convert import quiet_hls4ml
    from edgekd.hls.csim import predict_csim

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = cleanup_model(ModelWrapper(str(model_path)), override_inpsize=1)  # qonnx's batch-size fix
            raw = ModelWrapper(raw.model)  # shapes of the initializers again (ChangeBatchSize drops them)
    except Exception as err:  # noqa: BLE001 - the point: what plain tooling does with the file
        return {"error": f"qonnx cleanup: {type(err).__name__}: {str(err)[:200]}"}
    try:
        import onnx

        onnx.checker.check_model(str(model_path))
        checker = "accepted"
    except Exception as err:  # noqa: BLE001
        checker = f"refused: {str(err).splitlines()[0][:160]}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = raw.transform(GemmToMatMul())
            m = cleanup_model(m)
            host = SplitHostPostprocessing()  # the same host stage as edgekd (hls4ml's softmax is a table)
            m = m.transform(host)
            m = cleanup_model(m)
            in_shape = m.get_tensor_shape(m.graph.input[0].name)
            x = np.asarray(x, dtype=np.float32).reshape(len(x), *in_shape[1:])
            m = cleanup_model(m.transform(ConvertToChannelsLastAndClean()))
            y_ref = np.asarray(run_qonnx(m, x), dtype=np.float64).reshape(len(x), -1)  # what hls4ml was given
            with quiet_hls4ml():
                cfg = hls4ml.utils.config_from_onnx_model(m, granularity="name", backend="Vitis")
                hm = hls4ml.converters.convert_from_onnx_model(m, output_dir=str(work), backend="Vitis",
                                                               io_type="io_stream", hls_config=cfg)
                hm.compile()
                y = np.asarray(predict_csim(hm, x, progress=False)).reshape(len(x), -1)
    except Exception as err:  # noqa: BLE001
        return {"onnx_checker": checker, "error": f"{type(err).__name__}: {str(err)[:200]}"}
    return {"onnx_checker": checker, "n": len(x), "host_ops": [h["op_type"] for h in host.host_ops],
            "exact": float(np.mean(y == y_ref)), "max_abs_diff": float(np.max(np.abs(y - y_ref))),
            "class_agreement": _agreement(y, y_ref)}


def convert(model_path: Path, out: Path, n: int, allow_inexact: bool,
            board: str = "zcu104") -> tuple[int, dict | None, str, float]:
    cfg = parse_config({"name": model_path.stem, "hls": {"board": board},
                        "student": {"qonnx": str(model_path), "random_inputs": n, "allow_inexact": allow_inexact}})
    t0 = time.perf_counter()
    try:
        run_build(cfg, out)
    except Exception as err:  # noqa: BLE001 - exit status 1 of `edgekd convert`
        return 1, None, f"{type(err).__name__}: {err}", time.perf_counter() - t0
    report = json.loads((out / "report" / "report.json").read_text())
    return 0, report, "", time.perf_counter() - t0


def main() -> None:
    import argparse

    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=1000, help="random inputs per model")
    ap.add_argument("--zoo", type=Path, default=None, help="folder with the qonnx model zoo's .onnx files")
    ap.add_argument("--conv", action="store_true", help="the convolutional corpus (CONV_MODELS)")
    args = ap.parse_args()
    n = args.n
    global RESULTS
    if args.zoo is not None:
        files = sorted(args.zoo.glob("*.onnx"))
        if not files:
            sys.exit(f"--zoo {args.zoo}: no .onnx files there")
        corpus = {f.stem: ((lambda p, f=f: f), "?", None) for f in files}
        RESULTS = RESULTS.with_name("byo_zoo.json")
    elif args.conv:
        corpus = models.CONV_MODELS
        RESULTS = RESULTS.with_name("byo_conv.json")
    else:
        corpus = models.ECOSYSTEM
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for kind, (build, expected, host) in corpus.items():
            path = build(root / f"{kind}.onnx")
            code, report, err, _ = convert(path, root / f"{kind}-strict", n, allow_inexact=False)
            row = {"model": kind, "expected_verdict": expected, "exit_without_allow_inexact": code,
                   "refusal": err.splitlines()[0][:200] if err else None}
            if code != 0:
                code, report, err, seconds = convert(path, root / kind, n, allow_inexact=True)
                row["exit_with_allow_inexact"] = code
            row["board"] = "zcu104"
            if code != 0 and "does not fit" in err:  # a larger part, said in the table
                row["zcu104_refusal"] = err.splitlines()[0][:300]
                code, report, err, seconds = convert(path, root / kind, n, allow_inexact=True, board="alveo-u250")
                row["board"], row["exit_with_allow_inexact"] = "alveo-u250", code
            else:
                seconds = None
            if report is None:
                row["error"] = err[:400]
                rows.append(row)
                continue
            fid = report["fidelity"]
            per_layer = {r["name"]: r["measured"]["max_abs_diff"] for r in report["layers"]
                         if r.get("measured") and r["measured"].get("scope") != "model output"}
            row.update({
                "static_verdict": report["static_verdict"], "verdict": report["verdict"], "n": fid["n"],
                "csim_bit_equal": fid["qonnx_vs_csim_exact"], "max_abs_diff": fid["max_abs_diff"],
                "class_agreement": fid["class_agreement"],
                "agreement_after_host": (report["host_postprocessing"] or {}).get("agreement_after_host"),
                "host_ops": (report["host_postprocessing"] or {}).get("ops", []),
                "first_diverging_layer": fid["first_diverging_layer"], "per_layer_max_abs_diff": per_layer,
                "precisions_chosen": len(report.get("precisions", [])),
                "project_csim_bit_equal": report["project"]["csim"]["exact"],
                "input_precision": report["model"]["input_precision"],
                "seconds": seconds if seconds is not None else sum(report["timings_s"].values()),
                "folds": [f["kind"] for f in report["folds"]],
            })
            export_dir = root / (kind if row.get("exit_with_allow_inexact") is not None else f"{kind}-strict") / "export"
            x = np.load(export_dir / "verify_inputs.npy")
            if (export_dir / "user_inputs.npy").is_file():  # the host input stage made x from these
                x = np.load(export_dir / "user_inputs.npy")
            ex = json.loads((export_dir / "export.json").read_text())
            row["input_datatype"] = ex.get("input_datatype")
            row["host_preprocessing"] = (ex.get("host_preprocessing") or {}).get("ops")
            row["plain_hls4ml"] = plain_hls4ml(path, copy.deepcopy(x), root / f"{kind}-plain")
            rows.append(row)
            print(json.dumps(row, indent=1), flush=True)
    result = {"benchmark": RESULTS.stem, "n_inputs": n, "machine": platform.machine(),
              "python": platform.python_version(), "models": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print("| model | board | verdict | C-sim bit-equal | class agreement | max abs diff | project C-sim | plain hls4ml |")
    for r in rows:
        p = r.get("plain_hls4ml", {})
        if "error" in r:  # edgekd did not convert it
            print(f"| {r['model']} | {r.get('board')} | failed: {r['error'][:160]} |")
            continue
        plain = p.get("error") or f"{100 * p['class_agreement']:.1f}% class, {100 * p['exact']:.1f}% bit-equal"
        print(f"| {r['model']} | {r.get('board')} | {r.get('verdict')} | {100 * r.get('csim_bit_equal', 0):.2f}% | "
              f"{100 * (r.get('class_agreement') or r.get('agreement_after_host') or 0):.2f}% | {r.get('max_abs_diff')} | "
              f"{100 * r.get('project_csim_bit_equal', 0):.0f}% | {plain} |")
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
