"""`edgekd sweep`: validate every point, build the shared teacher once, run the points as Dask tasks, write
sweep.json, sweep.md, sweep.html and best.yaml.

Outputs in the sweep folder (`--out`, default build/<name>-sweep):

    sweep.json     every point: overrides, resolved config, figures or error + step, wall time, worker
    sweep.md/html  the table, the Pareto sets and the plots (rendered from sweep.json alone)
    best.yaml      the most accurate point within the budgets, as a whole config
    base/          the shared data + teacher build
    points/<key>/  each point's build folder (when the workers see this folder)
    results/       one JSON per point, by cache key: what a resumed sweep reuses
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from pathlib import Path

from edgekd import __version__
from edgekd.config import ConfigError, dump_config
from edgekd.io import read_json, write_json, write_text
from edgekd.sweep.base import base_sha256, seed_point_folder
from edgekd.sweep.cache import ResultCache
from edgekd.sweep.points import Point, load_base_config, point_key, resolve_points
from edgekd.sweep.select import budget_verdict, choose_best, pareto_indices
from edgekd.sweep.spec import SweepSpec, SweepSpecError, load_sweep_spec
from edgekd.sweep.task import MARKER, run_base_task, run_point_task

__all__ = ["TO_STEP", "SweepError", "SweepFolderError", "prepare_sweep", "run_sweep"]

log = logging.getLogger(__name__)

TO_STEP = "hls"  # fit check, emulator on the whole test split, bit-exact verification; `project` is best.yaml's


class SweepError(RuntimeError):
    """The sweep could not run (the shared teacher failed, the cluster is unusable); the message says why."""


class SweepFolderError(SweepError):
    """--out cannot hold a sweep (a file, or a folder of something else)."""


def prepare_sweep(config_path: Path, spec_path: Path) -> tuple[SweepSpec, list[Point], object]:
    """Parse and validate the sweep and every point (nothing runs); raises SweepSpecError / ConfigError."""
    from edgekd.safety import missing_input_paths

    spec = load_sweep_spec(spec_path)
    _, base_cfg = load_base_config(config_path)
    points = resolve_points(config_path, spec, str(spec_path))
    for p in points:  # figures and ranking read the image classification task's files (edgekd.sweep.figures)
        if p.config.task != "classification" or p.config.student.qonnx is not None:
            raise SweepSpecError(f"{spec_path}: point {p.index} ({p.label}): edgekd sweep builds and ranks image "
                                 "classification students; speech (task regression) and bring-your-own QONNX "
                                 "configs are not supported yet")
    for p in [None, *points]:
        missing = missing_input_paths(base_cfg if p is None else p.config)
        if missing:
            where = f"{config_path}" if p is None else f"{spec_path}: point {p.index} ({p.label})"
            raise ConfigError(f"{where}: " + "; ".join(missing))
    return spec, points, base_cfg


def _open_folder(out: Path, config_path: Path) -> str:
    """The sweep folder's token (workers compare it to know they see the folder); refuses a foreign folder."""
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise SweepFolderError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not marker.is_file():
        raise SweepFolderError(f"{out}: folder has files but is not an edgekd sweep folder; choose a new or empty --out")
    try:
        if marker.is_file():
            return read_json(marker)["token"]
        token = uuid.uuid4().hex
        write_json(marker, {"edgekd_version": __version__, "token": token, "config": str(config_path.resolve())})
        return token
    except OSError as err:
        raise SweepFolderError(f"{out}: cannot write the sweep folder ({err.strerror})") from None
    except (ValueError, KeyError, TypeError):
        raise SweepFolderError(f"{marker}: damaged; remove it to reuse this folder") from None


def _build_base(client, base_cfg, out: Path, token: str, threads: int) -> dict:
    log.info("shared teacher: data + teacher steps in %s", out / "base")
    base = client.submit(run_base_task, base_cfg.model_dump(mode="json"), str(out.resolve()), token, threads,
                         key=f"edgekd-base-{uuid.uuid4().hex[:8]}", pure=False)
    try:
        result = base.result()
    except Exception as err:  # noqa: BLE001 - any failure of the teacher build stops the sweep, named
        step = getattr(err, "edgekd_step", None)
        raise SweepError(f"the shared teacher build failed{f' at step {step}' if step else ''}: "
                         f"{type(err).__name__}: {err}") from None
    if not result["shared"]:  # the worker does not see this folder: keep the base here too (preselect, users)
        seed_point_folder(out / "base", result["entries"], bundle=result["bundle"])
    return result


def _lost(point: dict, err: BaseException) -> dict:
    return {"index": point["index"], "key": point["key"], "overrides": point["overrides"], "status": "failed",
            "failed_step": None, "error": f"lost by the cluster: {type(err).__name__}: {err}", "worker": None}


