"""One teacher for the whole sweep: the `data` and `teacher` steps built once, then seeded into every point.

The base build is `run_build(cfg, <out>/base, to_step="teacher")` of the sweep's config. A point's build
folder is seeded with the base's `data/` and `teacher/` folders, their manifest entries and the teacher's
annotation cache (`cache/teacher_logits`), so the pipeline's own inputs-hash check skips both steps. A point
that changes a key those steps read (data.*, teacher.*, seed) gets a different inputs hash, and the pipeline
simply rebuilds them in that point's folder.

When a worker does not see the sweep folder (a cluster without a shared file system), the base travels as a
bundle of bytes (relative path -> contents) instead: the base task returns it, the client scatters it to the
workers once, and each point writes it into its local build folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgekd.config import sha256_json
from edgekd.pipeline import Manifest

__all__ = ["BASE_STEPS", "base_sha256", "bundle_base", "seed_point_folder", "write_bundle"]

BASE_STEPS = ("data", "teacher")
SHARED_CACHE = "cache/teacher_logits"  # teacher annotations, keyed by teacher and image hashes


def base_sha256(entries: dict[str, dict]) -> str:
    """Hash of the base's data and teacher files (splits, weights, logits; not the .json summaries, which
    carry timings): part of each point's cache key. A rebuilt teacher with the same bits keeps the cache."""
    return sha256_json({s: {k: v for k, v in entries[s]["outputs"].items() if not k.endswith(".json")}
                        for s in BASE_STEPS})


def base_entries(base_dir: Path) -> dict[str, dict]:
    manifest = Manifest(base_dir)
    missing = [s for s in BASE_STEPS if s not in manifest.steps]
    if missing:
        raise RuntimeError(f"{base_dir}: the shared teacher build has no {', '.join(missing)} step")
    return {s: manifest.steps[s] for s in BASE_STEPS}


def _shared_files(root: Path) -> list[Path]:
    folders = [root / s for s in BASE_STEPS] + [root / SHARED_CACHE]
    return sorted(p for folder in folders if folder.is_dir() for p in folder.rglob("*") if p.is_file())


def bundle_base(base_dir: Path) -> dict[str, bytes]:
    """The base's step folders and teacher cache as {relative path: bytes} (for workers without the folder)."""
    return {str(p.relative_to(base_dir)): p.read_bytes() for p in _shared_files(base_dir)}


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:  # steps never edit a file in place (staging + rename), so a hard link is as good as a copy
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def write_bundle(bundle: dict[str, bytes], dest_root: Path) -> None:
    for rel, blob in bundle.items():
        path = dest_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)


def seed_point_folder(point_dir: Path, entries: dict[str, dict], base_dir: Path | None = None,
                      bundle: dict[str, bytes] | None = None) -> bool:
    """Put the base's data and teacher (folders + manifest entries + teacher cache) into a point's build folder.

    Returns False when the folder already holds exactly them (a resumed point), True when it was seeded."""
    point_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(point_dir)
    if all(manifest.steps.get(s) == entries[s] and manifest.is_current(s, entries[s]["inputs_sha256"])
           for s in BASE_STEPS):
        return False
    for step in BASE_STEPS:
        if (point_dir / step).exists():
            shutil.rmtree(point_dir / step)
    if bundle is not None:
        write_bundle(bundle, point_dir)
    elif base_dir is not None:
        for src in _shared_files(base_dir):
            _link_or_copy(src, point_dir / src.relative_to(base_dir))
    else:
        raise ValueError("seed_point_folder needs the base folder or its bundle")
    for step in BASE_STEPS:
        manifest.steps[step] = entries[step]
    manifest.save()
    return True
