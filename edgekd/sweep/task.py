"""What a Dask worker runs: the shared teacher build and one point's build. Plain functions of plain data.

Each task pins torch to the sweep's thread count (`EDGEKD_THREADS`, read by run_build's
configure_determinism) so that a point's weights do not depend on the worker it landed on, and
`EDGEKD_THREADS=<threads> edgekd build best.yaml` reproduces them. A build error is returned as a failed
result (message and step, from the pipeline's `edgekd_step`), never raised: the sweep goes on.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import traceback
from pathlib import Path

__all__ = ["MARKER", "run_base_task", "run_point_task", "sees_sweep_folder"]

MARKER = ".edgekd-sweep.json"
SCRATCH_ENV = "EDGEKD_SWEEP_SCRATCH"  # where a worker without the sweep folder builds (default: the temp dir)
SHARED_ENV = "EDGEKD_SWEEP_SHARED"  # "0": build in the scratch folder even when the sweep folder is visible


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"local:{os.getpid()}"


def _single_task_worker() -> None:
    """Builds set process-wide torch state (threads, seeds, deterministic mode): one build per process."""
    try:
        from distributed import get_worker

        nthreads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    if nthreads != 1:
        raise RuntimeError(f"worker {get_worker().address} runs {nthreads} tasks at once; builds set process-wide "
                           "torch state, so start sweep workers with `dask worker ADDRESS --nthreads 1`")


def _prepare(threads: int) -> None:
    _single_task_worker()
    os.environ["EDGEKD_THREADS"] = str(threads)
    logging.getLogger().setLevel(logging.WARNING)  # a worker's log is not the user's console
    for noisy in ("hls4ml", "qonnx", "brevitas", "matplotlib", "PIL", "edgekd"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def sees_sweep_folder(out: str, token: str) -> bool:
    """True when this process sees the client's sweep folder (same machine or a shared file system)."""
    import json

    if os.environ.get(SHARED_ENV, "").strip() == "0":
        return False
    try:
        return json.loads((Path(out) / MARKER).read_text()).get("token") == token
    except (OSError, ValueError, AttributeError):
        return False


def run_base_task(cfg_dict: dict, out: str, token: str, threads: int) -> dict:
    """Build data + teacher once; in <out>/base when this worker sees the sweep folder, else in its scratch
    folder, returning the files as a bundle."""
    _prepare(threads)
    from edgekd.config import parse_config
    from edgekd.io import read_json
    from edgekd.pipeline import run_build
    from edgekd.sweep.base import base_entries, bundle_base

    cfg = parse_config(cfg_dict, source="sweep base config")
    shared = sees_sweep_folder(out, token)
    scratch = None if shared else tempfile.mkdtemp(prefix="edgekd-sweep-base-", dir=os.environ.get(SCRATCH_ENV))
    base_dir = Path(out) / "base" if shared else Path(scratch)
    start = time.perf_counter()
    steps = run_build(cfg, base_dir, to_step="teacher")
    teacher = read_json(base_dir / "teacher" / "teacher.json")
    result = {
        "shared": shared, "entries": base_entries(base_dir), "worker": _worker_name(), "host": socket.gethostname(),
        "seconds": round(time.perf_counter() - start, 2), "steps": {s: r["status"] for s, r in steps.items()},
        "teacher": {"params": teacher.get("params"), "metrics": teacher.get("metrics"), "sha256": teacher.get("sha256")},
        "bundle": None if shared else bundle_base(base_dir),
    }
    if scratch is not None:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    return result


def run_point_task(point: dict, out: str, token: str, threads: int, to_step: str, entries: dict,
                   bundle: dict | None = None) -> dict:
    """Build one point through `to_step` and return its figures (or its error and failing step)."""
    start = time.perf_counter()
    result: dict = {"index": point["index"], "key": point["key"], "overrides": point["overrides"],
                    "worker": _worker_name(), "host": socket.gethostname()}
    try:
        _prepare(threads)
    except RuntimeError as err:  # not a build failure: never cached, the next run tries again
        return {**result, "status": "failed", "failed_step": None, "error": str(err), "wall_s": 0.0}
    shared = sees_sweep_folder(out, token)
    scratch = None
    try:
        from edgekd.config import parse_config
        from edgekd.pipeline import run_build
        from edgekd.sweep.base import seed_point_folder
        from edgekd.sweep.figures import point_figures

        cfg = parse_config(point["config"], source=f"sweep point {point['index']}")
        if shared:
            build_dir = Path(out) / "points" / point["key"][:16]
            seed_point_folder(build_dir, entries, base_dir=Path(out) / "base")
        else:
            if bundle is None:
                raise RuntimeError(f"worker {result['worker']} does not see the sweep folder {out} and got no "
                                   "copy of the shared teacher")
            scratch = tempfile.mkdtemp(prefix="edgekd-sweep-point-", dir=os.environ.get(SCRATCH_ENV))
            build_dir = Path(scratch)
            seed_point_folder(build_dir, entries, bundle=bundle)
        steps = run_build(cfg, build_dir, to_step=to_step)
        result.update(status="ok", steps={s: r["status"] for s, r in steps.items()},
                      step_seconds={s: round(r["seconds"], 2) for s, r in steps.items()},
                      build_dir=str(build_dir) if shared else None, **point_figures(build_dir))
    except Exception as err:  # noqa: BLE001 - a failed point is a result: recorded with its step, the sweep goes on
        result.update(status="failed", failed_step=getattr(err, "edgekd_step", None),
                      error=f"{type(err).__name__}: {err}",
                      traceback="".join(traceback.format_exception(err)[-6:]))
    finally:
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["threads"] = threads
    return result