def run_sweep(config_path: Path, spec_path: Path, out: Path | None = None, scheduler: str | None = None,
              workers: int | None = None, retry_failed: bool = False) -> dict:
    """Run the sweep; returns the sweep.json document (also written to <out>/sweep.json)."""
    from edgekd.sweep.runner import open_client, run_tasks

    start = time.perf_counter()
    config_path, spec_path = Path(config_path), Path(spec_path)
    spec, points, base_cfg = prepare_sweep(config_path, spec_path)
    out = Path(out) if out is not None else Path("build") / f"{base_cfg.name}-sweep"
    token = _open_folder(out, config_path)
    cache = ResultCache(out)
    results: dict[int, dict] = {}
    with open_client(scheduler, workers) as (client, cluster):
        log.info("sweep: %d points on %s (%s, %d workers)", len(points), cluster["kind"], cluster["address"],
                 cluster["workers"])
        base = _build_base(client, base_cfg, out, token, spec.threads)
        preselection = None
        if spec.preselect is not None:
            from edgekd.sweep.preselect import preselect_points

            points, preselection = preselect_points(points, spec.preselect, out / "base")
        base_hash = base_sha256(base["entries"])
        todo = []
        for p in points:
            p.key = point_key(p.config, base_hash, spec.threads, TO_STEP)
            cached = cache.get(p.key, retry_failed)
            if cached is not None:
                results[p.index] = {**cached, "index": p.index, "overrides": p.overrides, "cached": True}
            else:
                todo.append(p)
        log.info("sweep: %d points cached, %d to build", len(points) - len(todo), len(todo))
        bundle = client.scatter(base["bundle"], broadcast=True) if base["bundle"] is not None else None
        submissions = []
        for p in todo:
            payload = {"index": p.index, "key": p.key, "overrides": p.overrides, "config": p.config_dict(),
                       "label": p.label}
            fut = client.submit(run_point_task, payload, str(out.resolve()), token, spec.threads, TO_STEP,
                                base["entries"], bundle, key=f"edgekd-point-{p.index}-{p.key[:12]}", pure=False)
            submissions.append((payload, fut))

        def on_result(point: dict, result: dict) -> None:
            result.update(config=point["config"], label=point["label"])
            cache.put(result)
            results[point["index"]] = {**result, "cached": False}

        run_tasks(client, submissions, on_result, _lost)
    doc = assemble_sweep(spec, points, results, base, cluster, config_path, spec_path, out,
                         round(time.perf_counter() - start, 2), preselection)
    write_outputs(doc, out)
    return doc


def assemble_sweep(spec: SweepSpec, points: list[Point], results: dict[int, dict], base: dict, cluster: dict,
                   config_path: Path, spec_path: Path, out: Path, wall_s: float, preselection: dict | None) -> dict:
    rows = []
    for p in points:
        r = dict(results[p.index])
        r.setdefault("config", p.config_dict())
        r.setdefault("label", p.label)
        r["budget_reasons"] = budget_verdict(r, spec.budgets)
        r["within_budgets"] = not r["budget_reasons"]
        rows.append(r)
    pareto_lat, pareto_util = pareto_indices(rows, "latency"), pareto_indices(rows, "utilization")
    for r in rows:
        r["pareto_latency"], r["pareto_utilization"] = r["index"] in pareto_lat, r["index"] in pareto_util
    best = choose_best(rows, spec.budgets)
    ran = [r for r in rows if not r.get("cached")]
    return {
        "edgekd_version": __version__,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": str(config_path), "sweep_file": str(spec_path), "out": str(out),
        "spec": spec.model_dump(mode="json"), "budgets": spec.budgets.model_dump(mode="json"),
        "threads": spec.threads, "to_step": TO_STEP, "cluster": cluster,
        "base": {k: base[k] for k in ("shared", "worker", "host", "seconds", "steps", "teacher")} | {"dir": "base"},
        "preselect": preselection,
        "summary": {
            "points": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
            "failed": sum(r["status"] != "ok" for r in rows), "cached": len(rows) - len(ran), "built": len(ran),
            "wall_s": wall_s, "points_wall_s": round(sum(r.get("wall_s") or 0.0 for r in ran), 2),
            "within_budgets": [r["index"] for r in rows if r["within_budgets"]],
            "pareto_latency": pareto_lat, "pareto_utilization": pareto_util,
            "best": None if best is None else best["index"],
        },
        "points": rows,
    }


def best_yaml(doc: dict) -> str | None:
    """best.yaml: the chosen point's whole resolved config, the same bytes as its config.resolved.yaml."""
    best = doc["summary"]["best"]
    if best is None:
        return None
    row = next(r for r in doc["points"] if r["index"] == best)
    from edgekd.config import parse_config

    cfg = parse_config(row["config"], source="best point")
    acc = row["accuracy"]["hardware"]
    header = (
        f"# edgekd sweep {doc['sweep_file']}: point {best} ({row['label']})\n"
        f"# the most accurate point within the budgets {json.dumps(doc['budgets'])}:\n"
        f"# hardware accuracy {acc:.4f}, latency {row['latency']['us']} us ({row['latency']['kind']}), "
        f"{row['resources']['binding']} {row['resources']['binding_fraction']:.0%}, {row['params']} params\n"
        f"# student weights sha256 {row['hashes'].get('distill/student.pt')}\n"
        f"# reproduce it bit for bit (the sweep built with {doc['threads']} torch thread(s)):\n"
        f"#   EDGEKD_THREADS={doc['threads']} edgekd build best.yaml\n"
    )
    return header + dump_config(cfg)


def write_outputs(doc: dict, out: Path) -> None:
    """sweep.json first, then the renderings and best.yaml (all from the document)."""
    from edgekd.sweep.render import render_html, render_markdown

    write_json(out / "sweep.json", doc)
    write_text(out / "sweep.md", render_markdown(doc))
    write_text(out / "sweep.html", render_html(doc))
    text = best_yaml(doc)
    if text is None:
        (out / "best.yaml").unlink(missing_ok=True)
    else:
        write_text(out / "best.yaml", text)
