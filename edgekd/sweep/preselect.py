"""`preselect: K`: rank the sweep's distinct students with suggest-student's training-free score and build
only the points whose student is among the best K.

The score is edgekd.students.suggest's DisWOT-style similarity of each randomly initialised student to the
sweep's trained teacher (the shared base build) on one batch of its training images; higher is more like
the teacher. Points that differ only in other keys (distill.*, hls.*) share their student's rank.
"""

from __future__ import annotations

import json

from edgekd.sweep.points import Point
from edgekd.sweep.spec import SweepSpecError

__all__ = ["preselect_points"]


def preselect_points(points: list[Point], k: int, base_dir, batch: int = 64) -> tuple[list[Point], dict]:
    """The points to build and the ranking ({label, score, kept} per distinct student), best first."""
    from edgekd.students import suggest

    first = points[0].config
    if any(p.config.student.name != "cell_cnn" or p.config.task != "classification" for p in points):
        raise SweepSpecError("preselect: suggest-student ranks cell_cnn students of classification builds only")
    students: dict[str, list[Point]] = {}
    for p in points:
        students.setdefault(json.dumps(p.config.student.model_dump(mode="json"), sort_keys=True), []).append(p)
    images, labels, class_names = suggest._probe_batch(first, base_dir, batch)
    channels = int(images.shape[-1]) if images.ndim == 4 else 1  # colour images are channels-last
    teacher = suggest._teacher_probe(first, base_dir, len(class_names), channels)
    candidates = [suggest.Candidate(ps[0].config.student, params=0, latency={}) for ps in students.values()]
    by_id = {id(c): key for c, key in zip(candidates, students)}
    ranked = suggest.score_candidates(candidates, teacher, images, labels, len(class_names), seed=first.seed)
    keep = {by_id[id(c)] for c in ranked[:k]}
    ranking = [{"student": c.student.model_dump(mode="json"), "score": c.score, "d_semantic": c.d_semantic,
                "d_relation": c.d_relation, "points": [p.index for p in students[by_id[id(c)]]],
                "kept": by_id[id(c)] in keep} for c in ranked]
    kept_points = [p for key, ps in students.items() if key in keep for p in ps]
    return sorted(kept_points, key=lambda p: p.index), {"k": k, "method": "suggest-student (DisWOT-style score)",
                                                         "ranking": ranking}
